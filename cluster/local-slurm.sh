#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for testing the SLURM profile on one machine.
#   cluster/local-slurm.sh start   install (Debian packages) if needed, configure, start, wait
#   cluster/local-slurm.sh stop    cancel jobs, stop every daemon by its pid file
# Needs root and apt-get (Debian 12); no systemd, no cgroups, no accounting database: job
# status comes from squeue, so finished jobs stay visible for MinJobAge seconds.
# The node declares two stand-in GPUs of type "standin" (GRES backed by /dev/null and
# /dev/zero, no real GPU): a job asked with --gpus=1 or --gpus=standin:1 gets one, with
# CUDA_VISIBLE_DEVICES=0 and SLURM_GPUS_ON_NODE=1; a job that asks for none gets none.
set -euo pipefail

NODE="${SLURM_NODE:-$(hostname -s)}"
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
log() { echo "[local-slurm] $*"; }

running() { # running PIDFILE NAME
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -q "$2" "/proc/$(cat "$1")/comm" 2>/dev/null
}
retry() { # retry TRIES CMD...  (0.2 s apart)
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@"
}
stop_pidfile() { # stop_pidfile PIDFILE NAME
  running "$1" "$2" || { rm -f "$1"; return 0; }
  local pid; pid=$(cat "$1")
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$1"
}

install_packages() {
  local missing=""
  for command in slurmctld slurmd sbatch munged; do command -v $command >/dev/null || missing=1; done
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || { echo "no apt-get: install slurmctld, slurmd, slurm-client and munge" >&2; exit 1; }
  log "installing slurmctld slurmd slurm-client munge"
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # keep the packages' install scripts from starting the daemons: this script starts them
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

write_config() {
  local cpus mem_mb def_mem new
  # Every CPU of the machine, whatever the caller's own CPU affinity (nproc alone honours it).
  cpus=$(nproc --all)
  # RealMemory must stay below what slurmd detects, or the node is marked invalid: 60% of RAM.
  mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 6 / 10 / 1024 * 1024 ))
  # A job submitted without memory would take the whole node.
  def_mem=$(( mem_mb / cpus / 4 ))
  new=$(mktemp)
  cat > "$new" <<CONF
# single-node test cluster written by cluster/local-slurm.sh
ClusterName=mnistbench
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Finished jobs stay visible to squeue for 5 minutes: the executor's squeue status mode
# needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks.
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
DefMemPerCPU=${def_mem}
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:standin:2 State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=batch Nodes=${NODE} Default=NO MaxTime=INFINITE State=UP
CONF
  CONF_CHANGED=0
  install_if_changed "$new" "$CONF"
  # slurmd counts a GPU only by its device file (a count alone reads as 0 and drains the
  # node): any character device stands in, since no cgroup restricts devices here.
  cat > "$new" <<CONF
# stand-in GPUs written by cluster/local-slurm.sh: no real GPU behind them
AutoDetect=off
Name=gpu Type=standin File=/dev/null
Name=gpu Type=standin File=/dev/zero
CONF
  install_if_changed "$new" "$GRES_CONF"
  rm -f "$new"
}

install_if_changed() { # install_if_changed NEW TARGET  (sets CONF_CHANGED=1 when it did)
  if ! cmp -s "$1" "$2"; then install -D -m 0644 "$1" "$2"; CONF_CHANGED=1; fi
}

start() {
  [ "$(id -u)" = 0 ] || { echo "local-slurm: must run as root" >&2; exit 1; }
  install_packages
  getent hosts "$NODE" >/dev/null || { log "adding $NODE to /etc/hosts"; echo "127.0.0.1 $NODE" >> /etc/hosts; }
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0600 /etc/munge/munge.key
  install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
  install -d -o root -g root -m 0755 /var/spool/slurmd /etc/slurm
  write_config

  running /run/munge/munged.pid munged || { log "starting munged"; runuser -u munge -- /usr/sbin/munged; }
  retry 50 sh -c 'munge -n | unmunge'
  if [ "$CONF_CHANGED" = 1 ]; then
    stop_pidfile /run/slurmd.pid slurmd
    stop_pidfile /run/slurmctld.pid slurmctld
  fi
  running /run/slurmctld.pid slurmctld || { log "starting slurmctld"; slurmctld; }
  retry 100 scontrol ping
  # slurmd counts (and its jobs inherit) only the CPUs it may run on: give it them all.
  running /run/slurmd.pid slurmd || { log "starting slurmd"; taskset -c "0-$(( $(nproc --all) - 1 ))" slurmd -N "$NODE"; }

  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
    case "$state" in
      idle|mixed|allocated|completing) log "node $NODE is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  echo "local-slurm: node $NODE not ready (state '$state')" >&2
  tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
}

stop() {
  if command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1; then
    scancel --user="$(id -un)" 2>/dev/null || true # leave no job behind
  fi
  stop_pidfile /run/slurmd.pid slurmd
  stop_pidfile /run/slurmctld.pid slurmctld
  stop_pidfile /run/munge/munged.pid munged
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
