"""The dataset registry behind ``dl_course.data.load``."""

from __future__ import annotations

from dl_course.data.dataset import Dataset
from dl_course.data.digits import load_digits
from dl_course.data.mnist1d import load_mnist1d
from dl_course.data.synthetic import load_gaussian_mixture, load_moons, load_separable, load_swiss_roll, load_teacher

REGISTRY = {
    "mnist1d": load_mnist1d,
    "digits": load_digits,
    "separable": load_separable,
    "moons": load_moons,
    "teacher": load_teacher,
    "gaussian_mixture": load_gaussian_mixture,
    "swiss_roll": load_swiss_roll,
}


def names() -> list[str]:
    """All valid dataset names (``tfds:<name>`` for each supported tfds dataset)."""
    from dl_course.data.tfds_source import SUPPORTED

    return sorted(REGISTRY) + [f"tfds:{n}" for n in sorted(SUPPORTED)]


def check_name(name: str) -> None:
    """Raise ValueError listing the valid names if ``name`` is not a dataset."""
    if name not in names():
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(names())}")


def load(name: str, **options) -> Dataset:
    """Load dataset ``name`` with loader ``options`` (see each loader's docstring)."""
    check_name(name)
    if name.startswith("tfds:"):
        from dl_course.data.tfds_source import load_tfds

        return load_tfds(name.split(":", 1)[1], **options)
    return REGISTRY[name](**options)
