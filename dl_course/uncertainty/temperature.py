"""Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks", ICML, §4.2).

One scalar T > 0 rescales the logits, ``p = softmax(z / T)``; it is fitted by minimising the NLL
(mean over examples) on a held-out VALIDATION split — never on the test set — and leaves the
argmax, hence accuracy, unchanged.

Fitting. In the inverse temperature β = 1/T the validation NLL

    L(β) = (1/N) Σ_i [logsumexp_k(β z_ik) − β z_{i,y_i}]

is convex (a log-sum-exp of functions linear in β minus a linear term), with derivative
``L'(β) = (1/N) Σ_i (E_{softmax(β z_i)}[z_i] − z_{i,y_i})``, non-decreasing in β. The minimiser over
the bracket ``T ∈ [t_min, t_max]`` (default [0.01, 100]) is therefore found by bisection on the sign
of L' in log β — 60 halvings of a bracket of width log(10⁴) ≈ 9.2 reach float resolution —
with no step size, line search or initialisation to tune, and jit/vmap-compatible (one
temperature per run of a sweep). Since T = 1 lies in the bracket the minimiser cannot have
higher NLL than T = 1 in exact arithmetic; to make that a guarantee in floating point too, the
result is compared with T = 1 and the better of the two is returned.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class TemperatureFit(NamedTuple):
    """``temperature`` T (scalar), validation NLL (mean per example, nats) at T = 1 and at T."""

    temperature: jax.Array
    nll_before: jax.Array
    nll_after: jax.Array


def scaled_nll(logits: jax.Array, labels: jax.Array, temperature) -> jax.Array:
    """``(1/N) Σ_i −log softmax(z_i / T)_{y_i}``: NLL, MEAN over examples, at temperature T."""
    log_p = jax.nn.log_softmax(logits / temperature, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1))


def _nll_derivative_in_beta(logits, labels, beta):
    """``L'(β) = mean_i (Σ_k softmax(β z_i)_k z_ik − z_{i,y_i})``."""
    p = jax.nn.softmax(beta * logits, axis=-1)
    z_y = jnp.take_along_axis(logits, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return jnp.mean(jnp.sum(p * logits, axis=-1) - z_y)


def fit_temperature(
    logits: jax.Array,
    labels: jax.Array,
    t_min: float = 0.01,
    t_max: float = 100.0,
    num_iters: int = 60,
) -> TemperatureFit:
    """Fits T minimising the validation NLL over ``[t_min, t_max]`` (see the module docstring).

    Args:
      logits: ``[N, K]`` validation logits (of a single network, or e.g. the mean logits of an
        ensemble member set — temperature scaling acts on logits).
      labels: ``[N]`` integer validation labels.
      t_min, t_max: bracket for T; a solution at the boundary means the optimum lies outside.
      num_iters: bisection halvings of the log-bracket.

    Returns:
      ``TemperatureFit(temperature, nll_before, nll_after)`` with ``nll_after <= nll_before``.
    """
    logits = jnp.asarray(logits)
    lo = jnp.log(jnp.asarray(1.0 / t_max, logits.dtype))  # log β bounds
    hi = jnp.log(jnp.asarray(1.0 / t_min, logits.dtype))

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        increasing = _nll_derivative_in_beta(logits, labels, jnp.exp(mid)) > 0
        return jnp.where(increasing, lo, mid), jnp.where(increasing, mid, hi)

    lo, hi = jax.lax.fori_loop(0, num_iters, body, (lo, hi))
    t_fit = 1.0 / jnp.exp(0.5 * (lo + hi))
    nll_one = scaled_nll(logits, labels, jnp.ones((), logits.dtype))
    nll_fit = scaled_nll(logits, labels, t_fit)
    better = nll_fit <= nll_one
    return TemperatureFit(
        temperature=jnp.where(better, t_fit, jnp.ones_like(t_fit)),
        nll_before=nll_one,
        nll_after=jnp.minimum(nll_fit, nll_one),
    )


def apply_temperature(logits: jax.Array, temperature) -> jax.Array:
    """``z / T``: calibrated logits (works on ``[N, K]`` and ``[S, N, K]`` alike)."""
    return logits / temperature
