"""Shifted MNIST-1D test sets and OOD sets."""

import numpy as np
import pytest
from mnist1d.data import get_dataset_args, make_dataset

from dl_course.data import ood_sets
from dl_course.data import shifted_mnist1d as shift
from dl_course.data.dataset import Dataset
from dl_course.data.mnist1d import generator_args


@pytest.fixture(scope="module")
def shifted():
    return shift.shifted_mnist1d(max_examples=100)


def test_level_zero_is_the_standard_test_set(shifted):
    reference = make_dataset(get_dataset_args())
    for name in shift.CORRUPTIONS:
        assert shifted.x[name].shape == (shift.NUM_LEVELS + 1, 100, 40)
        np.testing.assert_array_equal(shifted.x[name][0], reference["x_test"][:100].astype(np.float32))
    np.testing.assert_array_equal(shifted.y, reference["y_test"][:100])


def test_corruption_grows_with_level(shifted):
    for name in shift.CORRUPTIONS:
        x = shifted.x[name].astype(np.float64)
        dist = [np.mean(np.abs(x[level] - x[0])) for level in range(shift.NUM_LEVELS + 1)]
        assert dist[0] == 0.0 and dist[1] > 0.0, name
        if name != "translation":  # a circular shift's distance need not grow monotonically
            assert np.all(np.diff(dist) > 0), (name, dist)
    # Translation: the fraction of rolls outside the training range [0, 48) is δ_L / 48.
    latents = shift.draw_latents()
    for delta in shift.TRANSLATION_OFFSETS:
        out = np.mean((latents.translation + delta) % 72 >= 48)
        assert abs(out - delta / 48) < 0.03


def test_deterministic_and_takes_the_loaders_generator_args(shifted):
    # The generator dict recorded by dl_course.data's MNIST-1D loader (Dataset.info["generator"])
    # reproduces the same sets: deterministic, and level 0 is the loaded test set.
    a = shift.shifted_mnist1d(["scale"], max_examples=5, args=generator_args())
    np.testing.assert_array_equal(a.x["scale"], shifted.x["scale"][:, :5])
    assert a.intensities["scale"][5] == {"scale_coeff": 1.9}
    with pytest.raises(ValueError, match="noise"):
        shift.shifted_mnist1d(["blur"], max_examples=5)


def _toy(num_classes=4, n=40):
    rng = np.random.default_rng(0)
    y_tr, y_te = np.arange(n) % num_classes, np.arange(n // 2) % num_classes
    x_tr = rng.normal(size=(n, 3)).astype(np.float32) + y_tr[:, None]
    x_te = rng.normal(size=(n // 2, 3)).astype(np.float32) + y_te[:, None]
    return Dataset(x_tr, y_tr.astype(np.int32), x_te, y_te.astype(np.int32), num_classes, (3,), "toy", {})


def test_split_classes():
    data = _toy()
    inside, outside = ood_sets.split_classes(data, held_out=[1])
    assert inside.num_classes == 3 and set(inside.y_train) == {0, 1, 2}
    assert inside.info["class_map"] == {0: 0, 2: 1, 3: 2}
    assert set(outside.y_test) == {1} and len(outside.x_test) == 5
    # Inputs travel with their (relabelled) labels.
    np.testing.assert_array_equal(inside.x_train[inside.y_train == 1], data.x_train[data.y_train == 2])
    assert len(inside.x_test) + len(outside.x_test) == len(data.x_test)
    with pytest.raises(ValueError):
        ood_sets.split_classes(data, held_out=[4])


def test_noise_inputs_match_scale():
    ref = np.random.default_rng(1).normal(loc=[0.0, 5.0], scale=[1.0, 0.1], size=(5000, 2))
    g = ood_sets.noise_inputs(ref, 20000, seed=0)
    # Sample moments of 20000 draws: mean within 4·σ/√n, std within ~2%.
    np.testing.assert_allclose(g.mean(0), ref.mean(0), atol=4 * 1.0 / np.sqrt(20000))
    np.testing.assert_allclose(g.std(0), ref.std(0), rtol=0.02)
    u = ood_sets.noise_inputs(ref, 100, seed=0, kind="uniform")
    assert u.shape == (100, 2) and u.min() >= ref.min() and u.max() <= ref.max()
    np.testing.assert_array_equal(ood_sets.noise_inputs(ref, 10, seed=3), ood_sets.noise_inputs(ref, 10, seed=3))
    with pytest.raises(ValueError, match="gaussian"):
        ood_sets.noise_inputs(ref, 10, seed=0, kind="salt")


def test_load_ood_pair_with_a_loader():
    calls = []

    def fake_load(name, **options):
        calls.append((name, options))
        shape = (28, 28, 1) if "mnist" in name else (32, 32, 3)
        return Dataset(None, None, np.zeros((3,) + shape, np.float32), None, 10, shape, name, {})

    inside, ood_x = ood_sets.load_ood_pair("mnist_vs_fashion_mnist", load=fake_load, flatten=False)
    assert inside.name == "tfds:mnist" and ood_x.shape == (3, 28, 28, 1)
    assert calls == [("tfds:mnist", {"flatten": False}), ("tfds:fashion_mnist", {"flatten": False})]
    with pytest.raises(ValueError, match="cifar10_vs_svhn"):
        ood_sets.load_ood_pair("mnist_vs_notmnist", load=fake_load)
