"""Bootstrap intervals of a measure ranking: against scipy.stats.bootstrap, their coverage on a
law whose τ is known, the resampling unit (settings, not their seeds), Ψ's interval and the noise
ceilings."""

import numpy as np
from scipy import stats

import dl_course.measures as M


def _bivariate(rng, n, rho):
    x = rng.standard_normal(n)
    return x, rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal(n)


def test_tau_interval_matches_scipy_bootstrap_and_covers_the_true_tau():
    rng = np.random.default_rng(0)
    x, y = _bivariate(rng, 100, 0.6)
    ours, _ = M.bootstrap_tau({"x": x}, y, clusters=list(range(100)), num_resamples=1000, seed=1)
    ref = stats.bootstrap((x, y), lambda a, b: stats.kendalltau(a, b).statistic, paired=True, vectorized=False,
                          n_resamples=1000, method="percentile", random_state=2).confidence_interval
    # Two independent sets of 1000 resamples: the endpoints' Monte-Carlo sd is ~0.01.
    np.testing.assert_allclose(ours["x"], [ref.low, ref.high], atol=0.04)
    # Coverage: for a bivariate normal tau = (2/pi) arcsin(rho). 40 data sets, 200 resamples each;
    # the nominal 95% gives >= 34 of 40 with probability ~0.98 (0.95 if the percentile interval
    # under-covers to 93%); a CI of the wrong width (e.g. resampling half the data) covers < 80%.
    true_tau = 2 / np.pi * np.arcsin(0.6)
    hits = 0
    for k in range(40):
        x, y = _bivariate(rng, 60, 0.6)
        (lo, hi), = M.bootstrap_tau({"x": x}, y, clusters=list(range(60)), num_resamples=200, seed=k)[0].values()
        hits += lo <= true_tau <= hi
    assert hits >= 34, hits


def test_tau_interval_resamples_settings_not_their_seeds():
    """Three 'seeds' that are exact copies of each setting add no information: the cluster
    bootstrap's interval keeps its width; resampling models (each copy its own cluster) would
    shrink it by ~sqrt(3)."""
    rng = np.random.default_rng(3)
    x, y = _bivariate(rng, 60, 0.5)
    single, _ = M.bootstrap_tau({"x": x}, y, clusters=list(range(60)), num_resamples=400, seed=0)
    xs, ys, setting = np.repeat(x, 3), np.repeat(y, 3), np.repeat(np.arange(60), 3)
    cluster, _ = M.bootstrap_tau({"x": xs}, ys, clusters=setting.tolist(), num_resamples=400, seed=0)
    naive, _ = M.bootstrap_tau({"x": xs}, ys, clusters=list(range(180)), num_resamples=400, seed=0)
    width = lambda ci: ci["x"][1] - ci["x"][0]  # noqa: E731
    assert 0.8 < width(cluster) / width(single) < 1.25
    assert width(cluster) > 1.4 * width(naive)


def test_paired_differences_and_psi_interval():
    rng = np.random.default_rng(5)
    grid = [dict(lr=a, width=b, seed=s) for a in range(4) for b in range(4) for s in range(3)]
    gap = np.asarray([h["lr"] - h["width"] + 0.3 * rng.standard_normal() for h in grid])
    good = gap + 0.2 * rng.standard_normal(len(gap))
    noise = rng.standard_normal(len(gap))
    measures = {"good": good, "noise": noise}
    clusters = [(h["lr"], h["width"]) for h in grid]
    ci, samples = M.bootstrap_tau(measures, gap, clusters, num_resamples=500)
    est = {n: M.kendall_tau(v, gap) for n, v in measures.items()}
    assert ci["good"][0] <= est["good"] <= ci["good"][1] and ci["noise"][0] < 0 < ci["noise"][1]
    diff = M.paired_differences(samples, est, ["good", "noise"])
    assert diff["good - noise"]["distinguishable"] and diff["good - noise"]["ci"][0] > 0.3
    same = M.paired_differences({"a": samples["good"], "b": samples["good"]}, {"a": 0.5, "b": 0.5}, ["a", "b"])
    assert not same["a - b"]["distinguishable"]
    psi_ci, _ = M.bootstrap_psi(measures, gap, grid, ["lr", "width"], num_resamples=500)
    psi = {n: M.granulated_psi(v, gap, grid, ["lr", "width"]) for n, v in measures.items()}
    assert psi_ci["good"][0] <= psi["good"] <= psi_ci["good"][1] and psi_ci["good"][0] > 0.3
    assert psi_ci["noise"][0] < 0 < psi_ci["noise"][1]


def test_noise_ceilings():
    rng = np.random.default_rng(7)
    grid = [dict(lr=a, seed=s) for a in range(30) for s in range(3)]
    true_gap = np.asarray([0.01 * h["lr"] for h in grid])
    # A gap with no seed noise: replicates agree perfectly; binomial noise on n test examples
    # lowers the split-half tau.
    assert M.replicate_tau(true_gap, grid, "seed")["mean"] == 1.0
    n = 2000
    half_a = rng.binomial(n // 2, 0.2 + true_gap) / (n // 2)
    half_b = rng.binomial(n // 2, 0.2 + true_gap) / (n // 2)
    tau = M.split_half_tau(half_a, half_b)
    assert 0.3 < tau < 0.95
    noisy = true_gap + 0.2 * rng.standard_normal(len(grid))
    rep = M.replicate_tau(noisy, grid, "seed")
    assert set(rep["by_pair"]) == {"0-1", "0-2", "1-2"} and rep["settings"]["0-1"] == 30 and rep["mean"] < 0.5


def test_spearman_interval_matches_scipy_bootstrap():
    rng = np.random.default_rng(9)
    x = rng.standard_normal(64)
    y = x + rng.standard_normal(64)
    ours = M.spearman_with_ci(x, y, num_resamples=1000)
    ref = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b).statistic, paired=True, vectorized=False,
                          n_resamples=1000, method="percentile", random_state=1).confidence_interval
    np.testing.assert_allclose(ours["ci"], [ref.low, ref.high], atol=0.04)
    assert ours["estimate"] == stats.spearmanr(x, y).statistic and ours["undefined_resamples"] == 0
    assert np.isnan(M.spearman_with_ci([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["estimate"])
