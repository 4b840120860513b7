"""What a run records: its config record, the summary rows and headline, the conventions,
package versions and device.

Layout: ``<workdir>/config.json``, ``<workdir>/summary.json``,
``<workdir>/metrics.npz`` and PNG figures; default workdir ``results/<study>/runs/<timestamp>/``.

The files are written through :mod:`dl_course.rundir` (atomic writers into the run's staging
directory, which ``RunDir.commit`` makes the result in one rename, so a failed or interrupted run
never leaves a half-written result directory, only a ``.partial`` one that ``--resume``
continues). ``RunDir`` and the writers are re-exported here, where the studies reach them.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from typing import Any

import numpy as np

from dl_course.rundir import RunDir, atomic_write_bytes, default_workdir, save_figure, write_json, write_npz

__all__ = ["PACKAGES", "RunDir", "atomic_write_bytes", "default_workdir", "device_info", "package_versions",
           "run_record", "save_figure", "sweep_runs", "write_json", "write_npz", "write_results"]

PACKAGES = ("dl_course", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "ml_collections", "orbax-checkpoint",
            "matplotlib", "scikit-learn", "mnist1d")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages results depend on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    """The JAX backend and devices the run used."""
    import jax

    devs = jax.devices()
    return {"backend": jax.default_backend(), "device_kind": devs[0].device_kind, "num_devices": len(devs),
            "process_count": jax.process_count(), "platform": platform.platform()}


def run_record(config, study: str, conventions: dict, variant: str | None = None) -> dict:
    """The ``config.json`` content: full config, variant, versions, device, conventions, command."""
    return {"study": study, "variant": variant or "default",
            "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
            "conventions": conventions, "versions": package_versions(), "device": device_info(),
            "command": " ".join(sys.argv),
            "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def sweep_runs(result, extra: dict[str, np.ndarray] | None = None, point: int = -1) -> list[dict]:
    """One summary row per run: its grid point, ``diverged`` and the final value of every metric
    (scalar metrics only) plus ``extra`` per-run arrays."""
    rows = []
    for i, g in enumerate(result.grid):
        row = dict(g)
        row["diverged"] = bool(result.diverged[i])
        if result.converged is not None and result.conventions.get("target_stop", "off") != "off":
            row["converged"] = bool(result.converged[i])
            row["steps_to_target"] = int(result.steps_to_target[i])
        for k, v in result.metrics.items():
            if v.ndim == 2:
                row[f"final_{k}"] = float(v[i, point])
        for k, v in (extra or {}).items():
            row[k] = v[i]
        rows.append(row)
    return rows


def write_results(run: RunDir, config, study: str, conventions: dict, runs: list[dict], headline: dict,
                  metrics: dict[str, np.ndarray]) -> None:
    """Write ``config.json``, ``summary.json`` (runs, conventions, headline) and ``metrics.npz``."""
    run.json("config.json", run_record(config, study, conventions, getattr(run, "variant", None)))
    run.json("summary.json", {"study": study, "runs": runs, "headline": headline, "conventions": conventions,
                              "versions": package_versions(), "device": device_info()})
    run.npz("metrics.npz", **metrics)
