#!/bin/bash
# Runs inside the systemd VM (integration/systemd-vm), as root, with husk
# and a busybox rootfs in the payload next to this script: husk's systemd
# cgroup driver on a real systemd, on pure cgroup v2 or hybrid, whichever
# the VM booted. Every check prints "CHECK <name> ok" or
# "CHECK <name> FAIL <why>"; exits non-zero if any failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
H="$here/husk"
ROOTFS="$here/rootfs"
ROOT=/run/husk-sd-test
FAILED=0
ok() { echo "CHECK $1 ok"; }
fail() { echo "CHECK $1 FAIL $2"; FAILED=1; }
expect() { # name got want
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'"; fi
}
husk() { timeout 60 "$H" --root "$ROOT" --systemd-cgroup "$@"; }
prop() { systemctl show -P "$2" "$1" 2>&1; }

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then MODE=unified; else MODE=hybrid; fi
echo "mode $MODE, kernel $(uname -r), $(systemctl --version | head -1)"
mkdir -p "$ROOT"

# config.json for `args` with `resources` and `cgroupsPath`.
config() { # dir cgroupsPath args-json resources-json
    mkdir -p "$1"
    ln -sfn "$ROOTFS" "$1/rootfs"
    cat > "$1/config.json" <<EOF
{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true},
 "process": {"args": $3, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
           "cgroupsPath": "$2", "resources": $4}}
EOF
}

cleanup() {
    for id in $(timeout 20 "$H" --root "$ROOT" list -q 2>/dev/null); do husk delete -f "$id" >/dev/null 2>&1; done
}
trap cleanup EXIT

# ---- a container with limits -------------------------------------------
RES='{"memory": {"limit": 67108864}, "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
      "pids": {"limit": 32},
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}'
config /tmp/c1 "system.slice:husk-test:c1" '["sleep", "300"]' "$RES"
U=husk-test-c1.scope
if (cd /tmp/c1 && husk run -d c1 </dev/null); then ok run; else fail run "husk run -d failed"; fi
expect unit-active "$(systemctl is-active $U)" active
expect unit-slice "$(prop $U Slice)" system.slice
expect unit-delegate "$(prop $U Delegate)" yes
expect unit-tasksmax "$(prop $U TasksMax)" 32
expect unit-cpuquota "$(prop $U CPUQuotaPerSecUSec)" 500ms
PID=$(husk state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
if systemd-cgls --no-pager -u $U 2>/dev/null | grep -q "$PID"; then ok cgls; else fail cgls "pid $PID not in systemd-cgls -u $U"; fi
if grep -q "/system.slice/$U" /proc/"$PID"/cgroup; then ok proc-cgroup; else fail proc-cgroup "$(cat /proc/$PID/cgroup)"; fi
if [ $MODE = unified ]; then
    D=/sys/fs/cgroup/system.slice/$U
    expect unit-memorymax "$(prop $U MemoryMax)" 67108864
    expect file-memory "$(cat $D/memory.max)" 67108864
    expect file-pids "$(cat $D/pids.max)" 32
    expect file-cpu "$(cat $D/cpu.max)" "50000 100000"
    expect file-cpuset "$(cat $D/cpuset.cpus)" 0
    expect unit-cpus "$(prop $U AllowedCPUs)" 0
else
    expect unit-memorylimit "$(prop $U MemoryLimit)" 67108864
    expect file-memory "$(cat /sys/fs/cgroup/memory/system.slice/$U/memory.limit_in_bytes)" 67108864
    expect file-pids "$(cat /sys/fs/cgroup/pids/system.slice/$U/pids.max)" 32
    expect file-cpu "$(cat /sys/fs/cgroup/cpu,cpuacct/system.slice/$U/cpu.cfs_quota_us)" 50000
    # cpuset is not systemd's on v1: husk made it, at the same path.
    expect file-cpuset "$(cat /sys/fs/cgroup/cpuset/system.slice/$U/cpuset.cpus)" 0
fi
expect unit-devicepolicy "$(prop $U DevicePolicy)" strict
# Devices: /dev/null is allowed; /dev/kmsg (1:11, bound in) is not.
if husk exec c1 sh -c 'echo x > /dev/null' && ! husk exec c1 head -c1 /dev/kmsg >/dev/null 2>&1; then
    ok devices
else
    fail devices "/dev/null should open and /dev/kmsg not"
fi
if husk exec c1 cat /proc/self/cgroup | grep -q "$U"; then ok exec-cgroup; else fail exec-cgroup "exec not in the unit"; fi
if husk ps c1 | grep -q sleep; then ok ps; else fail ps "$(husk ps c1 2>&1)"; fi
if husk events --stats c1 | grep -q '"memory"'; then ok events-stats; else fail events-stats "$(husk events --stats c1 2>&1)"; fi
husk update --memory 134217728 --pids-limit 40 c1 || fail update "husk update failed"
expect update-tasksmax "$(prop $U TasksMax)" 40
if [ $MODE = unified ]; then
    expect update-memorymax "$(prop $U MemoryMax)" 134217728
    expect update-file "$(cat /sys/fs/cgroup/system.slice/$U/memory.max)" 134217728
else
    expect update-memorylimit "$(prop $U MemoryLimit)" 134217728
fi
husk pause c1 && expect pause "$(husk state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" paused
husk resume c1 && expect resume "$(husk state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" running
husk delete -f c1 || fail delete "delete -f failed"
sleep 1
if systemctl list-units --all --no-legend | grep -q "$U"; then fail unit-gone "$U still listed after delete"; else ok unit-gone; fi
[ -e /sys/fs/cgroup/system.slice/$U ] || [ -e /sys/fs/cgroup/cpuset/system.slice/$U ] && fail dirs-gone "cgroup dirs left" || ok dirs-gone

# ---- the default unit, a nested slice ----------------------------------
config /tmp/c2 "" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/c2 && husk run c2 </dev/null)
if echo "$out" | grep -q "/system.slice/husk-c2.scope"; then ok default-unit; else fail default-unit "$out"; fi
config /tmp/c3 "kubepods-besteffort.slice:cri:c3" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/c3 && husk run c3 </dev/null)
if echo "$out" | grep -q "/kubepods.slice/kubepods-besteffort.slice/cri-c3.scope"; then ok nested-slice; else fail nested-slice "$out"; fi
husk delete -f c2 >/dev/null 2>&1; husk delete -f c3 >/dev/null 2>&1

# ---- a leftover unit of the same name ----------------------------------
systemd-run --scope --unit=husk-test-c4 sleep 300 >/dev/null 2>&1 &
for _ in $(seq 50); do systemctl is-active -q husk-test-c4.scope && break; sleep 0.1; done
config /tmp/c4 "system.slice:husk-test:c4" '["sleep", "300"]' '{}'
if (cd /tmp/c4 && husk run -d c4 </dev/null) && husk exec c4 cat /proc/self/cgroup | grep -q husk-test-c4.scope; then
    ok leftover-unit
else
    fail leftover-unit "a leftover unit of the same name stopped the container"
fi
husk delete -f c4 >/dev/null 2>&1

# ---- husk killed: delete -f leaves no unit behind ------------------------
config /tmp/c5 "system.slice:husk-test:c5" '["sleep", "300"]' '{}'
(cd /tmp/c5 && exec "$H" --root "$ROOT" --systemd-cgroup run c5 </dev/null >/dev/null 2>&1) &
RUNPID=$!
for _ in $(seq 100); do systemctl is-active -q husk-test-c5.scope && break; sleep 0.1; done
kill -9 $RUNPID
husk delete -f c5 || fail killed-delete "delete -f after a killed husk failed"
sleep 1
if systemctl list-units --all --no-legend | grep -q husk-test-c5; then fail killed-unit-gone "unit lingers"; else ok killed-unit-gone; fi

[ $FAILED = 0 ] && echo "systemd-cgroup: all checks passed ($MODE)"
exit $FAILED
