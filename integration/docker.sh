#!/usr/bin/env bash
# dockerd 20.10 with husk as an extra runtime (daemon.json "runtimes" and
# --add-runtime): docker's containerd runs containerd's runc shim with
# BinaryName=husk. Private data-root/exec-root/socket under a temp dir, no
# iptables, no bridge; containers use --network none.
. "$(dirname "$0")/lib.sh"
need_bins dockerd docker containerd python3

mkdir -p "$T/docker" "$T/exec"
cat >"$T/daemon.json" <<CONF
{
  "runtimes": { "husk": { "path": "$HUSK" } }
}
CONF
DRIVER=overlay2
grep -qw overlay /proc/filesystems || DRIVER=vfs
start_daemon dockerd "$T/dockerd.log" dockerd \
    --config-file "$T/daemon.json" --add-runtime "husk-flag=$HUSK" \
    --data-root "$T/docker" --exec-root "$T/exec" --pidfile "$T/dockerd.pidfile" \
    -H "unix://$T/docker.sock" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge=none --storage-driver "$DRIVER" --log-level warn
on_exit remove_cgroups docker-husk-it
DOCKER=(docker -H "unix://$T/docker.sock")
if ! wait_for 40 "${DOCKER[@]}" version; then
    fail dockerd-start "$(tail -5 "$T/dockerd.log")"
    summary; exit 1
fi
make_image
if ! "${DOCKER[@]}" load -i "$T/image.tar" >"$T/load.log" 2>&1; then
    fail image-load "$(tail -3 "$T/load.log")"
    summary; exit 1
fi
RUN=(run --runtime husk --network none --cgroup-parent /docker-husk-it)
on_exit "${DOCKER[*]} rm -f husk-det husk-mem >/dev/null 2>&1"

check "docker run --rm (daemon.json runtime)" "hi" "${DOCKER[@]}" "${RUN[@]}" --rm "$IMAGE" echo hi
check "docker run --rm (--add-runtime)" "hi" "${DOCKER[@]}" run --runtime husk-flag --network none --rm "$IMAGE" echo hi
check_rc "docker run exit code" 3 "${DOCKER[@]}" "${RUN[@]}" --rm "$IMAGE" sh -c 'exit 3'
check "docker run -i (stdin)" "got piped" sh -c "echo piped | timeout -k 3 30 ${DOCKER[*]} ${RUN[*]} --rm -i $IMAGE sh -c 'read l; echo got \$l'"
check "docker run -t" "/dev/pts/" "${DOCKER[@]}" "${RUN[@]}" --rm -t "$IMAGE" tty

if check "docker run -d" "" "${DOCKER[@]}" "${RUN[@]}" -d --name husk-det "$IMAGE" sh -c 'echo started; exec sleep 600'; then
    check "docker exec" "in-exec" "${DOCKER[@]}" exec husk-det echo in-exec
    check_rc "docker exec exit code" 4 "${DOCKER[@]}" exec husk-det sh -c 'exit 4'
    check "docker exec -t" "/dev/pts/" "${DOCKER[@]}" exec -t husk-det tty
    wait_for 10 sh -c "${DOCKER[*]} logs husk-det 2>&1 | grep -q started"
    check "docker logs" "started" "${DOCKER[@]}" logs husk-det
    check "docker top" "sleep 600" "${DOCKER[@]}" top husk-det
    check "docker pause" "" "${DOCKER[@]}" pause husk-det
    check "docker inspect shows paused" "paused" "${DOCKER[@]}" inspect -f '{{.State.Status}}' husk-det
    check "docker unpause" "" "${DOCKER[@]}" unpause husk-det
    check "docker inspect shows running" "running" "${DOCKER[@]}" inspect -f '{{.State.Status}}' husk-det
    check "docker stop" "" "${DOCKER[@]}" stop -t 2 husk-det
    check "docker inspect exit code after stop" "137" "${DOCKER[@]}" inspect -f '{{.State.ExitCode}}' husk-det
    check "docker rm" "" "${DOCKER[@]}" rm husk-det
fi

if check "docker run -m 64m" "" "${DOCKER[@]}" "${RUN[@]}" -d -m 64m --name husk-mem "$IMAGE" sleep 600; then
    id=$("${DOCKER[@]}" inspect -f '{{.Id}}' husk-mem)
    f=/sys/fs/cgroup/memory/docker-husk-it/$id/memory.limit_in_bytes
    [ -f "$f" ] || f=/sys/fs/cgroup/docker-husk-it/$id/memory.max
    check "memory limit 64m in the cgroup" 67108864 cat "$f"
    check "docker stats" "husk-mem" "${DOCKER[@]}" stats --no-stream husk-mem
    check "docker rm -f" "" "${DOCKER[@]}" rm -f husk-mem
fi

summary
