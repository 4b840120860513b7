"""The CI helper against scipy on known distributions: the t interval equals scipy's one-sample t
interval, the bootstrap option equals ``scipy.stats.bootstrap`` and both cover the true mean of a
normal distribution at their nominal 95% rate; Welch's interval equals scipy's."""

import numpy as np
import pytest
import scipy.stats

from dl_course.measures.statistics import intervals


def test_t_interval_equals_scipy_and_bootstrap_equals_scipy_bootstrap():
    x = np.random.default_rng(0).normal(2.0, 1.0, 12)
    ci = intervals.mean_ci(x)
    ref = scipy.stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    np.testing.assert_allclose(ci["ci"], [ref.low, ref.high], rtol=1e-12)
    assert ci["estimate"] == pytest.approx(x.mean()) and ci["n"] == 12
    b = intervals.mean_ci(x, method="bootstrap", n_resamples=2000, seed=3)
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(3))
    np.testing.assert_allclose(b["ci"], [ref.confidence_interval.low, ref.confidence_interval.high], rtol=1e-12)


def test_both_intervals_cover_a_known_mean_at_the_nominal_rate():
    # N(2, 1), n = 20, 400 samples: coverage ~ Binomial(400, 0.95), sd 1.1%; bounds at ~ +-3 sd.
    # (The BCa bootstrap under-covers slightly at n = 20: ~93%.)
    rng = np.random.default_rng(1)
    hits = {"t": 0, "bootstrap": 0}
    for _ in range(400):
        x = rng.normal(2.0, 1.0, 20)
        for m in hits:
            lo, hi = intervals.mean_ci(x, method=m, n_resamples=499, seed=int(rng.integers(1 << 30)))["ci"]
            hits[m] += lo <= 2.0 <= hi
    assert 0.915 <= hits["t"] / 400 <= 0.985, hits
    assert 0.89 <= hits["bootstrap"] / 400 <= 0.985, hits


def test_t_and_bootstrap_agree_on_a_large_sample_of_a_skewed_distribution():
    x = np.random.default_rng(2).exponential(1.0, 400)
    t, b = intervals.mean_ci(x)["ci"], intervals.mean_ci(x, method="bootstrap", n_resamples=2000)["ci"]
    assert abs((b[1] - b[0]) / (t[1] - t[0]) - 1) < 0.15 and abs(t[0] - b[0]) < 0.03


def test_paired_differences_cancel_the_seed_effect_and_welch_equals_scipy():
    rng = np.random.default_rng(3)
    seed_effect = rng.normal(0, 1.0, 10)
    a, b = seed_effect + 0.3 + rng.normal(0, 0.05, 10), seed_effect + rng.normal(0, 0.05, 10)
    paired, welch = intervals.paired_difference_ci(a, b), intervals.difference_ci(a, b)
    assert paired["ci"][0] > 0 and intervals.verdict(paired) == "higher"  # separated when paired
    assert welch["ci"][0] < 0 < welch["ci"][1] and intervals.verdict(welch) == "within noise"
    ref = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose(welch["ci"], [ref.low, ref.high], rtol=1e-10)


def test_bad_input_fails_with_one_line():
    with pytest.raises(ValueError, match=">= 2 values"):
        intervals.mean_ci([1.0])
    with pytest.raises(ValueError, match="valid: t, bootstrap"):
        intervals.mean_ci([1.0, 2.0], method="normal")
    assert intervals.mean_ci([0.5, 0.5, 0.5])["ci"] == [0.5, 0.5]
