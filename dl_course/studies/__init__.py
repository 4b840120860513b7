"""The logic of each study in ``experiments/`` (launchers stay thin: config + one call here), and
the discovery of the launchers themselves (:func:`study_names`, :func:`load_study`), shared by the
CLI, the gallery and the benchmarks.

A study is a file ``experiments/<study>.py`` with ``get_config(variant=None)``, ``VARIANTS``,
``GALLERY`` and ``main(config, run)``. Discovery imports nothing of the package but
:mod:`dl_course.errors`; the study modules here import the library, never each other.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from dl_course.errors import ConfigError


def experiments_dir() -> Path:
    """``$DL_COURSE_EXPERIMENTS``, else ``./experiments``, else the repository's ``experiments/``."""
    env = os.environ.get("DL_COURSE_EXPERIMENTS")
    if env:
        return Path(env)
    cwd = Path.cwd() / "experiments"
    if cwd.is_dir():
        return cwd
    return Path(__file__).resolve().parent.parent.parent / "experiments"


def study_names() -> list[str]:
    """The launchers' names (``experiments/*.py`` without a leading underscore), sorted."""
    d = experiments_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.name.startswith("_")) if d.is_dir() else []


def load_study(name: str):
    """Import ``experiments/<name>.py``; unknown names raise ConfigError listing the valid ones."""
    names = study_names()
    if name not in names:
        found = ", ".join(names) or f"(none found in {experiments_dir()})"
        raise ConfigError(f"unknown study {name!r}; valid: {found}")
    path = experiments_dir() / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"dl_course_experiments.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
