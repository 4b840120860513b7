"""Shared test set-up, run before JAX is imported by any test module.

* A private data cache per machine (MNIST-1D is generated once, then read).
* XLA's backend optimisation level 0: test programs are tiny, so compilation dominates their
  time and level 0 roughly halves it. Numerics stay IEEE float32/float64; comparisons between
  vmapped and per-run programs are made within the same setting. Benchmarks and studies never
  use it.
"""

import os
import tempfile

os.environ.setdefault("DL_COURSE_CACHE", os.path.join(tempfile.gettempdir(), "dl_course_test_cache"))
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
# One CPU device per test process (the CLI would otherwise ask for one per core, depending on test
# order); the sharded path is tested explicitly with 4 forced devices in a subprocess.
os.environ.setdefault("DL_COURSE_CPU_DEVICES", "1")
