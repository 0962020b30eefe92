//! runtime-spec 1.2 id-mapped mounts: `mounts[].uidMappings`/`gidMappings`
//! and the `idmap`/`ridmap` options. runc 1.1.5 predates them: these tests
//! are ignored for it and run with --include-ignored against husk.
//!
//! Every container here has a user namespace mapping 0 to host 100000
//! (65536 ids): a host id outside that range shows as 65534 inside, unless
//! a mount's own mapping says otherwise.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use spec_tests::*;

const OLD_RUNC: &str = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)";

fn owner(p: &Path) -> String {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    format!("{}:{}", md.uid(), md.gid())
}

fn chown(p: &Path, id: u32) {
    std::os::unix::fs::lchown(p, Some(id), Some(id)).unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

/// A container with a user namespace (0 → 100000) running `script`, with
/// `dirs` made in its private rootfs: the namespace's root could not make
/// mount points in a rootfs the host's root owns.
fn userns_container(script: &str, dirs: &[&str]) -> Container {
    let mut c = Container::private_sh(script);
    for d in dirs {
        std::fs::create_dir_all(c.rootfs().join(d)).unwrap();
    }
    c.spec.user_namespace(100000, 100000);
    c
}

fn map(container: u32, host: u32, size: u32) -> serde_json::Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

fn idmapped(src: &Path, dest: &str, opts: &[&str], maps: Option<serde_json::Value>) -> serde_json::Value {
    let mut m = json!({"destination": dest, "type": "bind", "source": src.to_str().unwrap(), "options": opts});
    if let Some(maps) = maps {
        m["uidMappings"] = maps.clone();
        m["gidMappings"] = maps;
    }
    m
}

/// A mount's own mapping: on-disk 1000 is the namespace's 100000, the
/// container's root; what that root creates lands on disk as 1000. A
/// read-only file mount with the same mapping keeps its `ro`.
#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn mount_mappings_map_owners_both_ways() {
    let mut c = userns_container(
        "stat -c %u:%g /mnt/file; touch /mnt/new && stat -c %u:%g /mnt/new; \
         stat -c %u:%g /idfile; (echo x > /idfile) 2>/dev/null && echo written || echo denied",
        &["mnt"],
    );
    std::fs::write(c.rootfs().join("idfile"), "").unwrap();
    let src = c.scratch("src");
    std::fs::write(src.join("file"), "").unwrap();
    chown(&src, 1000);
    chown(&src.join("file"), 1000);
    let ro_file = c.scratch("single").join("f");
    std::fs::write(&ro_file, "").unwrap();
    chown(&ro_file, 1000);
    c.spec.push("/mounts", idmapped(&src, "/mnt", &["bind"], Some(map(1000, 100000, 1))));
    c.spec.push("/mounts", idmapped(&ro_file, "/idfile", &["bind", "ro"], Some(map(1000, 100000, 1))));
    let o = c.run();
    assert_eq!(o.ok().lines().collect::<Vec<_>>(), ["0:0", "0:0", "0:0", "denied"], "{OLD_RUNC}: {o}");
    assert_eq!(owner(&src.join("new")), "1000:1000", "a file created through the mount is stored with the inverse mapping");
    assert_eq!(std::fs::read_to_string(&ro_file).unwrap(), "", "the ro file mount was written");
}

/// With `rbind`, the mounts below the source come along: `ridmap` maps
/// them too, `idmap` only the top (runc's rule), so a file on the submount
/// keeps its host owner, which the container sees as 65534.
#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn ridmap_maps_submounts_and_idmap_only_the_top() {
    for (opt, sub_owner) in [("ridmap", "0:0"), ("idmap", "65534:65534")] {
        let mut c = userns_container("stat -c %u:%g /mnt/file /mnt/sub/file", &["mnt"]);
        let src = c.scratch("tree");
        std::fs::write(src.join("file"), "").unwrap();
        chown(&src.join("file"), 1000);
        std::fs::create_dir(src.join("sub")).unwrap();
        // Declared after `c`: unmounted first, also when an assert fails.
        let sub = TmpfsMount::new(&src.join("sub"), "size=1m");
        std::fs::write(sub.0.join("file"), "").unwrap();
        chown(&sub.0.join("file"), 1000);
        c.spec.push("/mounts", idmapped(&src, "/mnt", &["rbind", opt], Some(map(1000, 100000, 1))));
        let o = c.run();
        assert_eq!(o.ok().lines().collect::<Vec<_>>(), ["0:0", sub_owner], "{OLD_RUNC}: rbind,{opt}: {o}");
    }
}

/// `idmap` without mappings of its own takes the container's: on-disk 0
/// is the container's root. Without it, the host's root is nobody inside.
#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn idmap_without_mappings_uses_the_containers_user_namespace() {
    for (opts, want) in [(&["rbind"][..], "65534:65534"), (&["rbind", "idmap"][..], "0:0")] {
        let mut c = userns_container("stat -c %u:%g /mnt/file", &["mnt"]);
        let src = c.scratch("src");
        std::fs::write(src.join("file"), "").unwrap();
        assert_eq!(owner(&src.join("file")), "0:0");
        c.spec.push("/mounts", idmapped(&src, "/mnt", opts, None));
        let o = c.run();
        assert_eq!(o.ok().trim(), want, "{OLD_RUNC}: options {opts:?}: {o}");
    }
}

/// Names and contents of every file of the bundle, for "left unchanged".
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let name = p.strip_prefix(dir).unwrap().display().to_string();
            if md.is_dir() {
                stack.push(p);
                v.push((name, Vec::new()));
            } else if md.is_file() {
                v.push((name, std::fs::read(&p).unwrap()));
            } else {
                v.push((name, b"(other)".to_vec()));
            }
        }
    }
    v.sort();
    v
}

/// `create` fails with a message naming the mount and `words`, and leaves
/// no container, no state, no cgroup, and the bundle as it was.
#[track_caller]
fn refused(c: &Container, dest: &str, words: &str) {
    c.write_config();
    let before = snapshot(&c.bundle);
    let o = c.create();
    o.assert_failed_with_message();
    assert!(o.stderr.contains(dest) && o.stderr.contains(words), "{OLD_RUNC}: message should name {dest} and say {words:?}: {o}");
    assert!(c.state().is_none() && !c.listed(), "a refused create left a container");
    let left: Vec<_> = std::fs::read_dir(&c.root).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "state left behind: {left:?}");
    assert!(c.cgroup_dirs().is_empty(), "cgroups left behind: {:?}", c.cgroup_dirs());
    assert_eq!(snapshot(&c.bundle), before, "the bundle changed");
}

#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn uid_mappings_without_gid_mappings_are_refused() {
    let mut c = userns_container("true", &["mnt"]);
    let src = c.scratch("src");
    let mut m = idmapped(&src, "/mnt", &["bind"], None);
    m["uidMappings"] = map(1000, 100000, 1);
    c.spec.push("/mounts", m);
    refused(&c, "/mnt", "gidMappings");
}

#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn idmap_on_a_tmpfs_is_refused() {
    let mut c = userns_container("true", &["mnt"]);
    c.spec.mount("/mnt", "tmpfs", "tmpfs", &["idmap"]);
    refused(&c, "/mnt", "only supported for bind mounts");
}

#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn idmap_without_mappings_or_user_namespace_is_refused() {
    let mut c = Container::private_sh("true");
    let src = c.scratch("src");
    c.spec.push("/mounts", idmapped(&src, "/mnt", &["rbind", "idmap"], None));
    refused(&c, "/mnt", "user namespace");
}

/// ramfs cannot be id-mapped: refused by the kernel once the container
/// process exists, which is undone, and the message names the filesystem.
#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn idmap_on_a_filesystem_without_support_names_it() {
    let mut c = userns_container("true", &["mnt"]);
    let dir = c.scratch("ram");
    let o = host("mount", &["-t", "ramfs", "husk-st-ramfs", dir.to_str().unwrap()]);
    assert!(o.success(), "{o}");
    let ram = TmpfsMount(dir.clone());
    c.spec.push("/mounts", idmapped(&ram.0, "/mnt", &["rbind"], Some(map(1000, 100000, 1))));
    refused(&c, "/mnt", "ramfs");
}

#[test]
#[ignore = "runc 1.1.5's experimental `features` lacks mountExtensions"]
fn features_report_idmap_enabled() {
    let c = Container::new(&["true"]);
    let out = c.rt(&["features"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], json!(true), "{out}");
    let opts = v["mountOptions"].as_array().unwrap();
    assert!(opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")), "{out}");
}

/// Detaches whatever a runtime left mounted under a rootfs.
struct Sweep(std::path::PathBuf);

impl Drop for Sweep {
    fn drop(&mut self) {
        umount_under(&self.0);
    }
}

/// Without a mount namespace (and without a user namespace: the mount's
/// mapping alone decides) the id-mapped tree is made in the runtime's own
/// namespace and moved under the rootfs there; it goes with the rest at
/// delete.
#[test]
#[ignore = "runc 1.1.5 predates id-mapped mounts (runtime-spec 1.2)"]
fn idmapped_mount_without_a_mount_namespace_goes_at_delete() {
    let mut c = Container::private_sh("stat -c %u:%g /mnt/file");
    c.spec.remove_namespace("mount");
    c.spec.remove("/linux/maskedPaths").remove("/linux/readonlyPaths");
    let _sweep = Sweep(c.rootfs());
    let src = c.scratch("src");
    std::fs::write(src.join("file"), "").unwrap();
    chown(&src.join("file"), 1000);
    c.spec.push("/mounts", idmapped(&src, "/mnt", &["rbind"], Some(map(1000, 0, 1))));
    let before = host_mounts_under(&c.rootfs());
    let o = c.run();
    assert_eq!(o.ok().trim(), "0:0", "{OLD_RUNC}: {o}");
    assert_eq!(host_mounts_under(&c.rootfs()), before, "mounts left on the host");
}
