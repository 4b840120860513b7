"""Shared test set-up, run before JAX is imported by any test module.

* A private data cache per machine (MNIST-1D is generated once, then read).
* XLA's backend optimisation level 0 and its CPU backend's classic LLVM-IR fusion emitters
  (``--xla_cpu_use_fusion_emitters=false``) instead of the MLIR-based ones: test programs are
  tiny, so compilation dominates their time; level 0 roughly halves it and the classic emitters
  cut a further ~35% (tests/train + tests/optim on 2 cores: 108 s -> 70 s, measured 2026-12-07);
  one LLVM module per program instead of XLA's split into parallel codegen units
  (``--xla_cpu_parallel_codegen_split_count=1``) cuts backend compilation a further ~15%
  (tests/train + module 1's studies, one process: 35.7 s -> 29.0-30.9 s, measured 2026-12-08).
  Numerics stay IEEE float32/float64; comparisons between vmapped and per-run programs are made
  within the same setting. Benchmarks and studies use none of these flags.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DL_COURSE_CACHE", os.path.join(tempfile.gettempdir(), "dl_course_test_cache"))
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false",
              "--xla_cpu_parallel_codegen_split_count=1"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
# One CPU device per test process (the CLI would otherwise ask for one per core, depending on test
# order); the sharded path is tested explicitly with 4 forced devices in a subprocess.
os.environ.setdefault("DL_COURSE_CPU_DEVICES", "1")

# One persistent compilation cache per test run, shared by the xdist workers and every subprocess
# (CLI, distributed, notebook kernels inherit the environment): a program compiled by one test is
# read back, not recompiled, by any other test that builds the same program. The directory is made
# by the first process to get here (pytest's controller, whose environment the workers inherit) and
# removed when it exits; a run starts with an empty cache, so CI times are those of a fresh machine.
# Every program is cached, however small (most test programs compile in milliseconds). A cache the
# user set up is used as it is.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="dl_course_test_xla_cache_")
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
    os.environ.update({"JAX_COMPILATION_CACHE_DIR": _cache_dir, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
