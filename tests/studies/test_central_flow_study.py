"""The central_flow study at tiny size: its effect, and its GPU variant builds."""

import json

import pytest

from dl_course import cli

TINY = ["--config.train.steps=300", "--config.train.model_options.width=16",
        "--config.train.dataset_options.num_train=100", "--config.train.learning_rates=[0.26]",
        "--config.step_check_steps=0", "--config.average_window=41"]


def _summary(path):
    return json.loads((path / "summary.json").read_text())


def test_central_flow_predicts_gd_time_average_and_the_gradient_flow_does_not(tmp_path):
    """A 40-16-16-10 tanh MLP (1098 params) on 100 MNIST-1D examples, η = 0.26: λmax (7.0 at init) reaches
    2/η ≈ 7.7 at step ~70. Measured after that: loss-prediction error 0.014 (central) vs 0.034 (gradient flow),
    relative distance at step 300 ~0.05 vs ~0.1, flow λmax/(2/η) = 1.0000. With Σ switched off
    (``--config.tracking_threshold=100``: the central flow is then the gradient flow) every ratio below is ~1
    and the test fails."""
    out = cli.run_study("central_flow", TINY, workdir=str(tmp_path / "x"))
    s = _summary(out)
    h = s["headline"]
    assert h["step_edge_reached"][0] is not None and h["step_edge_reached"][0] < 200
    err_cf, err_gf = h["loss_prediction_error_central"][0], h["loss_prediction_error_gradient_flow"][0]
    assert err_cf < 0.03 and err_cf < 0.6 * err_gf, (err_cf, err_gf)
    assert h["relative_distance_central"][0] < 0.7 * h["relative_distance_gradient_flow"][0]
    assert h["flow_sharpness_over_threshold"][0] == pytest.approx(1.0, abs=0.02)
    assert h["flow_sharpness_max_deviation"][0] < 0.02
    run = s["runs"][0]
    assert run["gradient_flow_final_sharpness_over_threshold"] > 1.1  # the gradient flow keeps sharpening
    assert run["max_num_active"] >= 1 and not run["diverged"]
    assert (out / "central_flow.png").exists()


def test_paper_scale_variant_builds():
    """``central_flow:paper_scale`` (CIFAR-10 subset, for a GPU) resolves to a valid engine config (an override
    still wins), and its model and whole vmapped central-flow program trace on CIFAR-10-shaped inputs
    (``jax.eval_shape``: nothing computed, no data needed): ~660k parameters, Σ of size 4 × 4."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from dl_course.data.dataset import make_dataset
    from dl_course.measures import central_flow
    from dl_course.train import supervised_task
    from dl_course.train.build import make_model
    from dl_course.train.config import check_keys

    _, config, variant = cli.study_config("central_flow:paper_scale", ["--config.train.steps=100"])
    assert variant == "paper_scale" and config.train.steps == 100
    assert config.train.dataset == "tfds:cifar10" and config.train.dataset_options.num_train == 5000
    assert config.k == 4 and config.train.batch_size == 0 and config.train.optimizer == "sgd"
    check_keys(config.train)
    x = np.zeros((4, 32, 32, 3), np.float32)
    y = np.arange(4) % 10
    data = make_dataset(x, y, x, y, 10, "cifar10-shaped", {})
    task = supervised_task(make_model(config.train, data), config.train.loss, 10)
    etas = jnp.asarray(config.train.learning_rates, jnp.float32)

    def program(key):
        params, state = task.init(key, jnp.asarray(x[:1]))
        w0, unravel = ravel_pytree(params)

        def loss(w):
            return task.loss(unravel(w), state, {"x": jnp.asarray(x), "y": jnp.asarray(y)}, key, False)[0]

        return jax.vmap(lambda eta: central_flow(loss, w0, eta, key=key, num_steps=int(config.train.steps),
                                                 record_every=int(config.record_every), substeps=int(config.substeps),
                                                 k=int(config.k), num_matvecs=int(config.num_matvecs)))(etas)

    out = jax.eval_shape(program, jax.random.key(0))
    num_records = config.train.steps // config.record_every + 1
    assert out.sigma.shape == (3, num_records, 4, 4)
    assert 600_000 < out.weights.shape[-1] < 700_000
