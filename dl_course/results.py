"""Run directories, atomic writes, summaries and the conventions recorded with every result.

Layout: ``<workdir>/config.json``, ``<workdir>/summary.json``,
``<workdir>/metrics.npz`` and PNG figures; default workdir ``results/<study>/runs/<timestamp>/``.

Every file is written atomically (temporary file + ``os.replace``) into the run's staging
directory; ``dl_course.rundir.RunDir`` (re-exported here) makes that directory the result in one
rename when the study finishes, so a failed or interrupted run never leaves a half-written result
directory, only a ``.partial`` one that ``--resume`` continues.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dl_course.rundir import RunDir  # noqa: F401  (re-exported: studies write into a RunDir)

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


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None  # JSON has no inf/nan: recorded as null
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        return _jsonable(np.asarray(x).tolist())
    return x


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (numpy scalars/arrays converted, inf/nan -> null)."""
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n").encode())


def write_npz(path: Path, **arrays) -> None:
    """Atomically write a compressed ``.npz``."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def save_figure(path: Path, fig, dpi: int = 120) -> None:
    """Atomically save a matplotlib figure as PNG and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def default_workdir(study: str, root: str | Path = "results") -> Path:
    """``results/<study>/runs/<UTC timestamp>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(root) / study / "runs" / stamp


def run_record(config, study: str, conventions: dict, variant: str | None = None) -> dict:
    """The ``config.json`` content: full config, variant, versions, device, conventions, command."""
    return {"study": study, "variant": variant or "default",
            "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
            "conventions": conventions, "versions": package_versions(), "device": device_info(),
            "command": " ".join(sys.argv),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


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
