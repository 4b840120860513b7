"""Image datasets from TensorFlow Datasets, read TF-free through ``tfds.data_source``.

Supported: ``tfds:mnist``, ``tfds:fashion_mnist``, ``tfds:cifar10``, ``tfds:svhn_cropped``.
Reading needs only ``tensorflow-datasets`` (ArrayRecord random access); *preparing* a dataset
(downloading and converting it once) needs TensorFlow, installed with the ``tfds`` extra::

    pip install -e ".[tfds]"
    python -c "import tensorflow_datasets as tfds; tfds.builder('cifar10').download_and_prepare(file_format='array_record')"

Nothing is downloaded at load time: a dataset that is not prepared raises one clear error.
Pixels are scaled to [0, 1] (float32, NHWC).
"""

from __future__ import annotations

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset

SUPPORTED = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "svhn_cropped": 10}

PREPARE_HINT = ("pip install -e '.[tfds]' && python -c \"import tensorflow_datasets as tfds; "
                "tfds.builder('{name}'{data_dir}).download_and_prepare(file_format='array_record')\"")


class DataNotPreparedError(RuntimeError):
    """A tfds dataset is not prepared on this machine (and is never downloaded at run time)."""


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
    if name not in SUPPORTED:
        raise ValueError(f"unknown tfds dataset {name!r}; valid: {sorted(SUPPORTED)}")
    import tensorflow_datasets as tfds

    try:
        train = tfds.data_source(name, split="train", data_dir=data_dir, download=False)
        test = tfds.data_source(name, split="test", data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises AssertionError / NotImplementedError / FileNotFoundError variously
        hint = PREPARE_HINT.format(name=name, data_dir="" if data_dir is None else f", data_dir={data_dir!r}")
        raise DataNotPreparedError(
            f"tfds dataset {name!r} is not prepared (as array_record) and is never downloaded at run time; "
            f"prepare it once with: {hint}  [{type(e).__name__}]") from None
    x_tr, y_tr = _to_arrays(train, num_train)
    x_te, y_te = _to_arrays(test, num_test)
    info = {"source": f"tfds:{name}", "scaling": "pixels / 255", "n_train": len(x_tr), "n_test": len(x_te),
            "data_dir": data_dir}
    return make_dataset(x_tr / 255.0, y_tr, x_te / 255.0, y_te, SUPPORTED[name], f"tfds:{name}", info)
