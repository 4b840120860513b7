"""Flatness measures as perturbation radii: PAC-Bayes σ′ and worst-case sharpness α′ of Jiang et
al. (2020, "Fantastic Generalization Measures", App. C.3, Algorithms 1–2), their bounds and
magnitude-aware variants, and adaptive sharpness (Andriushchenko et al. 2023, ICML).

A radius is "the largest perturbation the training objective tolerates": the largest ``r`` with

    increase(r) = E_u[ L(θ + u) ] − L(θ) ≤ deviation      (u random, scale r: PAC-Bayes), or
    increase(r) = max_{u ∈ box(r)} L(θ + u) − L(θ) ≤ deviation  (worst case: sharpness),

with Jiang et al.'s ``deviation = 0.1`` (they measure it on the 0-1 training error; any
``params -> scalar`` works here). The radius is found by bisection on ``log r`` in
``[r_min, r_max]`` for a fixed number of steps (``lax.fori_loop``), the expectation by a fixed
number of Monte-Carlo samples with *common random numbers* (the same noise directions ``z_k`` at
every ``r``, so the estimate is a deterministic, continuous function of ``r``), the maximum by
projected sign-gradient ascent for a fixed number of steps (``lax.scan``). Everything is a fixed
amount of work and vmaps over a run axis of ``params`` and ``key``. If ``increase(r_max) ≤
deviation`` the result saturates at ``r_max`` (and at ``r_min`` if even that is too much): check
the returned ``increase``. Equation numbers refer to Jiang et al.'s appendix (arXiv:1912.02178).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.sharpness.worst_case import WorstCase, box_sign_ascent, sam_sharpness, worst_case_result

PyTree = Any

DEFAULT_DEVIATION = 0.1
MAGNITUDE_EPS = 1e-3  # Jiang et al.'s ε in the magnitude-aware perturbations


class PerturbationRadius(NamedTuple):
    """Result of a radius search.

    Attributes:
      radius: ``σ′`` or ``α′``.
      increase: the objective's increase at ``radius`` (the Monte-Carlo mean, or the ascent's
        maximum), ≈ the deviation unless the search saturated at a bound of its bracket.
      stderr: the Monte-Carlo standard error of ``increase`` (0 for the worst case).
    """

    radius: jax.Array
    increase: jax.Array
    stderr: jax.Array


def _log_bisection(increase_fn, deviation, r_min, r_max, num_steps):
    """Bisection on ``log r``: keep ``increase(lo) ≤ deviation < increase(hi)``; return the
    geometric midpoint of the final bracket (relative resolution ``(r_max/r_min)^{2^{-n}}``)."""

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        exceeds = increase_fn(jnp.exp(mid))[0] > deviation
        return jnp.where(exceeds, lo, mid), jnp.where(exceeds, mid, hi)

    dtype = jnp.result_type(float)
    bracket = (jnp.log(jnp.asarray(r_min, dtype)), jnp.log(jnp.asarray(r_max, dtype)))
    lo, hi = jax.lax.fori_loop(0, num_steps, step, bracket)
    radius = jnp.exp(0.5 * (lo + hi))
    inc, se = increase_fn(radius)
    return PerturbationRadius(radius, inc, se)


def expected_increase(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    sigma: jax.Array,
    *,
    key: jax.Array,
    num_samples: int,
    magnitude_eps: float | None = None,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo estimate of ``E_u[L(θ+u)] − L(θ)`` and its standard error, ``u = s ⊙ z``,
    ``z ~ N(0, I)`` drawn from ``fold_in(key, k)``, ``k < num_samples``:

    * isotropic (``magnitude_eps=None``): ``s_i = σ`` (Jiang et al. App. C.3, PAC-Bayes);
    * magnitude-aware: ``s_i = √(σ² θ_i² + ε²)``, i.e. ``u_i ~ N(0, σ²|θ_i|² + ε²)`` (App. C.3,
      "magnitude-aware perturbation bounds").

    Every parameter leaf is perturbed. Samples are evaluated with ``lax.map`` (``batch_size`` at
    a time, default 1). The standard error is ``std(ddof=1)/√num_samples``.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 (for a standard error), got {num_samples}")
    flat, unravel = ravel_pytree(params)
    scale = sigma if magnitude_eps is None else jnp.sqrt(sigma**2 * flat**2 + magnitude_eps**2)

    def one(k):
        z = jax.random.normal(jax.random.fold_in(key, k), flat.shape, flat.dtype)
        return loss_fn(unravel(flat + scale * z))

    vals = jax.lax.map(one, jnp.arange(num_samples), batch_size=batch_size) - loss_fn(params)
    return jnp.mean(vals), jnp.std(vals, ddof=1) / jnp.sqrt(num_samples)


def pacbayes_sigma(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    deviation: float = DEFAULT_DEVIATION,
    num_samples: int = 16,
    num_bisection_steps: int = 20,
    sigma_min: float = 1e-5,
    sigma_max: float = 4.0,
    magnitude_eps: float | None = None,
    batch_size: int | None = None,
) -> PerturbationRadius:
    """PAC-Bayes flatness radius ``σ′`` (Jiang et al. 2020, App. C.3 and Algorithm 1): the largest
    ``σ`` with ``E_u[L(θ+u)] − L(θ) ≤ deviation`` for ``u ~ N(0, σ² I)`` (or, with
    ``magnitude_eps = ε``, ``u_i ~ N(0, σ²θ_i² + ε²)``; Jiang use ``ε = 10⁻³``). The expectation
    is a ``num_samples``-sample Monte-Carlo mean with common random numbers
    (:func:`expected_increase`; Jiang et al. and Dziugaite et al.'s code use 10 samples), the
    search a log-bisection over ``[sigma_min, sigma_max]`` (module doc). The flatness measure is
    ``1/σ′²`` (eq. (53); magnitude-aware: eq. (61)); the bounds are :func:`pacbayes_bound` and
    :func:`pacbayes_mag_bound`.
    """

    def increase(sigma):
        return expected_increase(loss_fn, params, sigma, key=key, num_samples=num_samples,
                                 magnitude_eps=magnitude_eps, batch_size=batch_size)

    return _log_bisection(increase, deviation, sigma_min, sigma_max, num_bisection_steps)


def pacbayes_bound(
    params: PyTree, sigma: jax.Array, num_examples: int, reference: PyTree | None = None
) -> jax.Array:
    """``‖θ − θ_P‖² / (4σ′²) + log(m/σ′) + 10`` with the prior mean ``θ_P`` at the origin
    (``reference=None``, Jiang's "pacbayes.orig", eq. (49)) or at the initialization
    (``reference=init_params``, "pacbayes.init", eq. (48)); ``m = num_examples``. The norm is over
    all parameters (all are perturbed)."""
    flat = ravel_pytree(params)[0]
    diff = flat if reference is None else flat - ravel_pytree(reference)[0]
    return jnp.sum(diff**2) / (4.0 * sigma**2) + jnp.log(num_examples / sigma) + 10.0


def pacbayes_mag_bound(
    params: PyTree,
    init_params: PyTree,
    sigma: jax.Array,
    num_examples: int,
    reference: PyTree | None = None,
    magnitude_eps: float = MAGNITUDE_EPS,
) -> jax.Array:
    """Magnitude-aware PAC-Bayes bound, Jiang et al. eqs. (56) ("pacbayes.mag.init",
    ``reference=init_params``) and (57) ("pacbayes.mag.orig", ``reference=None``):

        ¼ Σ_i log[ (ε² + (σ′² + 1) ‖θ − θ_P‖²/ω) / (ε² + σ′² (θ_i − θ_i^0)²) ] + log(m/σ′) + 10,

    with ``σ′`` from :func:`pacbayes_sigma` with ``magnitude_eps = ε``, ``ω`` the number of
    parameters and ``m = num_examples``. The denominator uses the distance from initialization in
    both variants, as written in the paper (and in Dziugaite et al.'s reference code).
    """
    flat, flat0 = ravel_pytree(params)[0], ravel_pytree(init_params)[0]
    ref = flat if reference is None else flat - ravel_pytree(reference)[0]
    eps2 = magnitude_eps**2
    num = eps2 + (sigma**2 + 1.0) * jnp.sum(ref**2) / flat.size
    den = eps2 + sigma**2 * (flat - flat0) ** 2
    return 0.25 * jnp.sum(jnp.log(num / den)) + jnp.log(num_examples / sigma) + 10.0


def worst_case_increase(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    alpha: jax.Array,
    *,
    deviation_fn: Callable[[PyTree], jax.Array] | None = None,
    num_steps: int = 20,
    step_size: float = 0.1,
    magnitude_eps: float | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """``max_{|u_i| ≤ b_i} D(θ+u) − D(θ)`` over the box with half-widths ``b_i = α`` (Jiang et
    al.'s sharpness box) or ``b_i = α|θ_i| + ε`` (magnitude-aware, ``magnitude_eps = ε``).

    The maximizer of ``loss_fn`` is searched by projected sign-gradient ascent
    ``u ← clip(u + step_size · b ⊙ sign ∇L(θ+u), −b, b)`` from ``u = 0`` (or uniformly in the box
    if ``key`` is given) for ``num_steps`` steps, keeping the best point visited (the ascent of
    :func:`~dl_course.measures.sharpness.worst_case.epsilon_sharpness`); ``D = deviation_fn`` (default
    ``loss_fn``, e.g. the 0-1 error as in Jiang et al. Algorithm 2) is evaluated there. A lower
    bound on the true maximum (a local maximum of a non-concave problem).
    """
    flat, unravel = ravel_pytree(params)
    b = alpha * jnp.ones_like(flat) if magnitude_eps is None else alpha * jnp.abs(flat) + magnitude_eps
    max_loss, u = box_sign_ascent(loss_fn, flat, unravel, b, step_size=step_size, num_steps=num_steps, key=key)
    if deviation_fn is None:
        return jnp.maximum(max_loss - loss_fn(params), 0.0)  # u = 0 is feasible
    return deviation_fn(unravel(flat + u)) - deviation_fn(params)


def sharpness_alpha(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    deviation: float = DEFAULT_DEVIATION,
    deviation_fn: Callable[[PyTree], jax.Array] | None = None,
    num_steps: int = 20,
    step_size: float = 0.1,
    num_bisection_steps: int = 20,
    alpha_min: float = 1e-5,
    alpha_max: float = 4.0,
    magnitude_eps: float | None = None,
    key: jax.Array | None = None,
) -> PerturbationRadius:
    """Worst-case sharpness radius ``α′`` (Jiang et al. 2020, App. C.3 and Algorithm 2): the
    largest ``α`` with ``max_{|u_i| ≤ α} D(θ+u) − D(θ) ≤ deviation`` (box ``|u_i| ≤ α|θ_i| + ε``
    with ``magnitude_eps = ε``), by log-bisection over ``[alpha_min, alpha_max]`` of
    :func:`worst_case_increase` (the same start ``key`` at every ``α``). The flatness measures
    are ``1/α′²`` ("sharpness.flatness" and "sharpness.mag.flatness"). ``stderr`` is 0.
    """

    def increase(alpha):
        inc = worst_case_increase(loss_fn, params, alpha, deviation_fn=deviation_fn, num_steps=num_steps,
                                  step_size=step_size, magnitude_eps=magnitude_eps, key=key)
        return inc, jnp.zeros_like(inc)

    return _log_bisection(increase, deviation, alpha_min, alpha_max, num_bisection_steps)


def adaptive_sharpness(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    rho: jax.Array,
    *,
    p: str = "inf",
    num_steps: int = 20,
    step_size: float = 0.1,
    eta: float = 0.0,
    key: jax.Array | None = None,
) -> WorstCase:
    """Worst-case adaptive sharpness of Andriushchenko, Croce, Müller, Hein & Flammarion (2023,
    ICML, "A modern look at the relationship between sharpness and generalization", §2):

        S_max^ρ(θ, c) = max_{‖δ ⊙ c⁻¹‖_p ≤ ρ} L(θ + δ) − L(θ),    c = |θ| (+ η),

    the elementwise-adaptive neighbourhood that makes the measure invariant to the
    multiplicative reparametrizations of ReLU networks (Dinh et al. 2017). ``p="inf"``: the box
    ``|δ_i| ≤ ρ(|θ_i|+η)``, by projected sign-gradient ascent (step ``step_size · ρ c``);
    ``p="2"``: the ellipsoid, by :func:`~dl_course.measures.sharpness.worst_case.sam_sharpness` with
    ``adaptive=True`` (normalized ascent, step ``step_size · ρ``). Start at ``δ = 0``, or at a
    random point of the neighbourhood if ``key`` is given (needed at an exact critical point).
    Andriushchenko et al. average over batches of size ``m`` (m-sharpness); this is the
    full-batch value for ``loss_fn`` (use :func:`~dl_course.measures.sharpness.worst_case.m_sharpness` for
    ``m < n``, ℓ2). Andriushchenko et al. use Auto-PGD; this is plain PGD (a lower bound).
    """
    if p == "2":
        return sam_sharpness(loss_fn, params, rho, num_steps=num_steps, step_size=step_size,
                             adaptive=True, eta=eta, key=key)
    if p != "inf":
        raise ValueError(f"unknown adaptive sharpness norm p={p!r}; valid: ['inf', '2']")
    flat, unravel = ravel_pytree(params)
    b = rho * (jnp.abs(flat) + eta)
    max_loss, delta = box_sign_ascent(loss_fn, flat, unravel, b, step_size=step_size, num_steps=num_steps, key=key)
    return worst_case_result(loss_fn, params, unravel, max_loss, delta)

