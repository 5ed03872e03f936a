#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# (torchrun through tools/torchrun.sh: one process per GPU, or gloo on CPU; several nodes there)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG NUM_PROCESSES [tools/train.py options]" >&2; exit 2; }
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec bash "$TOOLS/torchrun.sh" "$2" "$TOOLS/train.py" "$1" --launcher pytorch "${@:3}"
