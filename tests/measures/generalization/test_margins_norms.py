"""Margins and norms against explicit numpy computations."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dl_course.measures as M

RNG = np.random.default_rng(0)


def _bias_free_relu(params, x):
    return jax.nn.relu(x @ params["w0"]) @ params["w1"]


def test_multiclass_and_normalized_margins():
    logits = RNG.standard_normal((10, 4))
    labels = RNG.integers(0, 4, 10)
    expected = np.array(
        [logits[i, labels[i]] - np.max(np.delete(logits[i], labels[i])) for i in range(10)]
    )
    got = M.multiclass_margins(jnp.asarray(logits), jnp.asarray(labels))
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_array_equal(got > 0, logits.argmax(1) == labels)

    params = {
        "dense": {"kernel": jnp.asarray(RNG.standard_normal((5, 4))), "bias": jnp.ones(4)},
        "conv": {"kernel": jnp.asarray(RNG.standard_normal((3, 3, 2, 5)))},  # -> (18, 5)
    }
    mats = [np.asarray(params["conv"]["kernel"]).reshape(18, 5), np.asarray(params["dense"]["kernel"])]
    spec = np.prod([np.linalg.norm(m, 2) for m in mats])
    frob = np.prod([np.linalg.norm(m) for m in mats])
    x = RNG.standard_normal((10, 6))
    l21 = [np.sum(np.linalg.norm(m, axis=0)) for m in mats]
    sn = [np.linalg.norm(m, 2) for m in mats]
    complexity = spec * sum((a / s) ** (2 / 3) for a, s in zip(l21, sn)) ** 1.5

    args = (jnp.asarray(logits), jnp.asarray(labels), params)
    np.testing.assert_allclose(M.normalized_margins(*args, "spectral"), expected / spec, rtol=1e-12)
    np.testing.assert_allclose(M.normalized_margins(*args, "frobenius"), expected / frob, rtol=1e-12)
    np.testing.assert_allclose(
        M.normalized_margins(*args, "spectral_complexity", x=jnp.asarray(x)),
        expected / (complexity * np.linalg.norm(x) / 10),
        rtol=1e-12,
    )
    # With the parameters themselves as reference the (2,1) terms vanish.
    np.testing.assert_allclose(M.spectral_complexity(params, reference=params), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="valid"):
        M.margin_normalizer(params, "nuclear")


def test_homogeneous_normalized_margin_is_scale_invariant():
    x = RNG.standard_normal((20, 3))
    w = RNG.standard_normal(3)
    y = np.sign(x @ w)
    labels01 = (y > 0).astype(np.int32)
    for order in (2, np.inf):
        expected = np.min(y * (x @ w)) / np.linalg.norm(w, order)
        for c in (1.0, 7.0):  # linear model: degree 1
            got = M.homogeneous_normalized_margin(jnp.asarray(x @ (c * w)), jnp.asarray(labels01),
                                                  {"w": jnp.asarray(c * w)}, 1.0, order)
            np.testing.assert_allclose(got, expected, rtol=1e-12)
    # A bias-free two-layer ReLU net is 2-homogeneous: scaling all weights by c scales f by c².
    params = {"w0": jnp.asarray(RNG.standard_normal((3, 4))), "w1": jnp.asarray(RNG.standard_normal(4))}
    scaled = jax.tree_util.tree_map(lambda t: 3.0 * t, params)
    margins = [
        M.homogeneous_normalized_margin(_bias_free_relu(p, jnp.asarray(x)), jnp.asarray(y), p, 2.0)
        for p in (params, scaled)
    ]
    np.testing.assert_allclose(margins[0], margins[1], rtol=1e-12)


def test_norms_and_path_norm_against_explicit_sums():
    params = {
        "b0": jnp.asarray(RNG.standard_normal(4)),
        "b1": jnp.asarray(RNG.standard_normal(2)),
        "w0": jnp.asarray(RNG.standard_normal((3, 4))),
        "w1": jnp.asarray(RNG.standard_normal((4, 2))),
    }
    w0, w1, b0, b1 = (np.asarray(params[k]) for k in ("w0", "w1", "b0", "b1"))

    def apply(p, x):
        return jax.nn.relu(x @ p["w0"] + p["b0"]) @ p["w1"] + p["b1"]

    # Enumerate every input->hidden->output path, and the paths that start at a bias.
    total = 0.0
    for i, j, k in itertools.product(range(3), range(4), range(2)):
        total += (w0[i, j] * w1[j, k]) ** 2
    for j, k in itertools.product(range(4), range(2)):
        total += (b0[j] * w1[j, k]) ** 2
    total += np.sum(b1**2)
    np.testing.assert_allclose(M.path_norm(apply, params, (3,)), np.sqrt(total), rtol=1e-12)

    spectral = [np.linalg.norm(w0, 2), np.linalg.norm(w1, 2)]
    np.testing.assert_allclose(M.layer_spectral_norms(params), spectral, rtol=1e-12)
    frobenius = [np.linalg.norm(w0), np.linalg.norm(w1)]
    np.testing.assert_allclose(M.layer_frobenius_norms(params), frobenius, rtol=1e-12)
    all_flat = np.concatenate([b0, b1, w0.ravel(), w1.ravel()])
    np.testing.assert_allclose(M.frobenius_norm(params), np.linalg.norm(all_flat), rtol=1e-12)

    moved = jax.tree_util.tree_map(lambda t: t + 0.5, params)
    np.testing.assert_allclose(M.distance_from_init(moved, params), 0.5 * np.sqrt(all_flat.size), rtol=1e-12)
    np.testing.assert_allclose(
        M.distance_from_init(moved, params, relative=True),
        0.5 * np.sqrt(all_flat.size) / np.linalg.norm(all_flat), rtol=1e-12,
    )
    assert M.generalization_gap(0.1, 0.4) == pytest.approx(0.3)  # losses: test − train
    assert M.generalization_gap(1.0, 0.8, higher_is_better=True) == pytest.approx(0.2)
