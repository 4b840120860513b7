"""The first-order update rules by name: one gradient per step. They are the rules of the
registry (``dl_course.optim.registry``) and the valid bases of rules that wrap another (SAM)."""

from __future__ import annotations

from collections.abc import Callable

import optax

from dl_course.optim.adaptive import adagrad, adam, adamw, rmsprop
from dl_course.optim.descent import momentum, nesterov, sgd
from dl_course.optim.steepest import normalized_gd, sign_descent

Factory = Callable[..., optax.GradientTransformation]

#: First-order rules, name -> ``factory(learning_rate, **hparams)``.
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


def base_rule(base: str | Factory) -> Factory:
    """The factory of a wrapped rule's base: a name in ``BASE_RULES`` or a factory itself."""
    if callable(base):
        return base
    if base not in BASE_RULES:
        raise ValueError(f"Unknown base rule {base!r}; valid: {sorted(BASE_RULES)}.")
    return BASE_RULES[base]
