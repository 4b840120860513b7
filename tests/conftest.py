"""Shared test set-up, run before JAX is imported by any test module.

* A private data cache per machine (MNIST-1D is generated once, then read).
* XLA's backend optimisation level 0 and its CPU backend's classic LLVM-IR fusion emitters
  (``--xla_cpu_use_fusion_emitters=false``) instead of the MLIR-based ones: test programs are
  tiny, so compilation dominates their time; level 0 roughly halves it and the classic emitters
  cut a further ~35% (tests/train + tests/optim on 2 cores: 108 s -> 70 s, measured 2026-12-07).
  Numerics stay IEEE float32/float64; comparisons between vmapped and per-run programs are made
  within the same setting. Benchmarks and studies never use either.
"""

import os
import tempfile

os.environ.setdefault("DL_COURSE_CACHE", os.path.join(tempfile.gettempdir(), "dl_course_test_cache"))
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
# One CPU device per test process (the CLI would otherwise ask for one per core, depending on test
# order); the sharded path is tested explicitly with 4 forced devices in a subprocess.
os.environ.setdefault("DL_COURSE_CPU_DEVICES", "1")
