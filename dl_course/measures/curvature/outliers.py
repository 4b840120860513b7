"""The outlier structure of Hessian spectra: a bulk near zero plus about C outliers.

Sagun, Evci, Güney, Dauphin & Bottou (2017), "Empirical analysis of the Hessian of
over-parametrized neural networks": the training-loss Hessian of a classifier has a bulk
concentrated near zero and a few outliers, their number following the number of classes C.
Papyan (2019, ICML; 2020, JMLR): the outliers belong to the Gauss–Newton part ``G = Jᵀ H_z J`` of
``H = G + E`` (class means of the logit gradients). Ghorbani, Krishnan & Xiao (2019) for the SLQ
density estimate.

:func:`hessian_and_ggn_spectra` measures both operators at one point (vmap it over runs);
:func:`count_outliers`, :func:`outlier_gap` and :func:`expected_outliers` read the top of a
spectrum on the host.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from dl_course.measures.curvature.density import operator_spectral_density
from dl_course.measures.curvature.operators import hessian_operator
from dl_course.measures.curvature.products import ggn_vp
from dl_course.measures.curvature.spectrum import operator_eigenpairs
from dl_course.measures.curvature.trace import operator_trace


def expected_outliers(loss: str, num_classes: int) -> int:
    """Outliers expected from the class structure of ``G``: ``C − 1`` for softmax cross-entropy
    (its output Hessian ``diag p − p pᵀ`` has rank ``C − 1``: shifting all logits together
    changes nothing), ``C`` for the squared error on ``C`` outputs."""
    return num_classes - 1 if loss == "cross_entropy" else num_classes


def count_outliers(eigenvalues) -> int:
    """Number of outliers in a descending list of top eigenvalues: the ``i`` maximizing the ratio
    gap ``λ_i / λ_{i+1}`` (1-based), over the positive part of the list. A bulk near zero and ``C``
    separated outliers give ``C``; the count is at most ``len(eigenvalues) − 1``, so ask for more
    eigenvalues than the outliers you expect."""
    lam = np.asarray(eigenvalues, np.float64)
    lam = lam[lam > 0]
    if lam.size < 2:
        return int(lam.size)
    return int(np.argmax(lam[:-1] / lam[1:])) + 1


def outlier_gap(eigenvalues, c: int) -> tuple[float, float]:
    """``(λ_c / λ_{c+1}, that ratio over the median ratio λ_i / λ_{i+1} for i > c)``: how far the
    ``c``-th eigenvalue stands above the next one, compared with the spacing at the top of the
    bulk. Both are ``nan`` if the list is too short or not positive."""
    lam = np.asarray(eigenvalues, np.float64)
    if lam.size < c + 2 or lam[c] <= 0:
        return float("nan"), float("nan")
    gap = lam[c - 1] / lam[c]
    tail = lam[c:]
    tail = tail[tail > 0]
    bulk = float(np.median(tail[:-1] / tail[1:])) if tail.size >= 2 else float("nan")
    return float(gap), float(gap / bulk)


def hessian_and_ggn_spectra(loss_fn: Callable, logits_fn: Callable, output_loss: Callable, params, key, *,
                            top_k: int, lanczos_iters: int, trace_samples: int, slq_probes: int, slq_iters: int,
                            density_points: int) -> dict:
    """The spectra of the Hessian ``H = ∇²L`` and of its Gauss–Newton part ``G = Jᵀ ∇²ℓ(z) J`` at
    ``params``, with ``L(θ) = loss_fn(θ) = output_loss(logits_fn(θ))`` (``output_loss`` must have a
    PSD Hessian in the logits, e.g. mean cross-entropy or mean squared error).

    Returns a dict of arrays: ``hessian_top`` / ``ggn_top`` (top-``top_k`` eigenvalues by Lanczos
    with full reorthogonalization, ``lanczos_iters`` products) and their ``_residual`` (Ritz
    residual norms: an eigenvalue lies within it), ``hessian_min`` (+ ``_residual``), Hutchinson
    traces ``hessian_trace`` / ``ggn_trace`` (``trace_samples`` Rademacher probes) with
    ``_stderr``, and SLQ densities ``hessian_density`` / ``ggn_density`` on ``_density_grid``
    (``slq_probes`` probes × ``slq_iters`` steps, ``density_points`` points, integral 1).
    Works under ``jax.vmap`` over ``params`` and ``key``.
    """
    def ggn(v):
        return ggn_vp(logits_fn, output_loss, params, v)

    hess = hessian_operator(loss_fn, params)
    k = jax.random.split(key, 7)
    top_h = operator_eigenpairs(hess, params, top_k, key=k[0], num_iters=lanczos_iters)
    top_g = operator_eigenpairs(ggn, params, top_k, key=k[1], num_iters=lanczos_iters)
    bottom_h = operator_eigenpairs(hess, params, 1, key=k[2], num_iters=lanczos_iters, which="bottom")
    tr_h, se_h = operator_trace(hess, params, key=k[3], num_samples=trace_samples)
    tr_g, se_g = operator_trace(ggn, params, key=k[4], num_samples=trace_samples)
    grid_h, dens_h = operator_spectral_density(hess, params, key=k[5], num_probes=slq_probes, num_iters=slq_iters,
                                               num_points=density_points)
    grid_g, dens_g = operator_spectral_density(ggn, params, key=k[6], num_probes=slq_probes, num_iters=slq_iters,
                                               num_points=density_points)
    return {"hessian_top": top_h.eigenvalues, "hessian_top_residual": top_h.residuals,
            "ggn_top": top_g.eigenvalues, "ggn_top_residual": top_g.residuals,
            "hessian_min": bottom_h.eigenvalues[0], "hessian_min_residual": bottom_h.residuals[0],
            "hessian_trace": tr_h, "hessian_trace_stderr": se_h, "ggn_trace": tr_g, "ggn_trace_stderr": se_g,
            "hessian_density_grid": grid_h, "hessian_density": dens_h,
            "ggn_density_grid": grid_g, "ggn_density": dens_g}
