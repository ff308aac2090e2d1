#!/usr/bin/env bash
# The GPU checks of lv2, at most ~8 minutes on one GPU: the tests that need CUDA, then LV2/World-v0's speed with
# 1, 8 and 64 batched worlds. Paste its output into BENCHMARKS.md ("GPU") with the date and the GPU.
#
#     bash benchmarks/gpu_check.sh            # from the repository root, with lv2 installed (pip install -e ".[test]")
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: these checks need a GPU"
print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"bf16 {torch.cuda.is_bf16_supported()}")
PY
timeout 180 python -m pytest -q tests/test_cuda.py tests/test_control_encoder.py
timeout 300 python benchmarks/world_env.py --device cuda --precisions auto --steps 20 --workers --batch-sizes 1 8 64 \
    --vec-steps 5
