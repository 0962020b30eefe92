#!/usr/bin/env python3
"""husk vs runc (and crun, where it works) side by side.

    sudo python3 integration/bench/bench.py [--husk PATH] [--runc PATH] [--rounds N]

One run measures every runtime, interleaved: for each round and figure the
runtimes take turns (husk, runc[, crun]), each with a fresh container id,
its own bundle directory (config.json only; root.path points at one shared,
read-only busybox rootfs), a unique linux.cgroupsPath /husk-bench-<pid>-<n>
and its own temporary --root. Warm-up rounds are discarded.

Figures (wall time = spawn of the runtime process until wait4 returns):
  run        `run` of /bin/true (foreground, container deleted by run)
  run_warm   the same, right after an untimed `run` of the same runtime
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
  seal_*     run, run_warm and exec of husk over the same figures of
             "husk-ro", the same binary on a read-only bind mount, measured
             right after husk in each round: there husk need not re-execute
             from its sealed overlay (CVE-2019-5736), so the ratio is what
             that re-exec costs
  conc_start 50 containers (`sleep 1000`) started at once: 50 concurrent
             `run -d`, each with its own bundle and cgroupsPath; wall time
             from the first spawn until the last call returned
  conc_del   then 50 concurrent `delete --force` of them, the same way
  conc_fail  failed calls of both phases (must be 0)
             The conc_* figures run only in the first --heavy-rounds
             (default 3) measured rounds, without warm-up.
  list       `list` with 1,000 containers in --root (median of 10 calls)
  state      `state <id>` with 1,000 containers in --root (median of 20)
             One real container (`run -d`, `sleep 1000`) per runtime; its
             state directory is copied 999 times with "id" edited in
             state.json (each runtime's own format). Measured once per
             run, after the rounds, interleaved call by call.

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
import json
import os
import platform
import select
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

CONC_N = 50  # containers started at once
STATE_N = 1000  # containers in --root for list/state
LIST_SAMPLES, STATE_SAMPLES = 10, 20

# (key, label, unit); unit "ms" values are wall times, "MiB" sizes.
FIGURES = [
    ("run", "run /bin/true: wall time", "ms"),
    ("run_warm", "run /bin/true: wall, back-to-back", "ms"),
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
    ("list", f"list, {STATE_N} containers", "ms"),
    ("state", f"state <id>, {STATE_N} containers", "ms"),
    ("ctr_run", "containerd: ctr run --rm true: wall time", "ms"),
    ("shim_rss_1", "containerd: shim RSS, 1 container", "KiB"),
    ("shim_rss_5", "containerd: shim RSS, 5 containers", "KiB"),
    ("shim_binary", "containerd: shim binary size", "MiB"),
]
# figure -> (max ratio husk/runc of the medians, description): the speed
# and footprint issue's targets.
TARGETS = {
    "run": (0.35, "husk run median wall time <= 0.35 x runc"),
    "lifecycle": (0.55, "husk create+start+delete median <= 0.55 x runc"),
    "delete_fs": (0.5, "husk delete --force of a stopped container median <= 0.5 x runc"),
    "exec": (0.4, "husk exec median wall time <= 0.40 x runc"),
    "run_rss": (0.3, "husk peak RSS of run <= 0.3 x runc"),
    "ctr_run": (0.8, "ctr run --rm with husk's shim median wall time <= 0.8 x the runc shim + runc"),
}
# figure -> (kind, limit, description) for absolute targets on husk alone:
# "lt": husk median < limit; "le": husk median <= limit; "zero": every sample of every runtime is 0
# (FAIL otherwise).
ABS_TARGETS = {
    "list": ("lt", 50.0, f"husk list with {STATE_N} containers median < 50 ms"),
    "shim_rss_1": ("le", 3072.0, "husk shim RSS with one container median <= 3 MiB (3072 KiB)"),
    "conc_fail": ("zero", 0, f"no failed call among {CONC_N} concurrent run -d / delete --force"),
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


def wait_exit(pidfd, timeout):
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(timeout * 1000))


class Runtime:
    def __init__(self, name, path, work):
        self.name = name
        self.path = path
        self.work = work
        self.root = tempfile.mkdtemp(prefix=f"root-{name}-", dir=work)
        self.errfile = os.path.join(work, f"stderr-{name}")
        self.live = set()  # ids that may still exist
        self.copies = set()  # synthetic state dirs (removed, never deleted by the runtime)
        self.procs = []  # concurrent Popen calls not yet waited for
        self.inflight = None

    def version(self):
        try:
            out = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError) as e:
            return f"unknown ({e})"

    def argv(self, args):
        return [self.path, "--root", self.root] + list(args)

    def call(self, args, check=True, timeout=CALL_TIMEOUT, wrap=()):
        """Run `<runtime> --root R args...`; return (seconds, status, rusage)."""
        argv = list(wrap) + self.argv(args)
        global LAST_CALL
        LAST_CALL = " ".join([self.name] + list(args))
        fa = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, self.errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        ]
        t0 = time.perf_counter()
        # setsid: a Ctrl-C on the terminal reaches only this script, which
        # then lets the call finish and cleans up.
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa, setsid=True)
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
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                return
            try:
                if not wait_exit(pidfd, CALL_TIMEOUT):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            finally:
                os.close(pidfd)

    def spawn(self, args, errfile):
        """Start `<runtime> --root R args...` without waiting (tracked in procs)."""
        global LAST_CALL
        LAST_CALL = " ".join([self.name] + list(args)) + " (concurrent)"
        with open(errfile, "wb") as err:
            p = subprocess.Popen(self.argv(args), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        self.procs.append(p)
        return p

    def wait_procs(self):
        """Wait (bounded) for every spawned call, killing stragglers."""
        with signals_ignored():
            deadline = time.monotonic() + CALL_TIMEOUT
            for p in self.procs:
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
            self.procs = []

    def remove_copies(self):
        for d in sorted(self.copies):
            shutil.rmtree(d, ignore_errors=True)
        self.copies.clear()

    def stderr(self):
        try:
            with open(self.errfile, errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
            return lines[-1] if lines else "(no stderr)"
        except OSError:
            return "(no stderr)"

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
        if os.path.isdir(self.root):
            state = os.listdir(self.root)
            # A container deleted by its own id's `delete` must not leave state.
            if state:
                leftovers.append(f"{self.name}: state left in --root: {state}")
            shutil.rmtree(self.root, ignore_errors=True)
        return leftovers


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

    def fig_exec(self, rt):
        cid, bdir = self.new_container(rt, ["sleep", "1000"])
        rt.call(["run", "-d", "--bundle", bdir, cid])
        self.settle()
        secs, _, _ = rt.call(["exec", cid, "/bin/true"])
        rt.call(["delete", "--force", cid])
        reap_orphans()
        self.done(rt, cid, bdir)
        return {"exec": secs * 1000}

    def fig_concurrent(self, rt):
        """CONC_N concurrent `run -d`, then CONC_N concurrent `delete --force`."""
        made = [self.new_container(rt, ["sleep", "1000"]) for _ in range(CONC_N)]
        errdir = os.path.join(self.work, f"conc-err-{rt.name}")
        os.makedirs(errdir, exist_ok=True)
        failed = []
        self.settle()
        times = {}
        for phase, argv in (("conc_start", lambda c, b: ["run", "-d", "--bundle", b, c]),
                            ("conc_del", lambda c, b: ["delete", "--force", c])):
            t0 = time.perf_counter()
            procs = [(c, rt.spawn(argv(c, b), os.path.join(errdir, f"{phase}-{c}"))) for c, b in made]
            deadline = t0 + CALL_TIMEOUT
            for c, p in procs:
                try:
                    p.wait(max(0.1, deadline - time.perf_counter()))
                except subprocess.TimeoutExpired:
                    rt.wait_procs()
                    raise BenchError(f"{rt.name} {phase} {c}: timed out after {CALL_TIMEOUT:.0f} s")
            times[phase] = (time.perf_counter() - t0) * 1000
            rt.procs = []
            for c, p in procs:
                if p.returncode != 0:
                    with open(os.path.join(errdir, f"{phase}-{c}"), errors="replace") as f:
                        failed.append(f"{phase} {c}: exit {p.returncode}: {f.read().strip()[-200:]}")
            reap_orphans()
            if phase == "conc_start":
                self.settle()
        for c, b in made:
            if not os.path.exists(os.path.join(rt.root, c)):
                self.done(rt, c, b)
        shutil.rmtree(errdir, ignore_errors=True)
        for msg in failed[:3]:
            print(f"{rt.name}: concurrent call failed: {msg}", file=sys.stderr)
        times["conc_fail"] = float(len(failed))
        return times

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


def fmt(v, unit):
    return {"MiB": f"{v:.1f}", "KiB": f"{v:.0f}", "n": f"{v:.0f}"}.get(unit, f"{v:.2f}")


def table(results, names):
    """A markdown table: per figure, median and [min, max] per runtime, ratio."""
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
        if t and "max_ratio" in t:
            row.append(f"<= {t['max_ratio']:.2f} {t['result']}")
        elif t:
            row.append(f"{t['target']} {t['result']}")
        else:
            row.append("")
        rows.append(row)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def main():
    ap = argparse.ArgumentParser(description="husk vs runc (vs crun) benchmark", epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--husk", default=os.path.join(BIN, "husk"))
    ap.add_argument("--runc", default="runc")
    ap.add_argument("--crun", default="crun", help="crun binary; skipped if it does not work here")
    ap.add_argument("--rounds", type=int, default=30, help="measured rounds per figure (default 30, ~1 min)")
    ap.add_argument("--settle", type=float, default=100, help="quiet ms before each timed call (default 100)")
    ap.add_argument("--heavy-rounds", type=int, default=3,
                    help=f"rounds with the {CONC_N}-concurrent figure (default 3; 0 skips it)")
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
    if a.rounds < 1 or a.warmup < 0 or a.heavy_rounds < 0:
        ap.error("--rounds must be >= 1 and --warmup >= 0")
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

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    set_child_subreaper()

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
        # The same husk from a read-only bind mount, where it need not
        # re-execute from a sealed image (runtime/src/sealed_exe.rs): the
        # seal_* ratios are what that re-exec costs.
        husk_ro = Runtime("husk-ro", mount_read_only_copy(husk, work, ro_mounts), work)
        cleanup_list.append(husk_ro)
        crun, crun_skip = probe_crun(resolve(a.crun), bench, work, cleanup_list)
        if crun:
            runtimes.append(crun)
        names = [rt.name for rt in runtimes]
        seal_steps = {"fig_run", "fig_run_warm", "fig_exec"}

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
        print(f"husk bench: {a.rounds} rounds (+{a.warmup} warm-up), interleaved {', '.join(names)}")
        print(f"host: kernel {results['host']['kernel']}, {results['host']['cpus']} cpus, cgroup {results['host']['cgroup']}")
        for rt in runtimes:
            print(f"{rt.name}: {rt.path} ({results['runtimes'][rt.name]['version']})")
        if crun_skip:
            print(f"crun: skipped: {crun_skip}")
        print(f"peak RSS: {results['rss_method']}")

        samples = {n: {k: [] for k, _, _ in FIGURES if k != "binary"} for n in names + [husk_ro.name]}
        steps = [
            bench.fig_run,
            bench.fig_run_warm,
            lambda rt: bench.fig_run_rss(rt, a.time_bin),
            lambda rt: bench.fig_create_rss(rt, a.time_bin),
            bench.fig_parts,
            bench.fig_delete_force,
            bench.fig_delete_force_stopped,
            bench.fig_lifecycle,
            bench.fig_exec,
        ]
        progress = sys.stderr.isatty()
        t_start = time.monotonic()
        for rnd in range(a.warmup + a.rounds):
            warm = rnd < a.warmup
            heavy = [bench.fig_concurrent] if not warm and rnd - a.warmup < a.heavy_rounds else []
            for step in steps + heavy:
                seal = getattr(step, "__name__", "") in seal_steps
                for rt in runtimes[:1] + [husk_ro] + runtimes[1:] if seal else runtimes:
                    got = step(rt)
                    if not warm:
                        for k, v in got.items():
                            samples[rt.name][k].append(v)
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

        for rt in runtimes:
            figs = results["runtimes"][rt.name]["figures"]
            for k, v in samples[rt.name].items():
                if not v:
                    continue
                figs[k] = summarize(v)
                figs[k]["samples"] = [round(x, 4) for x in v]
            size = os.path.getsize(rt.path)
            figs["binary"] = summarize([size / 2**20])
            figs["binary"]["bytes"] = size
        results["runtimes"][husk_ro.name] = {"path": husk_ro.path, "version": "husk without the sealing re-exec",
                                             "figures": {k: summarize(v) for k, v in samples[husk_ro.name].items() if v}}
        hf, rf = results["runtimes"]["husk"]["figures"], results["runtimes"]["runc"]["figures"]
        rof = results["runtimes"][husk_ro.name]["figures"]
        results["seal_cost"] = {k: hf[k]["median"] / rof[k]["median"] for k in rof if k in hf and rof[k]["median"] > 0}
        results["ratios"] = {k: hf[k]["median"] / rf[k]["median"] for k, _, u in FIGURES
                             if u != "n" and k in rf and rf[k]["median"] > 0}
        results["targets"] = {}
        for k, (limit, desc) in TARGETS.items():
            if k not in results["ratios"]:
                continue
            r = results["ratios"][k]
            results["targets"][k] = {"max_ratio": limit, "ratio": r, "result": "PASS" if r <= limit else "MISS", "what": desc}
        for k, (kind, limit, desc) in ABS_TARGETS.items():
            if k not in hf:
                continue
            if kind in ("lt", "le"):
                v = hf[k]["median"]
                ok_ = v < limit if kind == "lt" else v <= limit
                results["targets"][k] = {"target": f"{'<' if kind == 'lt' else '<='} {limit:g}", "value": v,
                                         "result": "PASS" if ok_ else "MISS", "what": desc}
            else:
                v = sum(sum(results["runtimes"][n]["figures"][k]["samples"]) for n in names)
                results["targets"][k] = {"target": "= 0", "value": v,
                                         "result": "PASS" if v == 0 else "FAIL", "what": desc}

        print()
        print(table(results, names + [husk_ro.name]))
        print()
        for k, r in results["seal_cost"].items():
            print(f"seal_{k}: husk / husk-ro = {r:.3f} (what re-executing from the sealed overlay costs)")
        for k, t in results["targets"].items():
            if "ratio" in t:
                print(f"{t['result']}: {t['what']} (ratio {t['ratio']:.3f})")
            else:
                print(f"{t['result']}: {t['what']} (value {t['value']:.2f})")
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
