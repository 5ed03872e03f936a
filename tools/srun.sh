#!/usr/bin/env bash
# srun for the slurm_*.sh tools: tools/srun.sh PARTITION JOB_NAME SCRIPT [args...]
# One task per GPU: GPUS tasks in all (default 8), GPUS_PER_NODE per node (default GPUS, at most 8),
# CPUS_PER_TASK cores each (default 5); SRUN_ARGS adds srun options (e.g. "--quotatype=auto").
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
shift 2
positive() {
    if ! [[ ${!1} =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $1 must be a positive whole number, got '${!1}'" >&2
        exit 2
    fi
}
GPUS=${GPUS:-8}
positive GPUS
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
positive GPUS_PER_NODE
positive CPUS_PER_TASK
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} "${PYTHON:-python}" -u "$@"
