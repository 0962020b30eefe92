# shellcheck shell=bash disable=SC2034
# Helpers shared by mkimage.sh and run.sh (sourced, never run on its own).
# Part of the image recipe: a change here changes the image's cache key.

SVM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SVM_CACHE=${HUSK_TEST_CACHE:-/var/cache/husk-test}
# Every file the image is built from (their hash names the cached image).
SVM_RECIPE=("$SVM_DIR/mkimage.sh" "$SVM_DIR/lib.sh" "$SVM_DIR/guest/husk-test" "$SVM_DIR/guest/husk-test.service")

die() { echo "systemd-vm: error: $*" >&2; exit 1; }
note() { echo "systemd-vm: $*" >&2; }

# need CMD PACKAGE: fail clearly when a required tool is missing.
need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found (apt-get install $2)"
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, reading /boot, writing $SVM_CACHE)"
}

# The guest kernel: the newest Debian kernel in /boot (linux-image-amd64,
# 6.1 on bookworm) that has its initrd and its modules. KERNEL_VERSION=...
# picks one. Sets KVER, KERNEL, INITRD.
pick_kernel() {
    local v cands=()
    if [ -n "${KERNEL_VERSION:-}" ]; then
        cands=("$KERNEL_VERSION")
    else
        for v in /boot/vmlinuz-*; do
            [ -e "$v" ] && cands+=("${v#/boot/vmlinuz-}")
        done
    fi
    KVER=
    for v in $(printf '%s\n' ${cands[@]+"${cands[@]}"} | sort -rV); do
        if [ -r "/boot/vmlinuz-$v" ] && [ -r "/boot/initrd.img-$v" ] && [ -d "/lib/modules/$v/kernel" ]; then
            KVER=$v
            break
        fi
    done
    [ -n "$KVER" ] || die "no kernel with initrd and modules in /boot${KERNEL_VERSION:+ for KERNEL_VERSION=$KERNEL_VERSION}: need /boot/vmlinuz-V, /boot/initrd.img-V and /lib/modules/V (apt-get install linux-image-amd64)"
    KERNEL=/boot/vmlinuz-$KVER
    INITRD=/boot/initrd.img-$KVER
}

# The cached image for this recipe and kernel (the image carries that
# kernel's modules, so the kernel version is part of the key). Sets IMAGE.
image_path() {
    local h
    h=$( { cat "${SVM_RECIPE[@]}"; echo "kernel $KVER"; } | sha256sum | cut -c1-16)
    IMAGE=$SVM_CACHE/systemd-vm-$h.img
}
