#!/usr/bin/env bash
# slurm/submit.sh JOB [--gpu] [--wait] [--after JOB_ID] [--dry-run] [-- ARGS...]
#
# Submits a pcam job with the cluster settings of slurm/cluster.env (or $PCAM_CLUSTER_ENV):
#   train   slurm/train.sbatch  ARGS = pcam train arguments (--config F [KEY=VALUE...])
#   twin    slurm/twin.sbatch   ARGS = pcam twin-run arguments
#   eval    slurm/eval.sbatch   ARGS = pcam eval arguments (--run DIR ...)
#   bench   slurm/bench.sbatch  ARGS = pcam bench throughput arguments
#   array   slurm/array.sbatch  ARGS = LIST: a file of pcam commands, one per line with
#           tab-separated arguments; one array task per line, PCAM_ARRAY_PARALLEL at once
#   search  runs `pcam search --slurm` here; it submits slurm/search_trial.sbatch as one job
#           array per round and waits for it. ARGS = pcam search arguments (--config F
#           [--workers P: array tasks at once]); device and threads come from its configs.
# --gpu: the GPU partition with --gpus and train.device=$PCAM_GPU_DEVICE; otherwise the CPU
# partition with train.device=cpu. --wait: return when the job has ended, with its exit
# status. --after ID: start only after job ID succeeded. Prints the job id.
# Jobs run in $PCAM_WORKDIR (default: the repository root); PCAM names the binary there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
job=$1; shift
case "$job" in train|twin|eval|bench|search|array) ;; -h|--help) usage ;; *) echo "submit.sh: unknown job '$job' (train, twin, eval, bench, search or array)" >&2; exit 2 ;; esac
gpu=0 wait=0 after="" dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) gpu=1 ;;
        --wait) wait=1 ;;
        --after) [ $# -ge 2 ] || { echo "submit.sh: --after needs a job id" >&2; exit 2; }; after=$2; shift ;;
        --dry-run) dry=1 ;;
        --) shift; break ;;
        *) echo "submit.sh: unknown option '$1' (job arguments go after --)" >&2; exit 2 ;;
    esac
    shift
done
env_file=${PCAM_CLUSTER_ENV:-$here/cluster.env}
[ -r "$env_file" ] || { echo "submit.sh: $env_file: cannot read the cluster settings" >&2; exit 2; }
# PCAM_LOG_DIR set by the caller (pcam::offload gives each batch its own) wins over the file.
log_dir_override=${PCAM_LOG_DIR:-}
# shellcheck source=cluster.env
. "$env_file"
PCAM_LOG_DIR=${log_dir_override:-${PCAM_LOG_DIR:-}}
for v in PCAM_CPU_PARTITION PCAM_GPU_PARTITION PCAM_CPUS PCAM_TIME_TRAIN PCAM_TIME_EVAL PCAM_TIME_BENCH PCAM_TIME_SEARCH PCAM_LOG_DIR; do
    [ -n "${!v:-}" ] || { echo "submit.sh: $env_file: $v is not set" >&2; exit 2; }
done
case "$PCAM_CPUS" in ''|*[!0-9]*|0) echo "submit.sh: $env_file: PCAM_CPUS must be a positive integer, not '$PCAM_CPUS'" >&2; exit 2 ;; esac

workdir=${PCAM_WORKDIR:-$root}
cd "$workdir"
mkdir -p "$PCAM_LOG_DIR"
case "$job" in
    train|twin|array) time=$PCAM_TIME_TRAIN ;;
    eval) time=$PCAM_TIME_EVAL ;;
    bench) time=$PCAM_TIME_BENCH ;;
    search) time=$PCAM_TIME_SEARCH ;;
esac
opts=(--time="$time" --cpus-per-task="$PCAM_CPUS")
[ -n "${PCAM_MEM:-}" ] && opts+=(--mem="$PCAM_MEM")
[ -n "${PCAM_ACCOUNT:-}" ] && opts+=(--account="$PCAM_ACCOUNT")
if [ "$gpu" = 1 ]; then
    opts+=(--partition="$PCAM_GPU_PARTITION" --gpus="${PCAM_GPUS:-1}")
    device=${PCAM_GPU_DEVICE:-cuda}
else
    opts+=(--partition="$PCAM_CPU_PARTITION")
    device=cpu
fi
[ -n "$after" ] && opts+=(--dependency="afterok:$after")
# What the job needs from here: the binary, the device, where logs and records go.
export PCAM=${PCAM:-$workdir/target/release/pcam} PCAM_DEVICE=$device PCAM_LOG_DIR PCAM_SLURM_DIR=$here
if [ "$job" = search ]; then
    # The driver runs here and submits one array per round with these options.
    cmd=("$PCAM" search "$@" --slurm --script "$here/search_trial.sbatch"
         --sbatch-arg="--output=$PCAM_LOG_DIR/%x-%A_%a.out")
    for o in "${opts[@]}"; do cmd+=("--sbatch-arg=$o"); done
    if [ "$dry" = 1 ]; then printf '%q ' "${cmd[@]}"; echo; exit 0; fi
    exec "${cmd[@]}"
fi
cmd=(sbatch --parsable "${opts[@]}")
if [ "$job" = array ]; then
    [ $# -eq 1 ] || { echo "submit.sh: array takes one argument, the task list" >&2; exit 2; }
    [ -r "$1" ] || { echo "submit.sh: $1: cannot read the task list" >&2; exit 2; }
    n=$(grep -c . "$1" || true)
    [ "$n" -gt 0 ] || { echo "submit.sh: $1: the task list is empty" >&2; exit 2; }
    [ "$n" = "$(grep -c '' "$1")" ] || { echo "submit.sh: $1: a blank line (one task per line, none empty)" >&2; exit 2; }
    [ "$gpu" = 0 ] || { echo "submit.sh: array runs its lines as given; put train.device in them instead of --gpu" >&2; exit 2; }
    par=${PCAM_ARRAY_PARALLEL:-8}
    case "$par" in ''|*[!0-9]*|0*) echo "submit.sh: $env_file: PCAM_ARRAY_PARALLEL must be a positive integer, not '$par'" >&2; exit 2 ;; esac
    cmd+=(--array="0-$((n - 1))%$par" --job-name=pcam-array --export=ALL --output="$PCAM_LOG_DIR/pcam-array-%A_%a.out")
else
    cmd+=(--output="$PCAM_LOG_DIR/%x-%j.out")
fi
[ "$wait" = 1 ] && cmd+=(--wait)
cmd+=("$here/$job.sbatch" "$@")
if [ "$dry" = 1 ]; then printf '%q ' "${cmd[@]}"; echo; exit 0; fi
"${cmd[@]}"
