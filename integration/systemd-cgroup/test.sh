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
mkdir -p "$ROOT" "$ROOT-husk" "$ROOT-runc"

# config.json for `args` with `resources` and `cgroupsPath`.
config() { # dir cgroupsPath args-json resources-json
    mkdir -p "$1"
    cat > "$1/config.json" <<EOF
{"ociVersion": "1.0.2", "root": {"path": "$ROOTFS", "readonly": true},
 "process": {"args": $3, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
           "cgroupsPath": "$2", "resources": $4}}
EOF
}

cleanup() {
    local r
    for r in "$H:$ROOT" "$H:$ROOT-husk" "runc:$ROOT-runc"; do
        for id in $(timeout 20 "${r%%:*}" --root "${r#*:}" list -q 2>/dev/null); do
            timeout 20 "${r%%:*}" --root "${r#*:}" --systemd-cgroup delete -f "$id" >/dev/null 2>&1
        done
    done
}
trap cleanup EXIT

# ---- the driver's checks, for husk and for runc side by side -----------
driver_checks() { # T(runtime tag: husk|runc)
local T=$1 RT
case $T in husk) RT="$H" ;; runc) RT=runc ;; esac
rt() { timeout 60 "$RT" --root "$ROOT-$T" --systemd-cgroup "$@"; }
local U=$T-test-c1.scope PID out
RES='{"memory": {"limit": 67108864}, "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
      "pids": {"limit": 32},
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}'
config /tmp/$T-c1 "system.slice:$T-test:c1" '["sleep", "300"]' "$RES"
# (A detached container keeps the stdio it is given: never a pipe that a
# $(...) would wait on until the container exits.)
if (cd /tmp/$T-c1 && rt run -d c1 </dev/null >/dev/null 2>/tmp/$T-c1.err); then ok $T-run; else fail $T-run "run -d failed: $(cat /tmp/$T-c1.err)"; fi
expect $T-unit-active "$(systemctl is-active $U)" active
expect $T-unit-slice "$(prop $U Slice)" system.slice
expect $T-unit-delegate "$(prop $U Delegate)" yes
expect $T-unit-tasksmax "$(prop $U TasksMax)" 32
expect $T-unit-cpuquota "$(prop $U CPUQuotaPerSecUSec)" 500ms
PID=$(rt state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
if systemd-cgls --no-pager -u $U 2>/dev/null | grep -q "$PID"; then ok $T-cgls; else fail $T-cgls "pid $PID not in systemd-cgls -u $U"; fi
if grep -q "/system.slice/$U" /proc/"$PID"/cgroup; then ok $T-proc-cgroup; else fail $T-proc-cgroup "$(cat /proc/$PID/cgroup)"; fi
if [ $MODE = unified ]; then
    local D=/sys/fs/cgroup/system.slice/$U
    expect $T-unit-memorymax "$(prop $U MemoryMax)" 67108864
    expect $T-file-memory "$(cat $D/memory.max)" 67108864
    expect $T-file-pids "$(cat $D/pids.max)" 32
    expect $T-file-cpu "$(cat $D/cpu.max)" "50000 100000"
    expect $T-file-cpuset "$(cat $D/cpuset.cpus)" 0
    expect $T-unit-cpus "$(prop $U AllowedCPUs)" 0
else
    expect $T-unit-memorylimit "$(prop $U MemoryLimit)" 67108864
    expect $T-file-memory "$(cat /sys/fs/cgroup/memory/system.slice/$U/memory.limit_in_bytes)" 67108864
    expect $T-file-pids "$(cat /sys/fs/cgroup/pids/system.slice/$U/pids.max)" 32
    expect $T-file-cpu "$(cat /sys/fs/cgroup/cpu,cpuacct/system.slice/$U/cpu.cfs_quota_us)" 50000
    # cpuset is not systemd's on v1: the runtime made it, at the same path.
    expect $T-file-cpuset "$(cat /sys/fs/cgroup/cpuset/system.slice/$U/cpuset.cpus)" 0
fi
expect $T-unit-devicepolicy "$(prop $U DevicePolicy)" strict
# Devices: /dev/null is allowed; /dev/kmsg (1:11, bound in) is not.
if rt exec c1 sh -c 'echo x > /dev/null' && ! rt exec c1 head -c1 /dev/kmsg >/dev/null 2>&1; then
    ok $T-devices
else
    fail $T-devices "/dev/null should open and /dev/kmsg not"
fi
if rt exec c1 cat /proc/self/cgroup | grep -q "$U"; then ok $T-exec-cgroup; else fail $T-exec-cgroup "exec not in the unit"; fi
if rt ps c1 | grep -q sleep; then ok $T-ps; else fail $T-ps "$(rt ps c1 2>&1)"; fi
if rt events --stats c1 | grep -q '"memory"'; then ok $T-events-stats; else fail $T-events-stats "$(rt events --stats c1 2>&1)"; fi
rt update --memory 134217728 --pids-limit 40 c1 || fail $T-update "update failed"
expect $T-update-tasksmax "$(prop $U TasksMax)" 40
if [ $MODE = unified ]; then
    expect $T-update-memorymax "$(prop $U MemoryMax)" 134217728
    expect $T-update-file "$(cat /sys/fs/cgroup/system.slice/$U/memory.max)" 134217728
else
    expect $T-update-memorylimit "$(prop $U MemoryLimit)" 134217728
fi
rt pause c1 && expect $T-pause "$(rt state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" paused
rt resume c1 && expect $T-resume "$(rt state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" running
rt delete -f c1 || fail $T-delete "delete -f failed"
sleep 1
if systemctl list-units --all --no-legend | grep -q "$U"; then fail $T-unit-gone "$U still listed after delete"; else ok $T-unit-gone; fi
if [ -e /sys/fs/cgroup/system.slice/$U ] || [ -e /sys/fs/cgroup/cpuset/system.slice/$U ]; then fail $T-dirs-gone "cgroup dirs left"; else ok $T-dirs-gone; fi

# A nested slice.
config /tmp/$T-c3 "$T-besteffort.slice:cri:c3" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/$T-c3 && rt run c3 </dev/null)
if echo "$out" | grep -q "/$T.slice/$T-besteffort.slice/cri-c3.scope"; then ok $T-nested-slice; else fail $T-nested-slice "$out"; fi
rt delete -f c3 >/dev/null 2>&1

# A leftover unit of the same name.
systemd-run --scope --unit=$T-test-c4 sleep 300 >/dev/null 2>&1 &
for _ in $(seq 50); do systemctl is-active -q $T-test-c4.scope && break; sleep 0.1; done
config /tmp/$T-c4 "system.slice:$T-test:c4" '["sleep", "300"]' '{}'
if (cd /tmp/$T-c4 && rt run -d c4 </dev/null >/dev/null 2>/tmp/$T-c4.err) && rt exec c4 cat /proc/self/cgroup | grep -q $T-test-c4.scope; then
    ok $T-leftover-unit
else
    fail $T-leftover-unit "a leftover unit of the same name stopped the container: $(cat /tmp/$T-c4.err) $(rt exec c4 cat /proc/self/cgroup 2>&1)"
fi
rt delete -f c4 >/dev/null 2>&1

# The runtime killed: delete -f leaves no unit behind.
config /tmp/$T-c5 "system.slice:$T-test:c5" '["sleep", "300"]' '{}'
(cd /tmp/$T-c5 && exec "$RT" --root "$ROOT-$T" --systemd-cgroup run c5 </dev/null >/dev/null 2>&1) &
local RUNPID=$!
for _ in $(seq 100); do systemctl is-active -q $T-test-c5.scope && break; sleep 0.1; done
kill -9 $RUNPID
rt delete -f c5 || fail $T-killed-delete "delete -f after a killed runtime failed"
sleep 1
if ! systemctl list-units --all --no-legend | grep -q $T-test-c5; then
    ok $T-killed-unit-gone
elif [ $T = runc ] && [ $MODE = hybrid ]; then
    # Seen with Debian's runc 1.1.5: reported, not held against husk.
    echo "CHECK $T-killed-unit-gone differs: the unit lingers (runc 1.1.5 on hybrid)"
    systemctl stop $T-test-c5.scope >/dev/null 2>&1
else
    fail $T-killed-unit-gone "unit lingers"
fi

# 20 containers started at once all get their scopes.
local i
for i in $(seq 20); do
    config /tmp/$T-p$i "system.slice:$T-par:p$i" '["sleep", "300"]' '{}'
    (cd /tmp/$T-p$i && rt run -d p$i </dev/null >/tmp/$T-p$i.log 2>&1) &
done
wait
local n=0
for i in $(seq 20); do
    if systemctl is-active -q $T-par-p$i.scope; then n=$((n+1)); else echo "$T-par-p$i: $(cat /tmp/$T-p$i.log)"; fi
done
expect $T-parallel-scopes $n 20
for i in $(seq 20); do rt delete -f p$i >/dev/null 2>&1; done
}

driver_checks husk
driver_checks runc

# ---- husk only ---------------------------------------------------------
config /tmp/c2 "" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/c2 && husk run c2 </dev/null)
if echo "$out" | grep -q "/system.slice/husk-c2.scope"; then ok default-unit; else fail default-unit "$out"; fi
husk delete -f c2 >/dev/null 2>&1
# A name ending in .slice is a slice unit (kubelet's pod cgroups), the
# process moved into it.
config /tmp/c7 "system.slice::husk-pod7.slice" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/c7 && husk run c7 </dev/null)
if echo "$out" | grep -q "/husk.slice/husk-pod7.slice\$" && [ "$(prop husk-pod7.slice Slice)" = husk.slice ]; then ok slice-unit; else fail slice-unit "$out"; fi
husk delete -f c7 >/dev/null 2>&1
systemctl stop husk-pod7.slice >/dev/null 2>&1

# Without dbus-daemon: systemd's private socket. (Units that need dbus
# would start it again: masked for the check.)
systemctl mask --runtime dbus.socket dbus.service >/dev/null 2>&1
systemctl stop dbus.socket dbus.service
if busctl --system status >/dev/null 2>&1; then fail no-dbus "the system bus still answers"; fi
config /tmp/c6 "system.slice:husk-test:c6" '["cat", "/proc/self/cgroup"]' '{}'
out=$(cd /tmp/c6 && husk run c6 </dev/null 2>&1)
if echo "$out" | grep -q "/system.slice/husk-test-c6.scope"; then ok private-socket; else fail private-socket "$out"; fi
husk delete -f c6 >/dev/null 2>&1
systemctl unmask --runtime dbus.socket dbus.service >/dev/null 2>&1
systemctl start dbus.socket dbus.service

# ---- engines configured for the systemd driver ---------------------------
REF=docker.io/library/husktest:latest
# The memory limit file of a unit's cgroup, seen from the host.
memfile() { if [ $MODE = unified ]; then echo /sys/fs/cgroup$1/memory.max; else echo /sys/fs/cgroup/memory$1/memory.limit_in_bytes; fi; }
CD=/run/husk-ctd
mkdir -p $CD/root $CD/state
cat > $CD/config.toml <<CONF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CD/sock"
[ttrpc]
  address = "$CD/sock.ttrpc"
CONF
PATH="$here:$PATH" containerd --config $CD/config.toml >$CD/log 2>&1 &
CDPID=$!
CTR=(timeout 60 ctr --address $CD/sock -n sd)
for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
if "${CTR[@]}" image import --all-platforms "$here/image.tar" >/dev/null; then
    # The runc shim with BinaryName = husk and SystemdCgroup = true, then
    # husk's own shim (which takes the driver from the path's shape).
    for shim in runc husk; do
        case $shim in
            runc) rtflags=(--runtime io.containerd.runc.v2 --runc-binary "$H" --runc-systemd-cgroup) ;;
            husk) rtflags=(--runtime io.containerd.husk.v2) ;;
        esac
        out=$("${CTR[@]}" run -d "${rtflags[@]}" --cgroup system.slice:ctr:$shim --memory-limit 67108864 $REF $shim sleep 300 2>&1 </dev/null)
        got=$(cat "$(memfile /system.slice/ctr-$shim.scope)" 2>&1)
        if [ "$(systemctl is-active ctr-$shim.scope)" = active ] && [ "$got" = 67108864 ]; then
            ok containerd-$shim-shim
        else
            fail containerd-$shim-shim "$out; memory limit: $got"
        fi
        "${CTR[@]}" task kill -s SIGKILL $shim >/dev/null 2>&1
        sleep 1
        "${CTR[@]}" task rm -f $shim >/dev/null 2>&1
        "${CTR[@]}" container rm $shim >/dev/null 2>&1
    done
else
    fail containerd-import "$(tail -3 $CD/log)"
fi
kill $CDPID
wait $CDPID 2>/dev/null

if command -v dockerd >/dev/null; then
    DD=/run/husk-dockerd
    mkdir -p $DD
    dockerd --data-root $DD/root --exec-root $DD/exec -H unix://$DD/sock --pidfile $DD/pid \
        --iptables=false --bridge=none --exec-opt native.cgroupdriver=systemd \
        --add-runtime husk="$H" --default-runtime husk >$DD/log 2>&1 &
    DDPID=$!
    DOCKER=(timeout 60 docker -H unix://$DD/sock)
    for _ in $(seq 150); do "${DOCKER[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
    if "${DOCKER[@]}" load -i "$here/image.tar" >/dev/null; then
        # The VM's kernel has AppArmor but the image has no apparmor_parser.
        id=$("${DOCKER[@]}" run -d --network none --security-opt apparmor=unconfined --memory 64m husktest:latest sleep 300 2>&1)
        got=$(cat "$(memfile /system.slice/docker-$id.scope)" 2>&1)
        if [ "$(systemctl is-active docker-$id.scope)" = active ] && [ "$got" = 67108864 ]; then ok docker-systemd; else fail docker-systemd "$id; memory limit: $got"; fi
        "${DOCKER[@]}" rm -f "$id" >/dev/null 2>&1
    else
        fail docker-load "$(tail -3 $DD/log)"
    fi
    kill $DDPID
    wait $DDPID 2>/dev/null
else
    fail docker "dockerd is not in the VM image"
fi

[ $FAILED = 0 ] && echo "systemd-cgroup: all checks passed ($MODE)"
exit $FAILED
