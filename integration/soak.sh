#!/usr/bin/env bash
# Soak: SOAK_N mixed container lifecycles (default 100, about a minute;
# `make soak` runs 1,000), then zero leaks required. Round robin over:
#   run        husk run of /bin/true in the foreground
#   cssd       create, start, kill, wait, delete of a sleeper
#   exec       run -d, exec, delete --force
#   pause      run -d, pause, resume, delete --force
#   ctr-run    ctr run --rm through husk's shim
#   ctr-exec   ctr task exec into one long-lived task under husk's shim
# Before and after, it counts what could leak: host mounts, cgroup
# directories (every hierarchy), husk state directories (its own root and
# the shim's), live processes in those cgroups, zombies, and the fds and
# RSS of the long-lived task's shim. Host mounts are those under the temp
# dir (rootfs mounts of the shims, bundles); a container's own mounts live
# and die in its mount namespace.
. "$(dirname "$0")/lib.sh"
need_bins containerd ctr python3
[ -x "$SHIM" ] || { fail setup "$SHIM not built"; summary; exit 1; }
N=${SOAK_N:-100}
P=soak-$$
ROOT=$T/husk-root
mkdir -p "$ROOT"

containerd_up "$P" || exit 1
on_exit "$HUSK --root $ROOT list -q | xargs -r -n1 $HUSK --root $ROOT delete --force"
on_exit remove_cgroups "$P"
for b in true sleep; do
    args=(/bin/true)
    [ $b = sleep ] && args=(sleep 1000)
    python3 "$IT_DIR/bench/bundle.py" --runtime "$HUSK" "$T/bundle-$b" -- "${args[@]}" >/dev/null || { fail setup "bundle"; summary; exit 1; }
done

# The long-lived task whose shim serves the ctr-exec lifecycles.
if ! timeout 60 "${CTR[@]}" run -d --runtime io.containerd.husk.v2 "$REF" "$P-long" sleep 100000 >"$T/long.log" 2>&1 \
    || ! wait_for 10 status_is "$P-long" RUNNING; then
    fail "soak: long-lived task" "$(tail -3 "$T/long.log")"
    summary
    exit 1
fi
on_exit "${CTR[*]} task kill -s SIGKILL $P-long; sleep 1; ${CTR[*]} task rm -f $P-long; ${CTR[*]} container rm $P-long"
SHIM_PID=$(pids_mentioning "-id $P-long " | head -1)

# Everything of ours: cgroup dirs named soak-PID* anywhere in a hierarchy
# (husk's own containers) or under the containerd namespace $P.
our_cgroups() { find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d \( -name "$P*" -o -path "*/$P/*" \) 2>/dev/null | sort; }
our_procs() {
    local d
    for d in $(our_cgroups); do cat "$d/cgroup.procs" 2>/dev/null; done | sort -u | while read -r p; do
        [ -n "$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && echo "$p"
    done
}
# Zombies that are ours to reap: children of this script or of the shim
# (a subreaper). Orphans of husk's own calls go to init, which reaps them.
zombies() { awk -v a=$$ -v b="$SHIM_PID" '$3 == "Z" && ($4 == a || $4 == b)' /proc/[0-9]*/stat 2>/dev/null | wc -l; }
counts() {
    echo "mounts=$(grep -cF "$T" /proc/self/mountinfo)"
    echo "cgroups=$(our_cgroups | wc -l)"
    echo "state=$(ls "$ROOT" | wc -l)+$(ls "/run/containerd/husk/$P" 2>/dev/null | wc -l)"
    echo "procs=$(our_procs | wc -l)"
    echo "zombies=$(zombies)"
    echo "shim_fds=$(ls "/proc/$SHIM_PID/fd" 2>/dev/null | wc -l)"
}
shim_rss() { awk '/^VmRSS/ { print $2 }' "/proc/$SHIM_PID/status" 2>/dev/null; }

# Warm the long-lived shim up (its first exec allocates what it keeps).
for i in 1 2 3; do timeout 30 "${CTR[@]}" task exec --exec-id "warm$i" "$P-long" true </dev/null >/dev/null 2>&1; done
before=$(counts)
rss_before=$(shim_rss)

H=("$HUSK" --root "$ROOT")
errors=0
declare -A done_by_kind
t0=$SECONDS
for i in $(seq 1 "$N"); do
    id=$P-$i
    kind=$(( i % 6 ))
    ok=1
    case $kind in
    0) name=run; timeout 30 "${H[@]}" run --bundle "$T/bundle-true" "$id" </dev/null >/dev/null 2>>"$T/soak.err" || ok=0 ;;
    1) name=cssd
       timeout 30 "${H[@]}" create --bundle "$T/bundle-sleep" "$id" 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" start "$id" 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" kill "$id" KILL 2>>"$T/soak.err" \
           && wait_for 10 sh -c "${H[*]} state $id | grep -q '\"stopped\"'" \
           && timeout 30 "${H[@]}" delete "$id" 2>>"$T/soak.err" || ok=0 ;;
    2) name=exec
       timeout 30 "${H[@]}" run -d --bundle "$T/bundle-sleep" "$id" </dev/null >/dev/null 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" exec "$id" true </dev/null 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" delete --force "$id" 2>>"$T/soak.err" || ok=0 ;;
    3) name=pause
       timeout 30 "${H[@]}" run -d --bundle "$T/bundle-sleep" "$id" </dev/null >/dev/null 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" pause "$id" 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" resume "$id" 2>>"$T/soak.err" \
           && timeout 30 "${H[@]}" delete --force "$id" 2>>"$T/soak.err" || ok=0 ;;
    4) name=ctr-run; timeout 60 "${CTR[@]}" run --rm --runtime io.containerd.husk.v2 "$REF" "$id" true </dev/null >/dev/null 2>>"$T/soak.err" || ok=0 ;;
    5) name=ctr-exec; timeout 30 "${CTR[@]}" task exec --exec-id "e$i" "$P-long" true </dev/null >/dev/null 2>>"$T/soak.err" || ok=0 ;;
    esac
    if [ $ok = 0 ]; then
        errors=$((errors + 1))
        echo "lifecycle $i ($name) failed: $(tail -1 "$T/soak.err")" >&2
        "${H[@]}" delete --force "$id" >/dev/null 2>&1
    fi
    done_by_kind[$name]=$(( ${done_by_kind[$name]:-0} + 1 ))
done
elapsed=$((SECONDS - t0))
# Let the last exits, shim shutdowns and cgroup removals settle.
settled() { [ "$(counts)" = "$before" ]; }
wait_for 15 settled
after=$(counts)
rss_after=$(shim_rss)

summary_kinds=$(for k in "${!done_by_kind[@]}"; do printf '%s=%s ' "$k" "${done_by_kind[$k]}"; done)
echo "soak: $N lifecycles in ${elapsed}s ($summary_kinds)"
printf '%-10s %10s %10s\n' what before after
paste <(echo "$before") <(echo "$after") | while IFS=$'\t' read -r b a; do
    printf '%-10s %10s %10s\n' "${b%%=*}" "${b#*=}" "${a#*=}"
done
printf '%-10s %10s %10s\n' shim_rss_kb "$rss_before" "$rss_after"
if [ "$errors" = 0 ]; then pass "soak: $N lifecycles, none failed"; else fail "soak: $N lifecycles" "$errors failed (first: $(head -1 "$T/soak.err"))"; fi
if [ "$before" = "$after" ]; then
    pass "soak: nothing leaked (mounts, cgroups, state, processes, zombies, shim fds)"
else
    fail "soak: nothing leaked" "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
fi
# The shim's RSS may settle a little after its first execs; growth that
# scales with the number of execs is a leak.
if [ -n "$rss_before" ] && [ -n "$rss_after" ] && [ "$rss_after" -le $((rss_before + 256)) ]; then
    pass "soak: the long-lived shim's RSS stayed put (${rss_before} -> ${rss_after} kB)"
else
    fail "soak: the long-lived shim's RSS stayed put" "${rss_before:-?} -> ${rss_after:-?} kB"
fi
summary
