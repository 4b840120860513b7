"""Registry of update rules: name -> factory ``factory(learning_rate, **hparams)``.

``hyperparameter_names(name)`` lists the numeric keywords a sweep may vary (read from the
factory's signature: ``learning_rate`` plus every keyword whose default is a number), so the
engine can reject a misspelt grid key before compiling anything. Non-numeric options (SAM's
``adaptive`` and ``base``) are structural: they change the program, so they are configuration,
not sweep axes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import optax

from dl_course.optim.adaptive import adagrad, adam, adamw, rmsprop
from dl_course.optim.sharpness_aware import resolve_base, sam
from dl_course.optim.descent import momentum, nesterov, sgd
from dl_course.optim.steepest import normalized_gd, sign_descent

Factory = Callable[..., optax.GradientTransformation]

#: First-order rules: one gradient per step. These are also the valid bases of SAM.
BASE_RULES: dict[str, Factory] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "sign_descent": sign_descent,
    "normalized_gd": normalized_gd,
}

#: Every rule, by name.
REGISTRY: dict[str, Factory] = {**BASE_RULES, "sam": sam}


def get(name: str) -> Factory:
    """The factory registered as ``name``.

    Raises:
      ValueError: for an unknown name, listing the valid ones.
    """
    if name not in REGISTRY:
        raise ValueError(f"Unknown optimizer {name!r}; valid: {sorted(REGISTRY)}.")
    return REGISTRY[name]


def _numeric_keywords(factory: Factory) -> tuple[str, ...]:
    names = []
    for parameter in inspect.signature(factory).parameters.values():
        default = parameter.default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            names.append(parameter.name)
    return tuple(names)


def hyperparameter_names(name: str, **options) -> tuple[str, ...]:
    """The numeric keywords a sweep may vary for rule ``name``, ``learning_rate`` first.

    For ``"sam"`` the base rule's numeric keywords follow SAM's own (``rho``, ``adaptive_eta``);
    pass the same ``base=...`` the rule will be built with (default "sgd"). ``options`` are the
    rule's non-numeric keywords; any other key raises.

    Examples: ``hyperparameter_names("adam") == ("learning_rate", "b1", "b2", "eps")``;
    ``hyperparameter_names("sam", base="momentum") == ("learning_rate", "rho", "adaptive_eta",
    "momentum", "weight_decay")``.

    Raises:
      ValueError: for an unknown rule name or an unknown option.
    """
    factory = get(name)
    allowed = {
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        and p.name != "learning_rate"
        and p.name not in _numeric_keywords(factory)
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"Unknown options {unknown} for optimizer {name!r}; valid: {sorted(allowed)}.")
    names = ("learning_rate", *_numeric_keywords(factory))
    if factory is sam:
        base = options.get("base", inspect.signature(sam).parameters["base"].default)
        base_names = _numeric_keywords(resolve_base(base))
        names += tuple(n for n in base_names if n not in names)
    return names


__all__ = ["BASE_RULES", "REGISTRY", "get", "hyperparameter_names"]
