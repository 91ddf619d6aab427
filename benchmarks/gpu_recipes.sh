#!/usr/bin/env bash
# Issue 8's recipe sweep on a lent GPU: accuracy per epoch of each recipe in benchmarks/recipes.py, many runs
# at once. Fashion-MNIST's four IDX files travel in .fmnist/ (ignored by git); the machine has torch.
set -uo pipefail
export PYTHONUNBUFFERED=1 TRAINWELL_DATA=$PWD/.fmnist PYTHONPATH=$PWD OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -c "import torch, numpy, safetensors, yaml, rich; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout "${BUDGET:-480}" python3 benchmarks/recipes.py --recipes "${RECIPES:-all}" --epochs "${EPOCHS:-10,20}" --device cuda \
  --parallel "${PARALLEL:-10}" --out /tmp/recipe-runs --json "$OUT/recipes.jsonl" 2>&1 | tee "$OUT/recipes.log"
