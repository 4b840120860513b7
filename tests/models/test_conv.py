"""The sliced convolution (dl_course.models.conv) computes XLA's convolution, for every conv model
and inside the engine; float32, so tolerances are 1e-5 relative (1e-4 for gradients through
several layers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from dl_course import data as data_lib
from dl_course import models
from dl_course.models import conv
from dl_course.train import ConfigError, supervised_task, sweep
from tests.train.conftest import tiny_config


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((3, 41, 2), (5,), (2,), "SAME"), ((2, 8, 8, 3), (3, 3), (2, 2), "SAME"),
    ((2, 6, 7, 2), (3, 2), (1, 2), [(2, 1), (0, 2)])])
def test_sliced_conv_equals_xla_conv_and_its_gradient(shape, kernel, strides, padding):
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, kernel + (shape[-1], 4))
    nd = len(kernel)
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NWC", "WIO", "NWC") if nd == 1 else ("NHWC", "HWIO", "NHWC"))

    def value_and_grads(conv):
        def f(x, w):
            y = conv(x, w, strides, padding, dimension_numbers=dn)
            return jnp.sum(jnp.sin(y)), y

        return jax.jit(jax.value_and_grad(f, (0, 1), has_aux=True))(x, w)

    (_, ref), g_ref = value_and_grads(lax.conv_general_dilated)
    (_, out), g_out = value_and_grads(conv.sliced_conv_general_dilated)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_out, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,shape,options", [("cnn1d", (4, 40), {"channels": (3, 3, 3)}),
                                                ("resnet", (4, 8, 8, 1), {"stage_channels": (3,)})])
def test_models_with_sliced_conv_equal_xla(name, shape, options):
    x = jax.random.normal(jax.random.PRNGKey(1), shape)
    y = jnp.arange(4) % 10
    task = supervised_task(models.get(name, num_outputs=10, **options), "cross_entropy", 10)
    xla = conv.with_conv_impl(task, "xla")
    sliced = conv.with_conv_impl(task, "sliced")
    params, ms = jax.jit(xla.init)(jax.random.PRNGKey(2), x[:1])
    params_s, _ = jax.jit(sliced.init)(jax.random.PRNGKey(2), x[:1])
    jax.tree.map(np.testing.assert_array_equal, params, params_s)  # same parameter tree and values
    batch = {"x": x, "y": y}
    train = bool(ms)  # batch-norm models: train mode (batch statistics); others: eval mode

    def outputs_and_grads(task):
        def f(p):
            return task.loss(p, ms, batch, jax.random.PRNGKey(3), train)[0], task.apply(p, ms, x)

        return jax.jit(jax.value_and_grad(f, has_aux=True))(params)

    (_, out_a), ga = outputs_and_grads(xla)
    (_, out_b), gb = outputs_and_grads(sliced)
    np.testing.assert_allclose(out_b, out_a, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), ga, gb)


def test_engine_conv_impl_sliced_equals_xla_and_bad_values_fail_early():
    """``config.conv_impl`` reaches the engine's supervised task: a cnn1d sweep trained with
    sliced convolutions follows the XLA-convolution sweep (float32 rounding only, through 20
    steps of momentum SGD), and an unknown value is one ConfigError line before compiling."""
    data = data_lib.load("mnist1d", num_train=200)
    config = tiny_config(model="cnn1d", steps=20, batch_size=50, seeds=[0], learning_rates=[0.05])
    config.model_options = {"channels": (4, 4, 4)}
    results = {}
    for impl in ("xla", "sliced"):
        config.conv_impl = impl
        results[impl] = sweep(config, data=data)
    np.testing.assert_allclose(results["sliced"].metrics["train_loss"], results["xla"].metrics["train_loss"], rtol=1e-4)
    assert results["sliced"].conventions["conv_impl"] == "sliced"
    config.conv_impl = "fft"
    with pytest.raises(ConfigError, match="valid: auto, sliced, xla"):
        sweep(config, data=data)
