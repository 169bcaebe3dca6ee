#!/usr/bin/env bash
# Every GPU path of the research half in one command, at most about 8 minutes on one GPU:
#
#   bash bench/gpu_check.sh OUT              # train.py fp32 / AMP + channels_last, checkpoint + --resume,
#                                            # DDP (torchrun, NCCL, SyncBatchNorm), DataParallel (2+ GPUs),
#                                            # evaluate.py / infer.py --device cuda against the CPU,
#                                            # bench_train.py and bench_loader.py figures
#   bash bench/gpu_check.sh OUT --dry-run    # the same steps on the CPU with tiny settings (CI)
#
# It prints one JSON line (also OUT/gpu_check.json; logs, TensorBoard events and the JSON in
# OUT/gpu_check.tar.gz) and exits 0 when every step that ran passed. --help lists the options;
# bench/README.md says how to run it on a GPU machine that lacks ../shared.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$(command -v python3 || command -v python)}"
exec "$py" "$here/gpu_check.py" "$@"
