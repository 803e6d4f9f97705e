#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, on 127.0.0.1 only, for `cai run --engine slurm`'s
# tests and CI (a stand-in for a university cluster, as scripts/stand-ins.sh is for AWS):
#   munged      (munge's authentication daemon, its own key and socket)
#   slurmctld   (the controller)
#   slurmd      (this machine as the only compute node: its cores and memory, memory enforced)
#
#   scripts/slurm-local.sh install   # apt-get install slurm-wlm munge (skipped when installed)
#   scripts/slurm-local.sh start     # writes the configuration, starts the three daemons,
#                                    # waits until sinfo shows the node idle, writes $STATE/env
#   scripts/slurm-local.sh stop      # cancels the jobs and ends exactly what start started
#   source "$STATE/env"              # exports SLURM_CONF for sinfo, sbatch, squeue, ...
#
# $STATE is $CAI_TOOLS/slurm (default ~/.cache/cai-tools/slurm): configuration, spool, logs,
# pid files and munge's key and socket all live there; nothing is written under /etc except
# /etc/slurm/slurm.conf as a link to ours when no slurm.conf is there (so a bare `sinfo`
# works as on a cluster's login node), removed again by stop.
#
# Memory enforcement: cgroup v1 (proctrack/cgroup, task/cgroup, ConstrainRAMSpace) when this
# machine lets us create memory and freezer cgroups (it does in the Firecracker VMs this
# project's CI and sandboxes run in, kernel cgroup v1 hierarchies, no systemd). Otherwise the
# accounting poller kills a job over its --mem (jobacct_gather/linux with OverMemoryKill,
# sampled every second) and processes are tracked by parent pid (proctrack/linuxproc): both
# work without systemd or cgroups. `start` prints which one it chose; $STATE/env records it
# as CAI_SLURM_MEMORY=cgroup|poll, and setting CAI_SLURM_MEMORY before `start` forces one.
set -euo pipefail

TOOLS="${CAI_TOOLS:-$HOME/.cache/cai-tools}"
STATE="$TOOLS/slurm"
CONF_DIR="$STATE/etc"
CONF="$CONF_DIR/slurm.conf"
RUN="$STATE/run"
LOG="$STATE/log"
MUNGE="$STATE/munge"
SYSTEM_CONF=/etc/slurm/slurm.conf
DAEMONS="slurmd slurmctld munged" # stop order

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

log() { echo "slurm-local: $*" >&2; }

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v munged >/dev/null && command -v sbatch >/dev/null
}

install() {
    if installed; then
        return 0
    fi
    log "installing slurm-wlm and munge with apt-get"
    local t0=$SECONDS
    # No daemon may start during the install (Debian's postinst would start munge and the
    # Slurm services): a policy-rc.d that refuses every start, unless one is already there.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        made_policy=1
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >/dev/null
    if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi
    log "installed in $((SECONDS - t0)) s"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Whether slurmd can confine jobs with cgroup v1: memory and freezer hierarchies mounted as
# cgroup (not cgroup2) and writable by us, with a memory limit that takes.
cgroup_v1_works() {
    local m=/sys/fs/cgroup/memory f=/sys/fs/cgroup/freezer probe="cai-slurm-probe-$$" ok=1
    [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || return 1
    [ -d "$m" ] && [ -d "$f" ] || return 1
    if as_root mkdir "$m/$probe" 2>/dev/null; then
        echo $((64 << 20)) | as_root tee "$m/$probe/memory.limit_in_bytes" >/dev/null 2>&1 &&
            [ "$(cat "$m/$probe/memory.limit_in_bytes")" = $((64 << 20)) ] && ok=0
        as_root rmdir "$m/$probe"
    fi
    [ $ok = 0 ] || return 1
    as_root mkdir "$f/$probe" 2>/dev/null || return 1
    as_root rmdir "$f/$probe"
}

# The pid in a pid file if that process is still the named daemon.
daemon_pid() { # name
    local file="$RUN/$1.pid" pid
    [ -f "$file" ] || return 1
    pid=$(tr -dc 0-9 <"$file")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

write_config() { # memory mode, node line
    local mode=$1 node=$2 ctld_port d_port user
    ctld_port=$(free_port)
    d_port=$(free_port)
    user=$(id -un)
    mkdir -p "$CONF_DIR"
    local plugins
    if [ "$mode" = cgroup ]; then
        plugins="ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=1"
        cat >"$CONF_DIR/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=yes
AllowedRAMSpace=100
ConstrainSwapSpace=no
EOF
    else
        plugins="ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=1"
        rm -f "$CONF_DIR/cgroup.conf"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh start: a one-node cluster on 127.0.0.1.
ClusterName=cai-local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE/munge.socket
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
$plugins
# No slurmdbd: job completions go to a text file that \`sacct -c\` reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
MaxArraySize=100001
MaxJobCount=300000
MinJobAge=300
KillWait=5
InactiveLimit=0
ReturnToService=2
SlurmdTimeout=300
MpiDefault=none
DefMemPerCPU=1024
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install
    stop 2>/dev/null || true
    rm -rf "$STATE/spool" "$RUN"
    mkdir -p "$STATE/spool/ctld" "$STATE/spool/d" "$RUN" "$LOG" "$MUNGE"
    chmod 700 "$MUNGE"
    : >"$LOG/jobcomp.txt"

    # munge: our own key and socket; it runs as whoever runs this (root: --force).
    if [ ! -s "$MUNGE/munge.key" ]; then
        dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$MUNGE/munge.key"
    as_root munged --force --socket="$MUNGE/munge.socket" --key-file="$MUNGE/munge.key" \
        --pid-file="$RUN/munged.pid" --log-file="$LOG/munged.log" --seed-file="$MUNGE/seed"

    local mode=poll node
    case "${CAI_SLURM_MEMORY:-}" in
        cgroup | poll) mode=$CAI_SLURM_MEMORY ;; # forced (to try the other one)
        *) if cgroup_v1_works; then mode=cgroup; fi ;;
    esac
    # slurmd's own view of this machine (its cores, sockets and memory), as the node line.
    node=$(slurmd -C | head -1)
    write_config "$mode" "$node"
    local memory=${node##*RealMemory=}
    log "node: ${node#NodeName=}; memory enforced by $([ $mode = cgroup ] && echo 'cgroup v1 (ConstrainRAMSpace)' || echo 'jobacct_gather/linux OverMemoryKill')"

    if [ ! -e "$SYSTEM_CONF" ] || [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$CONF" ]; then
        as_root mkdir -p "$(dirname "$SYSTEM_CONF")"
        as_root ln -sfn "$CONF" "$SYSTEM_CONF"
    fi
    export SLURM_CONF="$CONF"
    as_root slurmctld -f "$CONF"
    as_root slurmd -f "$CONF"

    local state=""
    for _ in $(seq 1 600); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
        if [ "$state" = idle ]; then break; fi
        sleep 0.1
    done
    if [ "$state" != idle ]; then
        log "the node is not idle after 60 s (state: ${state:-none}); logs in $LOG"
        tail -20 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true
        exit 1
    fi
    cat >"$STATE/env" <<ENV
export SLURM_CONF=$CONF
export CAI_SLURM_MEMORY=$mode
ENV
    log "up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T'); source $STATE/env"
    : "$memory"
}

stop() {
    export SLURM_CONF="$CONF"
    # Jobs first: their steps would outlive slurmd.
    if daemon_pid slurmctld >/dev/null; then
        local jobs
        jobs=$(squeue -h -o %A 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086 # a list of job ids
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 1 100); do
                [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
                sleep 0.1
            done
        fi
    fi
    # All three at once (slurmd first), then wait for each, up to 10 s, before SIGKILL.
    local d pid pids=""
    for d in $DAEMONS; do
        pid=$(daemon_pid "$d") || continue
        as_root kill "$pid" 2>/dev/null || true
        pids="$pids $pid"
        rm -f "$RUN/$d.pid"
    done
    for pid in $pids; do
        for _ in $(seq 1 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then as_root kill -9 "$pid" 2>/dev/null || true; fi
    done
    if [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$CONF" ]; then
        as_root rm -f "$SYSTEM_CONF"
    fi
    # The cgroups slurmd made for jobs (slurm_<node> in each hierarchy), now empty: deepest
    # first.
    local h
    for h in /sys/fs/cgroup/*/slurm_"$(hostname -s)" /sys/fs/cgroup/*/slurm; do
        if [ -d "$h" ]; then as_root find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
    done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
esac
