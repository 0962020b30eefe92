#!/usr/bin/env bash
# podman 4.3 (with conmon) using husk as its OCI runtime (--runtime), with
# the cgroupfs manager, private storage/run/tmp dirs under a temp dir and
# containers without a network. podman's default ulimits (nofile/nproc)
# exceed what some sandboxes allow, so a test containers.conf sets them to
# the current hard limits.
. "$(dirname "$0")/lib.sh"
need_bins podman conmon python3

mkdir -p "$T/storage" "$T/run" "$T/tmp"
NOFILE=$(ulimit -Hn)
NPROC=$(ulimit -Hu)
[ "$NPROC" = unlimited ] && NPROC=1048576
[ "$NOFILE" = unlimited ] && NOFILE=1048576
# podman itself caps its nproc at kernel.pid_max: no higher for containers.
PIDMAX=$(cat /proc/sys/kernel/pid_max)
[ "$NPROC" -gt "$PIDMAX" ] && NPROC=$PIDMAX
cat >"$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
netns = "none"
cgroupns = "host"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
runtime = "husk"
tmp_dir = "$T/tmp"

[engine.runtimes]
husk = ["$HUSK"]
CONF
cat >"$T/storage.conf" <<CONF
[storage]
driver = "$(grep -qw overlay /proc/filesystems && echo overlay || echo vfs)"
graphroot = "$T/storage"
runroot = "$T/run"
CONF
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf"
PODMAN=(podman --root "$T/storage" --runroot "$T/run" --tmpdir "$T/tmp" --runtime "$HUSK" --cgroup-manager cgroupfs --events-backend file)
on_exit "${PODMAN[*]} rm -af -t 0"
on_exit remove_cgroups libpod_parent
make_image
if ! timeout 120 "${PODMAN[@]}" load -i "$T/image.tar" >"$T/load.log" 2>&1; then
    fail image-load "$(tail -3 "$T/load.log")"
    summary; exit 1
fi
IMG=localhost/$IMAGE
"${PODMAN[@]}" image exists "$IMG" || IMG=docker.io/library/$IMAGE
RUN=(run --network none)

check "podman run --rm" "hi from podman" "${PODMAN[@]}" "${RUN[@]}" --rm "$IMG" echo hi from podman
check_rc "podman run exit code" 6 "${PODMAN[@]}" "${RUN[@]}" --rm "$IMG" sh -c 'exit 6'
check "podman run -t" "/dev/pts/" "${PODMAN[@]}" "${RUN[@]}" --rm -t "$IMG" tty
if check "podman run -d" "" "${PODMAN[@]}" "${RUN[@]}" -d --name husk-pod "$IMG" sh -c 'echo started; exec sleep 600'; then
    check "podman exec" "in-exec" "${PODMAN[@]}" exec husk-pod echo in-exec
    check_rc "podman exec exit code" 2 "${PODMAN[@]}" exec husk-pod sh -c 'exit 2'
    check "podman logs" "started" "${PODMAN[@]}" logs husk-pod
    check "podman ps shows it running" "husk-pod" "${PODMAN[@]}" ps
    check "podman stop" "" "${PODMAN[@]}" stop -t 2 husk-pod
    check "podman rm" "" "${PODMAN[@]}" rm husk-pod
fi

summary
