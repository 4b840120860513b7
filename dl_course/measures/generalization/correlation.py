"""How well a measure predicts generalization across a grid of models: Kendall's τ, the granulated
Ψ and the conditional-mutual-information test of Jiang et al. (2020, "Fantastic Generalization
Measures and Where to Find Them", ICLR, §3), and the robust sign-error of Dziugaite et al. (2020,
"In search of robust measures of generalization", NeurIPS, §3-4) with its Monte-Carlo noise weights.

Inputs are host-side: ``measure`` and ``gap`` are arrays with one value per model (``gap`` =
test error − train error), ``hparams`` a list with one dict per model of its hyperparameter
values (hashable: numbers or strings). Models "differ in one hyperparameter only" when their
dicts agree on every other key, so a key such as ``seed`` kept in the dicts but left out of
``axes`` makes models of different seeds never comparable (they are never grouped together).
``axes`` defaults to every key that takes at least two values.

Sign convention: ``sgn(a − b) ∈ {−1, 0, +1}`` (ties are 0). Kendall's τ is **τ-b** (as
``scipy.stats.kendalltau``'s default): ``Σ_{i<j} s_ij t_ij / √(Σ s_ij² · Σ t_ij²)`` with
``s = sgn(μ_i − μ_j)``, ``t = sgn(g_i − g_j)``, which is Jiang et al.'s τ when there are no ties;
``variant="a"`` gives Jiang's formula exactly (``Σ s t`` over all ``n(n−1)/2`` pairs, a tied pair
counts 0). Where a set of models has no untied pair (e.g. a measure that is constant within a
group, like the parameter count across learning rates) τ is defined as 0 (scipy returns nan):
such a measure ranks nothing, which is what Jiang's formula gives.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

Hparams = Sequence[Mapping[str, Any]]


def _check(measure, gap, hparams=None) -> tuple[np.ndarray, np.ndarray]:
    measure, gap = np.asarray(measure, np.float64), np.asarray(gap, np.float64)
    if measure.ndim != 1 or measure.shape != gap.shape:
        raise ValueError(f"measure and gap must be 1-D of equal length, got {measure.shape}, {gap.shape}")
    if hparams is not None and len(hparams) != len(measure):
        raise ValueError(f"got {len(measure)} measure values and {len(hparams)} hparams dicts")
    bad = int(np.sum(~np.isfinite(measure)) + np.sum(~np.isfinite(gap)))
    if bad:
        raise ValueError(f"{bad} non-finite measure/gap values: drop those models first (and count them)")
    return measure, gap


def _signs(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v[:, None] - v[None, :])


def kendall_tau_unchecked(measure: np.ndarray, gap: np.ndarray, variant: str) -> float:
    """:func:`kendall_tau` without its argument checks (for callers that checked once, in loops):
    ``Σ_{i<j} sign(μ_i − μ_j) sign(g_i − g_j)`` over ``n(n−1)/2`` (τ-a) or over the geometric mean of
    the untied pair counts of each side (τ-b); 0 where undefined."""
    s, t = _signs(measure), _signs(gap)
    num = np.sum(np.triu(s * t, 1))
    if variant == "a":
        n = len(measure)
        return float(num / (n * (n - 1) / 2)) if n > 1 else 0.0
    den = np.sqrt(np.sum(np.triu(s * s, 1)) * np.sum(np.triu(t * t, 1)))
    return float(num / den) if den > 0 else 0.0


def kendall_tau(measure: np.ndarray, gap: np.ndarray, variant: str = "b") -> float:
    """Kendall's rank correlation between a measure and the generalization gap over all models
    (Jiang et al. §3.1), ``variant="b"`` (τ-b, default) or ``"a"`` (Jiang's formula); ties and
    the 0/0 case as in the module doc. 1: the measure orders every pair of models as the gap."""
    if variant not in ("a", "b"):
        raise ValueError(f"unknown Kendall tau variant {variant!r}; valid: ['a', 'b']")
    measure, gap = _check(measure, gap)
    return kendall_tau_unchecked(measure, gap, variant)


def varied_axes(hparams: Hparams, axes: Sequence[str] | None) -> list[str]:
    """The hyperparameter axes to condition on: ``axes`` checked against the keys of ``hparams``, or by
    default every key that takes more than one value over the models."""
    if not hparams:
        raise ValueError("hparams is empty")
    keys = list(hparams[0])
    if any(set(h) != set(keys) for h in hparams):
        raise ValueError("every model's hparams dict must have the same keys")
    if axes is None:
        return [k for k in keys if len({h[k] for h in hparams}) > 1]
    unknown = [a for a in axes if a not in keys]
    if unknown:
        raise ValueError(f"unknown hyperparameter axes {unknown}; valid: {keys}")
    return list(axes)


def one_axis_groups(hparams: Hparams, axis: str) -> list[np.ndarray]:
    """Indices of the models that agree on every key but ``axis``, groups of size ≥ 2."""
    groups: dict[tuple, list[int]] = {}
    for i, h in enumerate(hparams):
        groups.setdefault(tuple((k, h[k]) for k in sorted(h) if k != axis), []).append(i)
    return [np.asarray(g) for g in groups.values() if len(g) >= 2]


def psi_by_axis(
    measure: np.ndarray, gap: np.ndarray, hparams: Hparams, axes: Sequence[str] | None = None,
    variant: str = "b",
) -> dict[str, float]:
    """Jiang et al.'s (§3.1) per-axis granulated coefficient

        ψ_i = (1/m_i) Σ_{θ_{−i}} τ({(μ(θ), g(θ)) : θ_i ∈ Θ_i, the other axes fixed at θ_{−i}}),

    the mean over the ``m_i`` groups of models that differ in hyperparameter ``i`` only of
    Kendall's τ within the group. Groups with fewer than two models (e.g. after dropping
    unconverged models) are skipped; ``nan`` if an axis has no group left."""
    measure, gap = _check(measure, gap, hparams)
    out = {}
    for axis in varied_axes(hparams, axes):
        taus = [kendall_tau_unchecked(measure[g], gap[g], variant) for g in one_axis_groups(hparams, axis)]
        out[axis] = float(np.mean(taus)) if taus else float("nan")
    return out


def granulated_psi(
    measure: np.ndarray, gap: np.ndarray, hparams: Hparams, axes: Sequence[str] | None = None,
    variant: str = "b",
) -> float:
    """``Ψ = (1/n) Σ_i ψ_i`` (Jiang et al. §3.1), the mean of :func:`psi_by_axis` over the axes
    that have at least one group. A measure that only tracks one hyperparameter gets credit on
    that axis only."""
    by_axis = psi_by_axis(measure, gap, hparams, axes, variant)
    vals = [v for v in by_axis.values() if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


class CITest(NamedTuple):
    """Jiang et al.'s conditional-independence score.

    Attributes:
      score: ``K(μ) = min_S Î(V_μ, V_g | U_S)`` in ``[0, 1]``.
      argmin: the conditioning set ``S`` (tuple of axes) attaining it.
      by_set: ``{S: Î(V_μ, V_g | U_S)}`` for every ``S`` tried.
    """

    score: float
    argmin: tuple
    by_set: dict


def _codes(hparams: Hparams, axes: Sequence[str]) -> np.ndarray:
    cols = []
    for a in axes:
        values = [h[a] for h in hparams]
        uniq = {v: i for i, v in enumerate(dict.fromkeys(values))}
        cols.append([uniq[v] for v in values])
    return np.asarray(cols, dtype=np.int64).T.reshape(len(hparams), len(axes))


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=axis)


def conditional_mutual_information(
    measure: np.ndarray, gap: np.ndarray, hparams: Hparams, axes: Sequence[str] | None = None,
    max_conditioning: int = 2,
) -> CITest:
    """Jiang et al.'s (§3.2) conditional-independence test. Over all ordered pairs of distinct
    models ``(θ, θ′)``, let ``V_μ = sgn(μ(θ) − μ(θ′))``, ``V_g = sgn(g(θ) − g(θ′))`` and, for a set
    ``S`` of hyperparameter axes, ``U_S = (θ_S, θ′_S)`` the pair's values of those axes. Then

        Î(V_μ, V_g | U_S) = I(V_μ, V_g | U_S) / H(V_g | U_S),
        I(V_μ, V_g | U_S) = Σ_u p(u) Σ_{a,b} p(a, b | u) log[ p(a, b | u) / (p(a | u) p(b | u)) ],

    with empirical probabilities, and ``K(μ) = min_{|S| ≤ max_conditioning} Î`` (Jiang use
    ``|S| ≤ 2``; ``S = ∅`` is the unconditional normalized mutual information). A measure whose
    relation to the gap is explained by some hyperparameter(s) — e.g. one that only depends on a
    hyperparameter the gap does not depend on — scores ≈ 0; ``μ = g`` scores 1. Ties give the
    sign 0, a third value. ``Î = 0`` where ``H(V_g | U_S) = 0`` (the conditioning determines every
    gap sign: the measure adds nothing).
    """
    return conditional_mutual_information_table({"measure": measure}, gap, hparams, axes, max_conditioning)["measure"]


def _normalized_cmi(cell: np.ndarray, num_cells: int, signs: np.ndarray) -> float:
    """``I(V_μ, V_g | U) / H(V_g | U)`` from each pair's cell code and ``3 V_μ + V_g`` (in 0..8)."""
    counts = np.bincount(cell * 9 + signs, minlength=num_cells * 9).reshape(-1, 3, 3)
    pu = counts.sum(axis=(1, 2)) / len(cell)
    pab = counts / np.maximum(counts.sum(axis=(1, 2), keepdims=True), 1)
    h_g = _entropy(pab.sum(axis=1), 1)
    mi = _entropy(pab.sum(axis=2), 1) + h_g - _entropy(pab.reshape(len(pu), 9), 1)
    h = float(np.sum(pu * h_g))
    return max(float(np.sum(pu * mi)) / h, 0.0) if h > 1e-12 else 0.0


def conditional_mutual_information_table(
    measures: Mapping[str, np.ndarray], gap: np.ndarray, hparams: Hparams,
    axes: Sequence[str] | None = None, max_conditioning: int = 2,
) -> dict[str, CITest]:
    """:func:`conditional_mutual_information` for several measures at once (``{name: CITest}``),
    sharing the pair bookkeeping (``n(n−1)`` ordered pairs, one cell code per conditioning set)."""
    if not measures:
        raise ValueError("no measures given")
    checked = {name: _check(m, gap, hparams)[0] for name, m in measures.items()}
    gap = np.asarray(gap, np.float64)
    axes = varied_axes(hparams, axes)
    codes = _codes(hparams, axes)
    n = len(gap)
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    vg = (np.sign(gap[i] - gap[j]) + 1).astype(np.int8)
    signs = {name: ((np.sign(m[i] - m[j]) + 1) * 3 + vg).astype(np.int64) for name, m in checked.items()}
    # Per axis: the code of (θ_a, θ′_a) for every pair, in 0..k_a² − 1.
    radix = [int(codes[:, a].max()) + 1 for a in range(len(axes))]
    pair_axis = [(codes[i, a] * radix[a] + codes[j, a]).astype(np.int64) for a in range(len(axes))]
    by_set: dict[str, dict] = {name: {} for name in checked}
    for size in range(max_conditioning + 1):
        for subset in itertools.combinations(range(len(axes)), size):
            cell, num_cells = np.zeros(len(i), np.int64), 1   # mixed-radix code of (θ_S, θ′_S)
            for a in subset:
                cell, num_cells = cell * radix[a] ** 2 + pair_axis[a], num_cells * radix[a] ** 2
            for name in checked:
                by_set[name][tuple(axes[a] for a in subset)] = _normalized_cmi(cell, num_cells, signs[name])
    out = {}
    for name, table in by_set.items():
        argmin = min(table, key=table.get)
        out[name] = CITest(table[argmin], argmin, table)
    return out


class RobustSignError(NamedTuple):
    """Dziugaite et al.'s sign-error over environments.

    Attributes:
      max: the robust sign-error ``max_e SE_e`` over the kept environments (0: right in every
        environment; 1: wrong in one); nan when none is kept.
      mean: the average of ``SE_e`` over the kept environments.
      by_axis: ``{axis: max over kept environments that vary that axis}``.
      errors: ``SE_e`` for every kept environment (for CDFs / quantiles).
      num_environments: how many environments were kept (effective sample size >= the floor).
      num_pairs: model pairs with a positive weight in the kept environments.
      num_candidates: environments before the floor (settings differing in exactly one axis).
    """

    max: float
    mean: float
    by_axis: dict
    errors: np.ndarray
    num_environments: int
    num_pairs: int = 0
    num_candidates: int = 0


def hoeffding_weight(gap_difference, test_examples: int, min_weight: float = 0.5) -> np.ndarray:
    """Dziugaite et al.'s (2020, §4) weight of a model pair for the Monte-Carlo noise of gaps
    estimated on ``n = test_examples`` held-out examples. By Hoeffding's inequality an error rate
    estimated on ``n`` examples is off by ``≥ Δ/2`` with probability ``≤ φ(Δ) = 2 exp(−2n (Δ/2)²)``,
    so two gaps observed ``Δ`` apart differ in truth with probability ``≥ p(Δ) = (1 − φ(Δ))₊²``
    (both estimates within ``Δ/2``). The weight is ``(p(Δ) − min_weight)₊``: pairs less likely than
    ``min_weight`` (½ in the paper) to be ordered right by their observed gaps count nothing.
    (Train errors at the stop are taken as exact, as in the paper.)"""
    d = np.abs(np.asarray(gap_difference, np.float64))
    p = np.maximum(0.0, 1.0 - 2.0 * np.exp(-2.0 * int(test_examples) * (d / 2.0) ** 2)) ** 2
    return np.maximum(p - float(min_weight), 0.0)


def robust_sign_error(
    measure: np.ndarray, gap: np.ndarray, hparams: Hparams, axes: Sequence[str] | None = None,
    seed_key: str | None = None, test_examples: int | None = None, min_weight: float = 0.5,
    min_effective_sample_size: float = 12.0, pool_other_axes: bool = False,
) -> RobustSignError:
    """Robust sign-error of Dziugaite, Drouin, Neal, Rajkumar, Caballero, Wang, Mitliagkas & Roy
    (2020, "In search of robust measures of generalization", NeurIPS, §3-4). An environment ``e``
    is a pair of hyperparameter settings ``(A, B)`` that differ in exactly one axis; with ``seed_key``
    the seeds of a setting are its models (otherwise each setting is one model). Over the model
    pairs ``(θ, θ′) ∈ A × B``,

        SE_e = Σ w(θ, θ′) · ½ (1 − sgn(μ(θ) − μ(θ′)) · sgn(g(θ) − g(θ′))) / Σ w(θ, θ′),

    a wrong order costing 1, a tied measure ½, a right order 0, each pair weighted by
    :func:`hoeffding_weight` of its gap difference given ``test_examples`` (the probability, above
    ``min_weight``, that the observed order of the two gaps is real; ``test_examples=None``: every
    weight 1, no noise model). An environment whose effective sample size
    ``ESS_e = (Σ w)² / Σ w²`` is below ``min_effective_sample_size`` (12 in the paper) is dropped:
    its sign-error would rest on pairs whose gap order is noise. The robust measure is the worst
    case ``max_e SE_e`` over the kept environments; ``mean`` is their average.

    ``pool_other_axes``: a coarser environment for grids of one seed (where every environment
    above is one model pair, so no ESS floor above 1 can be met): ``e = (axis, a, b)``, the change
    of one axis from value ``a`` to ``b``, its pairs all model pairs that differ only in that axis
    with those values, over every setting of the other axes. ``max_e`` is then the worst change
    of one hyperparameter value, not the worst single pair of settings.
    """
    measure, gap = _check(measure, gap, hparams)
    keys = [k for k in hparams[0] if k != seed_key]
    axes = [a for a in varied_axes(hparams, axes) if a != seed_key]
    settings: dict[tuple, list[int]] = {}
    for idx, h in enumerate(hparams):
        settings.setdefault(tuple(h[k] for k in keys), []).append(idx)
    names = list(settings)
    environments: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    for p, q in itertools.combinations(range(len(names)), 2):
        differ = [(k, a, b) for k, a, b in zip(keys, names[p], names[q]) if a != b]
        if len(differ) != 1 or differ[0][0] not in axes:
            continue
        env = differ[0] if pool_other_axes else (names[p], names[q])
        environments.setdefault(env, []).append((np.asarray(settings[names[p]]), np.asarray(settings[names[q]])))
    errors, axis_of, pairs, candidates = [], [], 0, 0
    for env, members in environments.items():
        candidates += 1
        dm = np.concatenate([np.sign(measure[a][:, None] - measure[b][None, :]).ravel() for a, b in members])
        dg = np.concatenate([(gap[a][:, None] - gap[b][None, :]).ravel() for a, b in members])
        w = np.ones_like(dg) if test_examples is None else hoeffding_weight(dg, test_examples, min_weight)
        if w.sum() <= 0 or w.sum() ** 2 / np.sum(w ** 2) < min_effective_sample_size:
            continue
        errors.append(float(np.sum(w * 0.5 * (1.0 - dm * np.sign(dg))) / w.sum()))
        axis_of.append(env[0] if pool_other_axes else
                       next(k for k, a, b in zip(keys, env[0], env[1]) if a != b))
        pairs += int(np.sum(w > 0))
    errors = np.asarray(errors)
    by_axis = {a: float(max((e for e, x in zip(errors, axis_of) if x == a), default=float("nan"))) for a in axes}
    if errors.size == 0:
        return RobustSignError(float("nan"), float("nan"), by_axis, errors, 0, 0, candidates)
    return RobustSignError(float(errors.max()), float(errors.mean()), by_axis, errors, int(errors.size), pairs,
                           candidates)


def correlation_table(
    measures: Mapping[str, np.ndarray], gap: np.ndarray, hparams: Hparams,
    axes: Sequence[str] | None = None, seed_key: str | None = None,
    cmi_covariates: Mapping[str, Sequence] | None = None, test_examples: int | None = None,
    min_effective_sample_size: float = 12.0, pool_other_axes: bool = False,
) -> dict[str, dict]:
    """Every statistic for every measure, as JSON-ready values: ``kendall_tau`` (name → τ),
    ``granulated_psi`` (name → Ψ), ``psi_by_axis`` (name → axis → ψ), ``cmi`` (name → K),
    ``cmi_argmin`` (name → the conditioning set, joined by ``+``), ``robust_sign_error`` (name →
    ``{mean, worst, pairs, environments}`` of :func:`robust_sign_error` with ``test_examples``,
    ``min_effective_sample_size`` and ``pool_other_axes``).

    ``cmi_covariates``: extra discrete per-model variables (name → one value per model, e.g. a
    binned final training loss) that the CMI test may condition on besides the axes; they are not
    axes of Ψ or of the sign-error's environments."""
    out: dict[str, dict] = {k: {} for k in ("kendall_tau", "granulated_psi", "psi_by_axis", "cmi",
                                            "cmi_argmin", "robust_sign_error")}
    ci_axes = [a for a in varied_axes(hparams, axes) if a != seed_key]
    covariates = dict(cmi_covariates or {})
    clash = set(covariates) & set(hparams[0])
    if clash:
        raise ValueError(f"cmi_covariates {sorted(clash)} clash with hyperparameter names")
    cmi_hparams = [{**h, **{k: v[i] for k, v in covariates.items()}} for i, h in enumerate(hparams)]
    cis = conditional_mutual_information_table(measures, gap, cmi_hparams, ci_axes + list(covariates))
    for name, values in measures.items():
        values = np.asarray(values, np.float64)
        out["kendall_tau"][name] = kendall_tau(values, gap)
        out["psi_by_axis"][name] = psi_by_axis(values, gap, hparams, ci_axes)
        out["granulated_psi"][name] = granulated_psi(values, gap, hparams, ci_axes)
        out["cmi"][name], out["cmi_argmin"][name] = cis[name].score, "+".join(cis[name].argmin)
        rse = robust_sign_error(values, gap, hparams, ci_axes, seed_key=seed_key, test_examples=test_examples,
                                min_effective_sample_size=min_effective_sample_size, pool_other_axes=pool_other_axes)
        out["robust_sign_error"][name] = {"mean": rse.mean, "worst": rse.max, "pairs": rse.num_pairs,
                                          "environments": rse.num_environments}
    return out
