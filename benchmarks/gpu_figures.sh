#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md in one run of at most ~10 minutes (each step has its own
# time limit, so the whole can be run again at once): on CUDA in bfloat16,
#   1. bench_presets: every preset and image budget with the real dimensions (LLaVA-OneVision-7B
#      whole, SmolVLM-256M, ...), frames/s, prompt tokens/s and peak GPU memory, and frames per second
#      of the balanced preset at frames_per_batch 1, 2, 4, 8, 16 (to tune LVLMConfig.frames_per_batch);
#   2. bench_scoring: the packed prefix-cached scoring against one forward per question, at k = 3.
# Run from anywhere after `make setup`:  bash benchmarks/gpu_figures.sh
# Everything printed is also written to benchmarks/out/gpu/ (the card's name in gpu.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/out/gpu
mkdir -p "$OUT"

"$PY" - <<'EOF' | tee "$OUT/gpu.txt"
import torch
if not torch.cuda.is_available():
    raise SystemExit("no CUDA GPU visible to torch: these figures need one")
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, torch {torch.__version__}")
EOF

# ~6 minutes on an H100-class card: building the 7B model on the GPU takes seconds, each row well under one.
timeout 420 "$PY" -m benchmarks.bench_presets --device cuda --repeats 5 --tune 1 2 4 8 16 \
  | tee "$OUT/presets_cuda.txt"
# ~1-2 minutes: k = 3 only (the target row), CUDA only.
timeout 150 "$PY" -m benchmarks.bench_scoring --device cuda --ks 3 --repeats 5 | tee "$OUT/scoring_cuda.txt"
echo "wrote $OUT/gpu.txt, $OUT/presets_cuda.txt, $OUT/scoring_cuda.txt"
