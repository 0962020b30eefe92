#!/usr/bin/env python3
"""Build a busybox OCI bundle (python3 stdlib only).

Used by `make demo` and by bench.py:

    python3 integration/bench/bundle.py --runtime target/x86_64-unknown-linux-musl/release/husk \\
        --hostname husk-demo --cgroups-path /husk-demo-1234 demo -- sh -c 'id'

The rootfs is /bin/busybox (Debian package busybox-static) plus one symlink
per applet of `/bin/busybox --list` in /bin, the directories proc sys dev
tmp etc root, and a minimal /etc/passwd and /etc/group. config.json is the
runtime's own `spec` output, edited: terminal=false, the given args, hostname
and linux.cgroupsPath.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUSYBOX = "/bin/busybox"
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def make_rootfs(rootfs):
    """Create a busybox root file system at `rootfs` (which must not exist)."""
    if not os.path.exists(BUSYBOX):
        sys.exit(f"{BUSYBOX} is missing: apt-get install busybox-static")
    out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
    applets = [a.strip() for a in out.splitlines()]
    applets = [a for a in applets if a and a != "busybox" and "/" not in a]
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for a in applets:
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write(GROUP)


def base_config(runtime):
    """The default config.json of `<runtime> spec`, as a dict."""
    with tempfile.TemporaryDirectory(prefix="husk-spec-") as d:
        subprocess.run([runtime, "spec", "--bundle", d], check=True)
        with open(os.path.join(d, "config.json")) as f:
            return json.load(f)


def edit_config(cfg, args, hostname=None, cgroups_path=None, root_path=None):
    """A copy of `cfg` with terminal=false, `args` and the optional fields set."""
    cfg = json.loads(json.dumps(cfg))
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    if hostname is not None:
        cfg["hostname"] = hostname
    if cgroups_path is not None:
        cfg.setdefault("linux", {})["cgroupsPath"] = cgroups_path
    if root_path is not None:
        cfg["root"]["path"] = root_path
    return cfg


def write_config(bundle, cfg):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runtime", required=True, help="runtime binary whose `spec` output is the base config")
    p.add_argument("--hostname")
    p.add_argument("--cgroups-path")
    p.add_argument("bundle", help="bundle directory to create (removed first if it exists)")
    p.add_argument("args", nargs="+", help="process.args (put them after --)")
    a = p.parse_args()
    if os.path.lexists(a.bundle):
        shutil.rmtree(a.bundle)
    os.makedirs(a.bundle)
    make_rootfs(os.path.join(a.bundle, "rootfs"))
    cfg = edit_config(base_config(a.runtime), a.args, a.hostname, a.cgroups_path)
    write_config(a.bundle, cfg)


if __name__ == "__main__":
    main()
