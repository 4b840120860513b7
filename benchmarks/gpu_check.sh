#!/usr/bin/env bash
# The GPU check, run on a lent accelerator machine (device tool): the sweep and curvature
# benchmarks and the main job on the GPU. Needs the pure-Python wheels that machine lacks in .whl/
# (ml_collections, mnist1d), carried with the working tree. Outputs go to $OUT.
#
# CPU mode (GPU_CHECK_CPU=1, or --cpu): the same script at tiny size on the CPU, to check that it
# still runs (tests/benchmarks/test_gpu_check.py): the sweep benchmark with --tiny only (the
# curvature benchmark and the full job take minutes on a CPU). $OUT defaults to a temporary folder,
# $PYTHON to python3. Both modes end with one line
#   gpu_check: backend=... model_gflops=... matmul_gflops=... fraction_of_matmul_rate=...
# (the compute-bound sweep's model FLOP/s, the float32 matmul FLOP/s at the model's shapes measured
# in the same run, and the engine's fraction of it) and $OUT/gpu_check.json with the same numbers.
set -uo pipefail
CPU_MODE=${GPU_CHECK_CPU:-0}
[[ "${1:-}" == "--cpu" ]] && CPU_MODE=1
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
if [[ -d .whl ]] && compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [[ "$CPU_MODE" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  SWEEP_ARGS=(--tiny)
else
  export DL_COURSE_CACHE=/tmp/dlc_cache
  nvidia-smi -L
  SWEEP_ARGS=()
fi
timeout 200 "$PY" benchmarks/bench_sweep.py "${SWEEP_ARGS[@]}" --out "$OUT/sweep_gpu.json" 2>&1 | tail -5
if [[ "$CPU_MODE" != 1 ]]; then
  timeout 150 "$PY" benchmarks/bench_curvature.py --out "$OUT/curvature_gpu.json" 2>&1 | tail -12
  ( time timeout 150 "$PY" -m dl_course.cli run sweep --workdir "$OUT/sweep_run" ) 2>&1 | tail -8
  rm -f "$OUT/sweep_run/metrics.npz" "$OUT/sweep_run/test_accuracy_curves.png"
fi
"$PY" - "$OUT" <<'EOF' || exit 1
import json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/sweep_gpu.json"))
print(" ".join(f"{k} {s['versions'].get(k)}" for k in ("jax", "jaxlib", "flax", "optax")), s["device"])
c = s["compute_bound"]
row = {"backend": s["device"]["backend"], "device_kind": s["device"]["device_kind"], "model": c["model"],
       "runs": c["runs"], "steps": c["steps"], "model_gflops": c["model_gflops"], "matmul_gflops": c["matmul_gflops"],
       "fraction_of_matmul_rate": c["fraction_of_matmul_rate"], "tiny": s.get("tiny", False)}
json.dump(row, open(f"{out}/gpu_check.json", "w"), indent=2)
print("gpu_check: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                               if k in ("backend", "model_gflops", "matmul_gflops", "fraction_of_matmul_rate")))
EOF
ls -R "$OUT"
