#!/usr/bin/env bash
# A real, private, one-node Slurm on 127.0.0.1 for ComputeNet's tests:
# munged + slurmctld + slurmd from Debian's packages, run without systemd
# (setsid, PID files), with fake GPU devices (character devices) as GRES.
#
# Usage: tests/slurm/slurm-local.sh start|stop|status
#   start   installs slurmctld slurmd slurm-client munge if missing (apt-get,
#           as root), starts the daemons unless a healthy instance already
#           runs, waits until the node is idle, and prints the SLURM_CONF path
#           as the last line of stdout. Exits 77 with a one-line reason on
#           stderr when Slurm cannot run on this machine (not root, packages
#           not installable); any other failure exits 1 with the daemons' logs.
#   stop    cancels the instance's jobs, then stops only the PIDs it
#           recorded (SIGTERM, SIGKILL after 10 s; a zombie counts as gone).
#   status  exit 0 and the SLURM_CONF path if a healthy instance runs, else 3.
#
# Environment:
#   COMPUTENET_SLURM_DIR   state directory (default /tmp/computenet-slurm)
#   COMPUTENET_SLURM_PORT  slurmctld port; slurmd uses the next (default 6817)
# Every cold start is logged, with the reason, to $COMPUTENET_SLURM_DIR.history.
#
# The cluster: ClusterName=computenet, node "localhost" with 64 declared CPU
# slots (so tests run many jobs at once on 2 real cores) and Gres=gpu:8,
# partitions "debug" (default) and "share"; batch_sched_delay=0; no
# accounting database (sacct is absent by design: the executor must cope),
# jobs' outcomes go to the jobcomp file log/jobcomp.txt. A fresh start wipes
# the controller's state, so Slurm job ids restart at 1: find jobs by their
# name/comment, never by remembered ids.
#
# Concurrent callers (tests run in parallel) are serialised with flock.
set -uo pipefail

dir=${COMPUTENET_SLURM_DIR:-/tmp/computenet-slurm}
port=${COMPUTENET_SLURM_PORT:-6817}
conf="$dir/etc/slurm.conf"
packages=(slurmctld slurmd slurm-client munge)
daemons=(slurmd slurmctld munged)  # stop order

skip() {  # cannot run Slurm here: one line, exit 77
  echo "slurm-local: $*" >&2
  exit 77
}

die() {
  echo "slurm-local: $*" >&2
  for log in "$dir"/log/munged.log "$dir"/log/slurmctld.log "$dir"/log/slurmd.log \
             "$dir"/log/slurmctld.out "$dir"/log/slurmd.out "$dir"/log/munged.out; do
    [[ -s $log ]] || continue
    echo "--- tail $log" >&2
    tail -n 15 "$log" >&2
  done
  # A half-started instance is taken down again (only what we recorded).
  [[ ${starting:-0} -eq 1 ]] && stop_all
  exit 1
}

# PID recorded for a daemon if that process is alive, runs the expected
# program, and is not a zombie; empty otherwise.
live_pid() {
  local name=$1 pid state comm
  [[ -f $dir/run/$name.pid.rec ]] || return 0
  pid=$(<"$dir/run/$name.pid.rec")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [[ -r /proc/$pid/stat ]] || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
  # Just after the start it may still be setsid/setpriv, about to exec it.
  [[ $comm == "$name" || $comm == setsid || $comm == setpriv ]] || return 0
  [[ $state != Z && $state != X ]] || return 0
  echo "$pid"
}

slurm_env() {
  SLURM_CONF=$conf SLURM_TIME_FORMAT=standard "$@"
}

daemons_alive() {
  local d
  for d in "${daemons[@]}"; do
    [[ -n $(live_pid "$d") ]] || { why="$d is not running"; return 1; }
  done
}

node_state() {
  slurm_env timeout 5 sinfo -h -N -n localhost -o %t 2>/dev/null | head -n 1
}

# A node that takes work: not down, drained, failing or not responding
# (idle, mix, alloc, comp, ... all do).
node_usable() {
  [[ -n $1 && ! $1 =~ (down|drain|drng|fail|inval|unk|boot|futr|\*) ]]
}

# Whether the recorded instance can be reused. A busy controller may answer
# slowly: with all daemons alive it gets 10 s before we give up on it (a
# cold start would wipe the jobs of tests running meanwhile).
healthy() {
  why="no instance in $dir"
  [[ -f $conf ]] || return 1
  daemons_alive || return 1
  local i state
  for ((i = 0; i < 20; i++)); do
    if slurm_env timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
      state=$(node_state)
      node_usable "$state" && return 0
      why="node state '$state'"
    else
      why="slurmctld does not answer"
    fi
    daemons_alive || return 1
    sleep 0.5
  done
  return 1
}

stop_pid() {  # SIGTERM, then SIGKILL after 10 s; a zombie counts as stopped
  local name=$1 pid i
  pid=$(live_pid "$name")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      [[ -z $(live_pid "$name") ]] && break
      sleep 0.1
    done
    if [[ -n $(live_pid "$name") ]]; then
      kill -KILL "$pid" 2>/dev/null
      for ((i = 0; i < 50; i++)); do
        [[ -z $(live_pid "$name") ]] && break
        sleep 0.1
      done
    fi
  fi
  rm -f "$dir/run/$name.pid.rec"
}

cancel_jobs() {  # jobs of this private instance only; their steps end too
  [[ -f $conf && -n $(live_pid slurmctld) ]] || return 0
  local jobs i
  jobs=$(slurm_env timeout 5 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  [[ -n ${jobs// /} ]] || return 0
  # shellcheck disable=SC2086
  slurm_env timeout 5 scancel --signal=KILL --full $jobs >/dev/null 2>&1
  # shellcheck disable=SC2086
  slurm_env timeout 5 scancel $jobs >/dev/null 2>&1
  for ((i = 0; i < 50; i++)); do
    [[ -z $(slurm_env timeout 5 squeue -h -t R,CG,S -o %A 2>/dev/null) ]] && break
    sleep 0.1
  done
}

stop_all() {
  cancel_jobs
  local d
  for d in "${daemons[@]}"; do stop_pid "$d"; done
}

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$dir/apt.log" 2>&1; then
    apt-get update -qq >>"$dir/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$dir/apt.log" 2>&1 ||
      skip "cannot install ${missing[*]} (see $dir/apt.log)"
  fi
}

write_config() {
  mkdir -p "$dir"/{etc,run,log,state,spool/slurmd,dev,munge}
  local i
  # Fake GPUs: character devices like /dev/null (slurmd rejects plain
  # files and then sets no CUDA_VISIBLE_DEVICES).
  for ((i = 0; i < 8; i++)); do
    [[ -c $dir/dev/fakegpu$i ]] && continue
    rm -f "$dir/dev/fakegpu$i"
    mknod "$dir/dev/fakegpu$i" c 1 3 ||
      skip "cannot create fake GPU device nodes in $dir/dev"
  done
  cat >"$conf" <<EOF
# Written by tests/slurm/slurm-local.sh: a private one-node test cluster.
ClusterName=computenet
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
GresTypes=gpu
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=300
KillWait=5
InactiveLimit=0
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=64 Boards=1 SocketsPerBoard=1 CoresPerSocket=64 ThreadsPerCore=1 RealMemory=16000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=share Nodes=localhost Default=NO MaxTime=INFINITE State=UP
EOF
  cat >"$dir/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=localhost Name=gpu File=$dir/dev/fakegpu[0-7]
EOF
}

start_daemon() {  # name, then the command; records the daemon's own PID
  local name=$1
  shift
  # Foreground daemons in their own session; no fd of ours (the caller's
  # pipes, the lock) stays open in them.
  setsid "$@" </dev/null >"$dir/log/$name.out" 2>&1 9>&- &
  echo $! >"$dir/run/$name.pid.rec"
}

start() {
  mkdir -p "$dir"
  exec 9>>"$dir.lock"
  flock -w 300 9 || die "timed out waiting for the lock $dir.lock"
  if healthy; then
    echo "$conf"
    return 0
  fi
  [[ $(uname -s) == Linux ]] || skip "needs Linux"
  [[ $(id -u) -eq 0 ]] || skip "needs root to install and run the Slurm daemons"
  install_packages
  local tool
  for tool in slurmctld slurmd munged mungekey setsid setpriv scontrol sinfo; do
    command -v "$tool" >/dev/null || skip "$tool is not installed"
  done
  getent passwd munge >/dev/null || skip "no munge user (munge package broken?)"

  echo "$(date '+%F %T') cold start: $why" >>"$dir.history"
  stop_all
  starting=1
  # Fresh controller state each cold start (job ids restart at 1).
  rm -rf "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  write_config
  # munged wants its socket's directory searchable by all, its key private.
  mkdir -p "$dir/munge-key"
  chown munge:munge "$dir/munge" "$dir/munge-key"
  chmod 0755 "$dir/munge"
  chmod 0700 "$dir/munge-key"
  if [[ ! -s $dir/munge-key/munge.key ]]; then
    mungekey --create --keyfile="$dir/munge-key/munge.key" >/dev/null 2>&1 ||
      die "mungekey failed"
  fi
  chown munge:munge "$dir/munge-key/munge.key"
  chmod 0400 "$dir/munge-key/munge.key"
  touch "$dir/log/munged.log"
  chown munge:munge "$dir/log/munged.log"

  # setpriv (not su/runuser) so that $! is munged itself.
  start_daemon munged setpriv --reuid=munge --regid=munge --init-groups -- \
    munged -F --socket="$dir/munge/munge.sock" --key-file="$dir/munge-key/munge.key" \
    --pid-file="$dir/munge-key/munged.pid" --seed-file="$dir/munge-key/munged.seed" \
    --log-file="$dir/log/munged.log"
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $dir/munge/munge.sock ]] && break
    [[ -n $(live_pid munged) ]] || die "munged exited"
    sleep 0.05
  done
  [[ -S $dir/munge/munge.sock ]] || die "munged did not create its socket"

  start_daemon slurmctld slurmctld -D -i -f "$conf"
  for ((i = 0; i < 200; i++)); do
    slurm_env timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" && break
    [[ -n $(live_pid slurmctld) ]] || die "slurmctld exited"
    sleep 0.05
  done
  start_daemon slurmd slurmd -D -N localhost -f "$conf"
  for ((i = 0; i < 300; i++)); do
    [[ $(node_state) == idle ]] && break
    [[ -n $(live_pid slurmctld) ]] || die "slurmctld exited"
    [[ -n $(live_pid slurmd) ]] || die "slurmd exited"
    sleep 0.1
  done
  [[ $(node_state) == idle ]] || die "the node did not become idle in 30 s"
  echo "$conf"
}

stop() {
  [[ -d $dir ]] || return 0
  exec 9>>"$dir.lock"
  flock -w 300 9 || die "timed out waiting for the lock $dir.lock"
  stop_all
  echo "slurm-local: stopped" >&2
}

status() {
  if healthy; then
    echo "$conf"
    return 0
  fi
  echo "slurm-local: not running" >&2
  return 3
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
