#!/bin/busybox sh
# /init of the test VM: a pure cgroup v2 host. Runs husk with memory,
# pids, cpu, io and device limits, checks them, prints one
# "HUSK-VM-RESULT: PASS|FAIL" line and powers off. Every check prints
# "CHECK <name> ok" or "CHECK <name> FAIL <why>" for the host script.

export PATH=/bin
# pivot_root cannot leave the initramfs (rootfs): copy everything onto a
# tmpfs and continue there, as on a real host's root file system.
if [ ! -e /.stage2 ]; then
    /bin/busybox mkdir -p /newroot
    /bin/busybox mount -t tmpfs -o mode=755 root /newroot
    for d in bin lib lib64 rootfs init; do
        [ -e /$d ] && /bin/busybox cp -a /$d /newroot/
    done
    /bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
    /bin/busybox touch /newroot/.stage2
    exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec >/dev/console 2>&1

FAILED=0
ok() { echo "CHECK $1 ok"; }
fail() { echo "CHECK $1 FAIL $2"; FAILED=1; }
finish() {
    if [ "$FAILED" = 0 ]; then echo "HUSK-VM-RESULT: PASS"; else echo "HUSK-VM-RESULT: FAIL"; fi
    sync
    poweroff -f
}
expect() { # name file want
    got=$(cat "$2" 2>&1)
    if [ "$got" = "$3" ]; then ok "$1"; else fail "$1" "$2 holds '$got', want '$3'"; fi
}

echo "kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
grep -q ' cgroup ' /proc/mounts && fail pure-v2 "a cgroup v1 hierarchy is mounted"
for c in memory pids cpu io cpuset hugetlb; do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || fail "enable-$c" "cannot enable $c"
done
echo "subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

# A block device to throttle: an 8 MiB RAM disk (/dev/ram0).
insmod /lib/modules/brd.ko rd_nr=1 rd_size=8192 || fail brd "insmod brd failed"
BLK=$(cat /sys/block/ram0/dev 2>/dev/null)
MAJ=${BLK%:*}
MIN=${BLK#*:}

R=/rootfs
mkdir -p /tmp/b /tmp/state
cd /tmp/b

config() { # cgroupsPath args-json resources-json
    cat > config.json <<EOF
{
  "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2,
              "env": ["PATH=/bin"], "cwd": "/",
              "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
  "root": {"path": "$R", "readonly": true},
  "hostname": "vm-test",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["rbind"]}
  ],
  "linux": {
    "cgroupsPath": "$1",
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
    "resources": $3
  }
}
EOF
}

H="husk --root /tmp/state"
CG=/sys/fs/cgroup/husk-vm-1

# 1. Limits land in the files.
config /husk-vm-1 '["sleep", "300"]' "{
  \"devices\": [{\"allow\": false, \"access\": \"rwm\"}],
  \"memory\": {\"limit\": 33554432, \"reservation\": 16777216},
  \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0\"},
  \"pids\": {\"limit\": 10},
  \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}],
  \"unified\": {\"memory.high\": \"30000000\", \"pids.max\": \"11\"},
  \"blockIO\": {\"weight\": 500,
                \"throttleReadBpsDevice\": [{\"major\": $MAJ, \"minor\": $MIN, \"rate\": 1048576}],
                \"throttleWriteIOPSDevice\": [{\"major\": $MAJ, \"minor\": $MIN, \"rate\": 100}]}
}"
if $H run -d --bundle /tmp/b c1; then ok create; else fail create "husk run -d failed"; finish; fi
expect memory.max $CG/memory.max 33554432
expect memory.low $CG/memory.low 16777216
# unified is written last: it wins over pids.limit.
expect pids.max-unified $CG/pids.max 11
expect memory.high-unified $CG/memory.high 29999104
expect hugetlb.2MB.max $CG/hugetlb.2MB.max 4194304
expect cpu.weight $CG/cpu.weight 20
expect cpu.max $CG/cpu.max "50000 100000"
expect cpuset.cpus $CG/cpuset.cpus 0
if [ -e $CG/io.bfq.weight ]; then expect io.bfq.weight $CG/io.bfq.weight "default 500"
elif [ -e $CG/io.weight ]; then expect io.weight $CG/io.weight "default 4950"
else echo "CHECK io.weight skipped (no weight file on this kernel)"; fi
expect io.max $CG/io.max "$BLK rbps=1048576 wbps=max riops=max wiops=100"

# 2. update, pause/resume, ps, events, delete.
$H update --memory 64m --pids-limit 20 --cpu-quota 20000 c1 || fail update "husk update failed"
expect update-memory $CG/memory.max 67108864
expect update-pids $CG/pids.max 20
expect update-cpu $CG/cpu.max "20000 100000"
$H pause c1 || fail pause "husk pause failed"
expect pause-freeze $CG/cgroup.freeze 1
if $H state c1 | grep -q '"status": "paused"'; then ok pause-state; else fail pause-state "state is not paused"; fi
$H resume c1 || fail resume "husk resume failed"
expect resume-freeze $CG/cgroup.freeze 0
ps_json=$($H ps -f json c1)
if [ "$ps_json" = "[$(cat $CG/cgroup.procs)]" ]; then ok ps; else fail ps "ps -f json: $ps_json"; fi
ev=$($H events --stats c1)
if echo "$ev" | grep -q '"pids":{"current":1,"limit":20}'; then ok events; else fail events "$ev"; fi
$H delete -f c1 || fail delete "husk delete -f failed"
if [ -e $CG ]; then fail delete-cgroup "$CG still exists"; else ok delete-cgroup; fi

# Scripts run inside the containers (the root is read-only there).
mkdir -p $R/t
cat > $R/t/pids.sh <<'EOF'
# ash stops at its first failed fork: fork from a child shell, count from pid 1.
sh -c 'for i in $(seq 20); do sleep 30 & done' 2>/dev/null
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo procs=$n
kill -9 -1
EOF
cat > $R/t/oom.sh <<'EOF'
tail /dev/zero
echo status=$?
EOF
cat > $R/t/dev.sh <<'EOF'
if (exec 3>/dev/kmsg) 2>/dev/null; then echo kmsg=open; else echo kmsg=denied; fi
if (exec 3>/dev/null) 2>/dev/null; then echo null=open; else echo null=denied; fi
EOF

# 3. The pids limit stops a fork loop.
config /husk-vm-2 '["sh", "/t/pids.sh"]' '{"pids": {"limit": 6}}'
out=$($H run --bundle /tmp/b c2 2>&1)
n=$(echo "$out" | sed -n 's/^procs=//p')
if [ -n "$n" ] && [ "$n" -le 6 ] && [ "$n" -ge 2 ]; then ok pids-fork; else fail pids-fork "output: $out"; fi

# 4. The memory limit OOM-kills.
config /husk-vm-3 '["sh", "/t/oom.sh"]' '{"memory": {"limit": 16777216, "swap": 16777216}}'
out=$($H run --bundle /tmp/b c3 2>&1)
if echo "$out" | grep -q status=137; then ok oom-kill; else fail oom-kill "output: $out"; fi

# 4b. `events` reports the OOM (memory.events on v2).
cat > $R/t/oom-later.sh <<'EOF'
sleep 1
tail /dev/zero
sleep 60
EOF
config /husk-vm-6 '["sh", "/t/oom-later.sh"]' '{"memory": {"limit": 16777216, "swap": 16777216}}'
if $H run -d --bundle /tmp/b c6; then
    timeout 5 $H events --interval 10s c6 > /tmp/events.out 2>&1
    if grep -q '"type":"oom"' /tmp/events.out; then ok events-oom; else fail events-oom "$(cat /tmp/events.out)"; fi
    $H delete -f c6 || fail events-oom-delete "husk delete -f failed"
else
    fail events-oom "husk run -d failed"
fi

# 5. Device rules (a BPF program on v2): kmsg (c 1:11) denied while the
# default allow list (/dev/null) stays open; an allow rule opens kmsg.
config /husk-vm-4 '["sh", "/t/dev.sh"]' '{"devices": [{"allow": false, "access": "rwm"}]}'
out=$($H run --bundle /tmp/b c4 2>&1)
if echo "$out" | grep -q kmsg=denied; then ok device-denied; else fail device-denied "output: $out"; fi
if echo "$out" | grep -q null=open; then ok device-default-allowed; else fail device-default-allowed "output: $out"; fi
config /husk-vm-5 '["sh", "/t/dev.sh"]' \
    '{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}'
out=$($H run --bundle /tmp/b c5 2>&1)
if echo "$out" | grep -q kmsg=open; then ok device-allowed; else fail device-allowed "output: $out"; fi

# 6. Nothing left behind.
left=$(ls -d /sys/fs/cgroup/husk-* 2>/dev/null)
if [ -z "$left" ]; then ok no-leftover-cgroups; else fail no-leftover-cgroups "$left"; fi
if [ -z "$(ls /tmp/state)" ]; then ok no-leftover-state; else fail no-leftover-state "$(ls /tmp/state)"; fi

finish
