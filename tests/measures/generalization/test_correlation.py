"""The correlation protocol (Kendall τ, granulated Ψ, conditional mutual information, robust
sign-error) against scipy and on synthetic measures whose answers are known by construction."""

import itertools

import numpy as np
import pytest
from scipy.stats import kendalltau

import dl_course.measures as M

RNG = np.random.default_rng(11)
GRID = [dict(lr=a, width=b, wd=c, seed=s)
        for a, b, c, s in itertools.product([0.1, 0.3, 1.0], [16, 32, 64], [0.0, 1e-4, 1e-3], [0, 1])]
AXES = ["lr", "width", "wd"]


def _gap(noise=0.01):
    # The gap grows with lr and shrinks with width; wd (and the seed) do not affect it.
    return np.array([np.log(h["lr"]) - 0.5 * np.log(h["width"]) + noise * RNG.standard_normal() for h in GRID])


def test_kendall_tau_matches_scipy_with_ties():
    for _ in range(5):
        a = RNG.integers(0, 4, 40).astype(float)   # many ties in both
        b = RNG.integers(0, 6, 40).astype(float)
        np.testing.assert_allclose(M.kendall_tau(a, b), kendalltau(a, b).statistic, rtol=1e-12)
        c = RNG.standard_normal(40)
        np.testing.assert_allclose(M.kendall_tau(c, b), kendalltau(c, b).statistic, rtol=1e-12)
        # τ-a (Jiang et al.'s formula): Σ_{i<j} sgn·sgn over all n(n−1)/2 pairs, by a loop.
        num = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in itertools.combinations(range(40), 2))
        np.testing.assert_allclose(M.kendall_tau(a, b, variant="a"), num / (40 * 39 / 2), rtol=1e-12)
    # A constant measure ranks nothing: 0 (scipy: nan).
    assert M.kendall_tau(np.ones(10), RNG.standard_normal(10)) == 0.0
    with pytest.raises(ValueError, match="valid"):
        M.kendall_tau(a, b, variant="c")
    with pytest.raises(ValueError, match="non-finite"):
        M.kendall_tau(np.array([1.0, np.inf, 2.0]), np.arange(3.0))


def test_measure_equal_to_the_gap_scores_perfectly():
    gap = _gap()
    assert M.kendall_tau(gap, gap) == 1.0
    assert M.granulated_psi(gap, gap, GRID, AXES) == 1.0
    assert M.psi_by_axis(gap, gap, GRID, AXES) == {"lr": 1.0, "width": 1.0, "wd": 1.0}
    ci = M.conditional_mutual_information(gap, gap, GRID, AXES)
    np.testing.assert_allclose(ci.score, 1.0, rtol=1e-12)
    assert len(ci.by_set) == 1 + 3 + 3   # ∅, the three axes, the three pairs
    rse = M.robust_sign_error(gap, gap, GRID, AXES, seed_key="seed", min_effective_sample_size=4)
    # Environments: per axis, 9 settings of the other two axes × 3 pairs of values; 2 x 2 seed
    # pairs each (ESS 4 without noise weights).
    assert rse.max == 0.0 and rse.num_environments == 3 * 27 and rse.num_pairs == 4 * 3 * 27
    # −gap is the opposite.
    assert M.granulated_psi(-gap, gap, GRID, AXES) == -1.0
    assert M.robust_sign_error(-gap, gap, GRID, AXES, seed_key="seed", min_effective_sample_size=4).max == 1.0
    # The paper's floor (ESS 12) keeps no environment of 2 x 2 pairs.
    assert M.robust_sign_error(gap, gap, GRID, AXES, seed_key="seed").num_environments == 0


def test_measure_of_an_irrelevant_hyperparameter_scores_zero():
    gap = _gap()
    # Depends on wd only, which does not affect the gap.
    wd_only = np.array([h["wd"] for h in GRID])
    psi = M.psi_by_axis(wd_only, gap, GRID, AXES)
    # Constant within the lr- and width-groups: exactly 0 there (no untied pair).
    assert psi["lr"] == 0.0 and psi["width"] == 0.0
    # On its own axis it orders noise: |ψ_wd| is small. 18 groups of 3: sd of a group τ ≤ 0.82,
    # of their mean ≤ 0.19; 3 of those.
    assert abs(psi["wd"]) < 0.6
    # Conditioning on wd makes the measure's signs deterministic: zero mutual information.
    ci = M.conditional_mutual_information(wd_only, gap, GRID, AXES)
    assert ci.score == 0.0 and "wd" in ci.argmin
    # With independent noise added it varies within every group, yet orders nothing: ψ ≈ 0 on
    # every axis. 54 (lr/width) groups of 3 models: sd of the mean τ ≈ 0.82/√54 ≈ 0.11; 3 of those.
    noisy = wd_only + 1e-5 * RNG.standard_normal(len(GRID))
    for axis, value in M.psi_by_axis(noisy, gap, GRID, AXES).items():
        assert abs(value) < 0.35, axis

    # A measure that tracks lr only is right on the lr axis and blind elsewhere: Ψ = 1/3.
    lr_only = np.array([h["lr"] for h in GRID])
    assert M.psi_by_axis(lr_only, gap, GRID, AXES) == {"lr": 1.0, "width": 0.0, "wd": 0.0}
    np.testing.assert_allclose(M.granulated_psi(lr_only, gap, GRID, AXES), 1 / 3, rtol=1e-12)
    # Overall τ credits it (lr explains half of the gap's variation) but the CI test does not.
    assert M.kendall_tau(lr_only, gap) > 0.4
    assert M.conditional_mutual_information(lr_only, gap, GRID, AXES).score == 0.0


def test_groups_skip_dropped_models_and_default_axes():
    gap = _gap()
    keep = [i for i, h in enumerate(GRID) if not (h["lr"] == 1.0 and h["width"] == 64)]
    sub = [GRID[i] for i in keep]
    psi = M.psi_by_axis(gap[keep], gap[keep], sub)            # default axes: every varying key
    assert set(psi) == {"lr", "width", "wd", "seed"}
    assert all(v == 1.0 for v in psi.values())
    # A group reduced to one model has no τ: an axis whose every group is a singleton is nan.
    single = [dict(a=0, b=0), dict(a=1, b=1)]
    assert np.isnan(M.psi_by_axis(np.array([0.0, 1.0]), np.array([0.0, 1.0]), single)["a"])
    with pytest.raises(ValueError, match="valid"):
        M.psi_by_axis(gap, gap, GRID, ["momentum"])


def test_robust_sign_error_by_hand():
    # Four models on a 2x2 grid (a, b); the measure orders the a-pairs right and the b-pairs wrong
    # at a=1, ties at a=0.
    hp = [dict(a=0, b=0), dict(a=0, b=1), dict(a=1, b=0), dict(a=1, b=1)]
    gap = np.array([0.0, 1.0, 2.0, 3.0])
    measure = np.array([0.0, 0.0, 5.0, 4.0])
    rse = M.robust_sign_error(measure, gap, hp, min_effective_sample_size=1)
    # Environments: (a=0: b 0↔1) tie -> ½; (a=1: b 0↔1) wrong -> 1; (b=0: a) right; (b=1: a) right.
    assert rse.num_environments == 4 == rse.num_candidates
    np.testing.assert_allclose(sorted(rse.errors), [0.0, 0.0, 0.5, 1.0])
    assert rse.max == 1.0 and rse.mean == 0.375
    assert rse.by_axis == {"a": 0.0, "b": 1.0}


def test_hoeffding_weight_is_the_papers_formula():
    # p(Δ) = (1 - 2 exp(-2 n (Δ/2)^2))_+^2, weight (p - 1/2)_+; by hand for n = 10,000.
    for d in (0.0, 0.01, 0.02, 0.03, 0.1):
        p = max(0.0, 1 - 2 * np.exp(-2 * 10_000 * (d / 2) ** 2)) ** 2
        np.testing.assert_allclose(M.hoeffding_weight(d, 10_000), max(p - 0.5, 0.0), rtol=1e-12)
    assert M.hoeffding_weight(0.015, 10_000) == 0.0 and M.hoeffding_weight(0.03, 10_000) > 0.45
    assert M.hoeffding_weight(0.03, 1_000) == 0.0  # 10x fewer test examples: within noise


def test_robust_sign_error_weights_pairs_by_the_noise_of_their_gaps():
    """Axis a moves the gap by 0.001 (noise on 10,000 test examples) and the measure orders it
    wrong; axis b moves it by 0.2 and the measure orders it right. Unweighted, the a-environments
    make the robust sign-error 1; with the paper's noise weights they weigh nothing and are
    dropped, and the robust sign-error is the b-environments' 0."""
    hp = [dict(a=a, b=b, seed=s) for a in (0, 1) for b in (0, 1, 2) for s in (0, 1)]
    gap = np.asarray([0.2 * h["b"] + 0.001 * h["a"] + 0.0005 * h["seed"] for h in hp])
    measure = np.asarray([0.2 * h["b"] - h["a"] for h in hp])
    plain = M.robust_sign_error(measure, gap, hp, seed_key="seed", min_effective_sample_size=1)
    weighted = M.robust_sign_error(measure, gap, hp, seed_key="seed", test_examples=10_000,
                                   min_effective_sample_size=1)
    assert plain.num_environments == 3 + 6 and plain.max == 1.0 and plain.by_axis["a"] == 1.0
    assert weighted.num_environments == 6 and weighted.max == 0.0 and np.isnan(weighted.by_axis["a"])
    assert weighted.num_pairs == 6 * 4 and weighted.num_candidates == 9
    # The sign-error of a noise measure is ~1/2 on the environments with a real gap difference.
    rng = np.random.default_rng(0)
    noise = [M.robust_sign_error(rng.standard_normal(len(hp)), gap, hp, seed_key="seed", test_examples=10_000,
                                 min_effective_sample_size=1).mean for _ in range(200)]
    assert abs(np.mean(noise) - 0.5) < 0.05


def test_correlation_table_is_json_ready():
    import json
    gap = _gap()
    table = M.correlation_table({"gap": gap, "wd": np.array([h["wd"] for h in GRID])}, gap, GRID, AXES,
                                seed_key="seed")
    json.dumps(table)
    # The table's CI scores are the single-measure test's.
    wd = np.array([h["wd"] for h in GRID])
    noisy = gap + 0.05 * RNG.standard_normal(len(GRID))
    many = M.conditional_mutual_information_table({"wd": wd, "noisy": noisy}, gap, GRID, AXES)
    for name, values in (("wd", wd), ("noisy", noisy)):
        assert many[name] == M.conditional_mutual_information(values, gap, GRID, AXES)
    assert 0.0 < many["noisy"].score < 1.0
    assert table["kendall_tau"]["gap"] == 1.0 and table["granulated_psi"]["wd"] < 0.25
    assert table["psi_by_axis"]["wd"]["lr"] == 0.0 and table["cmi"]["wd"] == 0.0
    assert set(table["robust_sign_error"]["gap"]) == {"mean", "worst", "pairs", "environments"}
    # A covariate the CMI test may condition on: the gap's own sign given it is the measure's.
    bins = np.digitize(gap, np.quantile(gap, [1 / 3, 2 / 3]))
    with_cov = M.correlation_table({"gap": gap}, gap, GRID, AXES, seed_key="seed", cmi_covariates={"gap_bin": bins})
    assert "gap_bin" not in with_cov["psi_by_axis"]["gap"] and with_cov["cmi"]["gap"] <= table["cmi"]["gap"]
    with pytest.raises(ValueError, match="clash"):
        M.correlation_table({"gap": gap}, gap, GRID, AXES, cmi_covariates={"lr": bins})


def test_robust_sign_error_pooled_environments_for_one_seed():
    """One seed: each (setting, setting) environment is a single pair (ESS 1), so the ESS floor
    drops them all; pooled environments (axis, a, b) gather every pair over the other axes."""
    grid = [h for h in GRID if h["seed"] == 0]
    gap = np.array([np.log(h["lr"]) - 0.5 * np.log(h["width"]) for h in grid])
    plain = M.robust_sign_error(gap, gap, grid, AXES, seed_key="seed", min_effective_sample_size=2)
    assert plain.num_environments == 0
    pooled = M.robust_sign_error(gap, gap, grid, AXES, seed_key="seed", min_effective_sample_size=2,
                                 pool_other_axes=True, test_examples=1000)
    # wd leaves the gap unchanged: its pairs tie in the gap and get no weight (the environment has no
    # informative pair); lr and width: 3 value pairs each, 9 settings of the other two axes per pair
    assert pooled.num_environments == 6 and pooled.max == 0.0 and pooled.num_pairs == 6 * 9
    # a measure right about lr but inverted in width fails exactly the width environments
    flipped = np.array([np.log(h["lr"]) + 0.5 * np.log(h["width"]) for h in grid])
    r = M.robust_sign_error(flipped, gap, grid, AXES, seed_key="seed", min_effective_sample_size=2,
                            pool_other_axes=True, test_examples=1000)
    assert r.max == 1.0 and r.by_axis["width"] == 1.0 and r.by_axis["lr"] == 0.0 and r.mean == 0.5
