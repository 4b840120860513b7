"""The sweep sharded over 4 forced host devices equals the unsharded sweep."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from dl_course.train import sweep
from tests.train.conftest import tiny_config

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from dl_course import data as data_lib
    from dl_course.train import sweep
    from tests.train.conftest import tiny_config
    assert len(jax.devices()) == 4, jax.devices()
    d = data_lib.load("mnist1d", num_train=600)
    d = d.replace(x_test=d.x_test[:200], y_test=d.y_test[:200])
    r = sweep(tiny_config(), seeds=[0, 1, 2], learning_rates=[0.05, 0.2], data=d)
    print(json.dumps({"loss": r.metrics["train_loss"].tolist(), "placement": r.timing["placement"],
                      "w": np.asarray(jax.tree.leaves(r.params)[0]).ravel()[:50].tolist()}))
""")


def test_sharded_sweep_equals_unsharded(small_mnist1d):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    sharded = json.loads(out.stdout.strip().splitlines()[-1])
    # the per-run state was split over the 4 devices: 6 runs padded to 8, two on each device
    assert sharded["placement"] == {"devices": 4, "runs_per_device": [2, 2, 2, 2]}
    ref = sweep(tiny_config(), seeds=[0, 1, 2], learning_rates=[0.05, 0.2], data=small_mnist1d)
    # 6 runs padded to 8 over 4 devices; per-run math is identical up to float32 summation order.
    np.testing.assert_allclose(np.asarray(sharded["loss"]), ref.metrics["train_loss"], rtol=1e-5)
    import jax

    np.testing.assert_allclose(np.asarray(sharded["w"]), np.asarray(jax.tree.leaves(ref.params)[0]).ravel()[:50],
                               rtol=1e-4, atol=1e-6)


SPLIT_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from dl_course.train.placement import over_run_devices
    assert len(jax.devices()) == 2, jax.devices()
    a = np.random.default_rng(0).normal(size=(8, 6, 5)).astype(np.float32)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    vm = jax.vmap(lambda m, v: jnp.tanh(m @ v).sum(0), in_axes=(0, None))
    out = over_run_devices(vm, 1)(a, x)
    assert out.shape == (8, 3) and len(out.sharding.device_set) == 2
    np.testing.assert_allclose(np.asarray(out), np.asarray(jax.jit(vm)(a, x)), rtol=1e-6)
    print("ok")
""")


def test_over_run_devices_splits_the_runs_and_equals_one_device():
    """A vmapped function split over 2 devices by shard_map: each device holds half of the runs
    and the result equals the one-device one."""
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    out = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "XLA_FLAGS": flags}, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__)))))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
