#!/usr/bin/env bash
# The GPU row (issue 15, item 6), in one call of the device tool on a lent GPU machine:
#
#   run(command="bash scripts/gpu-row.sh", timeout_s=540)
#
# That machine has no network and its own python3 (PyTorch with CUDA, transformers, tokenizers, Pillow,
# safetensors: all igcap's engine needs here), so nothing is installed: the four full-size random-weight
# checkpoints are built there (about 4 GB, a minute or two on its cores), then `python -m igcap bench --gpu`
# measures float16 and bfloat16 (one photo × four models, 64 photos × four models, the peak of the GPU's
# memory) and training samples/s. Figures land in $OUT (gpu-row.json, gpu-row.log, nvidia-smi.txt);
# elsewhere in ./gpu-row-out. Extra arguments go to the benchmark (e.g. --repeats 5).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-row-out}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
       TOKENIZERS_PARALLELISM=false IGCAP_DATA_DIR=${IGCAP_DATA_DIR:-/tmp/igcap-gpu-row}
python=${PYTHON:-python3}
{ nvidia-smi || echo "nvidia-smi: not found"; } >"$out/nvidia-smi.txt" 2>&1
"$python" -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "GPU", torch.cuda.is_available())' \
    2>&1 | tee "$out/gpu-row.log"
time "$python" -m igcap bench --gpu --cache "$IGCAP_DATA_DIR/bench" --json "$out/gpu-row.json" "$@" 2>&1 | tee -a "$out/gpu-row.log"
