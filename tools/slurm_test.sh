#!/usr/bin/env bash
# Testing on a slurm cluster: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS: see tools/srun.sh. Every task runs
# tools/test.py --launcher slurm.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2
                  exit 2; }
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec bash "$TOOLS/srun.sh" "$1" "$2" "$TOOLS/test.py" "$3" "$4" --launcher slurm "${@:5}"
