"""Sharpness measures: λmax, worst-case loss increases (ε-box, ρ-ball, adaptive, m-sharpness) and
batch sharpness.

Curvature measures (λmax, trace) are local second-order quantities; the worst-case measures look
at a finite neighbourhood and are found by projected gradient ascent for a fixed number of steps
(jit-able, vmappable). Ascent is not monotone, so the best point visited is returned. All radii
and step sizes are traced arguments (vmappable over a sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature.products import hvp
from dl_course.measures.curvature.spectrum import DEFAULT_NUM_ITERS, hessian_eigenpairs

PyTree = Any


class WorstCase(NamedTuple):
    """Result of a worst-case sharpness search.

    Attributes:
      increase: ``max_loss − loss``, the sharpness.
      normalized: Keskar et al.'s ``100 · increase / (1 + loss)`` (a percentage).
      loss: ``L(θ)``.
      max_loss: the largest ``L(θ + δ)`` visited.
      perturbation: the maximizing ``δ`` (pytree like ``params``).
    """

    increase: jax.Array
    normalized: jax.Array
    loss: jax.Array
    max_loss: jax.Array
    perturbation: PyTree


def lambda_max(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    num_iters: int = DEFAULT_NUM_ITERS,
) -> tuple[jax.Array, jax.Array]:
    """Top Hessian eigenvalue and its Ritz residual ``(λmax, ‖Hu − λu‖)`` by Lanczos.

    The edge-of-stability measure (Cohen et al. 2021): full-batch GD with step ``η`` is stable on
    the local quadratic model only while ``λmax < 2/η``.
    """
    res = hessian_eigenpairs(loss_fn, params, 1, key=key, num_iters=num_iters)
    return res.eigenvalues[0], res.residuals[0]


def _ascent(objective, delta0, project, direction, num_steps):
    """Projected ascent ``δ ← project(δ + direction(∇objective(δ)))`` for ``num_steps`` steps;
    returns the best ``(objective, δ)`` visited (ascent on a non-concave objective is not
    monotone)."""
    value_and_grad = jax.value_and_grad(objective)

    def step(carry, _):
        delta, best_val, best_delta = carry
        val, g = value_and_grad(delta)
        better = val > best_val
        best_val = jnp.where(better, val, best_val)
        best_delta = jnp.where(better, delta, best_delta)
        return (project(delta + direction(g)), best_val, best_delta), None

    init = (delta0, jnp.array(-jnp.inf, delta0.dtype), delta0)
    (delta, best_val, best_delta), _ = jax.lax.scan(step, init, None, length=num_steps)
    last = objective(delta)
    better = last > best_val
    return jnp.where(better, last, best_val), jnp.where(better, delta, best_delta)


def _worst_case(loss_fn, params, unravel, max_loss, delta):
    loss = loss_fn(params)
    max_loss = jnp.maximum(max_loss, loss)  # δ = 0 is feasible
    delta = jnp.where(max_loss > loss, delta, jnp.zeros_like(delta))
    inc = max_loss - loss
    return WorstCase(inc, 100.0 * inc / (1.0 + loss), loss, max_loss, unravel(delta))


def epsilon_sharpness(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    epsilon: jax.Array,
    *,
    num_steps: int = 20,
    step_size: jax.Array = 0.1,
    relative: bool = True,
    key: jax.Array | None = None,
) -> WorstCase:
    """ε-sharpness of Keskar et al. (2017, ICLR), the largest loss increase in a box.

    ``max_{δ ∈ C_ε} L(θ + δ) − L(θ)`` over the box ``C_ε = {|δ_i| ≤ ε (|θ_i| + 1)}`` (Keskar's
    box for the full space, ``A = I``; ``relative=False`` uses ``|δ_i| ≤ ε``). Keskar et al. report
    ``100 · increase / (1 + L(θ))`` (field ``normalized``) and solve the box-constrained problem
    with L-BFGS-B; here projected *sign*-gradient ascent (steepest ascent for the box's ℓ∞
    geometry, as in PGD): ``δ ← clip(δ + step_size · b ⊙ sign ∇L(θ+δ), −b, b)`` with ``b`` the box
    half-widths. Starts at ``δ = 0``, or uniformly in the box if ``key`` is given. The result is a
    lower bound on the true maximum (a local maximum of a non-concave problem).
    """
    flat, unravel = ravel_pytree(params)
    b = epsilon * (jnp.abs(flat) + 1.0) if relative else epsilon * jnp.ones_like(flat)
    delta0 = (
        jnp.zeros_like(flat)
        if key is None
        else jax.random.uniform(key, flat.shape, flat.dtype, -1.0, 1.0) * b
    )
    max_loss, delta = _ascent(
        lambda d: loss_fn(unravel(flat + d)),
        delta0,
        project=lambda d: jnp.clip(d, -b, b),
        direction=lambda g: step_size * b * jnp.sign(g),
        num_steps=num_steps,
    )
    return _worst_case(loss_fn, params, unravel, max_loss, delta)


def sam_sharpness(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    rho: jax.Array,
    *,
    num_steps: int = 1,
    step_size: jax.Array = 1.0,
    adaptive: bool = False,
    eta: jax.Array = 0.01,
    key: jax.Array | None = None,
) -> WorstCase:
    """SAM sharpness ``max_{‖T⁻¹δ‖₂ ≤ ρ} L(θ + δ) − L(θ)`` (Foret et al. 2021, ICLR).

    ``T = I`` for SAM; ``adaptive=True`` uses ASAM's scale-invariant ball with
    ``T = diag(|θ| + η)`` (Kwon et al. 2021, ICML). Writing ``δ = T u`` with ``‖u‖ ≤ ρ``, the ascent
    is projected normalized gradient ascent on ``u``:

        u ← Proj_{‖u‖≤ρ}( u + step_size · ρ · T∇L / ‖T∇L‖ ),   ∇L evaluated at θ + T u.

    With ``num_steps=1`` from ``u = 0`` this is exactly the first-order perturbation used by SAM
    (``δ = ρ T²∇L / ‖T∇L‖``); more steps approach the true maximum. At a critical point the
    gradient vanishes: pass ``key`` to start from a random point of the sphere ``‖u‖ = ρ``.
    """
    flat, unravel = ravel_pytree(params)
    scale = jnp.abs(flat) + eta if adaptive else jnp.ones_like(flat)

    def project(u):
        norm = jnp.linalg.norm(u)
        return u * jnp.minimum(1.0, rho / jnp.where(norm > 0, norm, 1.0))

    def direction(g):  # g = ∂/∂u L(θ + T u) = T ∇L(θ + T u)
        norm = jnp.linalg.norm(g)
        return step_size * rho * g / jnp.where(norm > 0, norm, 1.0)

    if key is None:
        u0 = jnp.zeros_like(flat)
    else:
        z = jax.random.normal(key, flat.shape, flat.dtype)
        u0 = rho * z / jnp.linalg.norm(z)

    max_loss, u = _ascent(
        lambda u: loss_fn(unravel(flat + scale * u)), u0, project, direction, num_steps
    )
    return _worst_case(loss_fn, params, unravel, max_loss, scale * u)


def _split_batches(data: PyTree, m: int) -> PyTree:
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if not 1 <= m <= n:
        raise ValueError(f"batch size must be in [1, {n}], got {m}")
    nb = n // m
    return jax.tree_util.tree_map(lambda x: x[: nb * m].reshape((nb, m) + x.shape[1:]), data)


def m_sharpness(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    data: PyTree,
    m: int,
    rho: jax.Array,
    *,
    num_steps: int = 1,
    step_size: jax.Array = 1.0,
    adaptive: bool = False,
    eta: jax.Array = 0.01,
    key: jax.Array | None = None,
) -> jax.Array:
    """m-sharpness: the mean over disjoint batches ``S`` of size ``m`` of the per-batch SAM
    sharpness ``max_{‖T⁻¹δ‖ ≤ ρ} L_S(θ+δ) − L_S(θ)`` (Foret et al. 2021, §4; Andriushchenko &
    Flammarion 2022). Small ``m`` is what SAM with batch size ``m`` actually minimizes; ``m = n``
    is the full-data SAM sharpness. Batches are consecutive slices of ``data`` (shuffle it first);
    the last ``n mod m`` examples are dropped. Arguments as in :func:`sam_sharpness`.
    """
    batches = _split_batches(data, m)
    nb = jax.tree_util.tree_leaves(batches)[0].shape[0]
    keys = None if key is None else jax.random.split(key, nb)

    def one(batch, k):
        return sam_sharpness(
            lambda p: batch_loss_fn(p, batch), params, rho, num_steps=num_steps,
            step_size=step_size, adaptive=adaptive, eta=eta, key=k,
        ).increase

    return jnp.mean(jax.vmap(one)(batches, keys))


def _sample_batches(key: jax.Array, data: PyTree, batch_size: int, num_batches: int) -> PyTree:
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    idx = jax.vmap(lambda k: jax.random.choice(k, n, (batch_size,), replace=False))(
        jax.random.split(key, num_batches)
    )
    return jax.tree_util.tree_map(lambda x: x[idx], data)


def batch_sharpness(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    data: PyTree,
    batch_size: int,
    *,
    key: jax.Array,
    num_batches: int = 8,
    num_iters: int = 20,
) -> tuple[jax.Array, jax.Array]:
    """Mean top eigenvalue of minibatch Hessians, ``E_B[λmax(∇²L_B(θ))]``, and its standard error.

    The SGD analogue of λmax: SGD with step ``η`` on batch ``B`` is unstable along the top
    direction of ``∇²L_B`` once ``λmax(∇²L_B) > 2/η`` (Wu, Ma & E 2018; Jastrzębski et al. 2020
    track minibatch sharpness). Since ``λmax`` is convex in the matrix,
    ``E_B λmax(H_B) ≥ λmax(E_B H_B) = λmax(H)``. ``num_batches`` batches of ``batch_size``
    examples (each without replacement) are drawn from ``key``; one Lanczos run of ``num_iters``
    HVPs per batch, evaluated sequentially with ``lax.map``.
    """
    batches = _sample_batches(key, data, batch_size, num_batches)

    def one(args):
        batch, k = args
        return lambda_max(lambda p: batch_loss_fn(p, batch), params, key=k, num_iters=num_iters)[0]

    lams = jax.lax.map(one, (batches, jax.random.split(jax.random.fold_in(key, 1), num_batches)))
    return jnp.mean(lams), jnp.std(lams, ddof=1) / jnp.sqrt(num_batches)


def directional_batch_sharpness(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    data: PyTree,
    batch_size: int,
    *,
    key: jax.Array,
    num_batches: int = 8,
) -> tuple[jax.Array, jax.Array]:
    """``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]``, the curvature of each minibatch loss along its own gradient,
    and its standard error (the "batch sharpness" of Andreyev & Beneventano 2024, "Edge of
    stochastic stability", which hovers at ``2/η`` under SGD). One gradient and one HVP per batch.
    """
    batches = _sample_batches(key, data, batch_size, num_batches)

    def one(batch):
        f = lambda p: batch_loss_fn(p, batch)  # noqa: E731
        g = jax.grad(f)(params)
        hg = hvp(f, params, g)
        gf, hgf = ravel_pytree(g)[0], ravel_pytree(hg)[0]
        return jnp.vdot(gf, hgf) / jnp.vdot(gf, gf)

    vals = jax.lax.map(one, batches)
    return jnp.mean(vals), jnp.std(vals, ddof=1) / jnp.sqrt(num_batches)
