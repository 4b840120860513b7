"""Shared test set-up, run before JAX is imported by any test module.

* A private data cache per machine (MNIST-1D is generated once, then read).
* XLA's backend optimisation level 0 and its CPU backend's classic LLVM-IR fusion emitters
  (``--xla_cpu_use_fusion_emitters=false``) instead of the MLIR-based ones: test programs are
  tiny, so compilation dominates their time; level 0 roughly halves it and the classic emitters
  cut a further ~35% (tests/train + tests/optim on 2 cores: 108 s -> 70 s, measured 2026-12-07).
  Numerics stay IEEE float32/float64; comparisons between vmapped and per-run programs are made
  within the same setting. Benchmarks and studies never use either.
* The slowest test modules run first (``SLOW_FIRST``, whole modules, so module fixtures are set up
  once): with ``-n 2`` a long test started last leaves the other worker idle (measured 2026-12-08:
  45 of 1150 worker-seconds idle). Only the order changes; a stale list costs time, not results.
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


#: Test modules of >= 24 s in all (``--durations=0``, 2026-12-08), longest first.
SLOW_FIRST = (
    "tests/test_notebooks.py", "tests/studies/test_generative_models_study.py", "tests/test_cli.py",
    "tests/studies/test_module1_studies.py", "tests/studies/test_generalization_measures_study.py",
    "tests/studies/test_generative_studies.py", "tests/test_student_versions.py", "tests/test_distributed.py",
    "tests/uncertainty/test_laplace.py", "tests/test_faults.py", "tests/studies/test_uncertainty_studies.py",
    "tests/train/test_target_stop.py", "tests/generative/test_generative_likelihood.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def key(item):
        path = item.nodeid.split("::")[0]
        return rank.get(path, len(rank))

    items.sort(key=key)  # stable: the order inside each module and among the others is kept
