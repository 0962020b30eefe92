#!/usr/bin/env bash
# containerd 1.6 checkpoint/restore (CRIU) through `ctr`, three ways:
#   husk      - husk's shim, runtime io.containerd.husk.v2;
#   runc-husk - containerd's io.containerd.runc.v2 shim with BinaryName=husk;
#   runc      - the same shim with the real runc, as the reference.
# For each: a detached counter (it writes its count to a bind-mounted host
# file), `ctr containers checkpoint --task ID REF` (a checkpoint image in
# the content store; the task keeps running), the task killed and removed,
# `ctr containers restore --live ID REF`: the task is RUNNING again, its
# counter goes on from where the checkpoint was (not from 0), exec works,
# and it is killed (exit 137) and deleted as any task. Then `ctr tasks
# checkpoint --exit` (ctr passes runc's CheckpointOptions, exit = true,
# only to runtimes named io.containerd.runc.*: husk's shim is installed
# under that name for it): the task stops, exit status 137.
#
# containerd runs on a private socket, root and state under a temp dir
# (lib.sh), with XDG_RUNTIME_DIR there too: containerd unpacks checkpoint
# images into a temp dir of it. Every ctr call under `timeout`. A missing
# CRIU or a failing `criu check` is a FAIL when CI is set, a SKIP elsewhere.
. "$(dirname "$0")/lib.sh"
need_bins containerd ctr python3 runc
[ -x "$SHIM" ] || { fail setup "$SHIM not built"; summary; exit 1; }

skip_or_fail() {
    case ${CI:-} in
    "" | false | 0) skip all "$1" ;;
    *) fail setup "$1 (CI)" ;;
    esac
    summary
    exit
}
CRIU=${HUSK_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU" ] || CRIU=$(command -v criu || true)
[ -n "$CRIU" ] || skip_or_fail "criu is not installed (bash integration/criu/install.sh)"
if ! timeout -k 5 60 "$CRIU" check >"$T/criu-check.log" 2>&1; then
    skip_or_fail "$CRIU check fails: $(tail -2 "$T/criu-check.log" | tr '\n' ' ')"
fi
# husk (library or binary) and runc run the criu in PATH.
mkdir -p "$T/bin" "$T/xdg"
ln -sf "$CRIU" "$T/bin/criu"
log "criu: $CRIU ($("$CRIU" --version | head -1))"

start_containerd() {
    start_daemon containerd "$T/containerd.log" env PATH="$T/bin:$PATH" XDG_RUNTIME_DIR="$T/xdg" containerd --config "$T/config.toml"
}
containerd_up husk-ckpt-$$ copy || exit 1
on_exit rm -rf "$T/xdg"

c() { timeout -k 5 60 "${CTR[@]}" "$@"; }
remove() {
    c task kill -s SIGKILL "$1" >/dev/null 2>&1
    wait_for 10 status_is "$1" STOPPED
    c task rm -f "$1" >/dev/null 2>&1
    c container rm "$1" >/dev/null 2>&1
    c snapshot rm "$1" >/dev/null 2>&1
}
count() { cat "$1/count" 2>/dev/null | sed 's/^0*//'; }
count_at_least() { local n; n=$(count "$1"); [ -n "$n" ] && [ "$n" -ge "$2" ]; }

# The counter: a fixed-width count, so the file's size never changes
# (CRIU checks the size of a file open at the dump).
COUNTER='i=0; while :; do i=$((i+1)); printf "%08d\n" $i >/data/count; echo $i; sleep 0.2; done'

suite() {
    local mode=$1
    shift
    local id=ck-$mode-$$ data=$T/data-$mode ref=checkpoint/ck-$mode:1
    mkdir -p "$data"
    if ! c run -d --mount "type=bind,src=$data,dst=/data,options=rbind:rw" "$@" "$REF" "$id" sh -c "$COUNTER" >"$T/run-$mode.log" 2>&1 \
        || ! wait_for 15 count_at_least "$data" 5; then
        fail "$mode: counter runs" "$(tail -3 "$T/run-$mode.log") count $(count "$data")"
        remove "$id"
        return
    fi
    local before after killed first later
    before=$(count "$data")
    if c container checkpoint --task "$id" "$ref" >"$T/ck-$mode.log" 2>&1; then
        pass "$mode: ctr containers checkpoint --task"
    else
        fail "$mode: ctr containers checkpoint --task" "$(tail -3 "$T/ck-$mode.log")"
        remove "$id"
        return
    fi
    after=$(count "$data")
    if status_is "$id" RUNNING && wait_for 10 count_at_least "$data" $((after + 3)); then
        pass "$mode: the task keeps running after the checkpoint"
    else
        fail "$mode: the task keeps running after the checkpoint" "status $(task_status "$id"), count $(count "$data") (was $after)"
    fi
    check "$mode: the checkpoint image is in the content store" "$ref" "${CTR[@]}" image ls -q
    # Far enough past the checkpoint that a restored counter is told
    # apart from one that was never stopped.
    wait_for 20 count_at_least "$data" $((after + 40))
    remove "$id"
    killed=$(count "$data")
    if c container restore --live "$id" "$ref" >"$T/restore-$mode.log" 2>&1; then
        pass "$mode: ctr containers restore --live"
    else
        fail "$mode: ctr containers restore --live" "$(tail -3 "$T/restore-$mode.log") $(grep -h 'Error' "$T"/state/io.containerd.runtime.v2.task/*/"$id"/work/restore.log 2>/dev/null | tail -2)"
        remove "$id"
        return
    fi
    grows() { [ "$(count "$data")" != "$killed" ]; }
    wait_for 10 grows
    first=$(count "$data")
    if [ -n "$first" ] && [ "$first" -ge "$before" ] && [ "$first" -lt "$killed" ] && [ "$first" -le $((after + 30)) ]; then
        pass "$mode: the restored counter goes on from the checkpoint ($before..$after at the checkpoint, $killed when killed, $first after restore)"
    else
        fail "$mode: the restored counter goes on from the checkpoint" "$before..$after at the checkpoint, $killed when killed, ${first:-nothing} after restore"
    fi
    if status_is "$id" RUNNING && wait_for 10 count_at_least "$data" $((first + 3)); then
        pass "$mode: the restored task is RUNNING and counting"
    else
        fail "$mode: the restored task is RUNNING and counting" "status $(task_status "$id"), count $(count "$data")"
    fi
    check "$mode: exec in the restored task" "exec-sees-000" "${CTR[@]}" task exec --exec-id e1 "$id" sh -c 'echo exec-sees-$(cat /data/count)'
    check "$mode: task ps of the restored task" "$(task_pid "$id")" "${CTR[@]}" task ps "$id"
    c task kill -s SIGKILL "$id" >/dev/null 2>&1
    if wait_for 15 status_is "$id" STOPPED; then pass "$mode: the restored task is killed"; else fail "$mode: the restored task is killed" "status $(task_status "$id")"; fi
    check "$mode: the restored task's exit status, task rm" "137" "${CTR[@]}" task rm "$id"
    check "$mode: the restored container is deleted" "" "${CTR[@]}" container rm "$id"
    remove "$id"
    c image rm "$ref" >/dev/null 2>&1
}

# ctr tasks checkpoint --exit: runc's CheckpointOptions with exit set.
exit_suite() {
    local mode=$1
    shift
    local id=ckx-$mode-$$ data=$T/data-x-$mode out
    mkdir -p "$data"
    if ! c run -d --mount "type=bind,src=$data,dst=/data,options=rbind:rw" "$@" "$REF" "$id" sh -c "$COUNTER" >"$T/run-x-$mode.log" 2>&1 \
        || ! wait_for 15 count_at_least "$data" 3; then
        fail "$mode: counter runs" "$(tail -3 "$T/run-x-$mode.log")"
        remove "$id"
        return
    fi
    if out=$(c task checkpoint --exit "$id" 2>&1) && wait_for 15 status_is "$id" STOPPED; then
        pass "$mode: ctr tasks checkpoint --exit stops the task ($out)"
    else
        fail "$mode: ctr tasks checkpoint --exit stops the task" "status $(task_status "$id"): $out"
    fi
    # ctr task rm warns "task ... exit with non-zero exit code 137".
    check "$mode: its exit status, task rm" "137" "${CTR[@]}" task rm "$id"
    remove "$id"
    [ -n "$out" ] && c image rm "$out" >/dev/null 2>&1
}

task_pid() { "${CTR[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }

# ctr sends CheckpointOptions only to runtimes named io.containerd.runc.*:
# containerd finds that runtime's shim as containerd-shim-runc-v2 in PATH,
# where $T/bin comes first, so husk's shim is installed under that name
# for its `tasks checkpoint --exit`, and containerd's own shim afterwards.
RUNC_SHIM=$(command -v containerd-shim-runc-v2)
ln -sf "$T/bin/containerd-shim-husk-v2" "$T/bin/containerd-shim-runc-v2"
exit_suite husk --runtime io.containerd.runc.v2
ln -sf "$RUNC_SHIM" "$T/bin/containerd-shim-runc-v2"

# TaskCheckpointed from husk's shim reaches containerd (`ctr events`
# prints only the events it decodes).
evlog=$T/events.log
"${CTR[@]}" events >"$evlog" 2>&1 &
evpid=$!
on_exit kill "$evpid"
suite husk --runtime io.containerd.husk.v2
kill "$evpid" 2>/dev/null
if grep -q '/tasks/checkpointed .*"container_id":"ck-husk-' "$evlog"; then
    pass "husk: event /tasks/checkpointed reaches containerd"
else
    fail "husk: event /tasks/checkpointed reaches containerd" "$(grep -c . "$evlog") lines"
fi
suite runc-husk --runtime io.containerd.runc.v2 --runc-binary "$T/bin/husk"
exit_suite runc-husk --runtime io.containerd.runc.v2 --runc-binary "$T/bin/husk"
suite runc --runtime io.containerd.runc.v2 --runc-binary "$(command -v runc)"
exit_suite runc --runtime io.containerd.runc.v2 --runc-binary "$(command -v runc)"

# containerd shuts each shim down once its task is deleted.
if wait_for 10 sh -c "[ -z \"\$(ps -eo args | grep -F -- '-namespace $NS' | grep -v grep)\" ]"; then
    pass "shims exited after their tasks were deleted"
else
    fail "shims exited after their tasks were deleted" "$(ps -eo pid,args | grep -F -- "-namespace $NS" | grep -v grep | head -3)"
fi
summary
