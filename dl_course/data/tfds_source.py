"""Image datasets from TensorFlow Datasets, read TF-free through ``tfds.data_source``.

Supported: ``tfds:mnist``, ``tfds:fashion_mnist``, ``tfds:cifar10``, ``tfds:svhn_cropped``.
Reading needs only ``tensorflow-datasets`` (ArrayRecord random access); *preparing* a dataset
(downloading and converting it once, :func:`prepare`) needs TensorFlow, installed with the ``tfds``
extra::

    pip install -e ".[tfds]"
    dl-course prepare tfds:cifar10      # = dl_course.data.tfds_source.prepare("cifar10")

Nothing is downloaded at load time: a dataset that is not prepared raises
:class:`DataNotPreparedError` (a ``ValueError``), one line with the ``dl-course prepare`` command.
Pixels are scaled to [0, 1] (float32, NHWC).
"""

from __future__ import annotations

import importlib.util
import logging
import shlex
from pathlib import Path

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset
from dl_course.errors import quiet_logger

SUPPORTED = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "svhn_cropped": 10}

INSTALL_HINT = 'pip install -e ".[tfds]"'


class DataNotPreparedError(ValueError):
    """A tfds dataset is not prepared on this machine (and is never downloaded at run time)."""


class MissingTensorFlowError(ModuleNotFoundError):
    """Preparing a tfds dataset needs TensorFlow (the ``tfds`` extra), which is not installed."""


def prepare_command(name: str, data_dir: str | None = None) -> str:
    """The shell command that prepares tfds dataset ``name``: ``dl-course prepare tfds:NAME``
    (with ``--data-dir DIR`` for a data directory other than tfds's default)."""
    return f"dl-course prepare tfds:{name}" + ("" if data_dir is None else f" --data-dir {shlex.quote(str(data_dir))}")


def _check_name(name: str) -> None:
    if name not in SUPPORTED:
        raise ValueError(f"unknown tfds dataset {name!r}; valid: {sorted(SUPPORTED)}")


def _tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def prepare(name: str, data_dir: str | None = None) -> Path:
    """Download tfds dataset ``name`` (one of ``SUPPORTED``) and convert it once to ArrayRecord files,
    the format :func:`load_tfds` reads without TensorFlow: ``tfds.builder(name, data_dir=data_dir)
    .download_and_prepare(file_format="array_record")``. A dataset already prepared is left as it
    is. Needs network access and TensorFlow (``pip install -e ".[tfds]"``; raises
    :class:`MissingTensorFlowError` otherwise). Returns the prepared dataset's directory.
    """
    _check_name(name)
    if not _tensorflow_available():
        raise MissingTensorFlowError(f"preparing tfds:{name} needs TensorFlow, which is not installed: {INSTALL_HINT}")
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(file_format="array_record")
    return Path(builder.data_dir)


def _to_arrays(source, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(source) if limit is None else min(limit, len(source))
    images = np.empty((n,) + np.asarray(source[0]["image"]).shape, dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32)
    for i in range(n):
        ex = source[i]
        images[i] = ex["image"]
        labels[i] = ex["label"]
    return images, labels


def load_tfds(name: str, data_dir: str | None = None, num_train: int | None = None,
              num_test: int | None = None) -> Dataset:
    """Load a prepared tfds image dataset into memory (train and test splits).

    Args:
      name: one of ``SUPPORTED``.
      data_dir: tfds data directory (default: tfds's own, ``~/tensorflow_datasets``).
      num_train, num_test: keep only the first examples of each split (None keeps all).
    """
    _check_name(name)
    import tensorflow_datasets as tfds

    try:
        # tfds logs a warning per missing folder before raising; the one-line error below says it all
        with quiet_logger("absl", logging.ERROR):
            train = tfds.data_source(name, split="train", data_dir=data_dir, download=False)
            test = tfds.data_source(name, split="test", data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises AssertionError / NotImplementedError / FileNotFoundError variously
        where = "" if data_dir is None else f" in {data_dir}"
        raise DataNotPreparedError(
            f"tfds dataset {name!r} is not prepared (as array_record){where} and is never downloaded at run time; "
            f"prepare it once with: {prepare_command(name, data_dir)} (tfds: {type(e).__name__})") from None
    x_tr, y_tr = _to_arrays(train, num_train)
    x_te, y_te = _to_arrays(test, num_test)
    info = {"source": f"tfds:{name}", "scaling": "pixels / 255", "n_train": len(x_tr), "n_test": len(x_te),
            "data_dir": data_dir}
    return make_dataset(x_tr / 255.0, y_tr, x_te / 255.0, y_te, SUPPORTED[name], f"tfds:{name}", info)
