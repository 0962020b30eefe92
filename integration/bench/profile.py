#!/usr/bin/env python3
"""Where `husk run` spends its time, phase by phase, next to the floor.

    make bench-profile                       # builds husk, 30 rounds, run and exec
    sudo python3 integration/bench/profile.py --husk PATH [--rounds N] [--root DIR] [--exec]

Each round, after a quiet pause (--settle, as bench.py), runs

  floor  unshare --fork --pid --mount --uts --ipc --net --cgroup \\
             chroot ROOTFS /bin/true
  husk   husk --debug --root DIR run -b BUNDLE <id>   (config: /bin/true)

on the same busybox rootfs (integration/bench/bundle.py). `husk --debug`
logs every phase of `create`, `start`, `wait` and `delete`, in husk and in
the container process, as `phase NAME took DURATION start=SECONDS`, SECONDS
being CLOCK_MONOTONIC (the clock of Python's time.monotonic()). This script
takes its own monotonic time right before spawning husk and right after
wait4 returns, so it can also show the time before husk's first phase
(execve of husk, its re-execution from the sealed copy (see README,
Security), argument parsing, opening the root) and after its last
(exit, wait4).

Output: one line per phase name, indented by nesting (a phase inside
another in the same run), with the median duration over the rounds and the
median start offset from the spawn, then the wall time of husk and of the
floor and their ratio. Phase names that only some runs have (none for this
config) are shown with their count. `--json FILE` keeps every sample.

With `--exec`, a second table does the same for `husk --debug exec ID
/bin/true` into one running `sleep 1000` container of the same config, next
to bench.py's exec floor (`nsenter` into it): exec_prepare (state, config,
cgroup files), exec_setup (from the fork until the new process execs),
and in the new process join_cgroups, namespaces and process_setup, then
wait.

The state root defaults to a temporary directory on a tmpfs (/run if it is
one, else /dev/shm), as husk's default /run/husk is on a host
whose /run is tmpfs: on a disk filesystem husk syncs state.json (README,
Performance), which then shows in state_stage and state_publish; `--root`
chooses.
The debug log itself costs time (a write to a pipe per phase, ~50 of them):
compare the wall time here with bench.py's `run`, which runs without it.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bundle as bundle_mod  # noqa: E402
from bench import EXEC_FLOOR_ARGV, FLOOR_ARGV, tmpfs_dir  # noqa: E402  (bench.py's floors, the same commands)

PHASE = re.compile(r'phase (\S+) took ([0-9.]+)(ns|µs|us|ms|s) start=([0-9.]+)')
UNIT = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
TIMEOUT = 30


def parse(stderr, t0):
    """[(name, start_ms_after_spawn, duration_ms)] from husk's debug log."""
    out = []
    for line in stderr.splitlines():
        m = PHASE.search(line)
        if m:
            name, took, unit, start = m.groups()
            out.append((name, (float(start) - t0) * 1e3, float(took) * UNIT[unit]))
    return out


def depth_of(phases):
    """name -> nesting depth in this run (contained in how many others)."""
    depth = {}
    for n, s, d in phases:
        inside = sum(1 for n2, s2, d2 in phases if n2 != n and s2 <= s + 1e-3 and s + d <= s2 + d2 + 1e-3 and d2 > d)
        depth[n] = inside
    return depth


# Phases every `run` of the profile's config must log (a mount per default
# mount: /proc stands for them).
EXPECTED = ("create", "load_config", "cgroups", "clone", "wait_for_go", "namespaces", "mounts", "mount:/proc",
            "devices", "pivot_root", "masked_readonly_sysctl", "process_setup", "state_publish", "start",
            ("start_to_execve", "to_trampoline"), "wait", "delete", "remove_cgroups")
# ... and every `exec` (--exec).
EXPECTED_EXEC = ("exec_prepare", "exec_setup", "join_cgroups", "namespaces", "process_setup", "wait")


def phase_list(names):
    """EXPECTED's names for a message, a tuple as its alternatives."""
    return ", ".join(n if isinstance(n, str) else " or ".join(n) for n in names)


def check(samples, expected):
    problems = []
    for i, s in enumerate(samples):
        names = {n for n, _, _ in s["phases"]}
        # A tuple: one of these (start_to_execve when husk execs the
        # program itself, to_trampoline when the exec trampoline does).
        missing = [n for n in expected if not (names & set(n) if isinstance(n, tuple) else n in names)]
        if missing:
            problems.append(f"run {i}: no phase {phase_list(missing)}")
        for n, st, d in s["phases"]:
            if st < 0 or st + d > s["wall_ms"]:
                problems.append(f"run {i}: phase {n} ({st:.3f} + {d:.3f} ms) outside the wall time {s['wall_ms']:.3f} ms")
    return problems


def run_floor(argv):
    t = time.monotonic()
    subprocess.run(argv, check=True, timeout=TIMEOUT)
    return (time.monotonic() - t) * 1e3


def run_husk(husk, root, args):
    """`husk --debug --root ROOT args...`: (wall ms, its phases)."""
    t0 = time.monotonic()
    p = subprocess.run([husk, "--debug", "--root", root, *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=TIMEOUT)
    t1 = time.monotonic()
    if p.returncode != 0:
        raise RuntimeError(f"husk {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return (t1 - t0) * 1e3, parse(p.stderr, t0)


def checked(samples, expected, what):
    """The problems `check` finds, printed; True if none."""
    problems = check(samples, expected)
    for p in problems:
        print(f"FAIL: {what}: {p}", file=sys.stderr)
    if not problems:
        print(f"PASS: every {what} logged {phase_list(expected)} inside its wall time")
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--husk", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--settle", type=float, default=100, help="quiet ms before each timed call")
    ap.add_argument("--root", help="husk --root (default: a temporary directory on a tmpfs, /run or /dev/shm)")
    ap.add_argument("--json", help="write every sample here")
    ap.add_argument("--exec", action="store_true", help="also profile `exec` into a running container")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every run (and exec) logged the phases of EXPECTED (EXPECTED_EXEC), each "
                         "within its wall time (make test runs a few rounds with it)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("profile.py must run as root")
    work = tempfile.mkdtemp(prefix="husk-profile-")
    root = a.root or tempfile.mkdtemp(prefix="husk-profile-", dir=tmpfs_dir())
    tag = f"husk-profile-{os.getpid()}"
    made = []
    try:
        rootfs = os.path.join(work, "rootfs")
        bundle_mod.make_rootfs(rootfs)
        base = bundle_mod.base_config(a.husk)
        walls, floors, samples = [], [], []
        for r in range(a.warmup + a.rounds):
            cid = f"{tag}-{r}"
            bdir = os.path.join(work, cid)
            os.makedirs(bdir)
            bundle_mod.write_config(bdir, bundle_mod.edit_config(base, ["/bin/true"], cgroups_path=f"/{cid}",
                                                                 root_path=rootfs))
            made.append(cid)
            time.sleep(a.settle / 1e3)
            fl = run_floor([*FLOOR_ARGV, rootfs, "/bin/true"])
            time.sleep(a.settle / 1e3)
            wall, phases = run_husk(a.husk, root, ["run", "-b", bdir, cid])
            made.remove(cid)
            shutil.rmtree(bdir)
            if r < a.warmup:
                continue
            floors.append(fl)
            walls.append(wall)
            samples.append({"wall_ms": wall, "floor_ms": fl, "phases": phases})
        report(samples, walls, floors, "run /bin/true", "floor (unshare + chroot)")
        result = {"husk": a.husk, "rounds": a.rounds, "samples": samples}
        ok = not a.check or checked(samples, EXPECTED, "run")
        if a.exec:
            cid = f"{tag}-exec"
            bdir = os.path.join(work, cid)
            os.makedirs(bdir)
            bundle_mod.write_config(bdir, bundle_mod.edit_config(base, ["sleep", "1000"], cgroups_path=f"/{cid}",
                                                                 root_path=rootfs))
            pidfile = os.path.join(bdir, "pid")
            made.append(cid)
            subprocess.run([a.husk, "--root", root, "run", "-d", "-b", bdir, "--pid-file", pidfile, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=TIMEOUT)
            with open(pidfile) as f:
                pid = f.read().strip()
            walls, floors, samples = [], [], []
            for r in range(a.warmup + a.rounds):
                time.sleep(a.settle / 1e3)
                fl = run_floor([*EXEC_FLOOR_ARGV, pid, "/bin/true"])
                time.sleep(a.settle / 1e3)
                wall, phases = run_husk(a.husk, root, ["exec", cid, "/bin/true"])
                if r >= a.warmup:
                    floors.append(fl)
                    walls.append(wall)
                    samples.append({"wall_ms": wall, "floor_ms": fl, "phases": phases})
            print()
            report(samples, walls, floors, "exec /bin/true", "exec floor (nsenter)")
            result["exec_samples"] = samples
            ok = (not a.check or checked(samples, EXPECTED_EXEC, "exec")) and ok
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=1)
        if not ok:
            sys.exit(1)
    finally:
        for cid in made:
            subprocess.run([a.husk, "--root", root, "delete", "--force", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        shutil.rmtree(work, ignore_errors=True)
        if not a.root:
            shutil.rmtree(root, ignore_errors=True)


def report(samples, walls, floors, what, floor_label):
    order, depth, durs, starts = [], {}, {}, {}
    for s in samples:
        ph = s["phases"]
        dep = depth_of(ph)
        for n, st, d in ph:
            if n not in durs:
                order.append((st, n))
                depth[n] = dep[n]
                durs[n], starts[n] = [], []
            durs[n].append(d)
            starts[n].append(st)
        first = min((st for _, st, _ in ph), default=0.0)
        last = max((st + d for _, st, d in ph), default=0.0)
        durs.setdefault("(before the first phase)", []).append(first)
        durs.setdefault("(after the last phase)", []).append(s["wall_ms"] - last)
    n = len(samples)
    med = statistics.median
    print(f"husk {what}, {n} rounds: median per phase (ms), start = median offset from spawn\n")
    print(f"| {'phase':<40} | {'median':>7} | {'start':>7} | {'runs':>4} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|{'-' * 6}|")
    rows = [("(before the first phase)", 0, None)]
    # By start; a phase that starts with another (create, load_config)
    # after the longer one.
    rows += [(nm, depth[nm], med(starts[nm])) for _, nm in sorted(order, key=lambda x: (med(starts[x[1]]), -med(durs[x[1]])))]
    rows += [("(after the last phase)", 0, None)]
    for nm, dep, st in rows:
        label = "  " * dep + nm
        stt = f"{st:7.3f}" if st is not None else " " * 7
        print(f"| {label:<40} | {med(durs[nm]):7.3f} | {stt} | {len(durs[nm]):>4} |")
    w, f = med(walls), med(floors)
    print(f"\n| {'wall time (ms)':<40} | {'median':>7} | {'min':>7} | {'max':>7} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    print(f"| {'husk --debug ' + what.split()[0]:<40} | {w:7.3f} | {min(walls):7.3f} | {max(walls):7.3f} |")
    print(f"| {floor_label:<40} | {f:7.3f} | {min(floors):7.3f} | {max(floors):7.3f} |")
    print(f"\nhusk/floor: {w / f:.2f}")


if __name__ == "__main__":
    main()
