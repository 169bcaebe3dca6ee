#!/usr/bin/env bash
# Train the compact TNet recipe (configs/tnet_compact.toml) on one GPU in at most about 10 minutes and
# export its fp16 weights (at most 16 MiB) into OUT:
#
#   bash bench/gpu_train.sh OUT                     # PFCN + vikram from ../shared/data (or --pfcn/--vikram)
#   bash bench/gpu_train.sh OUT --epochs 150 --batch-size 32 --lr 2e-3
#   bash bench/gpu_train.sh OUT --dry-run           # the same steps on the CPU with tiny settings (CI)
#
# It prints one JSON line (also OUT/gpu_train.json; logs, TensorBoard events and the JSON in
# OUT/gpu_train.tar.gz). --help lists the options.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$(command -v python3 || command -v python)}"
exec "$py" "$here/gpu_train.py" "$@"
