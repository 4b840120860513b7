"""Flax linen models: ``get(name, **kwargs)`` for mlp, linear, cnn1d, cnn2d, resnet, gru.

Every model is called as ``model.apply(variables, x, train=...)``; dropout uses the rng stream
``"dropout"`` and batch norm the collection ``"batch_stats"``.
"""

from dl_course.models.cnn import CNN1D, CNN2D
from dl_course.models.common import ACTIVATIONS
from dl_course.models.conv import CONV_IMPLS, resolve_conv_impl, sliced_conv_general_dilated, with_conv_impl
from dl_course.models.gru import GRU
from dl_course.models.mlp import MLP, Linear
from dl_course.models.random_features import (
    ReluFeatures,
    draw_features,
    feature_count_curve,
    feature_count_sweep,
    relu_features,
)
from dl_course.models.registry import REGISTRY, check, get, register
from dl_course.models.resnet import ResNet

__all__ = [  # the public names, re-exported from the modules above
    "ACTIVATIONS", "CNN1D", "CNN2D", "CONV_IMPLS", "GRU", "Linear", "MLP", "REGISTRY", "ReluFeatures", "ResNet",
    "check", "draw_features", "feature_count_curve", "feature_count_sweep", "get", "register", "relu_features",
    "resolve_conv_impl", "sliced_conv_general_dilated", "with_conv_impl",
]
