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
. "$repo/integration/vm-payload.sh"
payload=$(vm_payload "$HUSK" "$here/vm-test.sh")
trap 'rm -rf "$payload"' EXIT
echo "== rootless: pure cgroup v2 with systemd"
"$repo/integration/systemd-vm/run.sh" "$payload"
