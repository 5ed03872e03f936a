#!/usr/bin/env bash
# torchrun for the dist_*.sh tools: tools/torchrun.sh NUM_PROCESSES SCRIPT [args...]
# One process per GPU; without GPUs the processes run on CPU (gloo). Several nodes: run it on each
# node with NNODES, NODE_RANK, MASTER_ADDR and PORT set (under slurm, e.g. from SLURM_NNODES,
# SLURM_NODEID and the first host of SLURM_JOB_NODELIST).
set -euo pipefail
NPROC=$1
shift
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$@"
