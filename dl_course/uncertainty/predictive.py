"""The predictive distribution of a (possibly Bayesian) classifier, as stacked per-sample logits.

Every method in this package — a single network, a deep ensemble, MC dropout, SWA, SWAG,
MultiSWAG — produces the same object: the logits of ``S`` models (ensemble members, dropout masks,
posterior samples) on ``N`` inputs, ``sample_logits`` of shape ``[S, N, K]``. The Bayesian model
average (Monte Carlo estimate of the posterior predictive) is the mixture of their softmaxes,

    p(y | x, D) ≈ (1/S) Σ_s softmax(f(x; θ_s))_y,      θ_s ~ q(θ | D),

(e.g. Wilson & Izmailov 2020, "Bayesian deep learning and a probabilistic perspective of
generalization", eq. 2). Keeping the per-sample logits, rather than only the average, is what lets
the epistemic part (mutual information) and logit-based OOD scores (max logit, energy) be computed
afterwards from the same object.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp


class Predictive(NamedTuple):
    """Per-sample logits ``[S, N, K]`` of an ensemble / posterior; a pytree (vmaps over runs).

    ``S = 1`` for a single deterministic network.
    """

    sample_logits: jax.Array

    @property
    def sample_probs(self) -> jax.Array:
        """``[S, N, K]`` per-sample class probabilities ``softmax(f(x; θ_s))``."""
        return jax.nn.softmax(self.sample_logits, axis=-1)

    @property
    def log_probs(self) -> jax.Array:
        """``[N, K]`` log of the model average, ``log (1/S) Σ_s softmax(f_s)``, computed stably as
        ``logsumexp_s log_softmax(f_s) − log S``."""
        log_p = jax.nn.log_softmax(self.sample_logits, axis=-1)
        return logsumexp(log_p, axis=0) - jnp.log(self.sample_logits.shape[0])

    @property
    def probs(self) -> jax.Array:
        """``[N, K]`` Bayesian model average ``(1/S) Σ_s softmax(f(x; θ_s))``."""
        return jnp.mean(self.sample_probs, axis=0)

    @property
    def mean_logits(self) -> jax.Array:
        """``[N, K]`` average logits ``(1/S) Σ_s f(x; θ_s)`` (used by logit-based OOD scores)."""
        return jnp.mean(self.sample_logits, axis=0)

    @property
    def num_samples(self) -> int:
        return self.sample_logits.shape[0]


def from_logits(logits: jax.Array) -> Predictive:
    """A single deterministic network's predictive: ``[N, K]`` logits -> ``Predictive`` with S = 1."""
    return Predictive(jnp.asarray(logits)[None])


def concatenate(predictives: list[Predictive] | tuple[Predictive, ...]) -> Predictive:
    """Pools the samples of several predictives on the same inputs (e.g. MultiSWAG = the SWAG
    samples of every seed pooled into one mixture; Wilson & Izmailov 2020)."""
    return Predictive(jnp.concatenate([p.sample_logits for p in predictives], axis=0))


def pool_runs(stacked: Predictive) -> Predictive:
    """``Predictive`` with a leading run axis ``[R, S, N, K]`` -> one mixture of ``R·S`` samples.

    This is how MultiSWAG falls out of a vmapped sweep: SWAG per seed, then pool the seeds.
    """
    logits = stacked.sample_logits
    return Predictive(logits.reshape((-1,) + logits.shape[2:]))


def map_batches(fn, x: jax.Array, batch_size: int | None = None) -> jax.Array:
    """``fn(x_b, b)`` over input batches ``x_b`` (index ``b``) of ``batch_size`` examples with
    ``lax.map``, concatenated (bounded memory for large test sets); ``None`` calls ``fn(x, 0)``.

    The last batch is padded by repeating the final example and the padding is dropped, so any N
    works. ``fn`` must treat examples independently (eval mode).
    """
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        return fn(x, 0)
    num_batches = -(-n // batch_size)
    pad = num_batches * batch_size - n
    x_padded = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
    xb = x_padded.reshape((num_batches, batch_size) + x.shape[1:])
    out = jax.lax.map(lambda args: fn(*args), (xb, jnp.arange(num_batches)))
    return out.reshape((num_batches * batch_size,) + out.shape[2:])[:n]
