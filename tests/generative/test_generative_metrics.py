"""Sample-quality metrics against direct computations and closed forms; plotting writes PNGs."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg, stats

from dl_course.generative import classifier_score, frechet_distance, mmd2, sliced_wasserstein
from dl_course.generative.metrics import median_bandwidth, wasserstein_1d
from dl_course.plotting.generative import plot_samples_2d, plot_score_field, sample_grid, tile_images


def _mmd2_loops(x, y, h):
    """Gretton et al. (2012), Eq. (3), written as explicit sums."""
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * h ** 2))
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_metrics_against_direct_computations():
    """MMD^2 against explicit sums; the median heuristic against numpy; 1D W_p against scipy (p = 1,
    unequal sizes) and the sorted-sample formula (p = 2); sliced W_2 of a translated cloud equals
    (mean_theta (theta . m)^2)^(1/2) exactly (every projection is a shift); the Frechet distance
    against scipy's sqrtm formula."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5
        u, v, v2 = rng.normal(size=17), rng.normal(size=11) * 2 + 1, rng.normal(size=17)
        shift = np.array([1.0, -2.0, 0.5])
        fx, fy = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4)) + 1.0
        key = jax.random.key(0)

        @jax.jit
        def ours(x, y, u, v, v2, fx, fy):
            h = median_bandwidth(x, y)
            dirs = jax.random.normal(key, (64, 3), jnp.float64)
            return (h, mmd2(x, y, h), mmd2(x, y, jnp.stack([h, 2 * h])), wasserstein_1d(u, v, 1.0),
                    wasserstein_1d(u, v2, 2.0), sliced_wasserstein(x, x + shift, key, num_projections=64), dirs,
                    frechet_distance(fx, fy))

        h, mmd_1, mmd_2, w1, w2, sw, dirs, fd = ours(*(jnp.asarray(a) for a in (x, y, u, v, v2, fx, fy)))
        h = float(h)
        z = np.concatenate([x, y])
        d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
        np.testing.assert_allclose(h, np.median(d[np.triu_indices(len(z), 1)]), rtol=1e-12)
        np.testing.assert_allclose(mmd_1, _mmd2_loops(x, y, h), rtol=1e-10)
        np.testing.assert_allclose(mmd_2, _mmd2_loops(x, y, h) + _mmd2_loops(x, y, 2 * h), rtol=1e-10)
        np.testing.assert_allclose(w1, stats.wasserstein_distance(u, v), rtol=1e-10)
        np.testing.assert_allclose(w2, np.mean((np.sort(u) - np.sort(v2)) ** 2), rtol=1e-10)
        dirs = np.array(dirs) / np.linalg.norm(dirs, axis=-1, keepdims=True)
        np.testing.assert_allclose(sw, np.sqrt(np.mean((dirs @ shift) ** 2)), rtol=1e-10)
        cx, cy = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
        ref = np.sum((fx.mean(0) - fy.mean(0)) ** 2) + np.trace(cx + cy - 2 * linalg.sqrtm(cx @ cy).real)
        np.testing.assert_allclose(fd, ref, rtol=1e-8)


def test_mmd_and_sliced_wasserstein_separate_distributions():
    """Same distribution: MMD^2 within noise of 0 and small SW; shifted by 1: clearly larger."""
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)

    @jax.jit
    def stats_(k1, k2, k3, k4):
        a, b = jax.random.normal(k1, (400, 2)), jax.random.normal(k2, (400, 2))
        c = jax.random.normal(k3, (400, 2)) + jnp.array([1.0, 0.0])
        return mmd2(a, b), mmd2(a, c), sliced_wasserstein(a, b, k4), sliced_wasserstein(a, c, k4)

    same, shifted, sw_same, sw_shifted = stats_(k1, k2, k3, k4)
    assert abs(same) < 0.01 < shifted
    assert sw_same < 0.15 and 0.5 < sw_shifted < 0.9  # E_theta (theta . e1)^2 = 1/2: SW_2 ~ 0.71


def test_classifier_score_extremes():
    """Confident, balanced predictions give C; a constant classifier gives 1."""
    labels = jnp.arange(100) % 10
    confident = lambda x: 50.0 * jax.nn.one_hot(labels, 10)
    constant = lambda x: jnp.zeros((100, 10)).at[:, 3].set(50.0)
    out, const = jax.jit(lambda: (classifier_score(confident, None), classifier_score(constant, None)))()
    np.testing.assert_allclose(out["classifier_score"], 10.0, rtol=1e-4)
    np.testing.assert_allclose(out["class_entropy"], np.log(10), rtol=1e-5)
    np.testing.assert_allclose(out["mean_confidence"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["class_frequencies"], np.full(10, 0.1), rtol=1e-5)
    np.testing.assert_allclose(const["classifier_score"], 1.0, rtol=1e-5)


def test_plots_write_pngs(tmp_path):
    grid = tile_images(np.zeros((5, 8, 8, 1)), nrow=3)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1)
    assert grid[0, 0] == 1.0 and grid[1, 1] == 0.0
    rng = np.random.default_rng(0)
    from dl_course.results import save_figure

    save_figure(tmp_path / "grid.png", sample_grid(rng.uniform(size=(10, 8, 8, 1)), title="digits"))
    save_figure(tmp_path / "s2d.png", plot_samples_2d(rng.normal(size=(50, 2)), rng.normal(size=(50, 2))))
    save_figure(tmp_path / "field.png", plot_score_field(lambda x, t: -x, 0.5, num=5))
    for name in ("grid.png", "s2d.png", "field.png"):
        assert (tmp_path / name).stat().st_size > 1000
