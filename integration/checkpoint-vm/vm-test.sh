#!/bin/bash
# Runs inside the systemd VM (integration/systemd-vm) on pure cgroup v2 and
# Debian's own 6.1 kernel, as root, with husk and a busybox rootfs in the
# payload: checkpoint/restore with Debian 12's criu 3.17 where the host's
# newer kernel cannot run it, and where the kernel tracks dirty memory
# (soft-dirty), which --pre-dump needs: husk and runc side by side.
# Every check prints "CHECK <name> ok" or "CHECK <name> FAIL <why>";
# exits non-zero if any failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
FAILED=0
ok() { echo "CHECK $1 ok"; }
fail() { echo "CHECK $1 FAIL $2"; FAILED=1; }
[ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "not pure cgroup v2"; exit 1; }
echo "kernel $(uname -r), $(criu --version | head -1), $(runc --version | head -1)"
if ! criu check; then echo "criu check failed"; exit 1; fi
install -m 755 "$here/husk" /usr/local/bin/husk
W=/var/tmp/ckpt
mkdir -p $W
cleanup() {
    for id in $(husk list -q 2>/dev/null); do husk delete -f "$id"; done
    for id in $(runc list -q 2>/dev/null); do runc delete -f "$id"; done
}
trap cleanup EXIT

bundle() { # dir
    mkdir -p "$1"
    cp -a "$here/rootfs" "$1/rootfs"
    cat >"$1/config.json" <<JSON
{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
 "process": {"args": ["sh", "-c", "i=0; while true; do i=\$((i+1)); echo \$i >/tmp/count; sleep 0.1; done"],
             "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
           "cgroupsPath": "/ckpt-\$T", "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64}},
           "maskedPaths": ["/proc/kcore", "/proc/acpi"], "readonlyPaths": ["/proc/sys"]}}
JSON
}
count() { cat "$1/rootfs/tmp/count" 2>/dev/null || echo 0; }

checks() { # T (husk|runc)
    local T=$1 b=$W/$1 n1 n2 n3
    rm -rf "$b" "$W/$T-pre" "$W/$T-full"
    bundle "$b"
    sed -i "s|/ckpt-\\\$T|/ckpt-$T|" "$b/config.json"
    (cd "$b" && timeout 60 $T run -d c1 </dev/null >/dev/null 2>&1) || { fail "$T run" "did not start"; return; }
    sleep 1
    # Memory first, container running; then the rest on top of it.
    if timeout 60 $T checkpoint --pre-dump --image-path $W/$T-pre c1; then ok "$T pre-dump"; else fail "$T pre-dump" "$(tail -3 $W/$T-pre/pre-dump.log)"; fi
    n1=$(count "$b"); sleep 0.5
    [ "$(count "$b")" -gt "$n1" ] && ok "$T keeps running after pre-dump" || fail "$T keeps running after pre-dump" "counter stuck at $n1"
    if timeout 60 $T checkpoint --image-path $W/$T-full --parent-path ../$T-pre c1; then ok "$T dump on the pre-dump"; else fail "$T dump on the pre-dump" "$(tail -3 $W/$T-full/dump.log)"; fi
    n2=$(count "$b"); sleep 0.5
    [ "$(count "$b")" = "$n2" ] && ok "$T stopped by the dump" || fail "$T stopped by the dump" "counter moved past $n2"
    timeout 60 $T state c1 >/dev/null 2>&1 && fail "$T gone after the dump" "state still answers" || ok "$T gone after the dump"
    if (cd "$b" && timeout 60 $T restore -d --image-path $W/$T-full c1 </dev/null >/dev/null 2>$W/$T-restore.err); then ok "$T restore"; else fail "$T restore" "$(cat $W/$T-restore.err; tail -3 $W/$T-full/restore.log)"; fi
    sleep 1
    n3=$(count "$b")
    if [ "$n3" -gt "$n2" ] && [ "$n3" -lt $((n2 + 40)) ]; then ok "$T counts on from $n2 ($n3)"; else fail "$T counts on" "was $n2, now $n3"; fi
    local pid; pid=$(timeout 20 $T state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
    [ "$(cat /proc/${pid:-0}/cgroup 2>/dev/null)" = "0::/ckpt-$T" ] && ok "$T restored into its cgroup" || fail "$T restored into its cgroup" "$(cat /proc/${pid:-0}/cgroup 2>&1)"
    [ "$(cat /sys/fs/cgroup/ckpt-$T/memory.max 2>&1)" = 67108864 ] && ok "$T memory limit" || fail "$T memory limit" "$(cat /sys/fs/cgroup/ckpt-$T/memory.max 2>&1)"
    [ "$(timeout 20 $T exec c1 cat /tmp/count)" -ge "$n3" ] 2>/dev/null && ok "$T exec after restore" || fail "$T exec after restore" "no count"
    timeout 20 $T delete -f c1
    [ ! -e /sys/fs/cgroup/ckpt-$T ] && ok "$T delete leaves no cgroup" || fail "$T delete leaves no cgroup" "still there"
}

checks husk
checks runc
[ $FAILED = 0 ] && echo "checkpoint-vm: PASS" || echo "checkpoint-vm: FAIL"
exit $FAILED
