"""Datasets: shapes, determinism, the shuffled variant, splits, transforms, tfds via mock data."""

import numpy as np
import pytest

from dl_course import data as data_lib


def test_mnist1d_default_matches_the_paper_split_and_is_cached():
    d = data_lib.load("mnist1d")
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40) and d.num_classes == 10
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    again = data_lib.load("mnist1d")
    np.testing.assert_array_equal(d.x_train, again.x_train)
    assert abs(np.concatenate([d.x_train, d.x_test]).std() - 1.0) < 1e-3  # package standardization


def test_mnist1d_shuffle_applies_one_fixed_permutation_to_train_and_test():
    d = data_lib.load("mnist1d")
    s = data_lib.load("mnist1d", shuffle=True)
    perm = np.asarray(s.info["permutation"])
    assert sorted(perm.tolist()) == list(range(40)) and not np.array_equal(perm, np.arange(40))
    np.testing.assert_array_equal(s.x_train, d.x_train[:, perm])
    np.testing.assert_array_equal(s.x_test, d.x_test[:, perm])
    assert data_lib.load("mnist1d", num_train=100).n_train == 100


def test_digits_split_is_fixed_and_stratified():
    d = data_lib.load("digits")
    assert d.x_train.shape[1:] == (8, 8, 1) and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert d.n_train + d.n_test == 1797
    frac = np.bincount(d.y_test, minlength=10) / np.bincount(d.y_train, minlength=10)
    assert np.all(np.abs(frac - 1 / 3) < 0.03)
    np.testing.assert_array_equal(d.y_test, data_lib.load("digits").y_test)


def test_separable_has_its_stated_margin_through_the_origin():
    d = data_lib.load("separable", n_train=200, dim=5, margin=0.3, seed=1)
    s = 2 * d.y_train - 1
    assert np.min(s * d.x_train[:, 0]) >= 0.3 - 1e-6
    assert d.num_classes == 2 and d.x_train.shape == (200, 5)


@pytest.mark.parametrize("name", ["moons", "teacher", "gaussian_mixture", "swiss_roll"])
def test_synthetic_sets_load(name):
    d = data_lib.load(name)
    assert d.n_train > 0 and d.x_train.shape[1:] == d.x_test.shape[1:]
    assert np.all(np.isfinite(d.x_train))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*mnist1d.*tfds:cifar10"):
        data_lib.load("mnist2d")


def test_random_labels_change_exactly_the_requested_fraction():
    y = np.arange(1000) % 10
    y2 = data_lib.randomize_labels(y, 0.3, 10, seed=0, exclude_true=True)
    assert (y2 != y).sum() == 300 and y2.min() >= 0 and y2.max() <= 9
    y3 = data_lib.randomize_labels(y, 0.3, 10, seed=0)
    assert 300 * 0.8 < (y3 != y).sum() <= 300  # uniform labels keep the old one w.p. 1/10


def test_kfold_partitions_the_data_exactly():
    folds = data_lib.kfold_indices(103, 5, seed=0)
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(103))
    for tr, va in folds:
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 103
    assert {len(v) for _, v in folds} <= {20, 21}


def test_subsample_per_class_and_standardize():
    d = data_lib.subsample_per_class(data_lib.load("digits"), 5, seed=0)
    assert np.all(np.bincount(d.y_train) == 5)
    s = data_lib.standardize(data_lib.load("moons"))
    assert abs(s.x_train.mean()) < 1e-5 and abs(s.x_train.std() - 1) < 1e-4


def test_tfds_reads_mock_data_without_tensorflow():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        d = data_lib.load("tfds:mnist")
    assert d.x_train.shape == (12, 28, 28, 1) and d.x_train.dtype == np.float32
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0 and d.num_classes == 10


def test_tfds_not_prepared_gives_one_line_with_the_prepare_command(tmp_path):
    from dl_course.data.tfds_source import DataNotPreparedError

    with pytest.raises(DataNotPreparedError) as e:
        data_lib.load("tfds:cifar10", data_dir=str(tmp_path))
    msg = str(e.value)
    assert isinstance(e.value, ValueError)  # bad input: the CLI prints one line and exits with 2
    assert "\n" not in msg and f"prepare it once with: dl-course prepare tfds:cifar10 --data-dir {tmp_path}" in msg, msg


def test_prepare_command():
    from dl_course.data.tfds_source import prepare_command

    assert prepare_command("cifar10") == "dl-course prepare tfds:cifar10"
    assert prepare_command("mnist", "/data/my tfds") == "dl-course prepare tfds:mnist --data-dir '/data/my tfds'"


def test_prepare_without_tensorflow_names_the_extra(monkeypatch):
    from dl_course.data import tfds_source

    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: False)
    with pytest.raises(tfds_source.MissingTensorFlowError) as e:
        tfds_source.prepare("mnist")
    assert "\n" not in str(e.value) and 'pip install -e ".[tfds]"' in str(e.value)
    with pytest.raises(ValueError, match="valid: .*cifar10"):
        tfds_source.prepare("imagenet2012")


def test_prepare_converts_to_array_record_then_loads(monkeypatch, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from dl_course.data import tfds_source

    calls = []

    class Builder:  # stands in for tfds's builder: records what prepare asks for
        def __init__(self, name, data_dir):
            calls.append(("builder", name, data_dir))
            self.data_dir = f"{data_dir}/{name}/3.0.1"

        def download_and_prepare(self, **kwargs):
            calls.append(("download_and_prepare", kwargs))

    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: True)
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: Builder(name, data_dir))
    assert tfds_source.prepare("cifar10", data_dir=str(tmp_path)) == tmp_path / "cifar10" / "3.0.1"
    assert calls == [("builder", "cifar10", str(tmp_path)), ("download_and_prepare", {"file_format": "array_record"})]
    monkeypatch.undo()
    # With tfds's mock data (its download_and_prepare is a no-op and its data source serves fake
    # examples), prepare then load is the user's flow end to end, without network or TensorFlow.
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: True)
    with tfds.testing.mock_data(num_examples=5):
        tfds_source.prepare("fashion_mnist")
        d = data_lib.load("tfds:fashion_mnist")
    assert d.x_train.shape == (5, 28, 28, 1) and d.num_classes == 10
