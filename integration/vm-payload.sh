# Sourced by the scripts that boot the systemd VM with husk in it
# (integration/rootless, integration/checkpoint-vm): a payload directory
# with husk, a test script as run.sh and a busybox rootfs.
#
#   payload=$(vm_payload HUSK TEST_SCRIPT)   # removed by the caller

vm_payload() { # husk test-script
    local busybox=${BUSYBOX:-/bin/busybox} dir a
    [ -x "$1" ] || { echo "$1 missing (make build)" >&2; return 1; }
    [ -x "$busybox" ] || { echo "$busybox missing (apt-get install busybox-static)" >&2; return 1; }
    dir=$(mktemp -d /tmp/husk-vm-payload.XXXXXX)
    install -m 755 "$1" "$dir/husk"
    install -m 755 "$2" "$dir/run.sh"
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" "$dir/rootfs/tmp"
    cp "$busybox" "$dir/rootfs/bin/busybox"
    for a in $("$busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"
    done
    echo "$dir"
}
