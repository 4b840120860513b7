#!/usr/bin/env bash
# The GPU check, run on a lent accelerator machine (device tool): the sweep and curvature
# benchmarks and the main job on the GPU. Needs the pure-Python wheels that machine lacks in .whl/
# (ml_collections, mnist1d), carried with the working tree. Outputs go to $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 DL_COURSE_CACHE=/tmp/dlc_cache
nvidia-smi -L
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
timeout 200 python3 benchmarks/bench_sweep.py --out "$OUT/sweep_gpu.json" 2>&1 | tail -5
timeout 150 python3 benchmarks/bench_curvature.py --out "$OUT/curvature_gpu.json" 2>&1 | tail -12
( time timeout 150 python3 -m dl_course.cli run sweep --workdir "$OUT/sweep_run" ) 2>&1 | tail -8
rm -f "$OUT/sweep_run/metrics.npz" "$OUT/sweep_run/test_accuracy_curves.png"
ls -R "$OUT"
