"""Worst-case sharpness: the largest loss increase in a neighbourhood (ε-box, ρ-ball, adaptive,
m-sharpness), and the projected ascent that finds it.

Curvature measures (λmax, trace: :mod:`~dl_course.measures.sharpness.directional`) are local
second-order quantities; the worst-case measures look at a finite neighbourhood and are found by
projected gradient ascent for a fixed number of steps (jit-able, vmappable). Ascent is not
monotone, so the best point visited is returned. All radii and step sizes are traced arguments
(vmappable over a sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

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


def projected_ascent(objective, delta0, project, direction, num_steps):
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


def box_sign_ascent(loss_fn, flat, unravel, half_widths, *, step_size, num_steps, key=None):
    """``max_{|δ_i| ≤ b_i} L(θ + δ)`` by projected sign-gradient ascent (steepest ascent for the
    box's ℓ∞ geometry, as in PGD): ``δ ← clip(δ + step_size · b ⊙ sign ∇L(θ+δ), −b, b)`` with ``b =
    half_widths`` (flat, like ``flat = ravel(θ)``), from ``δ = 0`` or uniformly in the box if ``key``
    is given. Returns the best ``(L(θ + δ), δ)`` visited (see :func:`projected_ascent`); a lower
    bound on the true maximum. The ascent of Keskar et al.'s ε-sharpness, Jiang et al.'s sharpness
    box and Andriushchenko et al.'s ℓ∞ adaptive sharpness."""
    b = half_widths
    delta0 = jnp.zeros_like(flat) if key is None else jax.random.uniform(key, flat.shape, flat.dtype, -1.0, 1.0) * b
    return projected_ascent(
        lambda d: loss_fn(unravel(flat + d)), delta0,
        project=lambda d: jnp.clip(d, -b, b),
        direction=lambda g: step_size * b * jnp.sign(g),
        num_steps=num_steps,
    )


def worst_case_result(loss_fn, params, unravel, max_loss, delta) -> WorstCase:
    """The :class:`WorstCase` of an ascent that reached ``max_loss`` at flat ``delta``; ``δ = 0`` is
    feasible, so the increase is clipped at 0 and ``δ`` reset to 0 when the ascent found nothing
    better than ``L(θ)``."""
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
    max_loss, delta = box_sign_ascent(loss_fn, flat, unravel, b, step_size=step_size, num_steps=num_steps, key=key)
    return worst_case_result(loss_fn, params, unravel, max_loss, delta)


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

    max_loss, u = projected_ascent(
        lambda u: loss_fn(unravel(flat + scale * u)), u0, project, direction, num_steps
    )
    return worst_case_result(loss_fn, params, unravel, max_loss, scale * u)


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
