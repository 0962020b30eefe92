"""The containerd figures of bench.py: husk's shim vs the runc shim + runc.

A private containerd (the installed one, 1.6+) runs on its own socket, with
its root and state under a temporary directory (/tmp/husk-bench-ctr-*) and
the CRI plugin disabled, as in integration/containerd.sh. Its PATH starts
with a directory holding the symlinks containerd-shim-husk-v2 and husk, so
runtime io.containerd.husk.v2 is husk's shim (driving husk) and
io.containerd.runc.v2 is containerd's own shim driving the default runc.
A busybox image made by integration/mkimage.py is imported into a private
namespace (husk-bench-<pid>). Figures, per runtime path:

  ctr_run      wall time of `ctr run --rm IMG <id> true` (image already
               unpacked): connect, create the container and its snapshot,
               start the shim, create + start the task, wait for it, delete
               task, snapshot and container, shim exit. Interleaved husk
               shim, runc shim, each with a fresh id, after the same --settle
               pause as the other timed calls; --ctr-warmup rounds discarded,
               then --ctr-rounds measured.
  shim_rss_1   VmRSS (KiB) of the shim process serving one running
               `sleep 1000` container (`ctr run -d`), read from
               /proc/<pid>/status after a --settle pause.
  shim_rss_5   total VmRSS (KiB) of the shim process(es) serving 5 running
               `sleep 1000` containers. The 5 are started with
               `ctr run --annotation io.containerd.runc.v2.group=<group>`;
               both shims group on that OCI annotation (as they do on
               io.kubernetes.cri.sandbox-id, which the CRI sets for a pod),
               so one shim serves all 5, as it would a pod: the figure is
               that shim's RSS. The shims serving a group are found as the
               parents of the containers' init processes; their number is
               checked (1) and stored in the JSON. shim_rss_1 is the same
               shim with only the first container of the group running.
               Measured in the first --ctr-rss-rounds measured rounds.
  shim_rss_pod VmRSS (KiB) of the one shim serving a pod of 2 running
               `sleep 1000` containers (grouped by the same annotation) after
               traffic on both: --pod-execs (10) `ctr tasks exec <id> true`
               each, then `ctr tasks ps`, `pause`, `resume` and `metrics`
               each; read after a --settle pause. What a CRI pod's shim
               holds once kubelet's exec probes and stats have run.
               Target: husk's <= 2560 KiB (2.5 MiB). Beside it, from the
               same /proc/<pid>/status read:
  shim_rss_pod_anon  RssAnon: private memory (heap, thread stacks, data
               written to); what each further pod costs the host.
  shim_rss_pod_file  RssFile: the pages of the shim's executable (and any
               file) mapped in: page cache, shared by every shim running the
               same binary, counted in full in each one's VmRSS.
  shim_pod_threads   the shim's threads at that point.
               Measured in the same rounds as shim_rss_1/5.
  shim_binary  size of the shim binary (containerd-shim-husk-v2 vs
               containerd-shim-runc-v2; neither includes the runtime it runs).

Run on its own (root; needs `make build`), only some of these figures:

  python3 integration/bench/containerd_bench.py --only pod --rss-rounds 3

(--only takes a comma-separated list of run, rss, pod; default all three;
--help for the rest). It prints a table of medians and the targets, and
writes integration/bench/last-containerd.json. From bench.py the figures
join its table and JSON (this module adds its rows and the shim_rss_pod
target to bench.FIGURES / bench.ABS_TARGETS when imported).

Everything is undone on success, failure, Ctrl-C or SIGTERM: tasks killed
and deleted and containers removed through ctr, containerd stopped by its
pidfd (SIGTERM, 10 s, SIGKILL), processes whose command line mentions the
temporary directory (shims, a stray ctr) killed, processes left in the
namespace's cgroups killed, shim sockets named in the bundles' address files
removed, mounts under the temporary directory unmounted, the cgroups under
<hierarchy>/husk-bench-<pid> removed depth-first (only if that directory did
not exist before), /run/containerd/{runc,husk}/<namespace> removed, the
temporary directory deleted. Whatever had to be removed this way after a
successful run is reported as a leftover.
"""

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import bench  # bench.py (aliased by bench.py when it runs as a script)

HERE = os.path.dirname(os.path.abspath(__file__))
MKIMAGE = os.path.join(os.path.dirname(HERE), "mkimage.py")
IMAGE = "husk-bench:latest"
REF = "docker.io/library/" + IMAGE
GROUP_ANNOTATION = "io.containerd.runc.v2.group"
RSS_N = 5  # containers in one shim for shim_rss_5
POD_N = 2  # containers of the pod for shim_rss_pod
POD_EXECS = 10  # default execs into each of them
POD_TARGET_KIB = 2560.0
RUNTIMES = (("husk", "io.containerd.husk.v2"), ("runc", "io.containerd.runc.v2"))
CTR_TIMEOUT = 60.0
STOP_WAIT = 10.0


# Rows and target of this module's own figures in bench.py's table (after
# shim_rss_5), added when bench.py imports this module.
POD_FIGURES = [
    ("shim_rss_pod", f"containerd: shim RSS, pod of {POD_N} after traffic", "KiB"),
    ("shim_rss_pod_anon", "containerd: pod shim RssAnon (private)", "KiB"),
    ("shim_rss_pod_file", "containerd: pod shim RssFile (shared text)", "KiB"),
    ("shim_pod_threads", "containerd: pod shim threads", "n"),
]
POD_TARGET = ("le", POD_TARGET_KIB, f"husk shim RSS for a pod of {POD_N} after exec/ps/pause/metrics traffic "
              f"median <= 2.5 MiB ({POD_TARGET_KIB:.0f} KiB)")


def register_figures():
    keys = [k for k, _, _ in bench.FIGURES]
    if "shim_rss_pod" not in keys:
        at = keys.index("shim_rss_5") + 1 if "shim_rss_5" in keys else len(keys)
        bench.FIGURES[at:at] = POD_FIGURES
    bench.ABS_TARGETS.setdefault("shim_rss_pod", POD_TARGET)


register_figures()


def missing(shim, husk):
    """Why the containerd figures cannot run here (None if they can)."""
    for b in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if not shutil.which(b):
            return f"{b} is not installed (apt-get install containerd)"
    if not (shim and os.access(shim, os.X_OK)):
        return f"husk's shim {shim} is not built (make build)"
    if not os.access(husk, os.X_OK):
        return f"{husk} is not built"
    if not os.path.exists(MKIMAGE):
        return f"{MKIMAGE} is missing"
    return None


def static_busybox():
    """A statically linked busybox for the image (like lib.sh's make_image)."""
    for cand in (shutil.which("busybox"), "/bin/busybox"):
        if not cand:
            continue
        try:
            with open(cand, "rb") as f:
                hdr = f.read(64)
                if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
                    continue
                phoff, = struct.unpack_from("<Q", hdr, 0x20)
                phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
                f.seek(phoff)
                ph = f.read(phentsize * phnum)
            # No PT_INTERP (3): statically linked.
            if all(struct.unpack_from("<I", ph, i * phentsize)[0] != 3 for i in range(phnum)):
                return cand
        except (OSError, struct.error):
            continue
    return "/bin/busybox"


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def status_field(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def pids_mentioning(text):
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and text in cmdline(p)]


def wait_pidfds(pidfds, timeout):
    """Wait until every pidfd is readable (process exited) or timeout."""
    deadline = time.monotonic() + timeout
    for fd in pidfds:
        left = deadline - time.monotonic()
        if left <= 0 or not bench.wait_exit(fd, left):
            return False
    return True


def open_pidfds(pids):
    """pidfds of those of pids still alive."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except OSError:
            pass
    return fds


def await_exit(rt, fds):
    """Let the shims of fds exit before the next figure (containerd shuts
    one down once its last task is deleted), then close the fds."""
    if not wait_pidfds(fds, STOP_WAIT):
        print(f"{rt.name}: shim still running {STOP_WAIT:.0f} s after its tasks were deleted", file=sys.stderr)
    for fd in fds:
        os.close(fd)
    bench.reap_orphans()


def kill_pids(pids, check=lambda pid: True, timeout=5.0):
    """SIGKILL each pid (through a pidfd, re-checked after opening it) and wait."""
    fds = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        if check(pid):
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except OSError:
                pass
            fds.append(fd)
        else:
            os.close(fd)
    wait_pidfds(fds, timeout)
    for fd in fds:
        os.close(fd)
    bench.reap_orphans()


class Ctr(bench.Runtime):
    """`ctr` against the private containerd, for one runtime path.

    bench.Runtime.call() times it (posix_spawn, own session, timeout)."""

    def __init__(self, name, runtime, ctr, sock, ns, t):
        self.name, self.runtime, self.path = name, runtime, ctr
        self.sock, self.ns = sock, ns
        self.errfile = os.path.join(t, f"stderr-{name}")
        self.root = None
        self.live, self.copies, self.procs, self.inflight = set(), set(), [], None

    def argv(self, args):
        return [self.path, "--address", self.sock, "-n", self.ns] + list(args)


class Containerd:
    def __init__(self, husk, shim, settle_ms):
        self.husk, self.shim = husk, shim
        self.settle_s = settle_ms / 1000
        self.ctr = shutil.which("ctr")
        self.t = tempfile.mkdtemp(prefix="husk-bench-ctr-")
        os.chmod(self.t, 0o755)
        self.ns = f"husk-bench-{os.getpid()}"
        self.sock = os.path.join(self.t, "containerd.sock")
        self.fifo = os.path.join(self.t, "fifo")
        self.log = os.path.join(self.t, "containerd.log")
        self.proc = self.pidfd = None
        self.n = 0
        self.cg_before = set(self.ns_cgroups())
        self.rts = [Ctr(n, r, self.ctr, self.sock, self.ns, self.t) for n, r in RUNTIMES]

    # ---- helpers ----

    def ctl(self, args, timeout=CTR_TIMEOUT, check=True):
        """An untimed ctr call; returns stdout."""
        bench.LAST_CALL = "ctr " + " ".join(args)
        try:
            p = subprocess.run([self.ctr, "--address", self.sock, "-n", self.ns] + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise bench.BenchError(f"ctr {' '.join(args)}: timed out after {timeout:.0f} s")
        if check and p.returncode != 0:
            raise bench.BenchError(f"ctr {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        return p.stdout

    def new_id(self, what):
        self.n += 1
        return f"{what}-{os.getpid()}-{self.n}"

    def settle(self):
        bench.reap_orphans()
        time.sleep(self.settle_s)

    def ns_cgroups(self):
        root = bench.CGROUP_ROOT
        cands = [os.path.join(root, self.ns)]
        try:
            cands += [os.path.join(root, d, self.ns) for d in sorted(os.listdir(root))]
        except OSError:
            pass
        return [d for d in cands if os.path.isdir(d)]

    def tasks(self):
        """{container id: pid} of the namespace's tasks."""
        out = {}
        for line in self.ctl(["task", "ls"]).splitlines()[1:]:
            f = line.split()
            if len(f) >= 2 and f[1].isdigit():
                out[f[0]] = int(f[1])
        return out

    # ---- setup ----

    def start(self):
        bindir = os.path.join(self.t, "bin")
        os.makedirs(bindir)
        os.makedirs(self.fifo)
        os.symlink(self.shim, os.path.join(bindir, "containerd-shim-husk-v2"))
        os.symlink(self.husk, os.path.join(bindir, "husk"))
        cfg = os.path.join(self.t, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'''version = 2
root = "{self.t}/root"
state = "{self.t}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
  level = "info"
[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/amd64"]
''')
        env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
        with open(self.log, "wb") as logf:
            # Own session: a Ctrl-C on the terminal reaches only bench.py,
            # which then stops containerd itself after cleaning up.
            self.proc = subprocess.Popen([shutil.which("containerd"), "--config", cfg], env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True)
        self.pidfd = os.pidfd_open(self.proc.pid)
        deadline = time.monotonic() + 20
        while True:
            if bench.wait_exit(self.pidfd, 0):
                raise bench.BenchError(f"containerd exited at start: {self.log_tail()}")
            try:
                self.ctl(["version"], timeout=5)
                break
            except bench.BenchError:
                if time.monotonic() > deadline:
                    raise bench.BenchError(f"containerd did not answer within 20 s: {self.log_tail()}")
                time.sleep(0.2)
        tar = os.path.join(self.t, "image.tar")
        subprocess.run([sys.executable, MKIMAGE, tar, IMAGE, static_busybox()], check=True, stdout=subprocess.DEVNULL)
        self.ctl(["image", "import", "--all-platforms", tar])
        os.unlink(tar)

    def log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-3:])
        except OSError:
            return "(no log)"

    def versions(self):
        def first_line(argv):
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (p.stdout or p.stderr).strip().splitlines()[0]
            except (OSError, subprocess.SubprocessError, IndexError) as e:
                return f"unknown ({e})"
        return {
            "containerd": first_line([shutil.which("containerd"), "--version"]),
            "husk_shim": self.shim,
            "runc_shim": shutil.which("containerd-shim-runc-v2"),
            "runc": first_line(["runc", "--version"]),
        }

    # ---- figures ----

    def fig_ctr_run(self, rt):
        cid = self.new_id(f"run-{rt.name}")
        self.settle()
        secs, _, _ = rt.call(["run", "--rm", "--fifo-dir", self.fifo, "--runtime", rt.runtime, REF, cid, "true"],
                             timeout=CTR_TIMEOUT)
        return {"ctr_run": secs * 1000}

    def shims_of(self, rt, ids):
        """{shim pid: VmRSS KiB} of the shims whose children are the tasks of ids."""
        pids = self.tasks()
        shims = {}
        for cid in ids:
            if cid not in pids:
                raise bench.BenchError(f"{rt.name}: task {cid} is not running")
            ppid = status_field(pids[cid], "PPid")
            line = cmdline(ppid) if ppid else ""
            if self.sock not in line or f"-namespace {self.ns}" not in line:
                raise bench.BenchError(f"{rt.name}: parent {ppid} of task {cid} is not one of our shims: {line!r}")
            shims[ppid] = status_field(ppid, "VmRSS")
        if None in shims.values():
            raise bench.BenchError(f"{rt.name}: no VmRSS for shim(s) {shims}")
        return shims

    def run_in_group(self, rt, group, cid):
        """`ctr run -d` of a `sleep 1000` container cid in pod `group`: the
        annotation both shims group on, so one shim serves the group."""
        rt.call(["run", "-d", "--null-io", "--fifo-dir", self.fifo, "--runtime", rt.runtime,
                 "--annotation", f"{GROUP_ANNOTATION}={group}", REF, cid, "sleep", "1000"], timeout=CTR_TIMEOUT)

    def fig_shim_rss(self, rt):
        group = self.new_id(f"grp-{rt.name}")
        ids = []
        got, info = {}, {}
        fds = []
        try:
            for i in range(RSS_N):
                cid = self.new_id(f"rss-{rt.name}")
                ids.append(cid)
                self.run_in_group(rt, group, cid)
                if i + 1 in (1, RSS_N):
                    self.settle()
                    shims = self.shims_of(rt, ids)
                    got[f"shim_rss_{i + 1}"] = float(sum(shims.values()))
                    info[f"shims_{i + 1}"] = len(shims)
            fds = open_pidfds(shims)
        finally:
            self.remove(ids)
        await_exit(rt, fds)
        return got, info

    def fig_shim_rss_pod(self, rt, execs):
        """shim_rss_pod and its parts: one shim, a pod of POD_N, after traffic."""
        group = self.new_id(f"pod-{rt.name}")
        ids, fds = [], []
        try:
            for _ in range(POD_N):
                cid = self.new_id(f"pod-{rt.name}")
                ids.append(cid)
                self.run_in_group(rt, group, cid)
            # What a kubelet does to a pod: exec probes, ps, stats; pause
            # and resume as well (they touch the freezer code paths).
            for k in range(execs):
                for cid in ids:
                    rt.call(["task", "exec", "--fifo-dir", self.fifo, "--exec-id", f"x{k}", cid, "true"],
                            timeout=CTR_TIMEOUT)
            for cid in ids:
                for args in (["task", "ps", cid], ["task", "pause", cid], ["task", "resume", cid],
                             ["task", "metrics", cid]):
                    rt.call(args, timeout=CTR_TIMEOUT)
            self.settle()
            shims = self.shims_of(rt, ids)
            parts = {pid: {f: status_field(pid, f) or 0 for f in ("RssAnon", "RssFile", "RssShmem", "Threads")}
                     for pid in shims}
            got = {
                "shim_rss_pod": float(sum(shims.values())),
                "shim_rss_pod_anon": float(sum(p["RssAnon"] for p in parts.values())),
                "shim_rss_pod_file": float(sum(p["RssFile"] for p in parts.values())),
                "shim_pod_threads": float(sum(p["Threads"] for p in parts.values())),
            }
            info = {"shims_pod": len(shims), "pod_status": {str(pid): dict(parts[pid], VmRSS=shims[pid]) for pid in shims}}
            fds = open_pidfds(shims)
        finally:
            self.remove(ids)
        await_exit(rt, fds)
        return got, info

    def remove(self, ids):
        """Kill and delete the tasks and containers of ids (whatever state they are in)."""
        if not ids:
            return
        have = set(self.ctl(["task", "ls", "-q"], check=False).split())
        tasks = [c for c in ids if c in have]
        if tasks:
            for c in tasks:  # ctr task kill takes one container
                self.ctl(["task", "kill", "-s", "SIGKILL", c], check=False)
            deadline = time.monotonic() + STOP_WAIT
            while time.monotonic() < deadline:
                rows = [line.split() for line in self.ctl(["task", "ls"], check=False).splitlines()[1:]]
                if all(r[2:3] == ["STOPPED"] for r in rows if r and r[0] in tasks):
                    break
                time.sleep(0.1)
            self.ctl(["task", "rm", "-f"] + tasks, check=False)
        have = set(self.ctl(["container", "ls", "-q"], check=False).split())
        conts = [c for c in ids if c in have]
        if conts:
            self.ctl(["container", "rm"] + conts, check=False)
        bench.reap_orphans()

    # ---- cleanup ----

    def cleanup(self):
        """Undo everything (see the module docstring); return leftovers found."""
        left = []
        for rt in self.rts:
            if rt.inflight is not None:
                rt.finish_inflight()
        if self.proc and not bench.wait_exit(self.pidfd, 0):
            try:
                conts = self.ctl(["container", "ls", "-q"], check=False, timeout=20).split()
                if conts:
                    left.append(f"containers left in namespace {self.ns}: {conts}")
                    self.remove(conts)
                if self.ctl(["task", "ls", "-q"], check=False, timeout=20).split():
                    left.append(f"tasks still in namespace {self.ns} after cleanup")
            except bench.BenchError as e:
                left.append(f"ctr cleanup: {e}")
        if self.proc:
            try:
                if not bench.wait_exit(self.pidfd, 0):
                    signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
                    if not bench.wait_exit(self.pidfd, STOP_WAIT):
                        left.append("containerd did not stop on SIGTERM")
                        signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                left.append(f"containerd {self.proc.pid} did not exit")
            os.close(self.pidfd)
            self.pidfd = None
        # Shims (their command line names our socket) and anything else of ours.
        mine = pids_mentioning(self.t)
        if mine:
            left.append("processes left: " + "; ".join(f"{p} {cmdline(p)[:120]}" for p in mine))
            kill_pids(mine, check=lambda pid: self.t in cmdline(pid))
        # Container processes whose shim was killed (still in our cgroups).
        procs = []
        for d in self.ns_cgroups():
            if d in self.cg_before:
                continue
            for dirpath, _, files in os.walk(d):
                if "cgroup.procs" in files:
                    try:
                        with open(os.path.join(dirpath, "cgroup.procs")) as f:
                            procs += [int(x) for x in f.read().split()]
                    except (OSError, ValueError):
                        pass
        procs = sorted(set(procs))
        if procs:
            left.append(f"container processes left in cgroups of {self.ns}: {procs}")
            kill_pids(procs)
        # Sockets of shims that did not get to remove them.
        taskdir = os.path.join(self.t, "state", "io.containerd.runtime.v2.task", self.ns)
        if os.path.isdir(taskdir):
            for cid in os.listdir(taskdir):
                try:
                    with open(os.path.join(taskdir, cid, "address")) as f:
                        addr = f.read().strip()
                except OSError:
                    continue
                path = addr.removeprefix("unix://")
                if path.startswith("/run/containerd/s/") and os.path.exists(path):
                    left.append(f"shim socket left: {path}")
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        # Mounts under the temp dir (snapshots, rootfs), innermost first.
        for attempt in range(2):
            with open("/proc/self/mountinfo") as f:
                mnts = [line.split()[4] for line in f]
            mnts = sorted({m for m in mnts if m == self.t or m.startswith(self.t + "/")}, reverse=True)
            if not mnts:
                break
            if attempt == 0:
                left += [f"mount left: {m}" for m in mnts]
            for m in mnts:
                if subprocess.run(["umount", m], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", m], capture_output=True)
        # Cgroups created for the namespace, depth-first.
        for d in self.ns_cgroups():
            if d in self.cg_before:
                continue
            for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    left.append(f"cgroup left: {dirpath} (rmdir: {e.strerror})")
        for d in (f"/run/containerd/runc/{self.ns}", f"/run/containerd/husk/{self.ns}"):
            if os.path.isdir(d):
                if os.listdir(d):
                    left.append(f"runtime state left: {d}: {os.listdir(d)}")
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.t, ignore_errors=True)
        if os.path.exists(self.t):
            left.append(f"could not remove {self.t}")
        bench.reap_orphans()
        return left


FIGURE_SETS = ("run", "rss", "pod")  # ctr_run; shim_rss_1/5; shim_rss_pod and its parts


def run(husk, shim, settle_ms, rounds, warmup, rss_rounds, leftovers, progress=False, only=FIGURE_SETS,
        pod_execs=POD_EXECS):
    """Measure; return ({runtime name: {figure: [samples]}}, info for the JSON).

    `only`: which of FIGURE_SETS to measure (shim_binary always). Cleanup
    problems are appended to `leftovers`, also when this raises."""
    cd = Containerd(husk, shim, settle_ms)
    samples = {n: {} for n, _ in RUNTIMES}
    rss_rounds = min(rss_rounds, rounds)
    info = {"namespace": cd.ns, "figures": list(only), "rounds": rounds, "warmup": warmup, "rss_rounds": rss_rounds,
            "group_annotation": GROUP_ANNOTATION, "shims_per_group": {n: [] for n, _ in RUNTIMES},
            "pod": {"containers": POD_N, "execs_each": pod_execs, "rounds": {n: [] for n, _ in RUNTIMES}}}
    try:
        cd.start()
        info["versions"] = v = cd.versions()
        print(f"containerd: {v['containerd']}, namespace {cd.ns}; husk = {v['husk_shim']} (io.containerd.husk.v2), "
              f"runc = {v['runc_shim']} (io.containerd.runc.v2) + runc"
              + (f"; ctr_run {rounds} rounds (+{warmup} warm-up)" if "run" in only else "")
              + (f"; shim RSS in {rss_rounds} rounds" if {"rss", "pod"} & set(only) else "")
              + (f", {RSS_N} containers grouped by {GROUP_ANNOTATION}" if "rss" in only else "")
              + (f", a pod of {POD_N} after {pod_execs} execs each, ps, pause, resume, metrics" if "pod" in only else ""))
        t0 = time.monotonic()
        for rnd in range(warmup + rounds):
            warm = rnd < warmup
            if "run" in only:
                for rt in cd.rts:
                    got = cd.fig_ctr_run(rt)
                    if not warm:
                        for k, v in got.items():
                            samples[rt.name].setdefault(k, []).append(v)
            if not warm and rnd - warmup < rss_rounds:
                for rt in cd.rts:
                    if "rss" in only:
                        got, shims = cd.fig_shim_rss(rt)
                        for k, v in got.items():
                            samples[rt.name].setdefault(k, []).append(v)
                        info["shims_per_group"][rt.name].append(shims)
                    if "pod" in only:
                        got, pod = cd.fig_shim_rss_pod(rt, pod_execs)
                        for k, v in got.items():
                            samples[rt.name].setdefault(k, []).append(v)
                        info["pod"]["rounds"][rt.name].append(pod)
            if progress:
                tag, i, n = ("ctr warm-up", rnd + 1, warmup) if warm else ("ctr round", rnd - warmup + 1, rounds)
                print(f"\r{tag} {i}/{n} ({time.monotonic() - t0:.0f} s)   ", end="", file=sys.stderr, flush=True)
        for (name, _), path in zip(RUNTIMES, (shim, shutil.which("containerd-shim-runc-v2"))):
            samples[name]["shim_binary"] = [os.path.getsize(os.path.realpath(path)) / 2**20]
        for name, groups in info["shims_per_group"].items():
            if any(g.get(f"shims_{RSS_N}") != 1 for g in groups):
                print(f"note: {name}: {RSS_N} grouped containers were served by more than one shim: {groups}",
                      file=sys.stderr)
        for name, pods in info["pod"]["rounds"].items():
            if any(p.get("shims_pod") != 1 for p in pods):
                print(f"note: {name}: the pod's {POD_N} containers were served by more than one shim "
                      f"(shim_rss_pod is their sum): {pods}", file=sys.stderr)
    finally:
        with bench.signals_ignored():
            leftovers += cd.cleanup()
    return samples, info


def main():
    """The containerd figures alone (bench.py runs them after its own)."""
    import argparse
    import datetime

    ap = argparse.ArgumentParser(description="containerd figures: husk's shim vs the runc shim + runc",
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--husk", default=os.path.join(bench.BIN, "husk"))
    ap.add_argument("--shim", default=os.path.join(os.path.dirname(bench.BIN), "release-shim", "containerd-shim-husk-v2"))
    ap.add_argument("--only", default=",".join(FIGURE_SETS),
                    help="comma-separated figure sets: run (ctr_run), rss (shim_rss_1/5), pod (shim_rss_pod); default all")
    ap.add_argument("--rounds", type=int, default=10, help="measured ctr_run rounds (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded ctr_run rounds first (default 2)")
    ap.add_argument("--rss-rounds", type=int, default=3, help="rounds with the shim RSS figures (default 3)")
    ap.add_argument("--pod-execs", type=int, default=POD_EXECS, help=f"execs into each pod container (default {POD_EXECS})")
    ap.add_argument("--settle", type=float, default=100, help="quiet ms before each measurement (default 100)")
    ap.add_argument("--json", default=os.path.join(HERE, "last-containerd.json"), help="result file")
    a = ap.parse_args()
    only = tuple(x for x in a.only.split(",") if x)
    if not only or set(only) - set(FIGURE_SETS):
        ap.error(f"--only takes a comma-separated list of {', '.join(FIGURE_SETS)}")
    if a.rounds < 1 or a.warmup < 0 or a.rss_rounds < 0 or a.pod_execs < 0:
        ap.error("--rounds must be >= 1, --warmup, --rss-rounds and --pod-execs >= 0")
    rounds, warmup = a.rounds, a.warmup
    if "run" not in only:
        if a.rss_rounds < 1:
            ap.error("--rss-rounds must be >= 1 without ctr_run")
        rounds, warmup = a.rss_rounds, 0
    sys.stdout.reconfigure(line_buffering=True)
    if os.geteuid() != 0:
        sys.exit("containerd_bench.py needs root (it runs containerd)")
    husk, shim = bench.resolve(a.husk), bench.resolve(a.shim)
    why = missing(shim or a.shim, husk or a.husk)
    if why:
        sys.exit(f"containerd figures: {why}")
    bench.take_over_signals_and_orphans()
    leftovers, ok = [], False
    try:
        samples, info = run(husk, shim, a.settle, rounds, warmup, a.rss_rounds, leftovers, sys.stderr.isatty(),
                            only=only, pod_execs=a.pod_execs)
        if sys.stderr.isatty():
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
        names = [n for n, _ in RUNTIMES]
        results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "kernel": os.uname().release, "containerd": info, "runtimes": {}, "ratios": {}, "targets": {}}
        for n in names:
            results["runtimes"][n] = {"figures": {k: bench.summarize_kept(v) for k, v in samples[n].items() if v}}
        hf, rf = results["runtimes"]["husk"]["figures"], results["runtimes"]["runc"]["figures"]
        results["ratios"] = bench.median_ratios(hf, rf)
        results["targets"] = bench.evaluate_targets(results, names)
        print()
        print(bench.table(results, names))
        print()
        bench.print_targets(results["targets"])
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"results: {a.json}")
        ok = True
    except bench.BenchError as e:
        print(f"\ncontainerd bench failed: {e}", file=sys.stderr)
    except (KeyboardInterrupt, bench.Terminated) as e:
        print(f"\ninterrupted ({type(e).__name__}) after: {bench.LAST_CALL}; cleaning up", file=sys.stderr)
    finally:
        for msg in leftovers:
            print(f"LEFTOVER: {msg}", file=sys.stderr)
    sys.exit(0 if ok and not leftovers else 1)


if __name__ == "__main__":
    main()
