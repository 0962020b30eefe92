#!/usr/bin/env bash
# podman 4.3 checkpoint/restore (CRIU) with husk, then the same with runc:
# `podman container checkpoint` of a detached counter (the container
# exits, its counter stops), `podman container restore` (running again,
# the counter goes on from where it was, not from 0), `checkpoint -R`
# (--leave-running: it keeps running), and `checkpoint --export` +
# `restore --import --name` into a new container.
#
# As root, with podman's private storage/run/tmp dirs and containers.conf
# under the temp dir (as podman.sh), the busybox test image loaded
# locally, every podman call under `timeout 60`. podman (and husk, runc)
# find CRIU in PATH: /usr/local/sbin/criu (integration/criu/install.sh;
# HUSK_CRIU overrides) goes first. A missing tool, a missing CRIU or a
# failing `criu check` is a FAIL when CI is set (.ci/run), a SKIP
# elsewhere.
. "$(dirname "$0")/lib.sh"

skip_or_fail() {
    case ${CI:-} in
    "" | false | 0) skip all "$1" ;;
    *) fail setup "$1 (CI)" ;;
    esac
    summary
    exit
}
miss=()
for b in podman conmon runc python3; do command -v "$b" >/dev/null 2>&1 || miss+=("$b"); done
[ ${#miss[@]} -eq 0 ] || skip_or_fail "not installed: ${miss[*]} (apt-get install podman conmon runc busybox-static)"
[ "$(id -u)" = 0 ] || { fail setup "must run as root"; summary; exit 1; }
[ -x "$HUSK" ] || { fail setup "$HUSK not built"; summary; exit 1; }
RUNC=$(command -v runc)

CRIU=${HUSK_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU" ] || CRIU=$(command -v criu || true)
[ -n "$CRIU" ] || skip_or_fail "criu is not installed (bash integration/criu/install.sh)"
if ! timeout -k 5 60 "$CRIU" check >"$T/criu-check.log" 2>&1; then
    skip_or_fail "$CRIU check fails: $(tail -2 "$T/criu-check.log" | tr '\n' ' ')"
fi
# podman checks CRIU's version with the criu in PATH, and the runtimes
# (started by conmon, which passes PATH on) run that one too.
PATH=$(dirname "$CRIU"):$PATH
export PATH
[ "$(command -v criu)" = "$CRIU" ] || { fail setup "criu in PATH is $(command -v criu), not $CRIU"; summary; exit 1; }
log "criu: $CRIU ($("$CRIU" --version | head -1))"

# A copy: a rebuild of husk during the run changes nothing here.
mkdir -p "$T/bin" "$T/storage" "$T/run" "$T/tmp"
cp "$HUSK" "$T/bin/husk"
NOFILE=$(ulimit -Hn)
NPROC=$(ulimit -Hu)
[ "$NPROC" = unlimited ] && NPROC=1048576
[ "$NOFILE" = unlimited ] && NOFILE=1048576
PIDMAX=$(cat /proc/sys/kernel/pid_max)
[ "$NPROC" -gt "$PIDMAX" ] && NPROC=$PIDMAX
cat >"$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
netns = "none"
cgroupns = "host"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
runtime = "husk"
tmp_dir = "$T/tmp"

[engine.runtimes]
husk = ["$T/bin/husk"]
runc = ["$RUNC"]
CONF
cat >"$T/storage.conf" <<CONF
[storage]
driver = "$(grep -qw overlay /proc/filesystems && echo overlay || echo vfs)"
graphroot = "$T/storage"
runroot = "$T/run"
CONF
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf"
PODMAN=(podman --root "$T/storage" --runroot "$T/run" --tmpdir "$T/tmp" --cgroup-manager cgroupfs --events-backend file)
# Undone in reverse: containers first, then the image (the rest of the
# storage goes with the temp dir, its mounts unmounted by lib.sh).
on_exit remove_cgroups libpod_parent
on_exit "timeout -k 5 60 ${PODMAN[*]} rmi -af"
on_exit "timeout -k 5 60 ${PODMAN[*]} rm -af -t 0"
make_image
if ! timeout -k 5 120 "${PODMAN[@]}" load -i "$T/image.tar" >"$T/load.log" 2>&1; then
    fail image-load "$(tail -3 "$T/load.log")"
    summary; exit 1
fi
IMG=localhost/$IMAGE
timeout -k 5 60 "${PODMAN[@]}" image exists "$IMG" || IMG=docker.io/library/$IMAGE

# The counter: /tmp/count for exec (renamed into place: a read never sees
# it truncated), and stdout for `podman logs` (read while the container is
# checkpointed and stopped).
COUNTER='i=0; while true; do i=$((i+1)); echo $i > /tmp/c; mv /tmp/c /tmp/count; echo $i; sleep 0.1; done'
P=()
pod() { timeout -k 5 60 "${P[@]}" "$@"; }
# The counter as the container sees it (exec), or as it last logged it.
count() { pod exec "$1" cat /tmp/count 2>/dev/null | tr -dc 0-9; }
logged() { pod logs "$1" 2>/dev/null | tail -1 | tr -dc 0-9; }
status() { pod inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
at_least() { local x; x=$(count "$1"); [ -n "$x" ] && [ "$x" -ge "$2" ]; }

# After a failed checkpoint or restore: the errors of CRIU's newest log
# under podman's storage (the runtime's message quotes one line; the
# RLIMIT_NOFILE one is harmless here, with runc as with husk).
criu_errors() {
    local f
    f=$(ls -t "$T"/storage/*-containers/*/userdata/{dump,restore}.log 2>/dev/null | head -1)
    [ -n "$f" ] || return 0
    log "$f:"
    grep -F 'Error (' "$f" | grep -v RLIMIT_NOFILE | head -5 | sed 's/^/  .. /' >&2
}

# verdict NAME WHY COND...: pass if the test command COND holds.
verdict() {
    local name=$1 why=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}
# increased A B: both numbers, B > A.
increased() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -gt "$1" ]; }
# same A B: A is a number, B the same.
same() { [ -n "$1" ] && [ "$2" = "$1" ]; }
# from V R: both numbers, R >= V.
from() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -ge "$1" ]; }

suite() {
    local rt=$1
    P=("${PODMAN[@]}" --runtime "$rt")
    local c=ctr-$rt n=new-$rt v s r1 r2

    check "$rt: podman run -d counter" "" "${P[@]}" run -d --name "$c" "$IMG" sh -c "$COUNTER" || return
    check "$rt: OCIRuntime" "$rt" "${P[@]}" inspect --format '{{.OCIRuntime}}' "$c"
    # Far enough for a restart from 0 not to catch up before it is read.
    if ! wait_for 30 at_least "$c" 30; then
        fail "$rt: counter runs" "count $(count "$c"), status $(status "$c")"
        return
    fi

    # checkpoint: the container is stopped, its counter with it.
    check "$rt: podman container checkpoint" "$c" "${P[@]}" container checkpoint "$c" || { criu_errors; return; }
    s=$(status "$c")
    verdict "$rt: checkpointed container exited" "status $s" [ "$s" = exited ]
    v=$(logged "$c")
    sleep 0.5
    r1=$(logged "$c")
    verdict "$rt: counter stopped at the checkpoint ($v)" "logged $v, then $r1" same "$v" "$r1"

    # restore: running again, from where it was.
    check "$rt: podman container restore" "$c" "${P[@]}" container restore "$c" || { criu_errors; return; }
    s=$(status "$c")
    verdict "$rt: restored container running" "status $s" [ "$s" = running ]
    r1=$(count "$c")
    verdict "$rt: counter goes on from $v (not from 0)" "checkpointed at $v, read '$r1' after restore" from "$v" "$r1"
    sleep 1
    r2=$(count "$c")
    verdict "$rt: counter increases after restore" "'$r1', then '$r2'" increased "$r1" "$r2"

    # checkpoint -R (--leave-running; podman 4.3 passes the runtime
    # --leave-running twice).
    check "$rt: podman container checkpoint -R" "$c" "${P[@]}" container checkpoint -R "$c" || criu_errors
    s=$(status "$c")
    verdict "$rt: left running" "status $s" [ "$s" = running ]
    r1=$(count "$c")
    sleep 0.5
    r2=$(count "$c")
    verdict "$rt: counter increases after checkpoint -R" "'$r1', then '$r2'" increased "$r1" "$r2"

    # --export, then --import as a new container.
    local tar=$T/checkpoint-$rt.tar.gz
    if ! check "$rt: podman container checkpoint --export" "$c" "${P[@]}" container checkpoint --export="$tar" "$c"; then
        criu_errors
    else
        s=$(status "$c")
        verdict "$rt: exported container exited" "status $s" [ "$s" = exited ]
        v=$(logged "$c")
        if ! check "$rt: podman container restore --import --name $n" "" "${P[@]}" container restore --import="$tar" --name "$n"; then
            criu_errors
        else
            s=$(status "$n")
            verdict "$rt: imported container running" "status $s" [ "$s" = running ]
            check "$rt: imported container's OCIRuntime" "$rt" "${P[@]}" inspect --format '{{.OCIRuntime}}' "$n"
            r1=$(count "$n")
            verdict "$rt: imported counter goes on from $v" "exported at $v, read '$r1' after import" from "$v" "$r1"
            sleep 0.5
            r2=$(count "$n")
            verdict "$rt: imported counter increases" "'$r1', then '$r2'" increased "$r1" "$r2"
        fi
    fi

    check "$rt: podman rm -f" "" "${P[@]}" rm -f --ignore -t 0 "$c" "$n"
}

suite husk
suite runc
check "podman ps -a empty" "" sh -c "! timeout -k 5 60 ${PODMAN[*]} ps -aq | grep ."

summary
