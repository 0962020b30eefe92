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
. "$repo/integration/vm-payload.sh"
payload=$(vm_payload "$HUSK" "$here/vm-test.sh")
trap 'rm -rf "$payload"' EXIT
echo "== checkpoint-vm: Debian 12 kernel and criu, pure cgroup v2"
"$repo/integration/systemd-vm/run.sh" "$payload"
