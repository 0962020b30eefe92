#!/bin/bash
# Boot a pure cgroup v2 Linux under qemu (software emulation: -enable-kvm
# is not needed and not used) and run husk's cgroup checks in it (init.sh).
# Exits 0 when the VM prints "HUSK-VM-RESULT: PASS", non-zero otherwise.
#
# Needs (Debian): qemu-system-x86 linux-image-amd64 busybox-static, and a
# release build of husk (built here if missing). Run as root (reads the
# kernel image in /boot). Environment overrides: HUSK, KERNEL, BUSYBOX,
# QEMU, TIMEOUT (seconds, default 110), KEEP_LOG=1 to keep the console log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HUSK=${HUSK:-$repo/target/$(uname -m)-unknown-linux-musl/release/husk}
BUSYBOX=${BUSYBOX:-/bin/busybox}
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-110}
KERNEL=${KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}

die() { echo "cgroup-v2-vm: $*" >&2; exit 1; }
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || die "no readable kernel in /boot (install linux-image-amd64)"
command -v "$QEMU" >/dev/null || die "$QEMU not found (install qemu-system-x86)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (install busybox-static)"
if [ ! -x "$HUSK" ]; then
    make -C "$repo" build || die "building husk failed"
fi

kver=${KERNEL##*/vmlinuz-}
work=$(mktemp -d /tmp/husk-vm.XXXXXX)
cleanup() {
    if [ "${KEEP_LOG:-}" = 1 ] && [ -f "$work/console.log" ]; then cp "$work/console.log" "$here/console.log"; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The initramfs: busybox, husk and any libraries it links, the brd module
# (a RAM disk to throttle), a busybox container rootfs, and init.sh as /init.
root=$work/initramfs
mkdir -p "$root/bin" "$root/lib/modules" "$root/rootfs/bin"
for d in proc dev tmp sys t; do mkdir -p "$root/rootfs/$d"; done
cp "$BUSYBOX" "$root/bin/busybox"
cp "$HUSK" "$root/bin/husk"
# (Release builds are static: ldd then lists nothing and fails.)
{ ldd "$HUSK" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
    install -D -m 755 "$lib" "$root$lib"
done
brd=$(find "/lib/modules/$kver/kernel/drivers/block" -name 'brd.ko*' 2>/dev/null | head -n 1)
case "$brd" in
    *.ko) cp "$brd" "$root/lib/modules/brd.ko" ;;
    *.ko.xz) xz -dc "$brd" > "$root/lib/modules/brd.ko" ;;
    *.ko.zst) zstd -dcq "$brd" > "$root/lib/modules/brd.ko" ;;
    *) echo "cgroup-v2-vm: no brd module for $kver: io.max checks will fail" >&2 ;;
esac
cp "$BUSYBOX" "$root/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/rootfs/bin/$a"
done
install -m 755 "$here/init.sh" "$root/init"
(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) > "$work/initramfs.cpio"

echo "cgroup-v2-vm: booting $KERNEL (timeout ${TIMEOUT}s)"
set +e
timeout --kill-after=5 "$TIMEOUT" "$QEMU" \
    -m 512 -smp 1 -nographic -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$work/initramfs.cpio" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=1 cgroup_no_v1=all" \
    </dev/null >"$work/console.log" 2>&1
rc=$?
set -e

# The console log, without the firmware's escape sequences.
tr -d '\r' <"$work/console.log" | sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' | grep -E '^(CHECK|HUSK-VM-RESULT|kernel |subtree_control)' || true
if grep -q 'HUSK-VM-RESULT: PASS' "$work/console.log"; then
    echo "cgroup-v2-vm: PASS"
    exit 0
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "cgroup-v2-vm: FAIL (timed out after ${TIMEOUT}s)" >&2
elif ! grep -q 'HUSK-VM-RESULT' "$work/console.log"; then
    echo "cgroup-v2-vm: FAIL (no result line; qemu exit $rc). Console:" >&2
    tail -n 40 "$work/console.log" >&2
else
    echo "cgroup-v2-vm: FAIL" >&2
fi
exit 1
