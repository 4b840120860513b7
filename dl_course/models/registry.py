"""The model registry behind ``dl_course.models.get``."""

from __future__ import annotations

import dataclasses

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


def get(name: str, **kwargs) -> nn.Module:
    """Instantiate model ``name`` with ``kwargs`` (its dataclass fields)."""
    check(name, **kwargs)
    return REGISTRY[name](**kwargs)
