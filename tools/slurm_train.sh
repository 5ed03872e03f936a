#!/usr/bin/env bash
# Training on a slurm cluster: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS: see tools/srun.sh. Every task runs
# tools/train.py --launcher slurm (rank, world size and master from srun's variables).
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]" >&2
                  exit 2; }
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec bash "$TOOLS/srun.sh" "$1" "$2" "$TOOLS/train.py" "$3" --work-dir "$4" --launcher slurm \
    "${@:5}"
