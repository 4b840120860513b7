"""Update rules written from scratch as optax ``GradientTransformation``s, and learning-rate shapes.

Rules (each ``factory(learning_rate, **hparams) -> optax.GradientTransformationExtraArgs``; the
docstrings give the update equations, the state and the paper):

- :mod:`~dl_course.optim.descent`: ``sgd``, ``momentum`` (heavy ball), ``nesterov``
- :mod:`~dl_course.optim.adaptive`: ``adagrad``, ``rmsprop``, ``adam``, ``adamw``
- :mod:`~dl_course.optim.steepest`: ``sign_descent``, ``normalized_gd``
- :mod:`~dl_course.optim.sharpness_aware`: ``sam`` (SAM / ASAM around any base rule; needs ``grad_fn``)
- :mod:`~dl_course.optim.registry`: the one lookup (``get``, ``names``, ``hyperparameter_names``,
  ``option_names``), with optax's own rules as ``optax:<name>``

Conventions (see :mod:`~dl_course.optim.base`): drop-in for optax's rules — ``learning_rate`` a
float, a traced scalar or an optax schedule; optax's keyword arguments (``mask``, ``mu_dtype``,
``accumulator_dtype``, ``eps_root``, ...) in optax's order; optax's state pytree (``trace``,
``mu``/``nu``, ``sum_of_squares``, schedule ``count``); complex parameters as optax; usable under
``optax.inject_hyperparams``. Hyperparameters are call arguments (traced scalars allowed, so a
vmapped sweep never recompiles); ``update`` accepts extra keywords such as SAM's ``grad_fn``.
Learning-rate shapes for the engine (:mod:`~dl_course.optim.schedules`): ``lr_t = learning_rate *
s(step)``.

Example::

    tx = dl_course.optim.get("adam")(learning_rate=1e-3)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, grad_fn=jax.grad(loss))
    params = optax.apply_updates(params, updates)
"""

from dl_course.optim.adaptive import (
    AdagradState,
    AdamState,
    RMSPropState,
    adagrad,
    adam,
    adamw,
    rmsprop,
)
from dl_course.optim.descent import MomentumState, momentum, nesterov, sgd
from dl_course.optim.registry import (
    BASE_RULES,
    OPTAX,
    REGISTRY,
    get,
    hyperparameter_names,
    names,
    option_names,
)
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
from dl_course.optim.sharpness_aware import SAMState, sam, sam_perturbation
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
    "momentum",
    "names",
    "nesterov",
    "normalized_gd",
    "option_names",
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
