"""Score networks: the shape contract, per-example time conditioning, fixed Fourier features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import SCORE_NETS, GaussianFourierProjection, ScoreMLP, ScoreUNet, get_score_net


def test_score_nets_return_arrays_shaped_like_x_and_condition_on_each_time(numpy_init):
    """score_fn(x, t) has x's shape for flat 2D, MNIST-1D-like (40) and image (8x8x1; 28x28x1 checked
    abstractly with eval_shape) inputs; changing one example's time changes only that example's
    output; and the Fourier frequencies are constants, not parameters."""
    cases = [
        (ScoreMLP(hidden_dims=(32, 32), embed_dim=16), (5, 2)),
        (ScoreMLP(hidden_dims=(32,), embed_dim=16), (5, 40)),
        (ScoreUNet(channels=(8, 16), embed_dim=16, num_groups=4), (5, 8, 8, 1)),
    ]
    t = jnp.linspace(0.1, 0.9, 5)
    t_moved = t.at[2].set(0.123)

    inputs = [jnp.asarray(np.random.default_rng(i).normal(size=shape), jnp.float32)
              for i, (_, shape) in enumerate(cases)]
    params = [numpy_init(model, x, t) for (model, _), x in zip(cases, inputs)]

    @jax.jit
    def run(params):
        # both time vectors in one batch: examples are processed independently
        return [model.apply({"params": p}, jnp.concatenate([x, x]), jnp.concatenate([t, t_moved]))
                for (model, _), p, x in zip(cases, params, inputs)]

    for (model, shape), p, out in zip(cases, params, run(params)):
        y, y_moved = out[:5], out[5:]
        assert y.shape == shape and y.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(y)))
        changed = np.any(np.asarray(y != y_moved).reshape(shape[0], -1), axis=1)
        np.testing.assert_array_equal(changed, [False, False, True, False, False])
        names = str(jax.tree_util.tree_structure(p))
        assert "TimeEmbedding" in names and "GaussianFourierProjection" not in names  # no Fourier parameters

    mnist_unet = ScoreUNet(channels=(8, 16, 16), embed_dim=16, num_groups=4)
    x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
    t3 = jax.ShapeDtypeStruct((3,), jnp.float32)
    params = jax.eval_shape(lambda x, t: mnist_unet.init(jax.random.key(0), x, t), x, t3)
    out = jax.eval_shape(mnist_unet.apply, params, x, t3)
    assert out.shape == (3, 28, 28, 1) and out.dtype == jnp.float32


def test_fourier_embedding_is_deterministic_and_bounded():
    emb = GaussianFourierProjection(embed_dim=16, scale=16.0)
    t = jnp.array([0.0, 0.25, 1.0])
    a = emb.apply({}, t)
    b = GaussianFourierProjection(embed_dim=16, scale=16.0).apply({}, t)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 16)
    np.testing.assert_allclose(jnp.sum(a ** 2, -1), 8.0, rtol=1e-5)  # sin^2 + cos^2 per frequency
    np.testing.assert_allclose(a[0], jnp.concatenate([jnp.zeros(8), jnp.ones(8)]), atol=1e-7)


def test_unet_input_checks_and_registry():
    with pytest.raises(ValueError, match="not divisible by 4"):
        ScoreUNet(channels=(8, 16, 16)).init(jax.random.key(0), jnp.zeros((1, 6, 6, 1)), jnp.zeros((1,)))
    with pytest.raises(ValueError, match=r"\[batch, H, W, C\]"):
        ScoreUNet().init(jax.random.key(0), jnp.zeros((1, 8, 8)), jnp.zeros((1,)))
    assert isinstance(get_score_net("score_unet", channels=(8,)), ScoreUNet)
    with pytest.raises(ValueError, match=", ".join(sorted(SCORE_NETS))):
        get_score_net("ncsnpp")
