#!/bin/bash
# Prove the systemd VM harness: boot the VM in both cgroup modes (pure v2,
# then hybrid) with selftest/ as the payload and report each run's wall
# time. Builds the image first if needed (not counted in the boot times).
#
#     selftest.sh [--unified|--hybrid] [--blame]
#
# Environment: as run.sh (TIMEOUT, KEEP_LOG, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
modes=(unified hybrid)
extra=()
for a in "$@"; do
    case $a in
        --unified) modes=(unified) ;;
        --hybrid) modes=(hybrid) ;;
        --blame) extra+=(--blame) ;;
        *) echo "usage: $0 [--unified|--hybrid] [--blame]" >&2; exit 2 ;;
    esac
done

t=$SECONDS
"$here/mkimage.sh" >/dev/null
echo "systemd-vm selftest: image ready in $((SECONDS - t))s"

passed=0 failed=0 times=()
for m in "${modes[@]}"; do
    flag=()
    [ "$m" = hybrid ] && flag=(--hybrid)
    t=$SECONDS
    if "$here/run.sh" ${flag[@]+"${flag[@]}"} ${extra[@]+"${extra[@]}"} "$here/selftest"; then
        passed=$((passed + 1)); r=PASS
    else
        failed=$((failed + 1)); r=FAIL
    fi
    times+=("$m $r $((SECONDS - t))s")
done
for x in "${times[@]}"; do echo "systemd-vm selftest: $x"; done
echo "systemd-vm selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
