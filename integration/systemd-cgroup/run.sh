#!/bin/bash
# husk's systemd cgroup driver on a real systemd host: boots the systemd VM
# (integration/systemd-vm) on pure cgroup v2 and on hybrid, and runs
# test.sh in each. Exits non-zero if either fails.
#
#   integration/systemd-cgroup/run.sh [unified|hybrid ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HUSK=${HUSK:-$repo/target/$(uname -m)-unknown-linux-musl/release/husk}
SHIM=${SHIM:-$repo/target/$(uname -m)-unknown-linux-musl/release-shim/containerd-shim-husk-v2}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$HUSK" ] && [ -x "$SHIM" ] || { echo "systemd-cgroup: $HUSK or $SHIM missing (make build)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "systemd-cgroup: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

payload=$(mktemp -d /tmp/husk-sd-payload.XXXXXX)
trap 'rm -rf "$payload"' EXIT
install -m 755 "$HUSK" "$payload/husk"
install -m 755 "$SHIM" "$payload/containerd-shim-husk-v2"
python3 "$repo/integration/mkimage.py" "$payload/image.tar" husktest:latest "$BUSYBOX" >/dev/null
install -m 755 "$here/test.sh" "$payload/run.sh"
mkdir -p "$payload/rootfs/bin" "$payload/rootfs/proc" "$payload/rootfs/dev" "$payload/rootfs/tmp"
cp "$BUSYBOX" "$payload/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$payload/rootfs/bin/$a"
done

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(unified hybrid)
rc=0
for m in "${modes[@]}"; do
    case $m in
        unified) flag=() ;;
        hybrid) flag=(--hybrid) ;;
        *) echo "systemd-cgroup: unknown mode $m" >&2; exit 2 ;;
    esac
    echo "== systemd-cgroup: $m"
    if "$repo/integration/systemd-vm/run.sh" "${flag[@]}" "$payload"; then
        echo "== systemd-cgroup: $m PASS"
    else
        echo "== systemd-cgroup: $m FAIL"
        rc=1
    fi
done
exit $rc
