"""MNIST-1D (Greydanus & Kobak, 2020), generated offline with the ``mnist1d`` package.

The generator places one of ten 1D digit templates (length 12) into a 40-sample signal with random
padding, translation, scaling, shear, correlated and iid noise. The package's defaults (5000
examples, 80/20 split, seed 42) give the dataset of the paper, whose reference accuracies are
logistic 32%, MLP 68%, CNN 94%, GRU 91%. We never download: the examples are regenerated and cached
under ``$DL_COURSE_CACHE`` (default ``~/.cache/dl_course``) keyed by the generator arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset

_GENERATOR_KEYS = ("num_samples", "train_split", "template_len", "padding", "scale_coeff",
                   "max_translation", "corr_noise_scale", "iid_noise_scale", "shear_scale",
                   "final_seq_length", "seed")


def cache_dir() -> Path:
    """Directory of generated-data caches: ``$DL_COURSE_CACHE`` or ``~/.cache/dl_course``."""
    return Path(os.environ.get("DL_COURSE_CACHE", Path.home() / ".cache" / "dl_course"))


def generator_args(num_samples: int = 5000, iid_noise_scale: float = 2e-2,
                   corr_noise_scale: float = 0.25, seed: int = 42, **overrides) -> dict:
    """The ``mnist1d`` generator arguments (package defaults unless overridden)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=int(num_samples), iid_noise_scale=float(iid_noise_scale),
                corr_noise_scale=float(corr_noise_scale), seed=int(seed), shuffle_seq=False)
    unknown = set(overrides) - set(_GENERATOR_KEYS)
    if unknown:
        raise ValueError(f"unknown mnist1d generator options {sorted(unknown)}; valid: {sorted(_GENERATOR_KEYS)}")
    args.update(overrides)
    return args


def _generate(args: dict) -> dict:
    from mnist1d.data import make_dataset as mnist1d_make
    from mnist1d.utils import ObjectView

    state = np.random.get_state()  # the package seeds numpy's global RNG; leave it as we found it
    try:
        data = mnist1d_make(ObjectView(dict(args)))
    finally:
        np.random.set_state(state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test", "t")}


def generate_cached(args: dict) -> dict:
    """Generate (or read from the cache) the MNIST-1D arrays for generator ``args``."""
    key = json.dumps({k: args[k] for k in _GENERATOR_KEYS}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d_{digest}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    data = _generate(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    with open(tmp, "wb") as f:
        np.savez(f, **data)
    os.replace(tmp, path)
    return data


def spatial_permutation(length: int = 40, seed: int = 0) -> np.ndarray:
    """The fixed permutation of the ``length`` positions used for 'shuffled' MNIST-1D."""
    return np.random.default_rng(seed).permutation(length)


def load_mnist1d(num_train: int | None = None, num_samples: int = 5000, noise: float | None = None,
                 shuffle: bool = False, shuffle_seed: int = 0, seed: int = 42) -> Dataset:
    """Load MNIST-1D.

    Args:
      num_train: keep only the first ``num_train`` training examples (the generator shuffles
        examples, so this is a class-balanced-in-expectation random subset). None keeps all.
      num_samples: total examples generated (80% train, 20% test; default 5000 -> 4000 / 1000).
      noise: iid noise scale of the generator (default 0.02, the paper's).
      shuffle: apply one fixed permutation to the 40 positions of every example (train and test),
        the "spatially shuffled" variant of the paper that destroys locality.
      shuffle_seed: seed of that permutation.
      seed: generator seed (42 reproduces the paper's data).
    """
    overrides = {} if noise is None else {"iid_noise_scale": noise}
    args = generator_args(num_samples=num_samples, seed=seed, **overrides)
    d = generate_cached(args)
    x, y, xt, yt = d["x"], d["y"], d["x_test"], d["y_test"]
    if num_train is not None:
        if not 0 < num_train <= len(x):
            raise ValueError(f"num_train={num_train} must be in [1, {len(x)}] for mnist1d with "
                             f"num_samples={num_samples}")
        x, y = x[:num_train], y[:num_train]
    perm = None
    if shuffle:
        perm = spatial_permutation(x.shape[-1], shuffle_seed)
        x, xt = x[:, perm], xt[:, perm]
    info = {"generator": {k: args[k] for k in _GENERATOR_KEYS}, "shuffled": bool(shuffle),
            "permutation": None if perm is None else perm.tolist(), "n_train": len(x), "n_test": len(xt),
            "preprocessing": "mnist1d package standardization (global mean 0, std 1)"}
    return make_dataset(x, y, xt, yt, 10, "mnist1d", info)
