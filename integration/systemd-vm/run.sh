#!/bin/bash
# Boot a real systemd host (Debian 12 from mkimage.sh) under qemu and run a
# payload in it:
#
#     run.sh [--hybrid] [--blame] PAYLOAD_DIR
#
# PAYLOAD_DIR must hold run.sh; it becomes the second disk (/dev/vdb,
# ext4, label husk-payload), mounted at /payload in the VM, where
# husk-test.service runs /payload/run.sh once the boot is over (systemd and
# the system D-Bus up). Its output goes to the serial console and to
# /payload/output.log; the VM prints "HUSK-SYSTEMD-VM-RESULT: PASS|FAIL"
# by its exit status and powers off. The payload sees HUSK_VM_MODE
# (unified or hybrid) and /payload/bin first in PATH.
#
# Default: pure cgroup v2 (systemd.unified_cgroup_hierarchy=1). --hybrid:
# systemd's hybrid layout (v1 controllers on a tmpfs at /sys/fs/cgroup,
# cgroup2 at /sys/fs/cgroup/unified). --blame: print systemd-analyze
# blame and critical-chain before the payload.
#
# The kernel is the host's Debian kernel and initrd (/boot, the newest with
# modules: linux-image-amd64). The root disk is the cached image, used with
# snapshot=on so it stays pristine. qemu runs in software emulation (TCG)
# unless ACCEL=kvm.
#
# Exits 0 only when the console shows "HUSK-SYSTEMD-VM-RESULT: PASS".
# Environment: TIMEOUT (seconds for the whole boot and payload, default
# 300), KEEP_LOG=1 (keep the console log and the payload's output.log in
# LOG_DIR, default this directory), RESULTS_DIR (copy the payload disk's
# output.log and out/ there after the run), PAYLOAD_SPACE_MB (free space
# on the payload disk, default 256), MEM (MiB, default 2048), SMP
# (default 2), ACCEL (tcg or kvm, default tcg), QEMU, KERNEL_VERSION,
# APPEND (extra kernel arguments).
set -euo pipefail

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

usage() { echo "usage: $0 [--hybrid] [--blame] PAYLOAD_DIR" >&2; exit 2; }
mode=unified
blame=0
while [ $# -gt 0 ]; do
    case $1 in
        --hybrid) mode=hybrid; shift ;;
        --unified) mode=unified; shift ;;
        --blame) blame=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || usage
PAYLOAD_DIR=$1
[ -d "$PAYLOAD_DIR" ] || die "payload directory $PAYLOAD_DIR not found"
[ -f "$PAYLOAD_DIR/run.sh" ] || die "$PAYLOAD_DIR/run.sh not found (the payload's entry point)"

QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-300}
MEM=${MEM:-2048}
SMP=${SMP:-2}
LOG_DIR=${LOG_DIR:-$SVM_DIR}
need_root
need "$QEMU" qemu-system-x86
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need timeout coreutils
pick_kernel
image_path

if [ ! -f "$IMAGE" ]; then
    note "no cached image $IMAGE: building it (mkimage.sh)"
    IMAGE=$("$SVM_DIR/mkimage.sh") || die "mkimage.sh failed"
    [ -f "$IMAGE" ] || die "mkimage.sh did not make $IMAGE"
fi

work=$(mktemp -d /tmp/husk-systemd-vm.XXXXXX)
qpid=
cleanup() {
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        kill -TERM "$qpid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$qpid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$qpid" 2>/dev/null || true
    fi
    if [ "${KEEP_LOG:-0}" = 1 ] && [ -f "$work/console.log" ]; then
        mkdir -p "$LOG_DIR"
        cp "$work/console.log" "$LOG_DIR/console-$mode.log"
        if [ -f "$work/payload.img" ]; then
            debugfs -R "dump /output.log $LOG_DIR/output-$mode.log" "$work/payload.img" >/dev/null 2>&1 || true
        fi
        note "kept $LOG_DIR/console-$mode.log and output-$mode.log"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The payload disk: the directory's files plus free space for output.
used_mb=$(du -sm --apparent-size "$PAYLOAD_DIR" | cut -f1)
size_mb=$((used_mb + used_mb / 4 + ${PAYLOAD_SPACE_MB:-256}))
timeout 300 mkfs.ext4 -q -F -t ext4 -L husk-payload -d "$PAYLOAD_DIR" "$work/payload.img" "${size_mb}M" >/dev/null \
    || die "mkfs.ext4 -d $PAYLOAD_DIR failed"

append="root=/dev/vda rootfstype=ext4 rw console=ttyS0 panic=-1 noresume quiet loglevel=3"
append+=" systemd.show_status=error mitigations=off"
if [ "$mode" = hybrid ]; then
    append+=" systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"
else
    append+=" systemd.unified_cgroup_hierarchy=1"
fi
[ "$blame" = 1 ] && append+=" husk.blame=1"
[ -n "${APPEND:-}" ] && append+=" $APPEND"

# Software emulation by default: a /dev/kvm can be there and still not run
# a stock kernel (a nested PVM host hangs in the guest's early boot), so KVM
# is used only when asked for.
case ${ACCEL:-tcg} in
    kvm) [ -w /dev/kvm ] || die "ACCEL=kvm but /dev/kvm is not usable"
         accel=(-accel kvm -cpu host) ;;
    tcg) accel=(-accel "tcg,thread=multi" -cpu max) ;;
    *) die "ACCEL must be tcg or kvm" ;;
esac

note "booting $KERNEL ($mode cgroups, ${accel[1]}, timeout ${TIMEOUT}s) with $IMAGE"
t0=$SECONDS
set +e
# TMPDIR: where qemu keeps the snapshot overlay of the root disk.
TMPDIR=$work timeout --kill-after=10 "$TIMEOUT" "$QEMU" \
    "${accel[@]}" -m "$MEM" -smp "$SMP" -nographic -no-reboot -nic none \
    -device virtio-rng-pci \
    -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
    -drive "file=$IMAGE,format=raw,if=virtio,snapshot=on" \
    -drive "file=$work/payload.img,format=raw,if=virtio,cache=unsafe" \
    </dev/null >"$work/console.log" 2>&1 &
qpid=$!
wait "$qpid"
rc=$?
qpid=
set -e
elapsed=$((SECONDS - t0))

if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    debugfs -R "dump /output.log $RESULTS_DIR/output.log" "$work/payload.img" >/dev/null 2>&1 || true
    if debugfs -R "stat /out" "$work/payload.img" 2>/dev/null | grep -q 'Type: directory'; then
        debugfs -R "rdump /out $RESULTS_DIR" "$work/payload.img" >/dev/null 2>&1 || true
    fi
fi

# The console without carriage returns and terminal escapes.
tr -d '\r' <"$work/console.log" | sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc/\n/g' >"$work/console.txt"
if grep -qx 'HUSK-SYSTEMD-VM-RESULT: PASS' "$work/console.txt"; then
    # The wrapper's and the payload's lines.
    sed -n '/^husk-test: /,$p' "$work/console.txt"
    echo "systemd-vm: PASS ($mode, ${elapsed}s)"
    exit 0
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "systemd-vm: FAIL ($mode): timed out after ${TIMEOUT}s. Console (last 100 lines):" >&2
elif grep -qx 'HUSK-SYSTEMD-VM-RESULT: FAIL' "$work/console.txt"; then
    echo "systemd-vm: FAIL ($mode): the payload failed (${elapsed}s). Console (last 100 lines):" >&2
else
    echo "systemd-vm: FAIL ($mode): no result line (qemu exit $rc, ${elapsed}s). Console (last 100 lines):" >&2
fi
tail -n 100 "$work/console.txt" >&2
exit 1
