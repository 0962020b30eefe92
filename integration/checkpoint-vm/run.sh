#!/bin/bash
# Checkpoint/restore with Debian 12's own kernel (6.1) and criu 3.17: boots the
# systemd VM (integration/systemd-vm) on pure cgroup v2 and runs vm-test.sh
# (husk and runc side by side, --pre-dump included, which needs the
# soft-dirty memory tracking the development host's kernel lacks).
#
#   integration/checkpoint-vm/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HUSK=${HUSK:-$repo/target/$(uname -m)-unknown-linux-musl/release/husk}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$HUSK" ] || { echo "checkpoint-vm: $HUSK missing (make build)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "checkpoint-vm: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

payload=$(mktemp -d /tmp/husk-ckpt-payload.XXXXXX)
trap 'rm -rf "$payload"' EXIT
install -m 755 "$HUSK" "$payload/husk"
install -m 755 "$here/vm-test.sh" "$payload/run.sh"
mkdir -p "$payload/rootfs/bin" "$payload/rootfs/proc" "$payload/rootfs/dev" "$payload/rootfs/sys" "$payload/rootfs/tmp"
cp "$BUSYBOX" "$payload/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$payload/rootfs/bin/$a"
done
echo "== checkpoint-vm: Debian 12 kernel and criu, pure cgroup v2"
"$repo/integration/systemd-vm/run.sh" "$payload"
