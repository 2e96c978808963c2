#!/usr/bin/env bash
# scripts/local-slurm.sh start|stop|status BASE_DIR
#
# A throw-away one-node Slurm (Debian's slurm-wlm, 22.05) for the tests: partitions
# thin_course (default) and gpu_course on 127.0.0.1, one fake GPU (gres on /dev/null, so
# --gpus=1 jobs get CUDA_VISIBLE_DEVICES=0 but no CUDA device), no munge (auth/none), no
# cgroups, no accounting daemon. Everything lives under BASE_DIR; clients need
# `export SLURM_CONF=BASE_DIR/etc/slurm.conf` (start writes BASE_DIR/env.sh with that line).
# Run as root. `stop` signals only the daemons whose PIDs start recorded (after scancel of
# the jobs), never anything by name, and removes BASE_DIR when PURGE=1.
#
# Environment: SLURMCTLD_PORT (default 6817), SLURMD_PORT (6818), WAIT_S (60).
set -euo pipefail

cmd=${1:-}
BASE=${2:-}
case "$cmd" in start|stop|status) ;; *) echo "usage: $0 start|stop|status BASE_DIR" >&2; exit 2 ;; esac
case "$BASE" in /*) ;; *) echo "local-slurm: BASE_DIR must be an absolute path" >&2; exit 2 ;; esac
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
WAIT_S=${WAIT_S:-60}
ETC=$BASE/etc RUN=$BASE/run LOG=$BASE/log
export SLURM_CONF=$ETC/slurm.conf
say() { echo "local-slurm: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The PID in pid file $1 if it is alive and its executable is one of the names given.
live_pid() {
    local f=$1; shift
    [ -s "$f" ] || return 1
    local pid; pid=$(tr -dc 0-9 < "$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    local exe; exe=$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)") || return 1
    local n; for n in "$@"; do [ "$exe" = "$n" ] && { echo "$pid"; return 0; }; done
    return 1
}
ctld_pid() { live_pid "$RUN/slurmctld.pid" slurmctld slurmctld-wlm; }
slurmd_pid() { live_pid "$RUN/slurmd.pid" slurmd slurmd-wlm; }

stop() {
    local ctld; ctld=$(ctld_pid || true)
    if [ -n "$ctld" ]; then
        local jobs; jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            say "cancelling jobs $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 40); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
        fi
    fi
    local name pid
    for name in slurmd slurmctld; do
        pid=$(live_pid "$RUN/$name.pid" "$name" "$name-wlm" || true)
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        if [ -d "/proc/$pid" ]; then say "$name ($pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
        rm -f "$RUN/$name.pid"
        say "$name ($pid) stopped"
    done
    if [ "${PURGE:-0}" = 1 ]; then rm -rf "$BASE"; fi
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
if [ "$cmd" = status ]; then
    c=$(ctld_pid || true); d=$(slurmd_pid || true)
    echo "slurmctld ${c:-not running}, slurmd ${d:-not running}"
    [ -n "$c" ] && [ -n "$d" ] && sinfo
    exit 0
fi

# ---- start
[ "$(id -u)" = 0 ] || die "must run as root (slurmd runs jobs as their users)"
need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } \
        || die "apt-get install ${need[*]} failed"
fi
if [ -n "$(ctld_pid || true)" ] && [ -n "$(slurmd_pid || true)" ]; then
    say "already running from $BASE"; exit 0
fi
stop  # half-started leftovers
mkdir -p "$ETC" "$RUN" "$LOG" "$BASE/state" "$BASE/spool"
chmod 755 "$BASE" "$ETC" "$RUN"

host=$(hostname -s)
read -r cpus sockets cores threads mem < <(slurmd -C | awk '/^NodeName=/ {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["CPUs"], v["SocketsPerBoard"], v["CoresPerSocket"], v["ThreadsPerCore"], v["RealMemory"] }')
[ -n "${cpus:-}" ] || die "slurmd -C reported no hardware"
# Slurm 22.05 resolves addresses with AI_ADDRCONFIG, which fails when loopback is the only
# IPv4 address; EnableIPv6 makes it fall back to AF_UNSPEC.
comm=""
hostname -I 2>/dev/null | tr ' ' '\n' | grep -qE '^[0-9]+\.' || comm="CommunicationParameters=EnableIPv6"
cat > "$ETC/slurm.conf" <<CONF
# written by scripts/local-slurm.sh: a one-node test cluster
ClusterName=pcamtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
EnforcePartLimits=ALL
ReturnToService=2
# finished jobs leave 'squeue' after 4 s, and 'sbatch --wait' then polls every 2 s
MinJobAge=4
SchedulerParameters=batch_sched_delay=0
KillWait=5
InactiveLimit=0
$comm
GresTypes=gpu
NodeName=$host NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$((mem * 9 / 10)) Gres=gpu:1 State=UNKNOWN
PartitionName=thin_course Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu_course Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
echo "NodeName=$host Name=gpu File=/dev/null" > "$ETC/gres.conf"
echo "export SLURM_CONF=$SLURM_CONF" > "$BASE/env.sh"

t0=$(date +%s%N)
started=$(date +%FT%T)
/usr/sbin/slurmctld || die "slurmctld did not start: $(tail -3 "$LOG/slurmctld.log" 2>/dev/null)"
/usr/sbin/slurmd -N "$host" || die "slurmd did not start: $(tail -3 "$LOG/slurmd.log" 2>/dev/null)"
deadline=$((SECONDS + WAIT_S))
while :; do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)
    since=$(scontrol show node "$host" 2>/dev/null | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p')
    case "$state" in
        idle|mixed|allocated) if [ -n "$since" ] && [ "$since" != None ] && [[ ! "$since" < "$started" ]]; then break; fi ;;
        drain*|down*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
        inval*) die "node INVALID: $(scontrol show node "$host" | sed -n 's/^ *Reason=//p')" ;;
    esac
    [ $SECONDS -lt $deadline ] || die "node not idle after ${WAIT_S}s (state ${state:-none}); logs in $LOG"
    sleep 0.5
done
# a fresh slurmctld schedules no batch job in its first ~3 s
left=$(( (t0 + 3300000000 - $(date +%s%N)) / 1000000 ))
[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
say "node $host idle (slurmctld $(ctld_pid), slurmd $(slurmd_pid)); export SLURM_CONF=$SLURM_CONF"
