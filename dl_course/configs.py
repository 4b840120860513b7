"""Study configurations: the engine's sub-config, the study's own keys, variants and overrides.

A study's ``get_config(variant=None)`` returns a ``ConfigDict`` whose ``train`` entry is the
engine's config (``dl_course.train.default_config()``, its keys at its own top level) and whose
other entries belong to the study (measurement sizes, structural grids, plot choices)::

    config.train.steps          # engine: reaches sweep() / train() and keys the compile cache
    config.lanczos_iters        # study: read by the study's orchestration only

Only ``config.train`` is ever passed to the engine, which rejects keys it does not know, so a
study key can neither change nor recompile the training program.

Variants are chosen *before* command-line overrides (as in big_vision): ``dl-course run
STUDY:VARIANT --config.x=...`` calls ``get_config(VARIANT)`` and then applies the overrides, so
an override always wins. A launcher declares its variants as a dict name -> {dotted key: value}
and calls :func:`select_variant`.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

import ml_collections

from dl_course.errors import ConfigError


def study_config(train: ml_collections.ConfigDict, **study: Any) -> ml_collections.ConfigDict:
    """``ConfigDict(train=train, **study)``; dicts among the study values become ConfigDicts."""
    c = ml_collections.ConfigDict()
    c.train = train
    for k, v in study.items():
        if k == "train":
            raise ConfigError("'train' is the engine's sub-config; name the study key differently")
        c[k] = ml_collections.ConfigDict(v) if isinstance(v, dict) else v
    return c


def _node_and_leaf(config, path: str):
    *parents, leaf = path.split(".")
    node = config
    for i, p in enumerate(parents):
        if not isinstance(node, ml_collections.ConfigDict) or p not in node:
            where = ".".join(parents[:i]) or "the top level"
            keys = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else "(not a dict)"
            raise ConfigError(f"unknown config key {path!r}; valid at {where}: {keys}")
        node = node[p]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        where = ".".join(parents) or "the top level"
        keys = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else "(not a dict)"
        raise ConfigError(f"unknown config key {path!r}; valid at {where}: {keys}")
    return node, leaf


def set_value(config, path: str, value) -> None:
    """Set the existing key ``path`` (dotted, e.g. ``train.model_options.width``) to ``value``.

    Unknown keys raise ``ConfigError`` listing the valid ones at that level; an int given for a
    float key becomes a float; a value of the wrong type raises ``ConfigError``.
    """
    node, leaf = _node_and_leaf(config, path)
    if isinstance(node[leaf], float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, dict):
        value = ml_collections.ConfigDict(value)
    try:
        node[leaf] = value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad value for {path!r}: {str(e).splitlines()[0]}") from None


def select_variant(config, variant: str | None, variants: dict[str, dict[str, Any]]):
    """``config`` with the named variant's values applied (``None`` or ``"default"``: unchanged).

    ``variants`` maps a name (e.g. ``"paper_scale"``) to ``{dotted key: value}``; every key must
    exist in ``config``. Unknown names raise ``ConfigError`` listing the valid ones.
    """
    if variant in (None, "", "default"):
        return config
    if variant not in variants:
        raise ConfigError(f"unknown variant {variant!r}; valid: default, {', '.join(sorted(variants)) or '(none)'}")
    config = copy.deepcopy(config)
    for path, value in variants[variant].items():
        set_value(config, path, copy.deepcopy(value))
    return config


def parse_value(text: str):
    """A command-line value: a Python literal (``3``, ``0.1``, ``[1, 2]``, ``True``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config, overrides: list[str]):
    """Apply ``--config.a.b=value`` arguments in order (values by :func:`parse_value`)."""
    for item in overrides:
        if not item.startswith("--config.") or "=" not in item:
            raise ConfigError(f"bad argument {item!r}; expected --config.KEY=VALUE, --workdir DIR, --resume "
                              "or --overwrite")
        path, value = item[len("--config."):].split("=", 1)
        set_value(config, path, parse_value(value))
    return config


def split_study_spec(spec: str) -> tuple[str, str | None]:
    """``"edge_of_stability:paper_scale"`` -> ``("edge_of_stability", "paper_scale")``."""
    name, _, variant = spec.partition(":")
    return name, (variant or None)
