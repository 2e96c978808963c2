#!/bin/bash
# Stands in for `sbatch --wait --array=0-N%P SCRIPT ARGS…` in tests: runs every array task
# of the script here, one after another, with the variables Slurm sets, and fails like
# `sbatch --wait` when a task fails. (The real one-node Slurm is exercised by the Slurm tests.)
set -u
array="" script=""
args=()
for a in "$@"; do
  if [ -z "$script" ]; then
    case "$a" in
      --array=*) array=${a#--array=} ;;
      --*) ;;
      *) script=$a ;;
    esac
  else
    args+=("$a")
  fi
done
range=${array%%%*}
first=${range%-*} last=${range#*-}
status=0
for ((i = first; i <= last; i++)); do
  SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=4242 SLURM_JOB_ID=$((4242 + i)) SLURM_SUBMIT_DIR=$PWD \
    bash "$script" "${args[@]}" >>"fake-sbatch-$i.out" 2>&1 || status=1
done
echo 4242
exit $status
