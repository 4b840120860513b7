"""Test sets under distribution shift, and a validation split (Ovadia et al. 2019, "Can you trust
your model's uncertainty? Evaluating predictive uncertainty under dataset shift").

``ShiftedSets`` holds, per corruption, the test set at levels 0..L (level 0 is the clean test set,
checked against the dataset): MNIST-1D re-rendered with stronger nuisances by its own generator
(``dl_course.data.shifted_mnist1d``; Ovadia et al. 2019's protocol of increasing shift), and the 8x8
digits under Gaussian pixel noise and rotation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dl_course.data import train_val_split
from dl_course.errors import ConfigError

DIGITS_CORRUPTIONS = {"noise": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), "rotation": (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)}


class ShiftedSets(NamedTuple):
    """``x[corruption]``: ``[levels, n, *input_shape]`` (level 0 = the clean test set), ``y``: ``[n]``,
    ``intensities[corruption]``: the parameters of each level."""

    x: dict
    y: np.ndarray
    intensities: dict

    @property
    def num_levels(self) -> int:
        """L: shift levels per corruption (level 0, the clean set, not counted)."""
        return next(iter(self.x.values())).shape[0] - 1


def digits_shifted_test_sets(x_test: np.ndarray, y_test: np.ndarray, seed: int = 0) -> ShiftedSets:
    """The digits test set under two corruptions at levels 0..5 (``DIGITS_CORRUPTIONS``):

    * ``noise``: additive Gaussian pixel noise of std σ_L ∈ {0, 0.1, …, 0.5} (pixels in [0, 1]),
      clipped back to [0, 1]; one fixed draw per level (``seed``);
    * ``rotation``: rotation by θ_L ∈ {0°, 10°, …, 50°} about the image centre (bilinear,
      ``scipy.ndimage.rotate``, zeros outside).

    Works for images ``[n, 8, 8, 1]`` and flattened ``[n, 64]`` inputs alike.
    """
    from scipy import ndimage

    shape = x_test.shape[1:]
    images = x_test.reshape(len(x_test), 8, 8).astype(np.float64)
    rng = np.random.default_rng(seed)
    noise = [np.clip(images + s * rng.standard_normal(images.shape), 0.0, 1.0) for s in DIGITS_CORRUPTIONS["noise"]]
    rotation = [ndimage.rotate(images, a, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
                for a in DIGITS_CORRUPTIONS["rotation"]]
    stack = lambda levels: np.stack([lv.reshape((len(x_test),) + shape) for lv in levels]).astype(np.float32)
    return ShiftedSets(x={"noise": stack(noise), "rotation": stack(rotation)}, y=np.asarray(y_test, np.int32),
                       intensities={"noise": [{"pixel_noise_std": s} for s in DIGITS_CORRUPTIONS["noise"]],
                                    "rotation": [{"degrees": a} for a in DIGITS_CORRUPTIONS["rotation"]]})


def shifted_test_sets(data, max_examples: int = 0, corruptions=()) -> ShiftedSets:
    """Shifted test sets of ``data`` (the first ``max_examples`` test examples, 0 = all; the named
    ``corruptions``, empty = all): ``dl_course.data.shifted_mnist1d`` for MNIST-1D (4 corruptions x 5
    levels, re-rendered from the dataset's own generator arguments), ``digits_shifted_test_sets``
    for digits. Level 0 is checked to equal ``data.x_test``."""
    n = max_examples or data.n_test
    if data.name == "mnist1d":
        from dl_course.data import shifted_mnist1d as shift

        if set(corruptions) - set(shift.CORRUPTIONS):
            raise ConfigError(f"unknown mnist1d corruptions {sorted(set(corruptions) - set(shift.CORRUPTIONS))}; "
                              f"valid: {', '.join(shift.CORRUPTIONS)}")
        sets = shift.shifted_mnist1d(corruptions=tuple(corruptions) or shift.CORRUPTIONS, max_examples=n,
                                     args=dict(data.info["generator"]))
        perm = data.info.get("permutation")
        x = {c: (v[..., np.asarray(perm)] if perm is not None else v) for c, v in sets.x.items()}
        sets = ShiftedSets(x=x, y=sets.y, intensities=sets.intensities)
    elif data.name == "digits":
        sets = digits_shifted_test_sets(data.x_test[:n], data.y_test[:n])
        unknown = set(corruptions) - set(sets.x)
        if unknown:
            raise ConfigError(f"unknown digits corruptions {sorted(unknown)}; valid: {', '.join(sets.x)}")
        keep = list(corruptions) or list(sets.x)
        sets = sets._replace(x={c: sets.x[c] for c in keep}, intensities={c: sets.intensities[c] for c in keep})
    else:
        raise ConfigError(f"no shifted test sets for dataset {data.name!r}; valid: mnist1d, digits")
    for c, v in sets.x.items():
        if not (np.array_equal(sets.y, data.y_test[:n]) and np.allclose(v[0], data.x_test[:n], atol=1e-5)):
            raise RuntimeError(f"shift level 0 of {c!r} is not the dataset's test set")
    return sets


def split_validation(data, val_fraction: float, seed: int = 0):
    """``(train data without the validation examples, x_val, y_val)`` via ``train_val_split``."""
    tr, va = train_val_split(data.n_train, val_fraction, seed)
    reduced = data.replace(x_train=data.x_train[tr], y_train=data.y_train[tr],
                           info={"n_train": len(tr), "validation": {"fraction": val_fraction, "seed": seed,
                                                                    "n_val": len(va)}})
    return reduced, data.x_train[va], data.y_train[va]
