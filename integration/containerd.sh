#!/usr/bin/env bash
# containerd 1.6 driving husk two ways:
#   runc   - containerd's own io.containerd.runc.v2 shim with BinaryName=husk
#            (ctr --runc-binary), husk as a runc drop-in;
#   husk   - husk's own shim, runtime io.containerd.husk.v2.
# containerd runs on a private socket, root and state under a temp dir.
. "$(dirname "$0")/lib.sh"
need_bins containerd ctr python3
[ -x "$SHIM" ] || { fail setup "$SHIM not built"; summary; exit 1; }

# Copies, not links: attack_suite tries to overwrite what containerd runs.
containerd_up husktest-$$ copy || exit 1

# Remove a container whatever state it is in (used on failure paths too).
remove() {
    "${CTR[@]}" task kill -s SIGKILL "$1" >/dev/null 2>&1
    wait_for 10 status_is "$1" STOPPED
    "${CTR[@]}" task rm -f "$1" >/dev/null 2>&1
    "${CTR[@]}" container rm "$1" >/dev/null 2>&1
}

suite() {
    local mode=$1
    shift
    local RUNTIME=("$@")
    local id=$mode-$$

    check "$mode: run --rm prints output" "hello from husk" \
        "${CTR[@]}" run --rm "${RUNTIME[@]}" "$REF" "$id-echo" echo hello from husk
    check_rc "$mode: exit code propagates" 7 \
        "${CTR[@]}" run --rm "${RUNTIME[@]}" "$REF" "$id-exit" sh -c 'exit 7'
    check "$mode: stdin to the container" "got piped-in" \
        sh -c "echo piped-in | timeout -k 3 20 ${CTR[*]} run --rm ${RUNTIME[*]} $REF $id-stdin sh -c 'read l; echo got \$l'"

    # A detached task: exec, ps, pause/resume, metrics, kill, delete.
    local d=$id-det
    if ! timeout 60 "${CTR[@]}" run -d --memory-limit 67108864 "${RUNTIME[@]}" "$REF" "$d" sleep 600 >"$T/run-d.log" 2>&1; then
        fail "$mode: run -d" "$(tail -3 "$T/run-d.log")"
        remove "$d"
        return
    fi
    if wait_for 10 status_is "$d" RUNNING; then pass "$mode: run -d is RUNNING"; else fail "$mode: run -d is RUNNING" "status $(task_status "$d")"; fi
    check "$mode: task exec" "in-exec" "${CTR[@]}" task exec --exec-id e1 "$d" echo in-exec
    check_rc "$mode: task exec exit code" 5 "${CTR[@]}" task exec --exec-id e2 "$d" sh -c 'exit 5'
    check "$mode: task ps" "$(task_pid "$d")" "${CTR[@]}" task ps "$d"
    local cg=/sys/fs/cgroup/memory/$NS/$d/memory.limit_in_bytes
    [ -f "$cg" ] || cg=/sys/fs/cgroup/$NS/$d/memory.max
    check "$mode: memory limit applied" 67108864 cat "$cg"
    if timeout 30 "${CTR[@]}" task pause "$d" >/dev/null 2>&1 && status_is "$d" PAUSED; then
        pass "$mode: task pause"
    else
        fail "$mode: task pause" "status $(task_status "$d")"
    fi
    if timeout 30 "${CTR[@]}" task resume "$d" >/dev/null 2>&1 && status_is "$d" RUNNING; then
        pass "$mode: task resume"
    else
        fail "$mode: task resume" "status $(task_status "$d")"
    fi
    check "$mode: task metrics" "memory.usage_in_bytes" "${CTR[@]}" task metrics "$d"
    if [ "$mode" = husk ]; then
        local shim_pid rss
        shim_pid=$(pids_mentioning "-id $d" | head -1)
        rss=$(awk '/VmRSS/ { print $2 }' "/proc/$shim_pid/status" 2>/dev/null)
        echo "  .. husk shim RSS with one container: ${rss:-?} kB ($(grep -E '^(Rss|Anonymous|Shared_Clean|Private_Clean)' "/proc/$shim_pid/smaps_rollup" 2>/dev/null | tr -s ' ' | tr '\n' ' '); $(ls "/proc/$shim_pid/task" 2>/dev/null | wc -l) threads)" >&2
        # This shim has served exec, ps, pause, resume and metrics and
        # measures ~2.1 MiB (3.1 before metrics stopped building protobuf's
        # reflection tables and idle ttrpc workers stopped keeping their
        # stacks); the performance issue's goal is 2.5 MiB for a pod.
        # Guards against regressions (HUSK_SHIM_RSS_KB).
        local limit=${HUSK_SHIM_RSS_KB:-2560}
        if [ -n "$rss" ] && [ "$rss" -lt "$limit" ]; then pass "husk: shim RSS ${rss} kB < ${limit} kB"; else fail "husk: shim RSS < ${limit} kB" "${rss:-?} kB"; fi
        # ctr gives every exec a stdin fifo, and opens its end only while
        # its process runs: a shim waiting in open(2) for it kept one
        # thread per exec forever.
        local before after i
        before=$(ls "/proc/$shim_pid/task" 2>/dev/null | wc -l)
        for i in 1 2 3 4 5; do
            timeout 30 "${CTR[@]}" task exec --exec-id "short$i" "$d" true </dev/null >/dev/null 2>&1
        done
        # The last execs' copy threads may take a moment to finish on a
        # loaded machine; a leaked one never does.
        threads_back() { [ "$(ls "/proc/$shim_pid/task" 2>/dev/null | wc -l)" -le "$before" ]; }
        wait_for 10 threads_back
        after=$(ls "/proc/$shim_pid/task" 2>/dev/null | wc -l)
        if [ "$before" -gt 0 ] && [ "$after" -le "$before" ]; then
            pass "husk: 5 short execs leave no shim thread behind ($before -> $after)"
        else
            fail "husk: 5 short execs leave no shim thread behind" "$before -> $after threads"
        fi
    fi
    timeout 30 "${CTR[@]}" task kill -s SIGKILL "$d" >/dev/null 2>&1
    if wait_for 15 status_is "$d" STOPPED; then pass "$mode: task kill"; else fail "$mode: task kill" "status $(task_status "$d")"; fi
    check "$mode: task delete" "" "${CTR[@]}" task rm "$d"
    check "$mode: container delete" "" "${CTR[@]}" container rm "$d"
    remove "$d"
    if [ -z "$(awk -v d="$T" 'index($2, d) == 1 && $2 ~ /rootfs/' /proc/self/mounts)" ]; then
        pass "$mode: rootfs unmounted after delete"
    else
        fail "$mode: rootfs unmounted after delete" "$(awk -v d="$T" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | head -2)"
    fi
}

# CVE-2019-5736: a container keeping CAP_SYS_PTRACE (--privileged) can read
# /proc/PID/exe of a process that the runtime or the shim forked and that has
# not exec'd yet. Such a process must run from a sealed copy, never from a
# binary on disk. The container lists every exe link it can see while
# processes are exec'd into it.
ptrace_suite() {
    local mode=$1
    shift
    local p=$mode-ptrace-$$
    if ! timeout 60 "${CTR[@]}" run -d --privileged "$@" "$REF" "$p" \
        sh -c 'while :; do for e in /proc/[0-9]*/exe; do readlink $e; done; done >/tmp/seen 2>/dev/null' >"$T/ptrace.log" 2>&1; then
        fail "$mode: privileged run -d" "$(tail -3 "$T/ptrace.log")"
        remove "$p"
        return
    fi
    local i ok=1
    for i in $(seq 1 20); do
        timeout 30 "${CTR[@]}" task exec --exec-id "x$i" "$p" true >/dev/null 2>&1 || ok=0
    done
    if [ $ok = 1 ]; then pass "$mode: exec into a privileged container"; else fail "$mode: exec into a privileged container" "an exec failed"; fi
    local seen
    seen=$(timeout 30 "${CTR[@]}" task exec --exec-id seen "$p" sort -u /tmp/seen 2>&1)
    local bad
    bad=$(grep -F -e "$(readlink -f "$SHIM")" -e "$(readlink -f "$HUSK")" -e "$T/bin/" <<<"$seen")
    if ! grep -q busybox <<<"$seen"; then
        fail "$mode: no process shows a runtime binary on disk" "the container saw no exe links: $(head -3 <<<"$seen")"
    elif [ -n "$bad" ]; then
        fail "$mode: no process shows a runtime binary on disk" "$bad"
    else
        pass "$mode: no process shows a runtime binary on disk ($(tr '\n' ' ' <<<"$seen"))"
    fi
    remove "$p"
}

# CVE-2019-5736 end to end (spec-tests/helpers/exe_attack.c): a static
# helper in the container grabs every other process's /proc/PID/exe and
# keeps trying to reopen it for writing, while `/proc/self/exe` (the husk
# binary, or for husk's shim the shim's own) is exec'd into the container
# again and again. The binaries under attack are the copies in $T/bin.
attack_suite() {
    local mode=$1
    shift
    local a=$mode-attack-$$ dir=$T/attack-$mode
    mkdir -p "$dir/out"
    cp "$T/exe_attack" "$dir/"
    local before after
    before=$(sha256sum "$T/bin/husk" "$T/bin/containerd-shim-husk-v2")
    if ! timeout 60 "${CTR[@]}" run -d --mount "type=bind,src=$dir,dst=/m,options=rbind:rw" "$@" "$REF" "$a" \
        sh -c '/m/exe_attack 6 /m/out & exec sleep 60' >"$T/attack.log" 2>&1; then
        fail "$mode: /proc/self/exe attack: run -d" "$(tail -3 "$T/attack.log")"
        remove "$a"
        return
    fi
    local i
    for i in $(seq 1 40); do
        timeout 30 "${CTR[@]}" task exec --exec-id "a$i" "$a" /proc/self/exe --version </dev/null >/dev/null 2>&1
        sleep 0.05
    done
    wait_for 15 test -e "$dir/out/done"
    remove "$a"
    after=$(sha256sum "$T/bin/husk" "$T/bin/containerd-shim-husk-v2")
    # Opening husk's exec trampoline (a memfd sealed against writes) for
    # writing succeeds and every write fails: only writes, and opens of
    # anything else, count.
    local wrote opened
    wrote=$(grep '^wrote' "$dir/out/log" 2>/dev/null | head -3)
    opened=$(grep -v -e '^denied' -e '^wrote' "$dir/out/log" 2>/dev/null | grep -v '/memfd:' | head -3)
    if [ "$before" != "$after" ]; then
        fail "$mode: /proc/self/exe attack leaves the binaries intact" "OVERWRITTEN: $after; $wrote"
    elif [ -n "$wrote$opened" ]; then
        fail "$mode: /proc/self/exe attack leaves the binaries intact" "written or opened for writing: $wrote $opened"
    elif [ ! -e "$dir/out/done" ] || [ ! -s "$dir/out/seen" ]; then
        fail "$mode: /proc/self/exe attack leaves the binaries intact" "the attacker saw no runtime process (test broken): $(tail -2 "$T/attack.log")"
    else
        pass "$mode: /proc/self/exe attack leaves the binaries intact ($(wc -l <"$dir/out/seen") exe links opened, none written)"
    fi
}

# OCI hooks run by the runtime (by the shim itself, for husk's shim, which
# reaps every child as it exits: the hooks' exit statuses must still reach
# the code waiting for them). `ctr run --config` takes a whole spec; its
# rootfs is a busybox directory made here.
hooks_suite() {
    local mode=$1
    shift
    local r=$T/hookroot i ok=0 last=
    if [ ! -d "$r" ]; then
        mkdir -p "$r/bin" "$r/proc" "$r/dev" "$r/sys" "$r/tmp"
        cp "$(command -v busybox)" "$r/bin/busybox"
        ln -s busybox "$r/bin/sh"
        ln -s busybox "$r/bin/echo"
    fi
    ctr oci spec | python3 -c '
import json, sys
c = json.load(sys.stdin)
log = sys.argv[2]
hook = lambda name: [{"path": "/bin/sh", "args": ["sh", "-c", "echo " + name + " >> " + log]}]
c["hooks"] = {k: hook(k) for k in ("prestart", "createRuntime", "poststart")}
c["process"]["args"] = ["echo", "hooked-container"]
c["process"]["terminal"] = False
c["root"] = {"path": sys.argv[1], "readonly": True}
json.dump(c, sys.stdout)' "$r" "$T/hooks-$mode.log" >"$T/hooks-$mode.json"
    for i in 1 2 3 4 5; do
        last=$(timeout 30 "${CTR[@]}" run --rm "$@" --config "$T/hooks-$mode.json" "$mode-hooks-$$-$i" 2>&1) && grep -q hooked-container <<<"$last" && ok=$((ok + 1))
    done
    if [ $ok = 5 ]; then pass "$mode: 5 containers with prestart/createRuntime/poststart hooks"; else fail "$mode: containers with hooks" "$ok of 5 ran; last: $last"; fi
    local n
    n=$(grep -c . "$T/hooks-$mode.log" 2>/dev/null)
    if [ "${n:-0}" = 15 ]; then pass "$mode: every hook ran once"; else fail "$mode: every hook ran once" "${n:-0} hook runs logged, wanted 15"; fi
}

task_pid() { "${CTR[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }

# The task events the shim publishes, as containerd decodes them: `ctr
# events` prints only events whose type it can unmarshal, so a wrong type
# name or body drops the line.
events_suite() {
    local mode=$1
    shift
    local id=$mode-ev-$$ log=$T/events-$mode.log evpid topic
    "${CTR[@]}" events >"$log" 2>&1 &
    evpid=$!
    on_exit kill "$evpid"
    sleep 0.5
    if "${CTR[@]}" run -d --null-io "$@" "$REF" "$id" sleep 1000 >/dev/null 2>&1 \
        && "${CTR[@]}" task exec --exec-id ev1 "$id" true \
        && "${CTR[@]}" task pause "$id" && "${CTR[@]}" task resume "$id"; then
        remove "$id"
        wait_for 5 grep -q "/tasks/delete.*\"$id\"" "$log"
    else
        remove "$id"
    fi
    kill "$evpid" 2>/dev/null
    for topic in /tasks/create /tasks/start /tasks/exec-added /tasks/exec-started /tasks/paused /tasks/resumed /tasks/exit /tasks/delete; do
        if grep -q "$topic .*\"container_id\":\"$id\"" "$log"; then
            pass "$mode: event $topic reaches containerd"
        else
            fail "$mode: event $topic reaches containerd" "$(grep -c . "$log") lines: $(tail -2 "$log" | tr '\n' ' ')"
        fi
    done
}

# Crash safety of husk's shim. containerd restarted while a task runs: the
# task lives on and the new containerd finds it through its shim (status,
# exec). Then the shim is SIGKILLed: containerd runs the shim's `delete`
# for the dead shim, which must leave no process, cgroup or husk state.
shim_crash_suite() {
    local r=husk-crash-$$ pid shim
    if ! timeout 60 "${CTR[@]}" run -d --runtime io.containerd.husk.v2 "$REF" "$r" sleep 1000 >"$T/crash.log" 2>&1; then
        fail "husk: shim crash: run -d" "$(tail -3 "$T/crash.log")"
        remove "$r"
        return
    fi
    wait_for 10 status_is "$r" RUNNING
    pid=$("${CTR[@]}" task ls 2>/dev/null | awk -v id="$r" '$1 == id { print $2 }')
    stop_pid "$(cat "$T/containerd.pid")"
    start_containerd
    if wait_for 20 "${CTR[@]}" version && wait_for 20 status_is "$r" RUNNING && kill -0 "$pid" 2>/dev/null \
        && [ "$("${CTR[@]}" task ls 2>/dev/null | awk -v id="$r" '$1 == id { print $2 }')" = "$pid" ] \
        && timeout 30 "${CTR[@]}" task exec --exec-id after-restart "$r" true; then
        pass "husk: a task survives a containerd restart and is found again (pid $pid)"
    else
        fail "husk: a task survives a containerd restart" "status $(task_status "$r"), pid $pid: $(tail -3 "$T/containerd.log")"
    fi
    shim=$(pids_mentioning "-id $r " | head -1)
    if [ -z "$shim" ]; then
        fail "husk: SIGKILLed shim is cleaned up" "no shim process found for $r"
        remove "$r"
        return
    fi
    kill -KILL "$shim"
    local cg_left state_left
    gone() {
        ! kill -0 "$pid" 2>/dev/null \
            && [ -z "$(ls -d /sys/fs/cgroup/*/"$NS/$r" /sys/fs/cgroup/"$NS/$r" 2>/dev/null)" ] \
            && [ ! -e "/run/containerd/husk/$NS/$r" ]
    }
    if wait_for 30 gone; then
        pass "husk: a SIGKILLed shim's container is removed by containerd's cleanup (process, cgroups, state)"
    else
        cg_left=$(ls -d /sys/fs/cgroup/*/"$NS/$r" 2>/dev/null | head -2 | tr '\n' ' ')
        state_left=$(ls "/run/containerd/husk/$NS/$r" 2>/dev/null | tr '\n' ' ')
        fail "husk: a SIGKILLed shim's container is removed" "process $pid $(kill -0 "$pid" 2>/dev/null && echo alive || echo gone); cgroups: $cg_left; state: $state_left"
    fi
    remove "$r"
}

suite runc --runtime io.containerd.runc.v2 --runc-binary "${HUSK_IT_RUNC_BINARY:-$HUSK}"
suite husk --runtime io.containerd.husk.v2
hooks_suite runc --runtime io.containerd.runc.v2 --runc-binary "${HUSK_IT_RUNC_BINARY:-$HUSK}"
hooks_suite husk --runtime io.containerd.husk.v2
if cc -static -O2 -o "$T/exe_attack" "$REPO/spec-tests/helpers/exe_attack.c" 2>"$T/cc.log"; then
    attack_suite runc --runtime io.containerd.runc.v2 --runc-binary "$T/bin/husk"
    attack_suite husk --runtime io.containerd.husk.v2
else
    fail "building the /proc/self/exe attacker (cc with a static libc)" "$(tail -2 "$T/cc.log")"
fi
ptrace_suite runc --runtime io.containerd.runc.v2 --runc-binary "${HUSK_IT_RUNC_BINARY:-$HUSK}"
ptrace_suite husk --runtime io.containerd.husk.v2
events_suite runc --runtime io.containerd.runc.v2 --runc-binary "${HUSK_IT_RUNC_BINARY:-$HUSK}"
events_suite husk --runtime io.containerd.husk.v2
shim_crash_suite

# containerd shuts each shim down once its task is deleted.
if wait_for 10 sh -c "[ -z \"\$(ps -eo args | grep -F -- '-namespace $NS' | grep -v grep)\" ]"; then
    pass "shims exited after their tasks were deleted"
else
    fail "shims exited after their tasks were deleted" "$(ps -eo pid,args | grep -F -- "-namespace $NS" | grep -v grep | head -3)"
fi

summary
