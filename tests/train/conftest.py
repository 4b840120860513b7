import pytest

from dl_course import data as data_lib
from dl_course.train import default_config


@pytest.fixture(scope="session")
def small_mnist1d():
    """600 MNIST-1D training examples, 200 test examples."""
    d = data_lib.load("mnist1d", num_train=600)
    return d.replace(x_test=d.x_test[:200], y_test=d.y_test[:200])


def tiny_config(**overrides):
    c = default_config()
    c.model_options.width = 32
    c.model_options.depth = 1
    c.optimizer = "momentum"
    c.steps = 40
    c.batch_size = 64
    c.eval_every = 10
    c.chunk_evals = 1
    for k, v in overrides.items():
        c[k] = v
    return c
