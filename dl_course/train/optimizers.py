"""Resolving the optimizer and schedule names of a config.

``dl_course.optim`` holds this codebase's from-scratch rules (the default slot); the prefix
``optax:`` selects optax's own implementation of the same rule, e.g. ``optax:adam``.
"""

from __future__ import annotations

import inspect
import numbers

import optax

from dl_course.train.config import ConfigError


def _optax_momentum(learning_rate, momentum=0.9, weight_decay=0.0):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=momentum))


def _optax_nesterov(learning_rate, momentum=0.9, weight_decay=0.0):
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.sgd(learning_rate, momentum=momentum, nesterov=True))


def _optax_sgd(learning_rate, weight_decay=0.0):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate))


OPTAX = {
    "sgd": _optax_sgd,
    "momentum": _optax_momentum,
    "nesterov": _optax_nesterov,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
}


def _ours():
    from dl_course import optim

    return optim


def names() -> list[str]:
    """Valid optimizer names: this codebase's rules and ``optax:<name>``."""
    return sorted(_ours().REGISTRY) + [f"optax:{n}" for n in sorted(OPTAX)]


def get_factory(name: str):
    """The factory ``(learning_rate, **hparams) -> GradientTransformation`` for ``name``."""
    if name.startswith("optax:") and name[6:] in OPTAX:
        return OPTAX[name[6:]]
    reg = _ours().REGISTRY
    if name in reg:
        return reg[name]
    raise ConfigError(f"unknown optimizer {name!r}; valid: {', '.join(names())}")


def hyperparameter_names(name: str, options: dict | None = None) -> tuple[str, ...]:
    """Numeric keyword arguments of the rule (those a sweep may vary), learning_rate excluded.

    ``options`` are the config's fixed optimizer options; the non-numeric ones (e.g. SAM's
    ``base``) decide which hyperparameters exist."""
    if not name.startswith("optax:"):
        structural = {k: v for k, v in (options or {}).items()
                      if isinstance(v, (str, bool)) or not isinstance(v, numbers.Number)}
        try:
            names_ = _ours().hyperparameter_names(name, **structural)
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e).splitlines()[0]) from None
        return tuple(n for n in names_ if n != "learning_rate")
    sig = inspect.signature(get_factory(name))
    return tuple(p.name for p in sig.parameters.values()
                 if p.name != "learning_rate" and isinstance(p.default, numbers.Number)
                 and not isinstance(p.default, bool))


def option_names(name: str) -> tuple[str, ...]:
    """All keyword arguments the rule accepts (fixed options in ``optimizer_options``)."""
    sig = inspect.signature(get_factory(name))
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return tuple(p.name for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD) + ("**",)
    return tuple(p.name for p in sig.parameters.values() if p.name != "learning_rate")


def get_schedule(name: str, total_steps: int, **options):
    """Learning-rate shape ``s(step)`` (lr_t = learning_rate * s(step)); 'constant' is s = 1."""
    optim = _ours()
    if hasattr(optim, "get_schedule"):
        try:
            return optim.get_schedule(name, total_steps, **options)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if name == "constant":
        return lambda step: 1.0
    raise ConfigError(f"unknown schedule {name!r}; valid: constant")
