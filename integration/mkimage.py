#!/usr/bin/env python3
"""Build a tiny busybox image archive without a registry.

The archive is at once an OCI image layout (index.json, oci-layout,
blobs/sha256/...) for `ctr image import` and podman, and a `docker save`
archive (manifest.json) for `docker load`.

usage: mkimage.py OUT.tar NAME:TAG [BUSYBOX]
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def layer_tar(busybox):
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add_dir(name, mode=0o755):
            i = tarfile.TarInfo(name)
            i.type = tarfile.DIRTYPE
            i.mode = mode
            t.addfile(i)
        for d in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "usr", "usr/bin"]:
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        with open(busybox, "rb") as f:
            data = f.read()
        i = tarfile.TarInfo("bin/busybox")
        i.size = len(data)
        i.mode = 0o755
        t.addfile(i, io.BytesIO(data))
        for a in applets:
            if a == "busybox":
                continue
            i = tarfile.TarInfo("bin/" + a)
            i.type = tarfile.SYMTYPE
            i.linkname = "busybox"
            t.addfile(i)
        for name, text in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ]:
            b = text.encode()
            i = tarfile.TarInfo(name)
            i.size = len(b)
            i.mode = 0o644
            t.addfile(i, io.BytesIO(b))
    return buf.getvalue()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, ref = sys.argv[1], sys.argv[2]
    busybox = sys.argv[3] if len(sys.argv) > 3 else "/bin/busybox"
    name, _, tag = ref.rpartition(":")
    if not name:
        name, tag = ref, "latest"
    layer = layer_tar(busybox)
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]},
        "history": [{"created_by": "husk integration/mkimage.py"}],
    }, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + sha(layer), "size": len(layer)}],
    }, separators=(",", ":")).encode()
    full = name if "/" in name else "docker.io/library/" + name
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + sha(manifest),
            "size": len(manifest),
            "annotations": {"io.containerd.image.name": f"{full}:{tag}", "org.opencontainers.image.ref.name": tag},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    }).encode()
    docker_manifest = json.dumps([{
        "Config": "blobs/sha256/" + sha(config),
        "RepoTags": [f"{name}:{tag}"],
        "Layers": ["blobs/sha256/" + sha(layer)],
    }]).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data, mode=0o644):
            i = tarfile.TarInfo(path)
            i.size = len(data)
            i.mode = mode
            t.addfile(i, io.BytesIO(data))
        for d in ["blobs", "blobs/sha256"]:
            i = tarfile.TarInfo(d)
            i.type = tarfile.DIRTYPE
            i.mode = 0o755
            t.addfile(i)
        for blob in (layer, config, manifest):
            add("blobs/sha256/" + sha(blob), blob)
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        add("manifest.json", docker_manifest)
    print(f"{out}: {full}:{tag}")


if __name__ == "__main__":
    main()
