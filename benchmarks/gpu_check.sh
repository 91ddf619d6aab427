#!/usr/bin/env bash
# The GPU check of issue 3, as one call on a lent GPU machine (run from the repository root):
#   Fashion-MNIST's four IDX files travel in .fmnist/ (ignored by git); the machine has torch + lightning.
set -euo pipefail
export PYTHONUNBUFFERED=1 TRAINWELL_DATA=$PWD/.fmnist PYTHONPATH=$PWD
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -c "import torch, lightning, safetensors, yaml; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv
python3 benchmarks/throughput.py --device cuda --steps 300 --models convnet --batch-sizes 64,256,512 \
  --results "$OUT/RESULTS-gpu.md" 2>&1 | tee "$OUT/throughput.log"
