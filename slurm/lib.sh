# Sourced by the pcam .sbatch scripts inside a job: go to the submit folder, load the
# project's environment, pick the binary and threads, and keep a record of the job
# (results/slurm/jobs/<job id>.json: script, arguments, partition, node, start, end,
# exit code), rewritten atomically at the start and at the end.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
# libtorch from the project's venv when submitted from the repository.
if [ -f scripts/env.sh ]; then . scripts/env.sh; fi
PCAM=${PCAM:-target/release/pcam}
THREADS=${SLURM_CPUS_PER_TASK:-2}
DEVICE=${PCAM_DEVICE:-cpu}
log_dir=${PCAM_LOG_DIR:-results/slurm}
job_id=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
job_id=${job_id:-${SLURM_JOB_ID:-none}}
job_record=$log_dir/jobs/$job_id.json
job_start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$log_dir/jobs"

json_str() { # a JSON string literal
    local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; printf '"%s"' "$s"
}
write_job_record() { # STATE [EXIT_CODE]
    local args="" a
    for a in "${job_args[@]}"; do args+="${args:+, }$(json_str "$a")"; done
    {
        printf '{\n  "job_id": %s,\n  "slurm_job_id": %s,\n' "$(json_str "$job_id")" "$(json_str "${SLURM_JOB_ID:-}")"
        printf '  "array_task_id": %s,\n' "$(json_str "${SLURM_ARRAY_TASK_ID:-}")"
        printf '  "script": %s,\n  "args": [%s],\n' "$(json_str "$job_script")" "$args"
        printf '  "partition": %s,\n  "node": %s,\n' "$(json_str "${SLURM_JOB_PARTITION:-}")" "$(json_str "${SLURMD_NODENAME:-$(hostname -s)}")"
        printf '  "cpus": %s,\n  "device": %s,\n' "$(json_str "$THREADS")" "$(json_str "$DEVICE")"
        printf '  "cuda_visible_devices": %s,\n' "$(json_str "${CUDA_VISIBLE_DEVICES:-}")"
        printf '  "start_utc": %s,\n  "end_utc": %s,\n' "$(json_str "$job_start")" "$(json_str "${2:+$(date -u +%Y-%m-%dT%H:%M:%SZ)}")"
        printf '  "state": %s,\n  "exit_code": %s\n}\n' "$(json_str "$1")" "${2:-null}"
    } > "$job_record.tmp" && mv "$job_record.tmp" "$job_record"
}
# job_begin SCRIPT_NAME ARGS...: records the start and the end (trap on exit).
job_begin() {
    job_script=$1; shift
    job_args=("$@")
    write_job_record RUNNING
    trap 'rc=$?; write_job_record "$([ $rc = 0 ] && echo COMPLETED || echo FAILED)" $rc' EXIT
    echo "pcam job $job_id ($job_script) in ${SLURM_JOB_PARTITION:-no partition} on ${SLURMD_NODENAME:-$(hostname -s)}: $PCAM, $THREADS threads, device $DEVICE"
}
