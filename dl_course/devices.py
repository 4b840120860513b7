"""Device set-up: on a CPU-only host, expose one JAX device per core so a sweep's run axis is
sharded over all cores (XLA's CPU backend otherwise runs a vmapped program on one device, and
small per-run matmuls leave the other cores idle)."""

from __future__ import annotations

import os


def use_all_cpu_cores(num: int | None = None) -> int:
    """Ask JAX for ``num`` (default: ``os.cpu_count()``) CPU devices; returns the number asked.

    Must run before JAX initialises its backends; it is a no-op when ``XLA_FLAGS`` already forces
    a device count, when ``DL_COURSE_CPU_DEVICES`` says otherwise, or when backends are already up
    (it never changes the devices of a running program). Accelerators are unaffected: the setting
    only concerns the CPU platform.
    """
    import jax

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 0
    num = int(os.environ.get("DL_COURSE_CPU_DEVICES", num or os.cpu_count() or 1))
    try:
        jax.config.update("jax_num_cpu_devices", num)
    except RuntimeError:  # backends already initialised
        return 0
    return num
