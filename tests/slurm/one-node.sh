#!/usr/bin/env bash
# A one-node SLURM cluster for the sweep tests, on this machine (as root, without systemd).
#   one-node.sh start DIR   installs Debian's slurm-wlm and munge when absent, starts munged
#                           (if not running), slurmctld and slurmd with their state in DIR,
#                           and prints the SLURM_CONF to use; waits until the node is idle.
#   one-node.sh stop DIR    stops the daemons started with DIR.
set -euo pipefail

cmd=${1:?start or stop}
dir=${2:?a folder for the cluster state}

stop() {
    for pid in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
        if [[ -f $pid ]]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
    done
    # Wait for them to go, so that the next cluster can use the ports.
    for _ in $(seq 50); do
        alive=0
        for pid in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
            if [[ -f $pid ]] && kill -0 "$(cat "$pid")" 2>/dev/null; then alive=1; fi
        done
        [[ $alive == 0 ]] && return 0
        sleep 0.2
    done
}

if [[ $cmd == stop ]]; then
    stop
    if [[ -f $dir/munged.started ]]; then pkill -x munged || true; fi
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge (Debian packages, once per machine)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >&2
fi

# munge: one key per machine; one daemon (stopped with the cluster that started it).
if [[ ! -f /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
mkdir -p "$dir"
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged
    touch "$dir/munged.started"
fi

mkdir -p "$dir/state" "$dir/spool"
host=$(hostname -s)
cpus=$(nproc)
cat > "$dir/slurm.conf" <<EOF
ClusterName=plastic-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=10
MinJobAge=300
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf
slurmctld
slurmd
for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        echo "$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "the one-node cluster did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
