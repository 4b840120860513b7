"""Label-noise SGD's drift to flat minima, measured on a diagonal linear network.

Blanc, Gupta, Valiant & Valiant (2020, COLT), Damian, Ma & Lee (2021, NeurIPS), Li, Wang & Arora
(2022, ICLR, "What happens after SGD reaches zero loss?"): once the training loss is ~0, SGD whose
labels are redrawn as ``y_i + σ ε_i`` at every step moves along the manifold of minimizers
towards smaller ``tr ∇²L``; GD (and SGD without label noise, whose gradient noise vanishes at an
interpolating minimum) stays where it landed. In Li, Wang & Arora's limit the gradient noise of
label-noise SGD with batch ``B`` has covariance ``(σ²/B)·G`` (``G`` the Gauss–Newton matrix, equal
to ``∇²L`` on the manifold), and the slow motion on the manifold is the Riemannian gradient flow of
``tr ∇²L`` at speed ``∝ η²σ²/B`` per step (their Cor. 5.2: ``dX/dt = −¼ ∇_Γ tr ∇²L`` in the time
``t = η²σ²·steps/B`` up to constants). Predicted: the rate at which ``tr ∇²L`` falls scales as
``η² σ²`` per step (exponents 2 and 2), i.e. as ``ησ²`` per unit of gradient-flow time ``ηt``.

Model: ``f(x) = ⟨u⊙u − v⊙v, x⟩`` (Woodworth et al. 2020), loss ``L = (1/2n) Σ_i (f(x_i) − y_i)²``
with ``n < d`` (a manifold of interpolants). Why this model: on the manifold
``tr ∇²L = (4/n) Σ_j ‖X_{:,j}‖² (u_j² + v_j²) ≥ (4/n) Σ_j ‖X_{:,j}‖² |w_j|``, a closed form
(so Hutchinson's estimate can be checked) whose minimum over the interpolants is the weighted-ℓ1
solution: the drift has a visible endpoint (sparse recovery), unlike a 2-layer net's. From a large
initialization ``u = v = α`` GD lands in the kernel regime at a dense, high-trace interpolant.

:func:`continue_training` runs one vmapped ``lax.scan`` over a grid of runs, each a triple
(``η``, ``σ``, batch size ``B``; ``B = n`` and ``σ = 0`` is GD) from the same interpolant, and
records the parameters every ``record_every`` steps; minibatches are ``B`` examples drawn without
replacement afresh at every step (``fold_in(key, step)``), the label noise ``σ·N(0, 1)`` per
example and step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class DiagonalNet(NamedTuple):
    """Parameters of the diagonal linear network ``w = u⊙u − v⊙v``."""

    u: jax.Array
    v: jax.Array


def weights(p: DiagonalNet):
    """The linear predictor ``w = u⊙u − v⊙v``."""
    return p.u * p.u - p.v * p.v


def example_weighted_loss(p: DiagonalNet, x, y, weights_i):
    """``½ Σ_i weights_i (⟨w, x_i⟩ − y_i)²`` (weights ``1/n``: the mean squared error / 2)."""
    r = x @ weights(p) - y
    return 0.5 * jnp.sum(weights_i * r * r)


def mse_loss(p: DiagonalNet, x, y):
    """``L = (1/2n) Σ_i (⟨w, x_i⟩ − y_i)²``."""
    return example_weighted_loss(p, x, y, jnp.full(x.shape[0], 1.0 / x.shape[0], x.dtype))


def manifold_trace(p: DiagonalNet, x):
    """``tr G = (4/n) Σ_j ‖X_{:,j}‖² (u_j² + v_j²)``, the Gauss–Newton trace, equal to ``tr ∇²L`` at
    an interpolating minimum (the residual term vanishes there)."""
    col = jnp.sum(x * x, axis=0) / x.shape[0]
    return 4.0 * jnp.sum(col * (p.u * p.u + p.v * p.v))


def fit_interpolant(x, y, alpha: float, learning_rate: float, steps: int) -> DiagonalNet:
    """Full-batch GD from ``u = v = α·1`` for ``steps`` steps (the starting interpolant)."""
    p0 = DiagonalNet(jnp.full(x.shape[1], alpha, x.dtype), jnp.full(x.shape[1], alpha, x.dtype))
    grad = jax.grad(mse_loss)

    def step(p, _):
        return jax.tree.map(lambda a, g: a - learning_rate * g, p, grad(p, x, y)), None

    return jax.lax.scan(step, p0, None, length=steps)[0]


def label_noise_step(p: DiagonalNet, x, y, key, learning_rate, sigma, batch_size):
    """One step of SGD on ``B = batch_size`` examples drawn without replacement, labels
    ``y_i + σ ε_i`` (``σ = 0``: plain SGD; ``B = n``: GD with label noise). ``learning_rate``,
    ``sigma`` and ``batch_size`` may be traced: the minibatch is a 0/1 weight per example."""
    k_batch, k_noise = jax.random.split(key)
    n = x.shape[0]
    rank = jnp.argsort(jax.random.permutation(k_batch, n))
    w_i = jnp.where(rank < batch_size, 1.0 / batch_size, 0.0).astype(x.dtype)
    noisy = y + sigma * jax.random.normal(k_noise, y.shape, x.dtype)
    g = jax.grad(example_weighted_loss)(p, x, noisy, w_i)
    return jax.tree.map(lambda a, b: a - learning_rate * b, p, g)


def continue_training(p0: DiagonalNet, x, y, key, learning_rates, sigmas, batch_sizes, steps: int,
                      record_every: int):
    """Continue every run ``r`` (``learning_rates[r]``, ``sigmas[r]``, ``batch_sizes[r]``, its own
    key ``fold_in(key, r)``) from ``p0`` for ``steps`` steps, all runs in one ``vmap``. Returns
    the parameters at steps ``0, record_every, …, steps``: a DiagonalNet of ``[R, records, d]``."""
    if steps % record_every:
        raise ValueError(f"steps ({steps}) must be a multiple of record_every ({record_every})")

    def one(run_key, eta, sigma, b):
        def record(p, j):
            def step(q, i):
                k = jax.random.fold_in(run_key, j * record_every + i)
                return label_noise_step(q, x, y, k, eta, sigma, b), None

            p = jax.lax.scan(step, p, jnp.arange(record_every))[0]
            return p, p

        _, ps = jax.lax.scan(record, p0, jnp.arange(steps // record_every))
        return jax.tree.map(lambda a, b0: jnp.concatenate([b0[None], a]), ps, p0)

    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(len(learning_rates)))
    return jax.vmap(one)(keys, jnp.asarray(learning_rates, x.dtype), jnp.asarray(sigmas, x.dtype),
                         jnp.asarray(batch_sizes, x.dtype))


def steps_to_fraction(steps: np.ndarray, trace: np.ndarray, fraction: float) -> float:
    """First step (linear interpolation between records) at which ``trace`` has fallen to
    ``(1 − fraction)`` of its value at step 0; ``nan`` if it never does."""
    level = (1.0 - fraction) * trace[0]
    below = np.nonzero(trace <= level)[0]
    if len(below) == 0:
        return float("nan")
    j = int(below[0])
    if j == 0:
        return 0.0
    t0, t1, a, b = steps[j - 1], steps[j], trace[j - 1], trace[j]
    return float(t0 + (t1 - t0) * (a - level) / (a - b))


def fit_exponents(learning_rates, sigmas, rates) -> tuple[float, float]:
    """Least-squares ``log rate = c + a log η + b log σ``; returns ``(a, b)``."""
    design = np.stack([np.ones(len(rates)), np.log(learning_rates), np.log(sigmas)], 1)
    coef = np.linalg.lstsq(design, np.log(rates), rcond=None)[0]
    return float(coef[1]), float(coef[2])
