//! config.md hostname/domainname, config-linux.md namespaces (new, shared,
//! joined by path, user namespace mappings, cgroup namespace).

use spec_tests::*;
use std::time::Duration;

fn sh_out(script: &str, tweak: impl FnOnce(&mut Spec)) -> String {
    let mut c = Container::sh(script);
    tweak(&mut c.spec);
    c.run().ok().to_string()
}

fn inside_ns(kind: &str, tweak: impl FnOnce(&mut Spec)) -> String {
    sh_out(&format!("readlink /proc/self/ns/{kind}"), tweak).trim().to_string()
}

/// Inode number from "kind:[1234]".
fn ns_inode(link: &str) -> u64 {
    link.rsplit('[').next().unwrap().trim_end_matches(']').parse().unwrap_or_else(|_| panic!("bad ns link {link}"))
}

// ---------- hostname / domainname ----------

#[test]
fn hostname_is_set() {
    let o = sh_out("hostname", |s| {
        s.set("/hostname", json!("my-container-host"));
    });
    assert_eq!(o.trim(), "my-container-host");
}

#[test]
fn hostname_visible_in_proc() {
    let o = sh_out("cat /proc/sys/kernel/hostname", |s| {
        s.set("/hostname", json!("proc-host"));
    });
    assert_eq!(o.trim(), "proc-host");
}

#[test]
fn hostname_does_not_change_host() {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    sh_out("hostname", |s| {
        s.set("/hostname", json!("not-the-host-name"));
    });
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before);
}

#[test]
#[ignore = "runc 1.1.5 does not apply config.json `domainname` (shows \"(none)\")"]
fn domainname_is_set() {
    let o = sh_out("cat /proc/sys/kernel/domainname", |s| {
        s.set("/domainname", json!("example.test"));
    });
    assert_eq!(o.trim(), "example.test");
}

#[test]
fn domainname_does_not_change_host() {
    let before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    sh_out("true", |s| {
        s.set("/domainname", json!("other.test"));
    });
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(), before);
}

// ---------- new namespaces differ from the host ----------

macro_rules! new_ns_tests {
    ($($name:ident: $kind:expr,)*) => {$(
        #[test]
        fn $name() {
            let inside = inside_ns($kind, |_| {});
            assert!(inside.starts_with(concat!($kind, ":[")), "{inside}");
            assert_ne!(inside, host_ns($kind), "namespace {} was not unshared", $kind);
        }
    )*};
}

new_ns_tests! {
    new_pid_namespace_differs: "pid",
    new_net_namespace_differs: "net",
    new_ipc_namespace_differs: "ipc",
    new_uts_namespace_differs: "uts",
    new_mnt_namespace_differs: "mnt",
}

#[test]
fn new_cgroup_namespace_differs() {
    let inside = inside_ns("cgroup", |s| {
        s.namespace("cgroup", None);
    });
    assert_ne!(inside, host_ns("cgroup"));
}

// ---------- namespaces not listed are shared ----------

macro_rules! shared_ns_tests {
    ($($name:ident: $kind:expr, $cfg:expr,)*) => {$(
        #[test]
        fn $name() {
            let inside = inside_ns($kind, |s| {
                s.remove_namespace($cfg);
                if $cfg == "uts" { s.remove("/hostname"); }
            });
            assert_eq!(inside, host_ns($kind), "namespace {} should be the host's", $kind);
        }
    )*};
}

shared_ns_tests! {
    unlisted_pid_namespace_is_shared: "pid", "pid",
    unlisted_net_namespace_is_shared: "net", "network",
    unlisted_ipc_namespace_is_shared: "ipc", "ipc",
    unlisted_uts_namespace_is_shared: "uts", "uts",
    unlisted_cgroup_namespace_is_shared: "cgroup", "cgroup",
    unlisted_user_namespace_is_shared: "user", "user",
}

// ---------- pid namespace ----------

#[test]
fn pid_ns_ps_shows_only_container_processes() {
    let o = sh_out("ps -o pid,comm", |_| {});
    let pids: Vec<u32> = o.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert!(pids.contains(&1), "{o}");
    assert!(pids.len() <= 2 && pids.iter().all(|p| *p < 10), "unexpected processes:\n{o}");
}

#[test]
fn pid_ns_proc_shows_only_container_processes() {
    let o = sh_out("ls /proc", |_| {});
    let pids: Vec<u32> = o.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(pids.contains(&1), "{o}");
    assert!(pids.len() <= 3 && pids.iter().all(|p| *p < 20), "host processes visible: {pids:?}");
}

// ---------- network namespace ----------

#[test]
fn net_ns_only_loopback() {
    let o = sh_out("cat /proc/net/dev", |_| {});
    let ifaces: Vec<&str> = o.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(ifaces, ["lo"], "{o}");
}

// ---------- joining namespaces by path ----------

/// A detached first container whose namespaces others can join.
fn donor(hostname: &str) -> Container {
    let mut c = Container::new(&["sleep", "60"]);
    c.spec.set("/hostname", json!(hostname));
    let o = c.run_with(&["--detach"]);
    assert!(o.success(), "{o}");
    c.assert_status("running");
    c
}

fn ns_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap().to_string_lossy().into_owned()
}

#[test]
fn join_uts_namespace_by_path() {
    let d = donor("donor-host");
    let pid = d.pid();
    let o = sh_out("hostname; readlink /proc/self/ns/uts", |s| {
        s.namespace("uts", Some(&format!("/proc/{pid}/ns/uts")));
        s.remove("/hostname");
    });
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "donor-host");
    assert_eq!(lines[1], ns_of(pid, "uts"));
}

#[test]
fn join_ipc_namespace_by_path() {
    let d = donor("donor-ipc");
    let pid = d.pid();
    let inside = inside_ns("ipc", |s| {
        s.namespace("ipc", Some(&format!("/proc/{pid}/ns/ipc")));
    });
    assert_eq!(inside, ns_of(pid, "ipc"));
}

#[test]
fn join_net_namespace_by_path() {
    let d = donor("donor-net");
    let pid = d.pid();
    let inside = inside_ns("net", |s| {
        s.namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    });
    assert_eq!(inside, ns_of(pid, "net"));
}

#[test]
fn join_pid_namespace_by_path() {
    let d = donor("donor-pid");
    let pid = d.pid();
    let o = sh_out("readlink /proc/self/ns/pid; ps -o comm | grep -c sleep", |s| {
        s.namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    });
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], ns_of(pid, "pid"));
    assert_eq!(lines[1], "1", "donor's sleep not visible:\n{o}");
}

/// A network namespace pinned by a bind mount on the host (unshare --net=FILE).
struct PinnedNs {
    file: std::path::PathBuf,
}

impl PinnedNs {
    fn new(kind: &str, dir: &std::path::Path) -> PinnedNs {
        let file = dir.join(format!("ns-{kind}"));
        std::fs::write(&file, "").unwrap();
        let o = host("unshare", &[&format!("--{kind}={}", file.display()), "true"]);
        assert!(o.success(), "unshare failed: {o}");
        PinnedNs { file }
    }
}

impl Drop for PinnedNs {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.file.to_str().unwrap()).unwrap();
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn join_pinned_net_namespace_file() {
    let mut c = Container::sh("readlink /proc/self/ns/net");
    let pin = PinnedNs::new("net", &c.scratch("pins"));
    let ino = std::fs::metadata(&pin.file).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    c.spec.namespace("network", Some(pin.file.to_str().unwrap()));
    let o = c.run();
    assert_eq!(ns_inode(o.ok().trim()), ino);
}

#[test]
fn join_pinned_uts_namespace_file() {
    let mut c = Container::sh("readlink /proc/self/ns/uts");
    let pin = PinnedNs::new("uts", &c.scratch("pins"));
    let ino = std::fs::metadata(&pin.file).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    c.spec.namespace("uts", Some(pin.file.to_str().unwrap()));
    c.spec.remove("/hostname");
    let o = c.run();
    assert_eq!(ns_inode(o.ok().trim()), ino);
}

#[test]
fn join_nonexistent_namespace_path_fails() {
    let mut c = Container::new(&["true"]);
    c.spec.namespace("network", Some("/nonexistent/ns/net"));
    c.run().assert_failed_with_message();
    assert!(c.state().is_none());
}

#[test]
fn duplicate_namespace_type_is_rejected() {
    // config-linux.md: duplicated namespace types MUST generate an error.
    let mut c = Container::new(&["true"]);
    c.spec.push("/linux/namespaces", json!({"type": "uts"}));
    c.run().assert_failed_with_message();
    assert!(c.state().is_none());
}

#[test]
fn unknown_namespace_type_is_rejected() {
    let mut c = Container::new(&["true"]);
    c.spec.push("/linux/namespaces", json!({"type": "bogus"}));
    c.run().assert_failed_with_message();
}

// ---------- user namespace ----------

fn userns(s: &mut Spec) {
    s.user_namespace(100000, 200000);
}

#[test]
fn userns_uid_map() {
    let o = sh_out("cat /proc/self/uid_map", userns);
    let f: Vec<&str> = o.split_whitespace().collect();
    assert_eq!(f, ["0", "100000", "65536"], "{o}");
}

#[test]
fn userns_gid_map() {
    let o = sh_out("cat /proc/self/gid_map", userns);
    let f: Vec<&str> = o.split_whitespace().collect();
    assert_eq!(f, ["0", "200000", "65536"], "{o}");
}

#[test]
fn userns_root_inside() {
    assert_eq!(sh_out("id -u; id -g", userns).trim(), "0\n0");
}

#[test]
fn userns_differs_from_host() {
    let o = sh_out("readlink /proc/self/ns/user", userns);
    assert_ne!(o.trim(), host_ns("user"));
}

#[test]
fn userns_process_uid_on_host_is_mapped() {
    let mut c = Container::new(&["sleep", "60"]);
    userns(&mut c.spec);
    assert!(c.run_with(&["--detach"]).success());
    c.assert_status("running");
    let st = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    assert_eq!(status_field(&st, "Uid").unwrap().split_whitespace().next(), Some("100000"));
    assert_eq!(status_field(&st, "Gid").unwrap().split_whitespace().next(), Some("200000"));
}

#[test]
fn userns_non_root_user_inside() {
    let o = sh_out("id -u; cat /proc/self/uid_map", |s| {
        userns(s);
        s.user(1000, 1000);
    });
    assert_eq!(o.lines().next(), Some("1000"));
}

// ---------- joining namespaces together with a user namespace ----------

/// A running donor in its own user namespace (100000/200000) with a new
/// network namespace: a pod sandbox with user namespaces.
fn userns_donor() -> Container {
    let mut c = Container::new(&["sleep", "60"]);
    userns(&mut c.spec);
    c.spec.set("/hostname", json!("sandbox"));
    assert!(c.run_with(&["--detach"]).success());
    c.assert_status("running");
    c
}

/// The container setting up its own mounts and /proc, and its hostname,
/// shows the new namespaces belong to its user namespace.
const PROBE: &str = "id -u; hostname; for n in user net; do readlink /proc/self/ns/$n; done";

#[test]
fn join_user_and_net_namespaces_with_new_mount_pid_and_uts() {
    // The pod case: a second container joins the sandbox's user and network
    // namespaces and gets new ones for the rest, which must belong to the
    // joined user namespace (hostname, mounts and /proc work inside).
    let d = userns_donor();
    let pid = d.pid();
    let o = sh_out(PROBE, |s| {
        userns(s);
        s.namespace("user", Some(&format!("/proc/{pid}/ns/user")));
        s.namespace("network", Some(&format!("/proc/{pid}/ns/net")));
        s.set("/hostname", json!("app"));
    });
    let l: Vec<&str> = o.lines().map(str::trim).collect();
    assert!(l.len() >= 4, "{o}");
    assert_eq!(&l[..4], ["0", "app", ns_of(pid, "user").as_str(), ns_of(pid, "net").as_str()], "{o}");
}

#[test]
fn join_every_namespace_of_a_userns_container() {
    let d = userns_donor();
    let pid = d.pid();
    let o = sh_out("id -u; hostname; for n in user net mnt; do readlink /proc/self/ns/$n; done", |s| {
        userns(s);
        s.remove("/hostname");
        for (typ, link) in [("user", "user"), ("network", "net"), ("uts", "uts"), ("ipc", "ipc"), ("pid", "pid")] {
            s.namespace(typ, Some(&format!("/proc/{pid}/ns/{link}")));
        }
    });
    let l: Vec<&str> = o.lines().map(str::trim).collect();
    assert_eq!(l, ["0", "sandbox", &ns_of(pid, "user"), &ns_of(pid, "net"), l[4]], "{o}");
    assert_ne!(l[4], ns_of(pid, "mnt"), "the mount namespace was to be new");
}

#[test]
fn new_user_namespace_joining_a_host_owned_network_namespace() {
    // Joined before the new user namespace is made: from inside it the
    // host-owned namespace could not be entered any more.
    let d = donor("donor-hostns");
    let pid = d.pid();
    let o = sh_out(PROBE, |s| {
        userns(s);
        s.namespace("network", Some(&format!("/proc/{pid}/ns/net")));
        s.namespace("uts", Some(&format!("/proc/{pid}/ns/uts")));
        s.remove("/hostname");
        // sysfs cannot be mounted for a network namespace the container's
        // user namespace does not own: bound from the host, as in rootless
        // configs.
        let sys = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]});
        let i = s.get("/mounts").and_then(|m| m.as_array()).and_then(|m| m.iter().position(|m| m["destination"] == "/sys")).unwrap();
        s.set(&format!("/mounts/{i}"), sys);
    });
    let l: Vec<&str> = o.lines().map(str::trim).collect();
    assert!(l.len() >= 4, "{o}");
    assert_eq!(l[0], "0", "{o}");
    assert_eq!(l[1], "donor-hostns", "{o}");
    assert_ne!(l[2], host_ns("user"), "{o}");
    assert_eq!(l[3], ns_of(pid, "net"), "{o}");
}

// ---------- cgroup namespace / cgroupsPath ----------

#[test]
fn cgroup_ns_shows_root() {
    let o = sh_out("cat /proc/self/cgroup", |s| {
        s.namespace("cgroup", None);
    });
    assert!(!o.trim().is_empty());
    for l in o.lines() {
        assert!(l.ends_with(":/"), "cgroup path not / in cgroup namespace: {l}\n{o}");
    }
}

#[test]
fn cgroups_path_is_applied() {
    let mut c = Container::sh("cat /proc/self/cgroup");
    c.spec.remove_namespace("cgroup");
    let o = c.run();
    let text = o.ok();
    // Every hierarchy, v1 and v2 alike (a hybrid host has both).
    assert!(!text.trim().is_empty());
    for l in text.lines() {
        assert!(l.ends_with(&format!(":{}", c.cgroups_path)), "cgroupsPath {} not in {l:?} of\n{text}", c.cgroups_path);
    }
}

#[test]
fn cgroups_path_exists_on_host_while_running() {
    let c = Container::new(&["sleep", "60"]);
    assert!(c.run_with(&["--detach"]).success());
    c.assert_status("running");
    let pid = c.pid().to_string();
    let dirs = c.cgroup_dirs();
    assert!(!dirs.is_empty(), "no cgroup dir for {}", c.cgroups_path);
    let found = dirs.iter().any(|d| {
        std::fs::read_to_string(d.join("cgroup.procs")).map(|s| s.lines().any(|l| l == pid)).unwrap_or(false)
    });
    assert!(found, "pid {pid} not in any cgroup.procs of {dirs:?}");
}

#[test]
fn cgroup_ns_mount_ns_isolated_after_exit() {
    // The container's mount namespace must not leak mounts to the host.
    let c = Container::sh("true");
    c.run().ok();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(c.dir.to_str().unwrap()), "container mounts leaked to the host:\n{mi}");
}

#[test]
fn detached_container_keeps_namespaces_distinct() {
    let d = donor("distinct");
    let pid = d.pid();
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(ns_of(pid, kind), host_ns(kind), "{kind}");
    }
    let _ = Duration::from_secs(0);
}

// ---------- no mount namespace: the runtime's is inherited ----------

/// A container without a mount namespace. No masked or read-only paths:
/// runc 1.1.5 refuses those without one ("unable to restrict sys entries
/// without a private MNT namespace"); husk's own test is below.
fn without_mount_ns(script: &str) -> (Container, Sweep) {
    let mut c = Container::private_sh(script);
    c.spec.remove_namespace("mount");
    c.spec.remove("/linux/maskedPaths").remove("/linux/readonlyPaths");
    std::fs::write(c.rootfs().join("marker"), "in-the-rootfs\n").unwrap();
    let sweep = Sweep(c.rootfs());
    (c, sweep)
}

/// Detaches whatever a runtime left mounted under a rootfs (runc does).
struct Sweep(std::path::PathBuf);

impl Drop for Sweep {
    fn drop(&mut self) {
        umount_under(&self.0);
    }
}

/// config-linux.md: "If a namespace type is not specified in the
/// namespaces array, the container MUST inherit the runtime namespace of
/// that type." The process still runs in its own root.
#[test]
fn no_mount_namespace_inherits_the_runtimes() {
    let (c, _sweep) = without_mount_ns("readlink /proc/self/ns/mnt; cat /marker; test -e /proc/self/status && echo proc");
    let out = c.run().ok().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [host_ns("mnt").as_str(), "in-the-rootfs", "proc"], "{out}");
}

/// Every namespace type left out: each one is the runtime's (runtime-tools'
/// linux_ns_itype).
#[test]
fn no_namespaces_at_all_inherits_every_runtime_namespace() {
    let (mut c, _sweep) = without_mount_ns("for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done");
    c.spec.set("/linux/namespaces", json!([]));
    c.spec.remove("/hostname");
    let out = c.run().ok().to_string();
    let want: Vec<String> = ["mnt", "pid", "net", "ipc", "uts", "cgroup"].iter().map(|k| host_ns(k)).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

/// Its mounts are made on the host, so they must all go at delete (runc
/// 1.1.5 leaves the container's /proc, /dev, /sys and more mounted).
#[test]
#[ignore = "runc 1.1.5 leaves the container's mounts on the host"]
fn no_mount_namespace_leaves_no_mount_on_the_host() {
    let (c, _sweep) = without_mount_ns("sleep 60");
    let before = host_mounts_under(&c.rootfs());
    c.create_ok();
    assert!(host_mounts_under(&c.rootfs()).len() > before.len() + 3, "the container's mounts are on the host");
    c.start_ok();
    assert!(c.delete_force().success());
    assert_eq!(host_mounts_under(&c.rootfs()), before, "after delete --force of a running container");
    c.create_ok();
    assert!(c.delete().success());
    assert_eq!(host_mounts_under(&c.rootfs()), before, "after delete of a created container");
    let (c2, _sweep2) = without_mount_ns("true");
    let before = host_mounts_under(&c2.rootfs());
    c2.run().ok();
    assert_eq!(host_mounts_under(&c2.rootfs()), before, "after run");
}

#[test]
#[ignore = "runc 1.1.5 leaves the container's mounts on the host"]
fn no_mount_namespace_failed_create_leaves_no_mount_on_the_host() {
    let (mut c, _sweep) = without_mount_ns("true");
    // /proc and /dev are mounted before this one fails.
    c.spec.bind(std::path::Path::new("/nonexistent/source"), "/data", &[]);
    let before = host_mounts_under(&c.rootfs());
    c.create().assert_failed_with_message();
    assert_eq!(host_mounts_under(&c.rootfs()), before);
    assert!(c.state().is_none());
}

/// exec enters the container's root even though there is no mount
/// namespace to join.
#[test]
#[ignore = "runc 1.1.5 runs an exec'd process of such a container in the host's root"]
fn no_mount_namespace_exec_runs_in_the_container_root() {
    let (c, _sweep) = without_mount_ns("sleep 60");
    c.create_ok();
    c.start_ok();
    let out = c.rt(&["exec", &c.id, "cat", "/marker"]);
    assert_eq!(out.ok().trim(), "in-the-rootfs");
}

/// Masked and read-only paths work without a mount namespace too: they
/// are mounted under the rootfs like the rest, and go at delete.
#[test]
#[ignore = "runc 1.1.5 refuses maskedPaths and readonlyPaths without a mount namespace"]
fn no_mount_namespace_masked_and_readonly_paths_apply() {
    let (mut c, _sweep) = without_mount_ns("cat /proc/kcore | wc -c; echo x > /proc/sysrq-trigger 2>/dev/null || echo read-only");
    c.spec.set("/linux/maskedPaths", json!(["/proc/kcore"])).set("/linux/readonlyPaths", json!(["/proc/sysrq-trigger"]));
    let before = host_mounts_under(&c.rootfs());
    let out = c.run().ok().to_string();
    assert_eq!(out.lines().map(str::trim).collect::<Vec<_>>(), ["0", "read-only"], "{out}");
    assert_eq!(host_mounts_under(&c.rootfs()), before);
}
