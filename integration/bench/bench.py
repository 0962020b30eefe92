#!/usr/bin/env python3
"""husk vs runc (and crun, where it works) side by side.

    sudo python3 integration/bench/bench.py [--husk PATH] [--runc PATH] [--rounds N]

One run measures every runtime, interleaved: for each round and figure the
runtimes take turns (husk, runc[, crun]), each with a fresh container id,
its own bundle directory (config.json only; root.path points at one shared,
read-only busybox rootfs), a unique linux.cgroupsPath /husk-bench-<pid>-<n>
and its own temporary --root on a tmpfs (/run, else /dev/shm: where the
runtimes' roots are on real hosts; run_disk puts it on disk). Warm-up
rounds are discarded.

Figures (wall time = spawn of the runtime process until wait4 returns):
  run        `run` of /bin/true (foreground, container deleted by run)
  run_warm   the same, right after an untimed `run` of the same runtime
  run_disk   `run` as above with --root in the work directory (on this
             project's test machine ext4: husk syncs its state there, one
             fdatasync and one directory fsync; runc syncs nothing)
  run_rss    peak RSS of a `run` (see below)
  create_rss peak RSS of a `create` (the container process, left running,
             is not waited for and so not counted)
  create     `create` of a /bin/true container
  start      `start` of it
  delete     `delete` of it once it has exited (stopped)
  delete_f   `delete --force` of a running container (`sleep 1000`)
  delete_fs  `delete --force` of a stopped container
  lifecycle  create + start + wait for exit + delete, end to end
  binary     size of the runtime binary
  exec       `exec` of /bin/true into a running `sleep 1000` (one container
             per runtime and round, made untimed; a fresh exec per sample)
  seal_*     run, run_warm, lifecycle and exec of husk over the same figures of
             "husk-ro", the same binary on a read-only bind mount, measured
             right after husk in each round: there husk needs neither its
             exec trampoline nor the re-exec from its sealed overlay
             (CVE-2019-5736), so the ratio is what that protection costs
  conc_start 50 containers (`sleep 1000`) started at once: 50 concurrent
             `run -d`, each with its own bundle and cgroupsPath; wall time
             from the first spawn until the last call returned
  conc_del   then, after a settle, 50 concurrent `delete --force` of them
  conc_fail  failed calls of both phases (must be 0)
  c100_create, c100_start, c100_del
             100 containers (`sleep 1000`, own bundle and cgroupsPath each)
             created at once (100 concurrent `create`), then started at
             once, then deleted at once (`delete --force`), back to back
             without settling in between: wall time of each phase, from
             its first spawn until its last call returned
  c100_total from the first `create` spawned until the last `delete`
             returned
  c100_fail  failed calls of the three phases (must be 0)
  par_N      throughput, containers per second, of `run` of /bin/true with
             N = 1, 2, 8, 32 calls in parallel: N workers each running
             `run` back to back, taking containers (own id, bundle and
             cgroupsPath each, all made beforehand) from one queue of
             --par-count (64, at least 4 per worker); successful runs
             divided by the wall time from the first spawn until the last
             call returned. The runtimes take turns at each N, after a
             settle. One python process spawns every call (posix_spawn,
             poll on pidfds); its cost is part of the figure.
  par_fail   failed runs over all N (must be 0)
             The conc_*, c100_* and par_* figures run only in the first
             --heavy-rounds (default 3) measured rounds, without warm-up
             (--no-burst skips c100_*, --no-parallel par_*).
  list       `list` with 1,000 containers in --root (median of 10 calls)
  state      `state <id>` with 1,000 containers in --root (median of 20)
             One real container (`run -d`, `sleep 1000`) per runtime; its
             state directory is copied 999 times with "id" edited in
             state.json (each runtime's own format). Measured once per
             run, after the rounds, interleaved call by call.

The floors (--no-floor skips them): what the work of a runtime costs
without one, measured in every round like a runtime, with the same settle
before each timed call. They are the "floor" and "floor+cgroups" entries of
"runtimes" in the JSON, and a second table:
  floor          run: `unshare --fork --pid --mount --uts --ipc --net
                 --cgroup chroot ROOTFS /bin/true`, ROOTFS the bundles'
                 busybox rootfs; taken right after the runtimes' `run`.
                 exec: `nsenter --mount --uts --ipc --net --pid --target
                 PID /bin/true`, PID the init of husk's exec container,
                 taken right after husk's `exec` into the same container
                 (entering its mount namespace puts nsenter at the
                 container's root, so /bin/true is the container's). It
                 joins no cgroup and sets no capabilities, seccomp or user.
  floor+cgroups  run: the run floor inside fresh cgroups, as one wall time:
                 mkdir of /husk-bench-<pid>-floor-<n> in every cgroup
                 hierarchy mounted at or under /sys/fs/cgroup (each once:
                 comounted controllers are one mount; named v1 hierarchies
                 like name=systemd and the cgroup2 mount included, as husk
                 and runc join them too), cpuset.cpus and cpuset.mems
                 copied from the parent, then `/bin/sh -c 'for d in DIRS;
                 do echo $$ > $d/cgroup.procs; done; exec unshare ...
                 /bin/true'`, then the rmdirs once it has exited. The
                 shell's own fork, exec and start (dash) are part of it,
                 so this floor is a little high. Most of it is the writes
                 to cgroup.procs, each a migration (see Settling); a
                 runtime that puts its container process into its cgroups
                 without one (husk) can come out below this floor.
"vs_floor" in the JSON has, per figure, <runtime>/<floor> = ratio of the
medians: run over the run floors; lifecycle (create+start+delete) over the
run floors too (one container's create, start and delete do the work of one
`run`; there is no floor of its own); exec over the exec floor.

Through containerd (integration/bench/containerd_bench.py; a private
containerd on its own socket and temp dir, a private namespace, skipped with
a message if containerd is not installed, or with --no-containerd). Here
"husk" is husk's shim (io.containerd.husk.v2) driving husk, and "runc" is
containerd's io.containerd.runc.v2 shim driving runc:
  ctr_run     `ctr run --rm IMG <id> true` wall time, interleaved with a
              fresh id each, after the same settling; --ctr-warmup (2)
              discarded rounds, then --ctr-rounds (10)
  shim_rss_1  VmRSS (KiB) of the shim serving one running `sleep 1000`
  shim_rss_5  VmRSS (KiB) of the shim(s) serving 5 of them; the 5 carry the
              annotation io.containerd.runc.v2.group=<group> (ctr run
              --annotation), which both shims group on, so one shim serves
              all 5 as for a pod. In the first --ctr-rss-rounds (3) rounds.
  shim_binary size of containerd-shim-husk-v2 / containerd-shim-runc-v2

Settling: every timed call except run_warm starts after --settle ms
(default 100) of quiet. On a cgroup v1 or hybrid host, moving a process into
a cgroup (writing cgroup.procs) takes the kernel's cgroup_threadgroup_rwsem
for writing, which costs a full RCU grace period (here 6-16 ms) unless
another migration happened in the last few tens of ms. Without settling, a
runtime whose call follows the other's recent migration would get it for
free, so the result would depend on the order of the interleaving. Settled
calls all pay it (as an isolated container start does); run_warm shows
the back-to-back case, where nobody pays it.

Peak RSS is ru_maxrss of the runtime process as returned by wait4(2), which
covers the runtime process and every descendant it waited for: the largest
RSS any single process of that tree reached (not a sum). It is collected by
GNU time (`/usr/bin/time -f %M`, package `time`), not by this script's own
os.wait4: a child exec'd from a fork/vfork of python inherits python's RSS
high-water mark (the kernel records the old mm's hiwater_rss at execve), so
python's own wait4 would report python's RSS for every runtime. GNU time is a
small process, so the floor it adds is ~1 MiB. `run` wall times come from
separate calls without GNU time in between.

The script makes itself a child subreaper so container processes that
outlive their runtime call are reaped here (as a containerd shim would),
and cleans up every container, state dir and cgroup it made, also on
Ctrl-C, SIGTERM or a failure.
"""

import argparse
import ctypes
import datetime
import errno
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle  # noqa: E402

# containerd_bench imports this module as `bench`: the same module (classes,
# BenchError, LAST_CALL) also when it runs as __main__.
sys.modules.setdefault("bench", sys.modules[__name__])

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# `make build` output: static release binaries under target/<triple>/release.
BIN = os.path.join(REPO, "target", f"{os.uname().machine}-unknown-linux-musl", "release")
CALL_TIMEOUT = 30.0
LAST_CALL = None  # the last runtime call, for messages
CGROUP_ROOT = "/sys/fs/cgroup"

CONC_N = 50  # containers started at once (run -d)
BURST_N = 100  # containers created, started and deleted at once
PAR_LEVELS = (1, 2, 8, 32)  # parallel `run` workers for the throughput figures
PAR_PER_WORKER = 4  # a throughput level runs at least this many containers per worker
STATE_N = 1000  # containers in --root for list/state
LIST_SAMPLES, STATE_SAMPLES = 10, 20
# The floor: what `run` of /bin/true costs without a runtime (+ ROOTFS /bin/true).
FLOOR_ARGV = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "chroot"]
# The exec floor (+ PID /bin/true): enter the container's namespaces, run its /bin/true.
EXEC_FLOOR_ARGV = ["nsenter", "--mount", "--uts", "--ipc", "--net", "--pid", "--target"]

# (key, label, unit); unit "ms" values are wall times, "MiB" sizes, "/s"
# containers per second, "n" counts.
FIGURES = [
    ("run", "run /bin/true: wall time", "ms"),
    ("run_warm", "run /bin/true: wall, back-to-back", "ms"),
    ("run_disk", "run /bin/true: --root on disk, not tmpfs", "ms"),
    ("run_rss", "run /bin/true: peak RSS", "MiB"),
    ("create_rss", "create: peak RSS", "MiB"),
    ("create", "create", "ms"),
    ("start", "start", "ms"),
    ("delete", "delete (stopped)", "ms"),
    ("delete_f", "delete --force (running)", "ms"),
    ("delete_fs", "delete --force (stopped)", "ms"),
    ("lifecycle", "create+start+delete", "ms"),
    ("binary", "binary size", "MiB"),
    ("exec", "exec /bin/true into running", "ms"),
    ("conc_start", f"{CONC_N} x run -d concurrently: total", "ms"),
    ("conc_del", f"{CONC_N} x delete --force concurrently: total", "ms"),
    ("conc_fail", f"{CONC_N} concurrent: failed calls", "n"),
    ("c100_create", f"{BURST_N} x create concurrently", "ms"),
    ("c100_start", f"{BURST_N} x start concurrently", "ms"),
    ("c100_del", f"{BURST_N} x delete --force concurrently", "ms"),
    ("c100_total", f"{BURST_N} x create, start, delete: total", "ms"),
    ("c100_fail", f"{BURST_N} x create/start/delete: failed calls", "n"),
] + [(f"par_{n}", f"run /bin/true, {n} in parallel: throughput", "/s") for n in PAR_LEVELS] + [
    ("par_fail", "run in parallel: failed calls", "n"),
    ("list", f"list, {STATE_N} containers", "ms"),
    ("state", f"state <id>, {STATE_N} containers", "ms"),
    ("ctr_run", "containerd: ctr run --rm true: wall time", "ms"),
    ("shim_rss_1", "containerd: shim RSS, 1 container", "KiB"),
    ("shim_rss_5", "containerd: shim RSS, 5 containers", "KiB"),
    ("shim_binary", "containerd: shim binary size", "MiB"),
]
# The floor runtimes and the floor figure each husk figure is divided by
# (create+start+delete has no floor of its own: it is the run floor).
FLOORS = ("floor", "floor+cgroups")
FLOOR_OF = {"run": "run", "lifecycle": "run", "exec": "exec"}
# figure -> (base, op, limit, description): the performance issue's ratio
# targets on the medians, husk / base ("runc", or "floor" for FLOORS[0]);
# op "le": ratio <= limit, "ge": ratio >= limit (throughput).
TARGETS = {
    "run": ("floor", "le", 1.6, "husk run median wall time <= 1.6 x the floor (unshare + chroot)"),
    "lifecycle": ("runc", "le", 0.2, "husk create+start+delete median <= 0.2 x runc"),
    "delete_fs": ("runc", "le", 0.5, "husk delete --force of a stopped container median <= 0.5 x runc"),
    "exec": ("runc", "le", 0.1, "husk exec median wall time <= 0.1 x runc"),
    "par_8": ("runc", "ge", 4.0, "husk run throughput with 8 in parallel >= 4 x runc"),
    "run_rss": ("runc", "le", 0.3, "husk peak RSS of run <= 0.3 x runc"),
    "ctr_run": ("runc", "le", 0.8, "ctr run --rm with husk's shim median wall time <= 0.8 x the runc shim + runc"),
}
# figure -> (kind, limit, description) for absolute targets on husk alone:
# "lt": husk median < limit; "le": husk median <= limit; "zero": every sample of every runtime is 0
# (FAIL otherwise).
ABS_TARGETS = {
    "list": ("lt", 50.0, f"husk list with {STATE_N} containers median < 50 ms"),
    "shim_rss_1": ("le", 3072.0, "husk shim RSS with one container median <= 3 MiB (3072 KiB)"),
    "conc_fail": ("zero", 0, f"no failed call among {CONC_N} concurrent run -d / delete --force"),
    "c100_fail": ("zero", 0, f"no failed call among {BURST_N} concurrent create / start / delete --force"),
    "par_fail": ("zero", 0, "no failed call among the parallel runs"),
}


class BenchError(Exception):
    pass


class Terminated(BaseException):
    """Raised from the SIGTERM/SIGHUP handler so `finally` blocks run."""


def on_term(signum, _frame):
    raise Terminated(f"signal {signum}")


class signals_ignored:
    """Ignore SIGINT/SIGTERM/SIGHUP while cleaning up."""

    SIGS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        self.old = [signal.signal(s, signal.SIG_IGN) for s in self.SIGS]

    def __exit__(self, *exc):
        for s, h in zip(self.SIGS, self.old):
            signal.signal(s, h)


def set_child_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def take_over_signals_and_orphans():
    """Ctrl-C, SIGTERM and SIGHUP raise (so the cleanup runs), and orphaned
    container processes are reparented to us (reap_orphans)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    set_child_subreaper()


def reap_orphans():
    """Reap exited orphans (container processes reparented to us).

    Only called between runtime calls, so it never reaps a runtime process
    that call() is waiting for."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def reap_or_kill(pid, timeout):
    """Wait up to timeout s for our child pid (its process group killed
    after that), then reap it."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not wait_exit(pidfd, timeout):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    finally:
        os.close(pidfd)


def wait_exit(pidfd, timeout):
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(timeout * 1000))


def spawn(argv, errfile):
    """posix_spawn `argv` with stdin/stdout on /dev/null and stderr to
    `errfile`, in a session of its own (a Ctrl-C on the terminal reaches only
    this script, which then lets the call finish and cleans up)."""
    fa = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa, setsid=True)


def last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1] if lines else "(no stderr)"
    except OSError:
        return "(no stderr)"


def tmpfs_dir():
    """A tmpfs for the runtimes' --root: where their default roots are on
    real hosts (/run is a tmpfs under systemd and under Debian's sysvinit;
    containerd, Docker and Podman keep runc's root there too)."""
    for d in ("/run", "/dev/shm"):
        if subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True, text=True).stdout.strip() == "tmpfs":
            return d
    return "/run"


class Runtime:
    def __init__(self, name, path, work):
        self.name = name
        self.path = path
        self.work = work
        self.root = tempfile.mkdtemp(prefix=f"husk-bench-root-{name}-", dir=tmpfs_dir())
        # For run_disk: the same on the work directory's filesystem, where
        # husk also syncs the state (and runc does not).
        self.disk_root = tempfile.mkdtemp(prefix=f"root-{name}-", dir=work)
        self.errfile = os.path.join(work, f"stderr-{name}")
        self.live = set()  # ids that may still exist
        self.copies = set()  # synthetic state dirs (removed, never deleted by the runtime)
        self.procs = []  # pids of run_jobs calls not yet waited for
        self.inflight = None

    def version(self):
        try:
            out = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError) as e:
            return f"unknown ({e})"

    def argv(self, args, root=None):
        return [self.path, "--root", root or self.root] + list(args)

    def call(self, args, check=True, timeout=CALL_TIMEOUT, wrap=(), root=None):
        """Run `<runtime> --root R args...` (R: `root` or the runtime's tmpfs
        root); return (seconds, status, rusage)."""
        # (Floor and containerd_bench's Ctr have no root: argv(args) only.)
        argv = list(wrap) + (self.argv(args, root) if root else self.argv(args))
        global LAST_CALL
        LAST_CALL = " ".join([self.name] + list(args))
        t0 = time.perf_counter()
        pid = spawn(argv, self.errfile)
        self.inflight = pid
        pidfd = os.pidfd_open(pid)
        try:
            if not wait_exit(pidfd, timeout):
                os.killpg(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                self.inflight = None
                raise BenchError(f"{self.name} {' '.join(args)}: timed out after {timeout:.0f} s")
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter()
            self.inflight = None
        finally:
            os.close(pidfd)
            if self.inflight is not None:
                self.finish_inflight()
        code = os.waitstatus_to_exitcode(status)
        if check and code != 0:
            raise BenchError(f"{self.name} {' '.join(args)}: exit status {code}: {self.stderr()}")
        return t1 - t0, code, ru

    def finish_inflight(self):
        """Interrupted mid-call: let the runtime finish (bounded), then kill it."""
        pid, self.inflight = self.inflight, None
        with signals_ignored():
            reap_or_kill(pid, CALL_TIMEOUT)

    def run_jobs(self, jobs, width, errdir, timeout=CALL_TIMEOUT):
        """Run the calls `jobs` (arg lists for this runtime) with at most
        `width` of them at once: each starts as soon as an earlier one has
        returned (width >= len(jobs): all at once). A call still running
        after `timeout` s is killed. Returns (seconds from the first spawn
        until the last call returned, [exit code per job, None if it was
        killed], [messages of failed calls])."""
        global LAST_CALL
        LAST_CALL = f"{self.name} {jobs[0][0]} ... ({len(jobs)} calls, {width} at once)"
        os.makedirs(errdir, exist_ok=True)
        codes = [None] * len(jobs)
        running = {}  # pidfd -> (job index, pid, deadline)
        poller = select.poll()
        nxt = 0
        t0 = time.perf_counter()
        try:
            while nxt < len(jobs) or running:
                while nxt < len(jobs) and len(running) < width:
                    pid = spawn(self.argv(jobs[nxt]), os.path.join(errdir, str(nxt)))
                    self.procs.append(pid)
                    fd = os.pidfd_open(pid)
                    running[fd] = (nxt, pid, time.perf_counter() + timeout)
                    poller.register(fd, select.POLLIN)
                    nxt += 1
                left = min(d for _, _, d in running.values()) - time.perf_counter()
                exited = [fd for fd, _ in poller.poll(max(0.0, left) * 1000)]
                now = time.perf_counter()
                expired = [] if exited else [fd for fd, (_, _, d) in running.items() if d <= now]
                for fd in exited + expired:
                    i, pid, _ = running.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    if fd in expired:
                        os.killpg(pid, signal.SIGKILL)
                    _, status = os.waitpid(pid, 0)
                    self.procs.remove(pid)
                    if fd not in expired:
                        codes[i] = os.waitstatus_to_exitcode(status)
            t1 = time.perf_counter()
        finally:
            for fd in running:
                os.close(fd)  # the pids stay in procs, for wait_procs
        failed = [f"{' '.join(jobs[i])}: " + ("timed out" if c is None else f"exit {c}: "
                                              f"{last_line(os.path.join(errdir, str(i)))}")
                  for i, c in enumerate(codes) if c != 0]
        shutil.rmtree(errdir, ignore_errors=True)
        return t1 - t0, codes, failed

    def wait_procs(self):
        """Wait (bounded) for every run_jobs call left running, killing stragglers."""
        with signals_ignored():
            deadline = time.monotonic() + CALL_TIMEOUT
            for pid in self.procs:
                reap_or_kill(pid, max(0.1, deadline - time.monotonic()))
            self.procs = []

    def remove_copies(self):
        for d in sorted(self.copies):
            shutil.rmtree(d, ignore_errors=True)
        self.copies.clear()

    def stderr(self):
        return last_line(self.errfile)

    def cleanup(self):
        """Delete every container that may exist; return leftovers found."""
        leftovers = []
        if self.inflight is not None:
            self.finish_inflight()
        self.wait_procs()
        self.remove_copies()
        for cid in sorted(self.live):
            try:
                _, code, _ = self.call(["delete", "--force", cid], check=False)
                if code != 0 and os.path.exists(os.path.join(self.root, cid)):
                    leftovers.append(f"{self.name} delete --force {cid}: exit {code}: {self.stderr()}")
            except BenchError as e:
                leftovers.append(str(e))
        reap_orphans()
        for root in (self.root, self.disk_root):
            if root and os.path.isdir(root):
                state = os.listdir(root)
                # A container deleted by its own id's `delete` must not leave state.
                if state:
                    leftovers.append(f"{self.name}: state left in --root {root}: {state}")
                shutil.rmtree(root, ignore_errors=True)
        return leftovers


class Floor(Runtime):
    """A baseline without a runtime: call() runs its args as the command line.

    With `hierarchies` (see cgroup_hierarchies), fig_floor also puts the
    command into a fresh cgroup of each one (the "floor+cgroups" row)."""

    def __init__(self, name, work, hierarchies=None):
        self.name, self.path, self.work = name, resolve("unshare") or "unshare", work
        self.root = self.disk_root = None
        self.hierarchies = hierarchies
        self.errfile = os.path.join(work, f"stderr-{name}")
        self.live, self.copies, self.procs, self.inflight = set(), set(), [], None

    def argv(self, args):
        return list(args)


def cgroup_hierarchies():
    """[(mount point, is cpuset)] of every cgroup hierarchy mounted at or
    under CGROUP_ROOT: each v1 hierarchy (named ones like name=systemd too)
    and cgroup2, once each (comounted controllers are one mount; other mounts
    of the same hierarchy are skipped by device number)."""
    seen, out = set(), []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            dev, mnt, fstype, opts = fields[2], fields[4], fields[sep + 1], fields[sep + 3]
            if fstype not in ("cgroup", "cgroup2") or dev in seen:
                continue
            if mnt != CGROUP_ROOT and not mnt.startswith(CGROUP_ROOT + "/"):
                continue
            seen.add(dev)
            out.append((mnt, fstype == "cgroup" and "cpuset" in opts.split(",")))
    return out


def rmdir_cgroup(d, tries=100):
    """rmdir an empty cgroup, retrying EBUSY for up to ~0.1 s (a cgroup
    whose last process was just reaped can still count as populated)."""
    for i in range(tries):
        try:
            os.rmdir(d)
            return
        except OSError as e:
            if e.errno != errno.EBUSY or i == tries - 1:
                raise BenchError(f"rmdir {d}: {e.strerror}")
            time.sleep(0.001)


class Bench:
    def __init__(self, work, base_cfg, rootfs, settle_ms=100):
        self.work = work
        self.settle_s = settle_ms / 1000
        self.base_cfg = base_cfg
        self.rootfs = rootfs
        self.n = 0
        self.cgroups = []  # every cgroupsPath used

    def new_container(self, rt, args):
        """A fresh id and bundle dir for runtime `rt`."""
        self.n += 1
        cid = f"bench-{os.getpid()}-{self.n}"
        cgpath = f"/husk-{cid}"
        self.cgroups.append(cgpath)
        bdir = os.path.join(self.work, "bundles", cid)
        os.makedirs(bdir)
        cfg = bundle.edit_config(self.base_cfg, args, hostname="bench", cgroups_path=cgpath, root_path=self.rootfs)
        bundle.write_config(bdir, cfg)
        rt.live.add(cid)
        return cid, bdir

    def done(self, rt, cid, bdir):
        rt.live.discard(cid)
        shutil.rmtree(bdir, ignore_errors=True)

    def settle(self):
        """Quiet time before a timed call (see "Settling" in the docstring)."""
        reap_orphans()
        time.sleep(self.settle_s)

    # ---- figures: each returns {figure: value} ----

    def fig_run(self, rt):
        cid, bdir = self.new_container(rt, ["/bin/true"])
        self.settle()
        secs, _, _ = rt.call(["run", "--bundle", bdir, cid])
        self.done(rt, cid, bdir)
        return {"run": secs * 1000}

    def fig_run_warm(self, rt):
        """`run` right after an untimed `run` of the same runtime."""
        cid, bdir = self.new_container(rt, ["/bin/true"])
        cid2, bdir2 = self.new_container(rt, ["/bin/true"])
        rt.call(["run", "--bundle", bdir, cid])
        self.done(rt, cid, bdir)
        secs, _, _ = rt.call(["run", "--bundle", bdir2, cid2])
        self.done(rt, cid2, bdir2)
        return {"run_warm": secs * 1000}

    def fig_run_disk(self, rt):
        """`run` as fig_run, with --root on the work directory's filesystem."""
        cid, bdir = self.new_container(rt, ["/bin/true"])
        self.settle()
        secs, _, _ = rt.call(["run", "--bundle", bdir, cid], root=rt.disk_root)
        self.done(rt, cid, bdir)
        return {"run_disk": secs * 1000}

    def fig_run_rss(self, rt, time_bin):
        cid, bdir = self.new_container(rt, ["/bin/true"])
        out = os.path.join(self.work, "rss")
        rt.call(["run", "--bundle", bdir, cid], wrap=[time_bin, "-f", "%M", "-o", out])
        self.done(rt, cid, bdir)
        with open(out) as f:
            kib = int(f.read().split()[-1])
        return {"run_rss": kib / 1024}

    def fig_create_rss(self, rt, time_bin):
        """Peak RSS of `create`: the runtime and what it waits for (the
        container process lives on and is not counted once it is on its own)."""
        cid, bdir = self.new_container(rt, ["/bin/true"])
        out = os.path.join(self.work, "rss")
        rt.call(["create", "--bundle", bdir, cid], wrap=[time_bin, "-f", "%M", "-o", out])
        rt.call(["delete", "--force", cid])
        self.done(rt, cid, bdir)
        with open(out) as f:
            kib = int(f.read().split()[-1])
        return {"create_rss": kib / 1024}

    def create_with_pidfd(self, rt, cid, bdir):
        pidfile = os.path.join(bdir, "pid")
        secs, _, _ = rt.call(["create", "--bundle", bdir, "--pid-file", pidfile, cid])
        with open(pidfile) as f:
            pid = int(f.read().strip())
        return secs, os.pidfd_open(pid)

    def wait_container(self, rt, pidfd):
        try:
            if not wait_exit(pidfd, CALL_TIMEOUT):
                raise BenchError(f"{rt.name}: container process did not exit after start")
        finally:
            os.close(pidfd)
        reap_orphans()

    def fig_parts(self, rt):
        cid, bdir = self.new_container(rt, ["/bin/true"])
        self.settle()
        t_create, pidfd = self.create_with_pidfd(rt, cid, bdir)
        try:
            self.settle()
            t_start, _, _ = rt.call(["start", cid])
        except BaseException:
            os.close(pidfd)
            raise
        self.wait_container(rt, pidfd)
        self.settle()
        t_delete, _, _ = rt.call(["delete", cid])
        self.done(rt, cid, bdir)
        return {"create": t_create * 1000, "start": t_start * 1000, "delete": t_delete * 1000}

    def fig_delete_force(self, rt):
        cid, bdir = self.new_container(rt, ["sleep", "1000"])
        rt.call(["create", "--bundle", bdir, cid])
        rt.call(["start", cid])
        self.settle()
        secs, _, _ = rt.call(["delete", "--force", cid])
        reap_orphans()
        self.done(rt, cid, bdir)
        return {"delete_f": secs * 1000}

    def create_start_wait(self, rt, cid, bdir):
        """`create` and `start` a container, then wait until its process exits."""
        _, pidfd = self.create_with_pidfd(rt, cid, bdir)
        try:
            rt.call(["start", cid])
        except BaseException:
            os.close(pidfd)
            raise
        self.wait_container(rt, pidfd)

    def fig_delete_force_stopped(self, rt):
        cid, bdir = self.new_container(rt, ["/bin/true"])
        self.create_start_wait(rt, cid, bdir)
        self.settle()
        secs, _, _ = rt.call(["delete", "--force", cid])
        self.done(rt, cid, bdir)
        return {"delete_fs": secs * 1000}

    def fig_lifecycle(self, rt):
        cid, bdir = self.new_container(rt, ["/bin/true"])
        self.settle()
        t0 = time.perf_counter()
        self.create_start_wait(rt, cid, bdir)
        rt.call(["delete", cid])
        secs = time.perf_counter() - t0
        self.done(rt, cid, bdir)
        return {"lifecycle": secs * 1000}

    def fig_exec(self, rt, floor=None):
        """`exec` into a fresh `sleep 1000` container; with `floor`, then
        the exec floor into the same container (sample ("floor", "exec"))."""
        cid, bdir = self.new_container(rt, ["sleep", "1000"])
        pidfile = os.path.join(bdir, "pid")
        rt.call(["run", "-d", "--bundle", bdir, "--pid-file", pidfile, cid])
        self.settle()
        secs, _, _ = rt.call(["exec", cid, "/bin/true"])
        got = {"exec": secs * 1000}
        if floor:
            with open(pidfile) as f:
                pid = f.read().strip()
            self.settle()
            secs, _, _ = floor.call(EXEC_FLOOR_ARGV + [pid, "/bin/true"])
            got[(floor.name, "exec")] = secs * 1000
        rt.call(["delete", "--force", cid])
        reap_orphans()
        self.done(rt, cid, bdir)
        return got

    def fig_floor(self, fl):
        """The run floor: FLOOR_ARGV ROOTFS /bin/true. For floor+cgroups, in
        the same timed span: mkdir of a fresh cgroup in every hierarchy
        (cpuset: cpus and mems copied from the parent), a /bin/sh that
        writes its pid to each cgroup.procs and execs the floor, then the
        rmdirs once it has exited."""
        floor = FLOOR_ARGV + [self.rootfs, "/bin/true"]
        if fl.hierarchies is None:
            self.settle()
            secs, _, _ = fl.call(floor)
            return {"run": secs * 1000}
        self.n += 1
        cg = f"/husk-bench-{os.getpid()}-floor-{self.n}"
        self.cgroups.append(cg)
        dirs = [mnt + cg for mnt, _ in fl.hierarchies]
        script = (f"for d in {' '.join(shlex.quote(d) for d in dirs)}; do "
                  f"echo $$ > $d/cgroup.procs || exit 125; done; exec {shlex.join(floor)}")
        made, errs = [], []
        self.settle()
        t0 = time.perf_counter()
        try:
            for (mnt, cpuset), d in zip(fl.hierarchies, dirs):
                os.mkdir(d)
                made.append(d)
                if cpuset:
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        with open(os.path.join(mnt, name)) as src, open(os.path.join(d, name), "w") as dst:
                            dst.write(src.read())
            fl.call(["/bin/sh", "-c", script])
        finally:
            for d in reversed(made):
                try:
                    rmdir_cgroup(d)
                except BenchError as e:
                    errs.append(str(e))  # leftover_cgroups retries it at the end
        if errs:
            raise BenchError("; ".join(errs))
        return {"run": (time.perf_counter() - t0) * 1000}

    def concurrent(self, rt, n, phases, settle_between):
        """`n` `sleep 1000` containers, each with its own bundle and
        cgroupsPath, through `phases` [(figure, argv(id, bundle))]: in each,
        one call per container, all at once. Returns {figure: wall ms} for
        each phase, "<prefix>_fail" (failed calls) and, unless
        `settle_between` (a settle pause before each phase after the first),
        "<prefix>_total" (first spawn of the first phase until the last call
        of the last returned); prefix is the first figure's name up to "_"."""
        prefix = phases[0][0].split("_")[0]
        made = [self.new_container(rt, ["sleep", "1000"]) for _ in range(n)]
        failed = []
        got = {}
        self.settle()
        t0 = time.perf_counter()
        for i, (phase, argv) in enumerate(phases):
            if i and settle_between:
                self.settle()
            secs, _, msgs = rt.run_jobs([argv(c, b) for c, b in made], n,
                                        os.path.join(self.work, f"err-{rt.name}-{phase}"))
            got[phase] = secs * 1000
            failed += msgs
        if not settle_between:
            got[f"{prefix}_total"] = (time.perf_counter() - t0) * 1000
        reap_orphans()
        for c, b in made:
            if not os.path.exists(os.path.join(rt.root, c)):
                self.done(rt, c, b)
        for msg in failed[:3]:
            print(f"{rt.name}: concurrent call failed: {msg}", file=sys.stderr)
        got[f"{prefix}_fail"] = float(len(failed))
        return got

    def fig_concurrent(self, rt):
        """CONC_N concurrent `run -d`, then CONC_N concurrent `delete --force`."""
        return self.concurrent(rt, CONC_N, [("conc_start", lambda c, b: ["run", "-d", "--bundle", b, c]),
                                            ("conc_del", lambda c, b: ["delete", "--force", c])], True)

    def fig_burst(self, rt):
        """BURST_N concurrent `create`, `start`, then `delete --force`, back to back."""
        return self.concurrent(rt, BURST_N, [("c100_create", lambda c, b: ["create", "--bundle", b, c]),
                                             ("c100_start", lambda c, b: ["start", c]),
                                             ("c100_del", lambda c, b: ["delete", "--force", c])], False)

    def fig_parallel(self, rt, width, count):
        """Throughput of `count` `run` of /bin/true, `width` at a time."""
        made = [self.new_container(rt, ["/bin/true"]) for _ in range(count)]
        self.settle()
        secs, codes, failed = rt.run_jobs([["run", "--bundle", b, c] for c, b in made], width,
                                          os.path.join(self.work, f"err-{rt.name}-par"))
        reap_orphans()
        for (c, b), code in zip(made, codes):
            if code == 0 or not os.path.exists(os.path.join(rt.root, c)):
                self.done(rt, c, b)
        for msg in failed[:3]:
            print(f"{rt.name}: parallel run failed: {msg}", file=sys.stderr)
        return {f"par_{width}": codes.count(0) / secs, "par_fail": float(len(failed))}

    def setup_many(self, rt):
        """One real `sleep 1000` container plus STATE_N-1 copies of its state dir."""
        cid, bdir = self.new_container(rt, ["sleep", "1000"])
        rt.call(["run", "-d", "--bundle", bdir, cid])
        src = os.path.join(rt.root, cid)
        for i in range(1, STATE_N):
            copy = f"{cid}-copy{i}"
            dst = os.path.join(rt.root, copy)
            rt.copies.add(dst)
            os.mkdir(dst, os.stat(src).st_mode & 0o7777)
            for name in os.listdir(src):
                sp, dp = os.path.join(src, name), os.path.join(dst, name)
                if name == "state.json":
                    with open(sp) as f:
                        st = json.load(f)
                    st["id"] = copy
                    with open(dp, "w") as f:
                        json.dump(st, f)
                    os.chmod(dp, 0o600)
                elif os.path.isfile(sp) and not os.path.islink(sp):
                    shutil.copy2(sp, dp)
        return cid, bdir

    def teardown_many(self, rt, cid, bdir):
        rt.remove_copies()
        rt.call(["delete", "--force", cid])
        reap_orphans()
        self.done(rt, cid, bdir)

    def leftover_cgroups(self):
        """cgroupsPath directories still present (and removed if empty)."""
        found = []
        dirs = [CGROUP_ROOT] + [
            os.path.join(CGROUP_ROOT, d)
            for d in sorted(os.listdir(CGROUP_ROOT))
            if os.path.isdir(os.path.join(CGROUP_ROOT, d))
        ]
        for cg in self.cgroups:
            for d in dirs:
                p = d + cg
                if os.path.isdir(p):
                    found.append(p)
                    try:
                        os.rmdir(p)
                    except OSError as e:
                        found[-1] += f" (rmdir: {e.strerror})"
        return found


def mount_read_only_copy(binary, work, mounts):
    """A copy of `binary` in a directory bind-mounted read-only onto itself."""
    d = os.path.join(work, "ro-bin")
    os.mkdir(d)
    shutil.copy2(binary, os.path.join(d, "husk"))
    for args in (["--bind", d, d], ["-o", "remount,bind,ro", d]):
        subprocess.run(["mount"] + args, check=True)
        if d not in mounts:
            mounts.append(d)
    return os.path.join(d, "husk")


def resolve(path):
    p = shutil.which(path)
    return os.path.realpath(p) if p else None


def check_time_bin(time_bin, work):
    """GNU time must report ru_maxrss in KiB (time < 1.8 and busybox report 4x)."""
    out = os.path.join(work, "rss-check")
    subprocess.run(
        [time_bin, "-f", "%M", "-o", out, "/bin/busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=16M", "count=1"],
        check=True, capture_output=True,
    )
    with open(out) as f:
        kib = int(f.read().split()[-1])
    if not 16384 <= kib <= 2 * 16384:
        raise BenchError(f"{time_bin} reported {kib} KiB for a 16 MiB buffer: not GNU time >= 1.8?")


def probe_crun(path, bench, work, register):
    """A Runtime for crun if it works on this host, else (None, reason)."""
    if not path:
        return None, "not installed"
    try:
        v = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"`crun --version` failed: {e}"
    if v.returncode != 0:
        return None, f"`crun --version` exited {v.returncode}"
    rt = Runtime("crun", path, work)
    register.append(rt)  # cleaned up by main's finally, whatever happens
    cid, bdir = bench.new_container(rt, ["/bin/true"])
    try:
        _, code, _ = rt.call(["run", "--bundle", bdir, cid], check=False)
        reason = None if code == 0 else f"trial `crun run` exited {code}: {rt.stderr()}"
    except BenchError as e:
        reason = f"trial `crun run` failed: {e}"
    if reason:
        return None, reason
    bench.done(rt, cid, bdir)
    return rt, None


def summarize(samples):
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "n": len(samples),
    }


def summarize_kept(samples):
    """summarize(), with the samples themselves (rounded) for the JSON."""
    return dict(summarize(samples), samples=[round(x, 4) for x in samples])


def median_ratios(num, den):
    """figure -> num's median / den's, for the figures of FIGURES both have
    (counts, unit "n", have no ratio)."""
    return {k: num[k]["median"] / den[k]["median"] for k, _, u in FIGURES
            if u != "n" and k in num and k in den and den[k]["median"] > 0}


def fmt(v, unit):
    return {"MiB": f"{v:.1f}", "KiB": f"{v:.0f}", "n": f"{v:.0f}", "/s": f"{v:.1f}"}.get(unit, f"{v:.2f}")


def target_cell(t):
    if not t:
        return ""
    if "max_ratio" in t:
        return f"<= {t['max_ratio']:.2f} {t['result']}"
    if "min_ratio" in t:
        return f">= {t['min_ratio']:.2f} {t['result']}"
    return f"{t['target']} {t['result']}"


def markdown(head, rows):
    """A markdown table, the first column left-aligned, the others right."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def table(results, names):
    """Per figure, median and [min, max] per runtime, husk/runc, target."""
    head = ["figure"]
    for n in names:
        head += [f"{n} median", f"{n} min..max"]
    head += ["husk/runc", "target"]
    rows = []
    for key, label, unit in FIGURES:
        if key not in results["runtimes"]["husk"]["figures"]:
            continue
        row = [f"{label} ({unit})"]
        for n in names:
            s = results["runtimes"][n]["figures"].get(key)
            row += [fmt(s["median"], unit), f"{fmt(s['min'], unit)}..{fmt(s['max'], unit)}"] if s else ["", ""]
        ratio = results["ratios"].get(key)
        row.append(f"{ratio:.2f}" if ratio is not None else "")
        t = results["targets"].get(key)
        row.append(target_cell(t) if t and t.get("base") != "floor" else "")
        rows.append(row)
    return markdown(head, rows)


def evaluate_targets(results, names):
    """TARGETS and ABS_TARGETS against results (its "ratios", "vs_floor" if
    any, and the runtimes' figures), for each target whose figure was
    measured; containerd_bench.py's own run uses it too."""
    hf = results["runtimes"]["husk"]["figures"]
    out = {}
    for k, (base, op, limit, desc) in TARGETS.items():
        r = results["ratios"].get(k) if base == "runc" else results.get("vs_floor", {}).get(k, {}).get(f"husk/{FLOORS[0]}")
        if r is None:
            continue
        out[k] = {"base": base, ("max_ratio" if op == "le" else "min_ratio"): limit, "ratio": r,
                  "result": "PASS" if (r <= limit if op == "le" else r >= limit) else "MISS", "what": desc}
    for k, (kind, limit, desc) in ABS_TARGETS.items():
        if k not in hf:
            continue
        if kind in ("lt", "le"):
            v = hf[k]["median"]
            ok_ = v < limit if kind == "lt" else v <= limit
            out[k] = {"target": f"{'<' if kind == 'lt' else '<='} {limit:g}", "value": v,
                      "result": "PASS" if ok_ else "MISS", "what": desc}
        else:
            v = sum(sum(results["runtimes"][n]["figures"][k]["samples"]) for n in names)
            out[k] = {"target": "= 0", "value": v, "result": "PASS" if v == 0 else "FAIL", "what": desc}
    return out


def print_targets(targets):
    """One PASS/MISS line per target (containerd_bench.py prints its own too)."""
    for t in targets.values():
        if "ratio" in t:
            print(f"{t['result']}: {t['what']} (ratio {t['ratio']:.3f})")
        else:
            print(f"{t['result']}: {t['what']} (value {t['value']:.2f})")


def floor_table(results):
    """husk (and runc) over the floors: median and [min, max] of each floor,
    the ratios of the medians, the floor targets."""
    rts, vs = results["runtimes"], results["vs_floor"]
    floors = [f for f in FLOORS if f in rts]
    head = ["figure (ms)", "husk median"]
    for f in floors:
        head += [f"{f} median", f"{f} min..max"]
    head += [f"husk/{f}" for f in floors] + [f"runc/{FLOORS[0]}", "target"]
    labels = {k: label for k, label, _ in FIGURES}
    rows = []
    for key, fkey in FLOOR_OF.items():
        if key not in vs:
            continue
        row = [f"{labels[key]} (floor: {'nsenter' if fkey == 'exec' else 'unshare+chroot'})",
               fmt(rts["husk"]["figures"][key]["median"], "ms")]
        for f in floors:
            s = rts[f]["figures"].get(fkey)
            row += [fmt(s["median"], "ms"), f"{fmt(s['min'], 'ms')}..{fmt(s['max'], 'ms')}"] if s else ["", ""]
        for r in [f"husk/{f}" for f in floors] + [f"runc/{FLOORS[0]}"]:
            row.append(f"{vs[key][r]:.2f}" if r in vs[key] else "")
        t = results["targets"].get(key)
        row.append(target_cell(t) if t and t.get("base") == "floor" else "")
        rows.append(row)
    return markdown(head, rows)


def main():
    ap = argparse.ArgumentParser(description="husk vs runc (vs crun) benchmark", epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--husk", default=os.path.join(BIN, "husk"))
    ap.add_argument("--runc", default="runc")
    ap.add_argument("--crun", default="crun", help="crun binary; skipped if it does not work here")
    ap.add_argument("--rounds", type=int, default=30, help="measured rounds per figure (default 30, ~1 min)")
    ap.add_argument("--settle", type=float, default=100, help="quiet ms before each timed call (default 100)")
    ap.add_argument("--heavy-rounds", type=int, default=3,
                    help=f"rounds with the heavy figures: {CONC_N} concurrent run -d, {BURST_N} concurrent "
                    "create/start/delete, parallel throughput (default 3; 0 skips them)")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor rows (unshare+chroot, nsenter)")
    ap.add_argument("--no-burst", action="store_true", help=f"skip the {BURST_N} concurrent create/start/delete")
    ap.add_argument("--no-parallel", action="store_true",
                    help=f"skip the throughput of {', '.join(map(str, PAR_LEVELS))} parallel runs")
    ap.add_argument("--par-count", type=int, default=64,
                    help=f"runs per runtime and parallelism level (default 64; at least {PAR_PER_WORKER} per worker)")
    ap.add_argument("--no-many", action="store_true", help=f"skip list/state with {STATE_N} containers")
    ap.add_argument("--warmup", type=int, default=3, help="discarded rounds first (default 3)")
    ap.add_argument("--no-containerd", action="store_true", help="skip the containerd figures (ctr_run, shim_rss_*)")
    ap.add_argument("--shim", default=os.path.join(os.path.dirname(BIN), "release-shim", "containerd-shim-husk-v2"),
                    help="husk's containerd shim")
    ap.add_argument("--ctr-rounds", type=int, default=10, help="measured rounds of ctr_run (default 10)")
    ap.add_argument("--ctr-warmup", type=int, default=2, help="discarded ctr_run rounds first (default 2)")
    ap.add_argument("--ctr-rss-rounds", type=int, default=3, help="rounds with shim_rss_1/5 (default 3)")
    ap.add_argument("--time-bin", default="/usr/bin/time", help="GNU time, for peak RSS")
    ap.add_argument("--json", default=os.path.join(HERE, "last-result.json"), help="result file")
    a = ap.parse_args()
    if a.rounds < 1 or a.warmup < 0 or a.heavy_rounds < 0 or a.par_count < 1:
        ap.error("--rounds and --par-count must be >= 1, --warmup and --heavy-rounds >= 0")
    if a.ctr_rounds < 1 or a.ctr_warmup < 0 or a.ctr_rss_rounds < 0:
        ap.error("--ctr-rounds must be >= 1, --ctr-warmup and --ctr-rss-rounds >= 0")
    sys.stdout.reconfigure(line_buffering=True)
    if os.geteuid() != 0:
        sys.exit("bench.py needs root (it creates containers)")

    husk, runc = resolve(a.husk), resolve(a.runc)
    if not husk:
        sys.exit(f"husk binary {a.husk} not found: run `make build`")
    if not runc:
        sys.exit(f"runc binary {a.runc} not found: apt-get install runc")
    if not os.access(a.time_bin, os.X_OK):
        sys.exit(f"{a.time_bin} not found: apt-get install time (GNU time measures peak RSS)")
    if not a.no_floor and not (resolve("unshare") and resolve("nsenter")):
        sys.exit("unshare or nsenter not found (util-linux): needed for the floor rows, or pass --no-floor")

    take_over_signals_and_orphans()

    work = tempfile.mkdtemp(prefix="husk-bench-")
    ro_mounts = []
    runtimes = []
    cleanup_list = []  # every Runtime made, measured or not
    bench = None
    leftovers = []
    ok = False
    try:
        check_time_bin(a.time_bin, work)
        rootfs = os.path.join(work, "rootfs")
        bundle.make_rootfs(rootfs)
        # One config for every runtime: husk's default spec (runc's defaults).
        bench = Bench(work, bundle.base_config(husk), rootfs, a.settle)
        runtimes = [Runtime("husk", husk, work), Runtime("runc", runc, work)]
        cleanup_list.extend(runtimes)
        # The same husk from a read-only bind mount, where it needs no
        # protection of its own file (runtime/src/exec_trampoline.rs,
        # sealed_exe.rs): the seal_* ratios are what that protection costs.
        husk_ro = Runtime("husk-ro", mount_read_only_copy(husk, work, ro_mounts), work)
        cleanup_list.append(husk_ro)
        crun, crun_skip = probe_crun(resolve(a.crun), bench, work, cleanup_list)
        if crun:
            runtimes.append(crun)
        names = [rt.name for rt in runtimes]
        # The floors: FLOORS[0] runs the run and exec floors, FLOORS[1] the
        # run floor inside fresh cgroups.
        floors = [] if a.no_floor else [Floor(FLOORS[0], work), Floor(FLOORS[1], work, cgroup_hierarchies())]
        cleanup_list.extend(floors)

        results = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "cgroup": "v2" if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")) else "v1/hybrid",
            },
            "rounds": a.rounds,
            "warmup": a.warmup,
            "settle_ms": a.settle,
            "rss_method": f"ru_maxrss from wait4 of the runtime process, via {a.time_bin} -f %M",
            "crun_skipped": crun_skip,
            "runtimes": {rt.name: {"path": rt.path, "version": rt.version(), "figures": {}} for rt in runtimes},
        }
        cmd = shlex.join(FLOOR_ARGV + ["ROOTFS", "/bin/true"])
        for fl in floors:
            results["runtimes"][fl.name] = {"path": fl.path, "version": fl.version(), "figures": {}, "run": cmd}
            if fl.hierarchies is None:
                results["runtimes"][fl.name]["exec"] = shlex.join(EXEC_FLOOR_ARGV + ["PID", "/bin/true"])
            else:
                results["runtimes"][fl.name]["run"] = (
                    "mkdir H/CG for each H in hierarchies (cpuset: cpus, mems from H); "
                    f"/bin/sh -c 'for d in H/CG...; do echo $$ > $d/cgroup.procs; done; exec {cmd}'; "
                    "rmdir H/CG...")
                results["runtimes"][fl.name]["hierarchies"] = [h for h, _ in fl.hierarchies]
        print(f"husk bench: {a.rounds} rounds (+{a.warmup} warm-up), interleaved {', '.join(names)}")
        print(f"host: kernel {results['host']['kernel']}, {results['host']['cpus']} cpus, cgroup {results['host']['cgroup']}")
        for rt in runtimes:
            print(f"{rt.name}: {rt.path} ({results['runtimes'][rt.name]['version']})")
        if crun_skip:
            print(f"crun: skipped: {crun_skip}")
        print(f"peak RSS: {results['rss_method']}")
        print(f"--root: a directory in {tmpfs_dir()} (tmpfs, as /run on real hosts); run_disk: in {work}")
        if floors:
            print(f"floor: {cmd}; exec floor: {results['runtimes'][FLOORS[0]]['exec']}")
            print(f"floor+cgroups: the floor in a fresh cgroup of each of {', '.join(results['runtimes'][FLOORS[1]]['hierarchies'])}")

        samples = {n: {k: [] for k, _, _ in FIGURES if k != "binary"} for n in names + [husk_ro.name] + list(FLOORS)}
        # (step, the runtimes that take turns at it, in order): husk-ro
        # right after husk where the seal_* ratios need it, the floors right
        # after the runtimes' run; fig_exec of husk also times the exec floor.
        seal = runtimes[:1] + [husk_ro] + runtimes[1:]
        steps = [
            (bench.fig_run, seal),
            (bench.fig_floor, floors),
            (bench.fig_run_warm, seal),
            (bench.fig_run_disk, runtimes),
            (lambda rt: bench.fig_run_rss(rt, a.time_bin), runtimes),
            (lambda rt: bench.fig_create_rss(rt, a.time_bin), runtimes),
            (bench.fig_parts, runtimes),
            (bench.fig_delete_force, runtimes),
            (bench.fig_delete_force_stopped, runtimes),
            (bench.fig_lifecycle, seal),
            (lambda rt: bench.fig_exec(rt, floors[0] if floors and rt is runtimes[0] else None), seal),
        ]
        heavy = [(bench.fig_concurrent, runtimes)]
        if not a.no_burst:
            heavy.append((bench.fig_burst, runtimes))
        if not a.no_parallel:
            heavy += [(lambda rt, w=w: bench.fig_parallel(rt, w, max(a.par_count, PAR_PER_WORKER * w)), runtimes)
                      for w in PAR_LEVELS]
        progress = sys.stderr.isatty()
        t_start = time.monotonic()
        for rnd in range(a.warmup + a.rounds):
            warm = rnd < a.warmup
            for step, who in steps + (heavy if not warm and rnd - a.warmup < a.heavy_rounds else []):
                for rt in who:
                    got = step(rt)
                    if not warm:
                        for k, v in got.items():
                            name, k = k if isinstance(k, tuple) else (rt.name, k)
                            samples[name][k].append(v)
            if progress:
                tag = "warm-up" if warm else "round"
                i = rnd + 1 if warm else rnd - a.warmup + 1
                n = a.warmup if warm else a.rounds
                print(f"\r{tag} {i}/{n} ({time.monotonic() - t_start:.0f} s)   ", end="", file=sys.stderr, flush=True)
        if not a.no_many:
            if progress:
                print(f"\rlist/state with {STATE_N} containers   ", end="", file=sys.stderr, flush=True)
            many = {}
            try:
                for rt in runtimes:
                    many[rt.name] = bench.setup_many(rt)
                for k, args, n in (("list", ["list"], LIST_SAMPLES), ("state", None, STATE_SAMPLES)):
                    for _ in range(n):
                        for rt in runtimes:
                            argv = args or ["state", many[rt.name][0]]
                            secs, _, _ = rt.call(argv)
                            samples[rt.name][k].append(secs * 1000)
                # Sanity: `list` must see all of them.
                for rt in runtimes:
                    out = subprocess.run([rt.path, "--root", rt.root, "list", "-q"], capture_output=True,
                                         text=True, timeout=CALL_TIMEOUT).stdout.split()
                    if len(out) != STATE_N:
                        raise BenchError(f"{rt.name} list -q shows {len(out)} containers, not {STATE_N}")
            finally:
                for rt in runtimes:
                    rt.remove_copies()
                    if rt.name in many:
                        bench.teardown_many(rt, *many[rt.name])
        if a.no_containerd:
            results["containerd"] = {"skipped": "--no-containerd"}
        else:
            import containerd_bench

            # containerd_bench may add figures and targets of its own.
            FIGURES.extend(f for f in getattr(containerd_bench, "FIGURES", []) if f[0] not in {k for k, _, _ in FIGURES})
            TARGETS.update(getattr(containerd_bench, "TARGETS", {}))
            ABS_TARGETS.update(getattr(containerd_bench, "ABS_TARGETS", {}))
            skip = containerd_bench.missing(resolve(a.shim) or a.shim, husk)
            if skip:
                print(f"containerd figures: skipped: {skip}")
                results["containerd"] = {"skipped": skip}
            else:
                got, info = containerd_bench.run(husk, resolve(a.shim), a.settle, a.ctr_rounds, a.ctr_warmup,
                                                 a.ctr_rss_rounds, leftovers, progress)
                results["containerd"] = info
                for n, figs in got.items():
                    samples[n].update(figs)
        if progress:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)

        for rt in runtimes + floors:
            figs = results["runtimes"][rt.name]["figures"]
            figs.update({k: summarize_kept(v) for k, v in samples[rt.name].items() if v})
            if rt not in floors:
                size = os.path.getsize(rt.path)
                figs["binary"] = summarize([size / 2**20])
                figs["binary"]["bytes"] = size
        results["runtimes"][husk_ro.name] = {"path": husk_ro.path, "version": "husk from a read-only mount (no trampoline, no sealed re-exec)",
                                             "figures": {k: summarize(v) for k, v in samples[husk_ro.name].items() if v}}
        hf, rf = results["runtimes"]["husk"]["figures"], results["runtimes"]["runc"]["figures"]
        rof = results["runtimes"][husk_ro.name]["figures"]
        results["seal_cost"] = {k: hf[k]["median"] / rof[k]["median"] for k in rof if k in hf and rof[k]["median"] > 0}
        results["ratios"] = median_ratios(hf, rf)
        # figure -> {"<runtime>/<floor>": ratio of the medians, "floor_figure": the floor's figure}
        results["vs_floor"] = {}
        for k, fk in FLOOR_OF.items():
            vs = {}
            for n in names:
                for fl in floors:
                    num, den = results["runtimes"][n]["figures"].get(k), results["runtimes"][fl.name]["figures"].get(fk)
                    if num and den and den["median"] > 0:
                        vs[f"{n}/{fl.name}"] = num["median"] / den["median"]
            if vs:
                results["vs_floor"][k] = dict(vs, floor_figure=fk)
        results["targets"] = evaluate_targets(results, names)

        print()
        print(table(results, names + [husk_ro.name]))
        print()
        if results["vs_floor"]:
            print(floor_table(results))
            print()
        for k, r in results["seal_cost"].items():
            print(f"seal_{k}: husk / husk-ro = {r:.3f} (what protecting husk's file costs: exec trampoline or sealed re-exec)")
        print_targets(results["targets"])
        print(f"elapsed {time.monotonic() - t_start:.0f} s")
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"results: {a.json}")
        ok = True
    except BenchError as e:
        print(f"\nbench failed: {e}", file=sys.stderr)
    except (KeyboardInterrupt, Terminated) as e:
        print(f"\ninterrupted ({type(e).__name__}) after: {LAST_CALL}; cleaning up", file=sys.stderr)
    finally:
        with signals_ignored():
            for rt in cleanup_list:
                leftovers += rt.cleanup()
            reap_orphans()
            for m in ro_mounts:
                subprocess.run(["umount", m], check=False)
            if bench:
                leftovers += [f"cgroup left: {p}" for p in bench.leftover_cgroups()]
            with open("/proc/self/mountinfo") as f:
                leftovers += [f"mount left: {line.split()[4]}" for line in f if work in line]
            shutil.rmtree(work, ignore_errors=True)
        for msg in leftovers:
            print(f"LEFTOVER: {msg}", file=sys.stderr)
    sys.exit(0 if ok and not leftovers else 1)


if __name__ == "__main__":
    main()
