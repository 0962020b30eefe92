#!/bin/bash
# The harness's self-test, run inside the VM by husk-test.service (see
# ../selftest.sh): systemd is PID 1 and up, the system bus answers,
# transient scopes with resource limits work, the cgroup layout is the one
# the boot mode (HUSK_VM_MODE) promises, containerd and runc run.
# Prints "CHECK <name> ok|FAIL <why>" per check and "N passed, M failed".
set -u
passed=0 failed=0
ok() { echo "CHECK $1 ok${2:+ ($2)}"; passed=$((passed + 1)); }
fail() { echo "CHECK $1 FAIL $2"; failed=$((failed + 1)); }
fstype() { stat -fc %T "$1" 2>/dev/null; }
mode=${HUSK_VM_MODE:-unified}
echo "selftest: mode $mode, kernel $(uname -r), $(systemctl --version | head -n 1)"

comm=$(cat /proc/1/comm)
exe=$(readlink /proc/1/exe)
if [ "$comm" = systemd ] && [[ $exe == */systemd ]]; then ok pid1-systemd "$exe"; else fail pid1-systemd "pid 1 is $comm ($exe)"; fi

state=$(timeout 120 systemctl is-system-running --wait 2>&1)
case $state in
    running) ok system-running "$state" ;;
    degraded) ok system-running "$state"; timeout 10 systemctl --failed --no-pager ;;
    *) fail system-running "systemctl is-system-running --wait: '$state'"; timeout 10 systemctl --failed --no-pager ;;
esac

out=$(timeout 30 busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
    org.freedesktop.systemd1.Manager GetUnit s dbus.service 2>&1)
if [ "$out" = 'o "/org/freedesktop/systemd1/unit/dbus_2eservice"' ]; then ok dbus-getunit "$out"; else fail dbus-getunit "busctl: $out"; fi
# The same over the system bus socket explicitly (what a cgroup driver uses).
if [ -S /run/dbus/system_bus_socket ]; then ok system-bus-socket; else fail system-bus-socket "/run/dbus/system_bus_socket missing"; fi
if [ -S /run/systemd/private ]; then ok systemd-private-socket; else fail systemd-private-socket "/run/systemd/private missing"; fi

if out=$(timeout 60 systemd-run --quiet --scope --unit husk-probe -p MemoryMax=50M true 2>&1); then
    ok scope-memorymax
else
    fail scope-memorymax "systemd-run: $out"
fi
# The limit lands in the scope's cgroup (memory.max on v2, the v1 memory
# controller's limit_in_bytes on hybrid).
# shellcheck disable=SC2016
out=$(timeout 60 systemd-run --quiet --scope --unit husk-probe-2 -p MemoryMax=50M sh -c '
    if [ -d /sys/fs/cgroup/memory ]; then
        p=$(sed -n "s/^[0-9]*:[^:]*memory[^:]*://p" /proc/self/cgroup)
        echo "$p $(cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes)"
    else
        p=$(sed -n "s/^0:://p" /proc/self/cgroup)
        echo "$p $(cat /sys/fs/cgroup$p/memory.max)"
    fi' 2>&1)
case $out in
    */husk-probe-2.scope\ 52428800) ok scope-limit-applied "$out" ;;
    *) fail scope-limit-applied "want <path>/husk-probe-2.scope 52428800, got: $out" ;;
esac

root_fs=$(fstype /sys/fs/cgroup)
v1=$(awk '$3 == "cgroup" {print $2}' /proc/mounts | tr '\n' ' ')
if [ "$mode" = hybrid ]; then
    if [ "$root_fs" = tmpfs ]; then ok cgroup-root-tmpfs; else fail cgroup-root-tmpfs "/sys/fs/cgroup is $root_fs"; fi
    u=$(fstype /sys/fs/cgroup/unified)
    if [ "$u" = cgroup2fs ]; then ok cgroup-unified-v2; else fail cgroup-unified-v2 "/sys/fs/cgroup/unified is ${u:-missing}"; fi
    m=$(awk '$2 == "/sys/fs/cgroup/memory" && $3 == "cgroup" {print $4}' /proc/mounts)
    if [[ ,$m, == *,memory,* ]]; then ok cgroup-v1-memory "$m"; else fail cgroup-v1-memory "no v1 memory hierarchy at /sys/fs/cgroup/memory (v1 mounts: $v1)"; fi
    s=$(awk '$2 == "/sys/fs/cgroup/systemd" && $3 == "cgroup" {print $4}' /proc/mounts)
    if [[ ,$s, == *,name=systemd,* ]]; then ok cgroup-v1-name-systemd; else fail cgroup-v1-name-systemd "no name=systemd hierarchy at /sys/fs/cgroup/systemd"; fi
    echo "selftest: v1 hierarchies: $v1"
else
    if [ "$root_fs" = cgroup2fs ]; then ok cgroup-root-v2 "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"; else fail cgroup-root-v2 "/sys/fs/cgroup is $root_fs"; fi
    if [ -z "$v1" ]; then ok cgroup-no-v1; else fail cgroup-no-v1 "v1 hierarchies mounted: $v1"; fi
fi

# The guest kernel's modules are in the image (overlayfs for containerd).
if out=$(timeout 30 modprobe overlay 2>&1) && grep -qw overlay /proc/filesystems; then
    ok kernel-modules "overlay loaded"
else
    fail kernel-modules "modprobe overlay: $out"
fi

if out=$(timeout 30 containerd --version 2>&1); then ok containerd-version "$out"; else fail containerd-version "$out"; fi
if out=$(timeout 30 runc --version 2>&1); then ok runc-version "$(echo "$out" | head -n 1)"; else fail runc-version "$out"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
