#!/bin/bash
# Rootless husk on pure cgroup v2 with a real systemd: boots the systemd VM
# (integration/systemd-vm) and runs vm-test.sh in it (an ordinary user's
# husk and runc side by side: a delegated cgroupfs subtree, a cgroup it may
# not write, and the user's own systemd). Exits non-zero if it fails.
#
#   integration/rootless/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HUSK=${HUSK:-$repo/target/$(uname -m)-unknown-linux-musl/release/husk}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$HUSK" ] || { echo "rootless: $HUSK missing (make build)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "rootless: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

payload=$(mktemp -d /tmp/husk-rl-payload.XXXXXX)
trap 'rm -rf "$payload"' EXIT
install -m 755 "$HUSK" "$payload/husk"
install -m 755 "$here/vm-test.sh" "$payload/run.sh"
mkdir -p "$payload/rootfs/bin" "$payload/rootfs/proc" "$payload/rootfs/dev" "$payload/rootfs/sys" "$payload/rootfs/tmp"
cp "$BUSYBOX" "$payload/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$payload/rootfs/bin/$a"
done
echo "== rootless: pure cgroup v2 with systemd"
"$repo/integration/systemd-vm/run.sh" "$payload"
