"""The model registry behind ``dl_course.models.get``."""

from __future__ import annotations

import dataclasses
import numbers

import flax.linen as nn

from dl_course.models.cnn import CNN1D, CNN2D
from dl_course.models.gru import GRU
from dl_course.models.mlp import MLP, Linear
from dl_course.models.resnet import ResNet

REGISTRY = {"mlp": MLP, "linear": Linear, "cnn1d": CNN1D, "cnn2d": CNN2D, "resnet": ResNet, "gru": GRU}


def register(name: str, cls) -> None:
    """Add a model class (e.g. a score network) to the registry."""
    REGISTRY[name] = cls


def check(name: str, **kwargs) -> None:
    """Raise ValueError for an unknown model name or an unknown keyword, listing the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    fields = {f.name for f in dataclasses.fields(REGISTRY[name])} - {"parent", "name"}
    unknown = set(kwargs) - fields
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for model {name!r}; valid: {', '.join(sorted(fields))}")
    for f in dataclasses.fields(REGISTRY[name]):
        if f.name in kwargs:
            problem = _size_problem(f.name, str(f.type), kwargs[f.name])
            if problem:
                raise ValueError(f"model {name!r}: {problem}")


NON_NEGATIVE_SIZES = ("depth",)  # 0 hidden layers is a model (the read-out alone); 0 units is not


def _size_problem(field: str, annotation: str, value) -> str | None:
    """Why ``value`` cannot be the size ``field`` (an ``int`` or ``Sequence[int]`` field), or None."""
    least = 0 if field in NON_NEGATIVE_SIZES else 1

    def bad(v):
        return isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least

    if annotation == "int" and bad(value):
        return f"{field} must be an integer >= {least}, got {value!r}"
    if annotation.startswith("Sequence[int]") and value is not None:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or any(bad(v) for v in value):
            return f"{field} must be a sequence of integers >= {least}, got {value!r}"
    return None


def get(name: str, **kwargs) -> nn.Module:
    """Instantiate model ``name`` with ``kwargs`` (its dataclass fields)."""
    check(name, **kwargs)
    return REGISTRY[name](**kwargs)
