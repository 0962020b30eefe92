#!/bin/bash
# Build the root disk of the systemd test VM: Debian 12 (bookworm) from
# debootstrap --variant=minbase with systemd, dbus, udev, containerd and
# runc, set up for an unattended boot on a serial console, with
# husk-test.service (guest/) that runs /payload/run.sh from a second disk
# and powers off. The directory becomes a raw ext4 image with
# mkfs.ext4 -d (no loop mount).
#
# The image is cached as $HUSK_TEST_CACHE/systemd-vm-<hash>.img (default
# /var/cache/husk-test), <hash> covering this script, lib.sh, guest/* and
# the guest kernel's version (the image carries that kernel's modules).
# It is rebuilt only when one of those changes (or with FORCE=1); older
# images of this harness are removed. Prints the image's path on stdout.
#
# Environment: MIRROR (default: the host's apt mirror for bookworm),
# KERNEL_VERSION (default: the newest in /boot), FORCE=1,
# DEBOOTSTRAP_TIMEOUT (seconds, default 1800).
set -euo pipefail

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,udev,kmod,procps,iproute2,e2fsprogs,util-linux,uidmap,criu,containerd,runc,docker.io
# Units nobody needs in a throw-away test VM, or that slow its boot or wait
# for input: masked (linked to /dev/null).
MASK=(
    getty.target getty@.service serial-getty@.service console-getty.service
    systemd-firstboot.service
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
    dpkg-db-backup.timer dpkg-db-backup.service
    e2scrub_all.timer e2scrub_all.service e2scrub_reap.service
    fstrim.timer fstrim.service systemd-tmpfiles-clean.timer
    ldconfig.service systemd-hwdb-update.service systemd-journal-catalog-update.service
    systemd-update-done.service systemd-update-utmp-runlevel.service
    systemd-pstore.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
    systemd-random-seed.service systemd-fsck-root.service systemd-remount-fs.service
    systemd-networkd-wait-online.service systemd-time-wait-sync.service
    sys-kernel-config.mount sys-fs-fuse-connections.mount
)
# Kernel module directories of hardware a VM does not have (not copied).
MOD_SKIP=(sound drivers/gpu drivers/media drivers/infiniband drivers/net/wireless
          drivers/net/ethernet drivers/usb drivers/iio drivers/staging drivers/hwmon
          drivers/bluetooth drivers/isdn drivers/input drivers/hid drivers/scsi
          drivers/net/can drivers/mmc drivers/mtd drivers/nfc drivers/platform net/bluetooth
          net/mac80211 net/wireless)

need_root
need sha256sum coreutils
pick_kernel
image_path

if [ -f "$IMAGE" ] && [ "${FORCE:-0}" != 1 ]; then
    note "image up to date: $IMAGE"
    echo "$IMAGE"
    exit 0
fi

need debootstrap debootstrap
need mkfs.ext4 e2fsprogs
need flock util-linux
need timeout coreutils
need findmnt util-linux
need depmod kmod
need tar tar
mkdir -p "$SVM_CACHE"
# One build at a time; a second caller waits, then finds the image.
exec 9>"$SVM_CACHE/.systemd-vm.lock"
flock -w 3600 9 || die "timed out waiting for $SVM_CACHE/.systemd-vm.lock"
if [ -f "$IMAGE" ] && [ "${FORCE:-0}" != 1 ]; then
    note "image up to date: $IMAGE"
    echo "$IMAGE"
    exit 0
fi

# The mirror the host's apt uses for bookworm (deb822 .sources or one-line).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() { if (uri != "" && has && comp) { print uri; found = 1; exit } uri = ""; has = 0; comp = 0 }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
            /^Components:/ { for (i = 2; i <= NF; i++) if ($i == "main") comp = 1 }
            END { if (!found) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }'
    done
}
MIRROR=${MIRROR:-$(host_mirror | head -n 1)}
[ -n "$MIRROR" ] || die "no apt source for $SUITE main in /etc/apt/sources.list*: set MIRROR=http://.../debian"

t_start=$SECONDS
work=$(mktemp -d /var/tmp/husk-systemd-vm.XXXXXX)
root=$work/root
cleanup() {
    local m
    # debootstrap bind-mounts /dev, /proc and /sys into the target: unmount
    # whatever is left (deepest first) before deleting anything.
    for m in $(findmnt -rn -o TARGET | grep -F "$work/" | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    if findmnt -rn -o TARGET | grep -qF "$work/"; then
        note "mounts left under $work: not deleting it"
    else
        rm -rf --one-file-system "$work"
    fi
    rm -f "$SVM_CACHE"/systemd-vm-*.img.tmp.$$
}
trap cleanup EXIT

note "debootstrap $SUITE from $MIRROR into $root (log: $work/debootstrap.log)"
if ! timeout --kill-after=30 "${DEBOOTSTRAP_TIMEOUT:-1800}" \
    debootstrap --variant=minbase --include="$PACKAGES" --components=main \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (see above)"
fi
t_debootstrap=$((SECONDS - t_start))
note "debootstrap done in ${t_debootstrap}s"

# --- configuration -------------------------------------------------------
etc=$root/etc
echo husk-vm >"$etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\thusk-vm\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$etc/hosts"
# A fixed machine id: not a first boot (no systemd-firstboot prompts).
echo 8d1e5f7a2b3c4d5e6f708192a3b4c5d6 >"$etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
# No fsck, no remount: the disk is a fresh snapshot on every boot.
echo '/dev/vda / ext4 rw,noatime 0 0' >"$etc/fstab"
rm -f "$etc/resolv.conf"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$etc/apt/sources.list"

mkdir -p "$etc/systemd/system.conf.d" "$etc/systemd/journald.conf.d"
cat >"$etc/systemd/system.conf.d/husk-vm.conf" <<'EOF'
[Manager]
ShowStatus=error
DefaultTimeoutStartSec=60s
DefaultTimeoutStopSec=10s
DefaultDeviceTimeoutSec=20s
EOF
cat >"$etc/systemd/journald.conf.d/husk-vm.conf" <<'EOF'
[Journal]
Storage=volatile
ForwardToConsole=no
EOF

for u in "${MASK[@]}"; do
    ln -sfn /dev/null "$etc/systemd/system/$u"
done
# containerd and dockerd are installed but not started at boot: a payload
# configures them (husk as a runtime, the systemd cgroup driver) and starts
# them.
rm -f "$etc/systemd/system/multi-user.target.wants/containerd.service" \
    "$etc/systemd/system/multi-user.target.wants/docker.service" \
    "$etc/systemd/system/sockets.target.wants/docker.socket"

install -m 644 "$SVM_DIR/guest/husk-test.service" "$etc/systemd/system/husk-test.service"
install -D -m 755 "$SVM_DIR/guest/husk-test" "$root/usr/local/sbin/husk-test"
mkdir -p "$etc/systemd/system/multi-user.target.wants"
ln -sfn ../husk-test.service "$etc/systemd/system/multi-user.target.wants/husk-test.service"
mkdir -p "$root/payload"

# The guest kernel's modules (overlay, br_netfilter, veth, ...), without
# drivers for hardware the VM lacks.
mods=/lib/modules/$KVER
mkdir -p "$root$mods"
excl=(--exclude=./build --exclude=./source)
for d in "${MOD_SKIP[@]}"; do excl+=("--exclude=./kernel/$d"); done
(cd "$mods" && tar -cf - "${excl[@]}" .) | tar -xf - -C "$root$mods"
depmod -b "$root" "$KVER"

# Smaller image: no apt lists, caches or docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log

# --- the ext4 image ------------------------------------------------------
used_mb=$(du -sm --apparent-size "$root" | cut -f1)
# Headroom for what tests add (container images, bundles, logs).
size_mb=$((used_mb + used_mb / 4 + 1024))
tmpimg=$IMAGE.tmp.$$
note "mkfs.ext4 -d: ${used_mb} MiB of files into a ${size_mb} MiB image"
rm -f "$tmpimg"
timeout 900 mkfs.ext4 -q -F -t ext4 -L husk-vm-root -d "$root" "$tmpimg" "${size_mb}M" >&2 \
    || die "mkfs.ext4 -d failed"
mv -f "$tmpimg" "$IMAGE"
for old in "$SVM_CACHE"/systemd-vm-*.img; do
    [ "$old" = "$IMAGE" ] || rm -f "$old"
done
note "built $IMAGE in $((SECONDS - t_start))s (debootstrap ${t_debootstrap}s)"
echo "$IMAGE"
