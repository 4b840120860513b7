"""Augmentations: shapes, dtypes and labels preserved; every output is exactly one admissible
transformation of its input; strengths may be traced; determinism in the key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.data import augment


@pytest.fixture(scope="module")
def signals():
    return jnp.asarray(np.random.default_rng(0).normal(size=(64, 40)).astype(np.float32))


@pytest.fixture(scope="module")
def images():
    x = np.zeros((32, 8, 8, 1), np.float32)
    x[:, 2:6, 2:6, 0] = np.random.default_rng(1).uniform(0.1, 1.0, size=(32, 4, 4))  # zero border of 2
    return jnp.asarray(x)


def test_translate_1d_is_a_circular_shift_within_range(signals):
    m = 3
    out = np.asarray(augment.random_translate_1d(jax.random.PRNGKey(0), signals, m))
    x = np.asarray(signals)
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = []
    for xi, oi in zip(x, out):
        hits = [s for s in range(-m, m + 1) if np.array_equal(np.roll(xi, s), oi)]
        assert len(hits) == 1
        shifts.append(hits[0])
    assert set(shifts) == set(range(-m, m + 1))  # 64 draws from 7 values: all appear (P(miss) < 1e-3)


def test_translate_1d_channels_and_zero_shift(signals):
    x3 = jnp.stack([signals, -signals], -1)  # [n, L, 2]: both channels shifted together
    out = augment.random_translate_1d(jax.random.PRNGKey(1), x3, 5)
    np.testing.assert_array_equal(np.asarray(out[..., 1]), -np.asarray(out[..., 0]))
    np.testing.assert_array_equal(np.asarray(augment.random_translate_1d(jax.random.PRNGKey(1), signals, 0)),
                                  np.asarray(signals))


def test_gaussian_noise_statistics(signals):
    x = jnp.zeros((200, 40))
    noise = np.asarray(augment.gaussian_noise(jax.random.PRNGKey(2), x, 0.5))
    # 8000 N(0, 0.25) draws: std of the sample std ~ 0.5/sqrt(2*8000) = 0.004; 5 sigma = 0.02
    assert abs(noise.std() - 0.5) < 0.02 and abs(noise.mean()) < 0.03
    np.testing.assert_array_equal(np.asarray(augment.gaussian_noise(jax.random.PRNGKey(2), signals, 0.0)),
                                  np.asarray(signals))


def _shift2d(img, sy, sx):
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for r in range(h):
        for c in range(w):
            if 0 <= r - sy < h and 0 <= c - sx < w:
                out[r, c] = img[r - sy, c - sx]
    return out


def test_shift_2d_is_a_zero_filled_shift_within_range(images):
    m = 2
    out = np.asarray(augment.random_shift_2d(jax.random.PRNGKey(3), images, m))
    x = np.asarray(images)
    assert out.shape == x.shape and out.dtype == x.dtype
    for xi, oi in zip(x, out):
        hits = [(sy, sx) for sy in range(-m, m + 1) for sx in range(-m, m + 1)
                if np.array_equal(_shift2d(xi, sy, sx), oi)]
        assert len(hits) == 1
    # the content sits inside a zero border of width m: a shift by <= m loses no pixel
    np.testing.assert_allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(augment.random_shift_2d(jax.random.PRNGKey(3), images, 0)), x)


def test_flip_is_identity_or_mirror(images):
    out = np.asarray(augment.random_flip_lr(jax.random.PRNGKey(4), images, 0.5))
    x = np.asarray(images)
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    assert all(a or b for a, b in zip(same, mirrored)) and any(mirrored) and any(same)


def test_strengths_may_be_traced_and_key_determines_output(signals, images):
    f = jax.jit(lambda k, x, m, s: augment.mnist1d_augmentation(m, s)(k, x))
    a = f(jax.random.PRNGKey(5), signals, jnp.int32(4), jnp.float32(0.1))
    b = f(jax.random.PRNGKey(5), signals, jnp.int32(4), jnp.float32(0.1))
    c = f(jax.random.PRNGKey(6), signals, jnp.int32(4), jnp.float32(0.1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # vmapped over noise scales: one program, scale 0 and max_shift 0 give the identity
    scales = jnp.array([0.0, 0.1, 1.0])
    outs = jax.vmap(lambda s: f(jax.random.PRNGKey(5), signals, jnp.int32(0), s))(scales)
    np.testing.assert_array_equal(np.asarray(outs[0]), np.asarray(signals))
    g = jax.jit(lambda k, x, m: augment.image_augmentation(m, flip=True)(k, x))
    assert g(jax.random.PRNGKey(0), images, jnp.int32(1)).shape == images.shape


def test_augmented_loss_preserves_labels_and_shapes_and_only_in_train_mode(signals):
    seen = {}

    def loss(params, model_state, batch, key, train):
        seen[train] = batch
        return jnp.sum(batch["x"]), (model_state, {})

    y = jnp.arange(64) % 10
    wrapped = augment.augmented_loss(loss, augment.mnist1d_augmentation(4, 0.1))
    wrapped(None, {}, {"x": signals, "y": y}, jax.random.PRNGKey(0), True)
    wrapped(None, {}, {"x": signals, "y": y}, jax.random.PRNGKey(0), False)
    assert seen[True]["x"].shape == signals.shape and not np.array_equal(np.asarray(seen[True]["x"]),
                                                                         np.asarray(signals))
    np.testing.assert_array_equal(np.asarray(seen[True]["y"]), np.asarray(y))
    np.testing.assert_array_equal(np.asarray(seen[False]["x"]), np.asarray(signals))


def test_unknown_kind_lists_valid():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'; valid: image, mnist1d"):
        augment.make("rotate")
    assert augment.kind_for((40,)) == "mnist1d" and augment.kind_for((8, 8, 1)) == "image"
