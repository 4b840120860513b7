"""The one registry of update rules: name -> factory ``factory(learning_rate, **hparams)``.

Names are this codebase's rules written from scratch (``sgd``, ``adam``, ..., ``sam``) and
``optax:<name>`` for optax's own implementation of the same rule (``optax:adam``), used by the
parity tests and by anyone who wants optax's numerics. Everything the engine needs to know about
a rule is read from its factory's signature, here and only here:

* ``hyperparameter_names(name, **structural)``: the numeric keywords (``learning_rate`` first)
  that a sweep may vary. Non-numeric keywords (SAM's ``adaptive`` and ``base``) are *structural*:
  they change the program, so they are configuration, not sweep axes.
* ``option_names(name)``: every keyword a config's ``optimizer_options`` may fix.

A rule that wraps another (SAM) takes it as the keyword ``base`` (a name of ``BASE_RULES`` or a
factory, as optax's ``contrib.sam`` takes a transformation) and forwards ``**base_hparams`` to
it; its sweepable hyperparameters are its own numeric keywords followed by the base's.
"""

from __future__ import annotations

import inspect

import optax

from dl_course.optim.rules import BASE_RULES, Factory, base_rule
from dl_course.optim.sharpness_aware import sam


def _optax_sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None, weight_decay=0.0, mask=None):
    return optax.chain(optax.add_decayed_weights(weight_decay, mask),
                       optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype))


def _optax_momentum(learning_rate, momentum=0.9, weight_decay=0.0, mask=None, accumulator_dtype=None):
    return _optax_sgd(learning_rate, momentum, False, accumulator_dtype, weight_decay, mask)


def _optax_nesterov(learning_rate, momentum=0.9, weight_decay=0.0, mask=None, accumulator_dtype=None):
    return _optax_sgd(learning_rate, momentum, True, accumulator_dtype, weight_decay, mask)


def _optax_normalized_gd(learning_rate, eps=1e-6):
    return optax.chain(optax.normalize_by_update_norm(1.0, eps=eps), optax.scale_by_learning_rate(learning_rate))


#: optax's implementations, selected as ``optax:<name>`` (weight decay added before the step as in
#: this codebase's rules).
OPTAX: dict[str, Factory] = {
    "sgd": _optax_sgd,
    "momentum": _optax_momentum,
    "nesterov": _optax_nesterov,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
    "sign_descent": optax.sign_sgd,
    "normalized_gd": _optax_normalized_gd,
}

#: This codebase's rules, by name.
REGISTRY: dict[str, Factory] = {**BASE_RULES, "sam": sam}


def names() -> list[str]:
    """Every valid name: this codebase's rules, then ``optax:<name>``."""
    return sorted(REGISTRY) + [f"optax:{n}" for n in sorted(OPTAX)]


def get(name: str) -> Factory:
    """The factory registered as ``name`` (``optax:<name>`` for optax's own).

    Raises:
      ValueError: for an unknown name, listing the valid ones.
    """
    if name.startswith("optax:") and name[len("optax:"):] in OPTAX:
        return OPTAX[name[len("optax:"):]]
    if name not in REGISTRY:
        raise ValueError(f"Unknown optimizer {name!r}; valid: {names()}.")
    return REGISTRY[name]


def _parameters(factory: Factory):
    return [p for p in inspect.signature(factory).parameters.values() if p.name != "learning_rate"]


def _is_numeric(default) -> bool:
    return isinstance(default, (int, float)) and not isinstance(default, bool)


def _wraps_a_base(factory: Factory) -> bool:
    params = inspect.signature(factory).parameters
    return "base" in params and any(p.kind is p.VAR_KEYWORD for p in params.values())


def option_names(name: str, **structural) -> tuple[str, ...]:
    """Every keyword that ``optimizer_options`` may fix for rule ``name`` (``learning_rate`` and
    ``**kwargs`` excluded); for a wrapping rule also those of its base (``structural["base"]`` or
    the default one)."""
    factory = get(name)
    own = _keywords(factory)
    if _wraps_a_base(factory):
        base = base_rule(structural.get("base", inspect.signature(factory).parameters["base"].default))
        own += tuple(n for n in _keywords(base) if n not in own)
    return own


def _keywords(factory: Factory) -> tuple[str, ...]:
    return tuple(p.name for p in _parameters(factory) if p.kind is not p.VAR_KEYWORD)


def hyperparameter_names(name: str, **structural) -> tuple[str, ...]:
    """The numeric keywords a sweep may vary for rule ``name``, ``learning_rate`` first.

    ``structural`` are the rule's non-numeric keywords as the config fixes them (``base``,
    ``adaptive``); a numeric or unknown key raises. For a wrapping rule the base's numeric
    keywords follow its own: ``hyperparameter_names("sam", base="momentum") == ("learning_rate",
    "rho", "adaptive_eta", "momentum", "weight_decay")``.

    Raises:
      ValueError: for an unknown rule or option name.
    """
    factory = get(name)
    params = _parameters(factory)
    numeric = tuple(p.name for p in params if _is_numeric(p.default))
    allowed = {p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and not _is_numeric(p.default)}
    unknown = sorted(set(structural) - allowed)
    if unknown:
        raise ValueError(f"Unknown options {unknown} for optimizer {name!r}; valid: {sorted(allowed)}.")
    out = ("learning_rate", *numeric)
    if _wraps_a_base(factory):
        base = base_rule(structural.get("base", inspect.signature(factory).parameters["base"].default))
        out += tuple(p.name for p in _parameters(base) if _is_numeric(p.default) and p.name not in out)
    return out


__all__ = ["BASE_RULES", "OPTAX", "REGISTRY", "get", "hyperparameter_names", "names", "option_names"]
