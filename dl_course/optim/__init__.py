"""Update rules written from scratch as optax ``GradientTransformation``s, and learning-rate shapes.

Rules (each ``factory(learning_rate, **hparams) -> optax.GradientTransformationExtraArgs``; the
docstrings give the update equations, the state and the paper):

- :mod:`~dl_course.optim.descent`: ``sgd``, ``momentum`` (heavy ball), ``nesterov``
- :mod:`~dl_course.optim.adaptive`: ``adagrad``, ``rmsprop``, ``adam``, ``adamw``
- :mod:`~dl_course.optim.steepest`: ``sign_descent``, ``normalized_gd``
- :mod:`~dl_course.optim.sharpness_aware`: ``sam`` (SAM / ASAM around any base rule; needs ``grad_fn``)
- :mod:`~dl_course.optim.registry`: the one lookup (``get``, ``names``, ``hyperparameter_names``,
  ``option_names``), with optax's own rules as ``optax:<name>``

Conventions (see :mod:`~dl_course.optim.base`): hyperparameters are call arguments that may be
traced scalars and never live in the state; ``update`` accepts the extra keyword ``grad_fn``;
state and update dtypes follow the parameters. Learning-rate schedules are shapes
(:mod:`~dl_course.optim.schedules`): ``lr_t = learning_rate * s(step)``.

Example::

    tx = dl_course.optim.get("adam")(learning_rate=1e-3)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, grad_fn=jax.grad(loss))
    params = optax.apply_updates(params, updates)
"""

from dl_course.optim.adaptive import AdagradState, AdamState, RMSPropState, adagrad, adam, adamw, rmsprop
from dl_course.optim.registry import BASE_RULES, OPTAX, REGISTRY, get, hyperparameter_names, names, option_names
from dl_course.optim.sharpness_aware import SAMState, sam, sam_perturbation
from dl_course.optim.schedules import (
    SCHEDULES,
    Schedule,
    ScheduledState,
    constant_schedule,
    cosine_schedule,
    get_schedule,
    scheduled,
    step_schedule,
    warmup_cosine_schedule,
    warmup_schedule,
)
from dl_course.optim.descent import MomentumState, momentum, nesterov, sgd
from dl_course.optim.steepest import normalized_gd, sign_descent

__all__ = [
    "BASE_RULES",
    "OPTAX",
    "REGISTRY",
    "SCHEDULES",
    "AdagradState",
    "AdamState",
    "MomentumState",
    "RMSPropState",
    "SAMState",
    "Schedule",
    "ScheduledState",
    "adagrad",
    "adam",
    "adamw",
    "constant_schedule",
    "cosine_schedule",
    "get",
    "get_schedule",
    "hyperparameter_names",
    "names",
    "option_names",
    "momentum",
    "nesterov",
    "normalized_gd",
    "rmsprop",
    "sam",
    "sam_perturbation",
    "scheduled",
    "sgd",
    "sign_descent",
    "step_schedule",
    "warmup_cosine_schedule",
    "warmup_schedule",
]
