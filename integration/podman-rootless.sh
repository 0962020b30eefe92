#!/usr/bin/env bash
# Rootless podman 4.3 (with conmon) as an ordinary user, with husk as its
# OCI runtime (--runtime /path/to/husk, and the runtime = "husk" of the
# user's containers.conf), the same sequence run again with runc side by
# side: both must pass.
#
# Run as root: it makes (idempotently) a dedicated user, husk-podman-rl
# (uid/gid 2201, home /var/tmp/husk-podman-rl), with one /etc/subuid and
# one /etc/subgid line, 400000:65536, and an XDG_RUNTIME_DIR,
# /run/user/2201 (0700; there is no logind here to make it). podman runs as
# that user (setpriv, a clean environment) with vfs storage under its home,
# the cgroupfs manager and events in a file (no systemd); podman maps the
# subordinate ids with newuidmap/newgidmap (package uidmap). On a cgroup v1
# host a rootless container gets no cgroups (podman and husk say so, runc
# does the same silently). Containers use --network none, one test uses
# slirp4netns.
#
# podman does not pass --root to the runtime: husk keeps its state in
# $XDG_RUNTIME_DIR/husk, runc in $XDG_RUNTIME_DIR/runc, where the tests
# look for each container while it runs.
#
# Cleanup on every exit: `podman system reset` as the user, every process
# left with the user's uid or one of its subordinate uids killed by pid,
# its home and runtime dir removed. The user and its subuid/subgid lines
# stay (reused by the next run); `userdel husk-podman-rl` and deleting the
# lines removes them.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

RL_USER=husk-podman-rl
RL_ID=2201
SUB_START=400000
SUB_COUNT=65536
RL_HOME=/var/tmp/$RL_USER
RL_XDG=/run/user/$RL_ID
RL_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
IMG=docker.io/library/$IMAGE

# A missing tool is a FAIL in CI (.ci/run installs them), a SKIP elsewhere.
require() {
    local b miss=()
    for b in "$@"; do command -v "$b" >/dev/null 2>&1 || miss+=("$b"); done
    [ ${#miss[@]} -eq 0 ] && return 0
    local why="not installed: ${miss[*]} (apt-get install podman conmon uidmap slirp4netns runc busybox-static)"
    case ${CI:-} in
    "" | false | 0) skip all "$why" ;;
    *) fail setup "$why (CI)" ;;
    esac
    summary
    exit
}
require podman conmon newuidmap newgidmap setpriv runc python3
[ "$(id -u)" = 0 ] || { fail setup "must run as root (it creates the test user)"; summary; exit 1; }
[ -x "$HUSK" ] || { fail setup "$HUSK not built"; summary; exit 1; }
RUNC=$(command -v runc)

# Every process of the user: its own uid and its subordinate ones (the
# containers' processes), killed by pid.
user_pids() {
    local p u
    for p in /proc/[0-9]*; do
        u=$(stat -c %u "$p" 2>/dev/null) || continue
        if [ "$u" = "$RL_ID" ] || { [ "$u" -ge "$SUB_START" ] && [ "$u" -lt $((SUB_START + SUB_COUNT)) ]; }; then
            echo "${p#/proc/}"
        fi
    done
}
kill_user_procs() {
    local i p
    for i in 1 2 3; do
        p=$(user_pids)
        [ -z "$p" ] && return 0
        # shellcheck disable=SC2086
        kill -KILL $p 2>/dev/null
        sleep 0.3
    done
}

# --- the user -------------------------------------------------------------
setup_user() {
    local name
    name=$(getent passwd "$RL_ID" | cut -d: -f1)
    if [ -n "$name" ] && [ "$name" != "$RL_USER" ]; then
        echo "uid $RL_ID belongs to $name"; return 1
    fi
    if ! getent group "$RL_USER" >/dev/null; then
        groupadd -g "$RL_ID" "$RL_USER" || return 1
    fi
    if ! getent passwd "$RL_USER" >/dev/null; then
        # No subordinate ids allocated by useradd: ours are set below.
        useradd -u "$RL_ID" -g "$RL_ID" -d "$RL_HOME" -M -s /bin/sh \
            -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$RL_USER" || return 1
    fi
    [ "$(id -u "$RL_USER")" = "$RL_ID" ] || { echo "$RL_USER exists with uid $(id -u "$RL_USER")"; return 1; }
    local f line="$RL_USER:$SUB_START:$SUB_COUNT"
    for f in /etc/subuid /etc/subgid; do
        touch "$f"
        # Exactly one line for the user, whatever earlier runs left.
        if [ "$(grep -c "^$RL_USER:" "$f")" != 1 ] || ! grep -qx "$line" "$f"; then
            sed -i "/^$RL_USER:/d" "$f" && echo "$line" >>"$f" || return 1
        fi
    done
}
if ! out=$(setup_user 2>&1); then
    fail setup "test user: $out"; summary; exit 1
fi
# A run killed earlier may have left processes and files: start clean.
kill_user_procs
rm -rf "$RL_HOME" "$RL_XDG"
on_exit rm -rf "$RL_HOME" "$RL_XDG"
on_exit kill_user_procs
install -d -o "$RL_ID" -g "$RL_ID" -m 700 "$RL_XDG" "$RL_HOME" "$RL_HOME/.config" "$RL_HOME/.config/containers"
log "user $RL_USER ($RL_ID), subuid/subgid $SUB_START:$SUB_COUNT, home $RL_HOME, XDG_RUNTIME_DIR $RL_XDG"

# husk where the user can execute it ($T and its parents are 0755).
install -d -m 755 "$T/bin"
install -m 755 "$HUSK" "$T/bin/husk"
RL_HUSK=$T/bin/husk

cat >"$RL_HOME/.config/containers/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "husk"

[engine.runtimes]
husk = ["$RL_HUSK"]
CONF
cat >"$RL_HOME/.config/containers/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$RL_HOME/storage"
runroot = "$RL_XDG/containers"
CONF
chown -R "$RL_ID:$RL_ID" "$RL_HOME"

# A command as the user, in a clean environment.
AS_USER=(setpriv --reuid "$RL_ID" --regid "$RL_ID" --init-groups
    env -i HOME="$RL_HOME" USER="$RL_USER" LOGNAME="$RL_USER" XDG_RUNTIME_DIR="$RL_XDG" PATH="$RL_PATH")
P=("${AS_USER[@]}" podman)
on_exit "timeout -k 5 60 ${P[*]} system reset -f"

# check_eq NAME WANT CMD...: the output (60 s at most, surrounding blanks
# trimmed) must be exactly WANT.
check_eq() {
    local name=$1 want=$2
    shift 2
    local out rc
    out=$(timeout -k 5 60 "$@" 2>"$T/check_eq.err")
    rc=$?
    out=$(echo "$out" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    if [ $rc -ne 0 ]; then
        fail "$name" "exit $rc: $(tail -3 "$T/check_eq.err" | tr '\n' ' ')"
    elif [ "$out" != "$want" ]; then
        fail "$name" "wanted '$want', got '$(echo "$out" | head -3 | tr '\n' ' ')' $(tail -2 "$T/check_eq.err" | tr '\n' ' ')"
    else
        pass "$name"
    fi
}

check "podman info: rootless" "true" "${P[@]}" info --format '{{.Host.Security.Rootless}}'
check "podman info: ids mapped from $SUB_START" "$SUB_START" "${P[@]}" info --format '{{json .Host.IDMappings}}'

make_image
chmod 644 "$T/image.tar"
if ! timeout -k 5 120 "${P[@]}" load -i "$T/image.tar" >"$T/load.log" 2>&1; then
    fail image-load "$(tail -3 "$T/load.log")"
    summary; exit 1
fi
pass "podman load (as $RL_USER)"

# suite NAME RUNTIME STATEDIR: the sequence with --runtime RUNTIME; the
# runtime keeps a running container's state in STATEDIR/<id>.
suite() {
    local n=$1 rt=$2 sd=$3
    local R=("${P[@]}" --runtime "$rt")
    local c=rl-$n
    check_eq "$n: podman run --rm echo" "hi from $n" "${R[@]}" run --rm --network none "$IMG" echo hi from "$n"
    check_rc "$n: podman run exit code" 6 "${R[@]}" run --rm --network none "$IMG" sh -c 'exit 6'
    if check "$n: podman run -d" "" "${R[@]}" run -d --network none --name "$c" "$IMG" \
        sh -c 'echo started; i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.2; done'; then
        check_eq "$n: podman inspect OCIRuntime" "$rt" "${P[@]}" inspect --format '{{.OCIRuntime}}' "$c"
        local id
        id=$(timeout -k 5 60 "${P[@]}" inspect --format '{{.Id}}' "$c" 2>/dev/null)
        if [ -n "$id" ] && [ -d "$sd/$id" ]; then
            pass "$n: state in $sd/<id> while it runs"
        else
            fail "$n: state in $sd/<id> while it runs" "no $sd/${id:-?} ($(ls "$sd" 2>&1 | head -3 | tr '\n' ' '))"
        fi
        if [ "$n" = husk ]; then
            check "$n: husk state (as $RL_USER) says running" '"status": "running"' "${AS_USER[@]}" "$rt" state "$id"
        fi
        check_eq "$n: podman ps shows it running" "running" "${P[@]}" inspect --format '{{.State.Status}}' "$c"
        check_eq "$n: podman exec id -u" "0" "${P[@]}" exec "$c" id -u
        check "$n: podman exec sees the subordinate ids" "$SUB_START" "${P[@]}" exec "$c" cat /proc/self/uid_map
        check_rc "$n: podman exec exit code" 3 "${P[@]}" exec "$c" sh -c 'exit 3'
        local a b
        a=$(timeout -k 5 60 "${P[@]}" exec "$c" cat /tmp/count 2>/dev/null)
        sleep 1
        b=$(timeout -k 5 60 "${P[@]}" exec "$c" cat /tmp/count 2>/dev/null)
        if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] 2>/dev/null; then
            pass "$n: the counter runs ($a -> $b)"
        else
            fail "$n: the counter runs" "'$a' then '$b'"
        fi
        check "$n: podman logs" "started" "${P[@]}" logs "$c"
        check "$n: podman stop" "$c" "${P[@]}" stop -t 2 "$c"
        check_eq "$n: stopped" "exited" "${P[@]}" inspect --format '{{.State.Status}}' "$c"
        check "$n: podman rm" "$c" "${P[@]}" rm "$c"
        if [ -n "$id" ] && wait_for 10 test ! -e "$sd/$id"; then
            pass "$n: state removed"
        else
            fail "$n: state removed" "$sd/${id:-?} is still there"
        fi
    fi
    check_eq "$n: podman ps -a shows nothing left" "" "${P[@]}" ps -a -q

    # A bind-mounted dir of the user's: root of the container writes as the
    # user, container uid 1000 is subordinate id SUB_START + 999.
    local v=$RL_HOME/vol-$n
    install -d -o "$RL_ID" -g "$RL_ID" -m 755 "$v"
    if check "$n: podman run -v (write in a bind mount)" "" "${R[@]}" run --rm --network none -v "$v:/data" "$IMG" \
        sh -c 'echo from-container >/data/f && mkdir /data/d && chown 1000:1000 /data/d'; then
        check_eq "$n: file in the bind mount is the user's" "$RL_ID:$RL_ID from-container" \
            sh -c "stat -c %u:%g '$v/f' | tr '\n' ' '; cat '$v/f'"
        check_eq "$n: container uid 1000 is host uid $((SUB_START + 999))" "$((SUB_START + 999)):$((SUB_START + 999))" \
            stat -c %u:%g "$v/d"
    fi

    if command -v slirp4netns >/dev/null; then
        check "$n: podman run --network slirp4netns" "10.0.2.100" "${R[@]}" run --rm --network slirp4netns "$IMG" ip -4 addr show tap0
    else
        case ${CI:-} in
        "" | false | 0) skip "$n: slirp4netns" "not installed" ;;
        *) fail "$n: slirp4netns" "not installed (CI)" ;;
        esac
    fi
}

suite husk "$RL_HUSK" "$RL_XDG/husk"
suite runc "$RUNC" "$RL_XDG/runc"

# The user's containers.conf makes husk the default runtime.
if check "containers.conf runtime = husk: podman run -d" "" "${P[@]}" run -d --network none --name rl-default "$IMG" sleep 600; then
    check_eq "containers.conf runtime = husk: OCIRuntime" "husk" "${P[@]}" inspect --format '{{.OCIRuntime}}' rl-default
    check "containers.conf runtime = husk: podman exec" "in-default" "${P[@]}" exec rl-default echo in-default
    check "containers.conf runtime = husk: podman rm -f" "rl-default" "${P[@]}" rm -f -t 0 rl-default
fi
check_eq "podman ps -a shows nothing left" "" "${P[@]}" ps -a -q
check_eq "no husk state left" "" ls -A "$RL_XDG/husk"

summary
