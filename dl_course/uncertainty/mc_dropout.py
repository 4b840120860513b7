"""Monte Carlo dropout (Gal & Ghahramani 2016, "Dropout as a Bayesian approximation", ICML).

The predictive is the average over T stochastic forward passes with dropout left ON at test time,

    p(y | x) ≈ (1/T) Σ_{t=1}^{T} softmax(f(x; θ ⊙ m_t))_y,      m_t ~ Bernoulli masks,

T = 30 by default. Every other layer stays in eval mode: the model is called with ``train=False``
(batch norm uses its running statistics, so a test example's prediction does not depend on the
rest of the test batch) and only ``nn.Dropout`` layers are switched to stochastic, through
``nn.intercept_methods``. Dropout layers that fix ``deterministic`` as a module attribute (so it
cannot be overridden at call time) are re-run with flax's own dropout formula
(``select(bernoulli(1 − rate), x / (1 − rate), 0)``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course.uncertainty.predictive import Predictive, map_batches


def _stochastic_dropout(next_fun, args, kwargs, context):
    module = context.module
    if not (isinstance(module, nn.Dropout) and context.method_name == "__call__"):
        return next_fun(*args, **kwargs)
    inputs = args[0] if args else kwargs.pop("inputs")
    rng = kwargs.get("rng", args[2] if len(args) > 2 else None)
    if module.deterministic is None:
        return next_fun(inputs, deterministic=False, rng=rng)
    # ``deterministic`` is fixed as an attribute: reproduce flax's Dropout.__call__ with it False.
    if module.rate == 0.0:
        return inputs
    if module.rate == 1.0:
        return jnp.zeros_like(inputs)
    keep = 1.0 - module.rate
    rng = module.make_rng(module.rng_collection) if rng is None else rng
    shape = [1 if d in module.broadcast_dims else s for d, s in enumerate(inputs.shape)]
    mask = jnp.broadcast_to(jax.random.bernoulli(rng, p=keep, shape=shape), inputs.shape)
    return jax.lax.select(mask, inputs / keep, jnp.zeros_like(inputs))


def apply_with_dropout(model: nn.Module, variables, x: jax.Array, key: jax.Array) -> jax.Array:
    """One forward pass in eval mode (``train=False``) with every ``nn.Dropout`` stochastic, using
    rng stream ``"dropout"`` = ``key``."""
    with nn.intercept_methods(_stochastic_dropout):
        return model.apply(variables, x, train=False, rngs={"dropout": key})


def mc_dropout_predict(
    model: nn.Module,
    variables,
    x: jax.Array,
    key: jax.Array,
    num_samples: int = 30,
    chunk_size: int | None = None,
    batch_size: int | None = None,
) -> Predictive:
    """Logits ``[T, N, K]`` of ``T = num_samples`` dropout passes over ``x``, T = 30 by default.

    Pass t uses key ``jax.random.split(key, T)[t]``, folded with the input-batch index when
    ``batch_size`` splits ``x``, so every example of every pass gets its own dropout mask.
    """
    keys = jax.random.split(key, num_samples)

    def one(k):
        return map_batches(
            lambda xb, b: apply_with_dropout(model, variables, xb, jax.random.fold_in(k, b)), x, batch_size
        )

    return Predictive(jax.lax.map(one, keys, batch_size=chunk_size))
