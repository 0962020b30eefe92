# Shared helpers for the real-client integration tests. Sourced by each
# engine's script; never run on its own.
#
# Each test prints "PASS name", "FAIL name: why" or "SKIP name: why"; the
# script ends with "N passed, M failed, K skipped" and exits non-zero when
# something failed. Everything a script starts is recorded and undone by
# the EXIT trap, failures included: daemons stopped by pid (bounded wait,
# then SIGKILL), leftover shims found by their command line, mounts under
# the temp dir unmounted, cgroups removed, the temp dir deleted.

set -u
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IT_DIR/.." && pwd)
PROFILE=${HUSK_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
# `make build` puts the (static) release binaries under target/<triple>/.
[ "$PROFILE" = release ] && TARGET=$TARGET/$(uname -m)-unknown-linux-musl
HUSK=${HUSK:-$TARGET/$PROFILE/husk}
# The release shim has a profile of its own (optimised for size).
SHIM_PROFILE=$PROFILE
[ "$PROFILE" = release ] && SHIM_PROFILE=release-shim
SHIM=${HUSK_SHIM:-$TARGET/$SHIM_PROFILE/containerd-shim-husk-v2}
IMAGE=${HUSK_IT_IMAGE:-husktest:latest}
PASSED=0 FAILED=0 SKIPPED=0
T=$(mktemp -d /tmp/husk-it.XXXXXX)
chmod 755 "$T"
CLEANUPS=()
DAEMON_PIDS=()

log() { echo "  .. $*" >&2; }
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: ${2:-}"; FAILED=$((FAILED + 1)); }
skip() { echo "SKIP $1: ${2:-}"; SKIPPED=$((SKIPPED + 1)); }

# check NAME EXPECTED CMD...: run CMD (60 s at most), pass if its output
# contains EXPECTED (a fixed string; "" only checks the exit status).
check() {
    local name=$1 want=$2
    shift 2
    local out rc
    out=$(timeout -k 5 60 "$@" 2>&1 | tr -d '\0'; exit "${PIPESTATUS[0]}")
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"
        return 1
    fi
    if [ -n "$want" ] && ! grep -qF -- "$want" <<<"$out"; then
        fail "$name" "wanted '$want', got: $(echo "$out" | tail -3 | tr '\n' ' ')"
        return 1
    fi
    pass "$name"
}

# check_rc NAME RC CMD...: pass if CMD exits with status RC.
check_rc() {
    local name=$1 want=$2
    shift 2
    local out rc
    out=$(timeout -k 5 60 "$@" 2>&1 | tr -d '\0'; exit "${PIPESTATUS[0]}")
    rc=$?
    if [ "$rc" = "$want" ]; then pass "$name"; else fail "$name" "exit $rc, wanted $want: $(echo "$out" | tail -2 | tr '\n' ' ')"; fi
}

# wait_for SECONDS CMD...: retry CMD until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

on_exit() { CLEANUPS+=("$*"); }

# start_daemon NAME LOGFILE CMD...: run CMD in the background, remember its pid.
start_daemon() {
    local name=$1 logf=$2
    shift 2
    "$@" >"$logf" 2>&1 &
    local pid=$!
    DAEMON_PIDS+=("$pid")
    echo "$pid" >"$T/$name.pid"
    log "$name started (pid $pid)"
}

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    sleep 0.2
}

# Pids of processes whose command line contains $1 (our temp dir), found
# in /proc: shims that containerd left behind.
pids_mentioning() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$$" ] && continue
        if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1"; then
            echo "${p#/proc/}"
        fi
    done
}

unmount_under() {
    local dir=$1 m
    for m in $(awk -v d="$dir" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
}

remove_cgroups() {
    local name=$1 d
    for d in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name" /sys/fs/cgroup/unified/"$name"; do
        [ -d "$d" ] || continue
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
}

cleanup_all() {
    local rc=$?
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true
    done
    for ((i = ${#DAEMON_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${DAEMON_PIDS[$i]}"
    done
    for i in $(pids_mentioning "$T"); do
        kill -KILL "$i" 2>/dev/null
    done
    sleep 0.3
    unmount_under "$T"
    rm -rf "$T" 2>/dev/null || { sleep 1; unmount_under "$T"; rm -rf "$T"; }
    return $rc
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

summary() {
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
}

need_bins() {
    local b
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 || { echo "SKIP all: $b is not installed (apt-get install containerd docker.io podman conmon busybox-static)"; SKIPPED=$((SKIPPED + 1)); summary; exit 0; }
    done
    [ -x "$HUSK" ] || { echo "FAIL setup: $HUSK not built"; FAILED=$((FAILED + 1)); summary; exit 1; }
}

make_image() {
    local bb
    bb=$(command -v busybox || true)
    [ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q "statically linked" || bb=/bin/busybox
    python3 "$IT_DIR/mkimage.py" "$T/image.tar" "$IMAGE" "$bb" >/dev/null
}

# containerd_up NS [copy]: a private containerd (socket, root and state under
# $T) with husk's shim and husk in $T/bin (copies with "copy", else
# links) and the busybox test image imported into namespace NS. Sets NS,
# CTR (the ctr command line) and REF (the image), defines
# start_containerd (again, for a restart), task_status and status_is.
containerd_up() {
    NS=$1
    mkdir -p "$T/bin" "$T/root" "$T/state"
    if [ "${2:-}" = copy ]; then
        cp "$SHIM" "$T/bin/containerd-shim-husk-v2"
        cp "$HUSK" "$T/bin/husk"
    else
        ln -sf "$SHIM" "$T/bin/containerd-shim-husk-v2"
        ln -sf "$HUSK" "$T/bin/husk"
    fi
    cat >"$T/config.toml" <<CONF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/amd64"]
CONF
    on_exit remove_cgroups "$NS"
    on_exit rm -rf "/run/containerd/runc/$NS" "/run/containerd/husk/$NS"
    start_containerd
    CTR=(ctr --address "$T/containerd.sock" -n "$NS")
    if ! wait_for 20 "${CTR[@]}" version; then
        fail containerd-start "$(tail -5 "$T/containerd.log")"
        summary
        return 1
    fi
    make_image
    if ! "${CTR[@]}" image import --all-platforms "$T/image.tar" >"$T/import.log" 2>&1; then
        fail image-import "$(tail -3 "$T/import.log")"
        summary
        return 1
    fi
    REF=docker.io/library/$IMAGE
}

start_containerd() {
    start_daemon containerd "$T/containerd.log" env PATH="$T/bin:$PATH" containerd --config "$T/config.toml"
}

task_status() { "${CTR[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
status_is() { [ "$(task_status "$1")" = "$2" ]; }
