//! config.md root/mounts, config-linux.md devices, default devices,
//! maskedPaths, readonlyPaths, sysctl, rootfsPropagation.

use spec_tests::*;

fn sh_out(script: &str, tweak: impl FnOnce(&mut Spec)) -> String {
    let mut c = Container::sh(script);
    tweak(&mut c.spec);
    c.run().ok().to_string()
}

fn mountinfo(tweak: impl FnOnce(&mut Spec)) -> String {
    sh_out("cat /proc/self/mountinfo", tweak)
}

#[track_caller]
fn mount_of(mi: &str, at: &str) -> MountInfo {
    mount_at(mi, at).unwrap_or_else(|| panic!("no mount at {at}:\n{mi}"))
}

// ---------- root ----------

#[test]
fn root_readonly_write_fails() {
    let o = sh_out("touch /should-fail 2>/dev/null && echo written || echo denied", |s| {
        s.set("/root/readonly", json!(true));
    });
    assert_eq!(o.trim(), "denied");
}

#[test]
fn root_readonly_mount_flag() {
    let mi = mountinfo(|s| {
        s.set("/root/readonly", json!(true));
    });
    assert!(mount_of(&mi, "/").has_opt("ro"));
}

#[test]
fn root_writable_when_not_readonly() {
    let mut c = Container::private_sh("echo hi > /written && cat /written");
    c.spec.set("/root/readonly", json!(false));
    assert_eq!(c.run().ok().trim(), "hi");
    assert_eq!(std::fs::read_to_string(c.rootfs().join("written")).unwrap(), "hi\n");
}

#[test]
fn root_relative_path_resolved_against_bundle() {
    // The runtime is started from another cwd; "rootfs" is relative to the bundle.
    let c = Container::private_sh("cat /marker");
    std::fs::write(c.rootfs().join("marker"), "relative-root\n").unwrap();
    assert_eq!(c.spec.get("/root/path").unwrap(), "rootfs");
    assert_eq!(c.run().ok().trim(), "relative-root");
}

#[test]
fn root_absolute_path() {
    let mut c = Container::private_sh("cat /marker");
    std::fs::write(c.rootfs().join("marker"), "absolute-root\n").unwrap();
    let abs = c.rootfs().to_str().unwrap().to_string();
    c.spec.set("/root/path", json!(abs));
    assert_eq!(c.run().ok().trim(), "absolute-root");
}

#[test]
fn root_is_pivoted_host_not_visible() {
    let c = Container::sh("ls /");
    let o = c.run();
    let entries: Vec<&str> = o.ok().split_whitespace().collect();
    assert!(entries.contains(&"bin") && !entries.contains(&"usr") && !entries.contains(&"work"), "{entries:?}");
}

#[test]
fn root_mount_is_the_bundle_rootfs() {
    let c = Container::private_sh("cat /proc/self/mountinfo");
    let mi = c.run().ok().to_string();
    let root = mount_of(&mi, "/");
    let rootfs = c.rootfs();
    assert!(
        root.root.ends_with(rootfs.file_name().unwrap().to_str().unwrap()),
        "root of / is {} not the bundle rootfs",
        root.root
    );
}

macro_rules! propagation_tests {
    ($($name:ident: $prop:expr, $check:expr,)*) => {$(
        #[test]
        fn $name() {
            let mi = mountinfo(|s| { s.set("/linux/rootfsPropagation", json!($prop)); });
            let root = mount_of(&mi, "/");
            let check: fn(&MountInfo) -> bool = $check;
            assert!(check(&root), "rootfsPropagation {}: optional fields {:?}", $prop, root.optional);
        }
    )*};
}

propagation_tests! {
    rootfs_propagation_private: "private", |m| m.optional.iter().all(|o| !o.starts_with("shared:") && !o.starts_with("master:")),
    rootfs_propagation_rprivate: "rprivate", |m| m.optional.iter().all(|o| !o.starts_with("shared:") && !o.starts_with("master:")),
}

/// An unbindable / must not keep the runtime from binding the rootfs and
/// the read-only paths first (runtime-tools'
/// linux_rootfs_propagation).
macro_rules! unbindable_tests {
    ($($name:ident: $prop:expr,)*) => {$(
        #[test]
        #[ignore = "runc 1.1.5 makes / unbindable before binding the rootfs, which then fails with EINVAL"]
        fn $name() {
            let mi = mountinfo(|s| { s.set("/linux/rootfsPropagation", json!($prop)); });
            let root = mount_of(&mi, "/");
            assert!(root.optional.iter().any(|o| o == "unbindable"), "rootfsPropagation {}: optional fields {:?}", $prop, root.optional);
            // A read-only path is a bind mount of itself.
            assert!(mount_of(&mi, "/proc/sys").has_opt("ro"), "read-only path missing:\n{mi}");
        }
    )*};
}

unbindable_tests! {
    rootfs_propagation_unbindable: "unbindable",
    rootfs_propagation_runbindable: "runbindable",
}

#[test]
#[ignore = "runc 1.1.5 leaves the container's / without a peer group (no shared:N in mountinfo) for rootfsPropagation=shared"]
fn rootfs_propagation_shared() {
    let mi = mountinfo(|s| {
        s.set("/linux/rootfsPropagation", json!("shared"));
    });
    let root = mount_of(&mi, "/");
    assert!(root.optional.iter().any(|o| o.starts_with("shared:")), "{:?}", root.optional);
}

// ---------- mounts ----------

#[test]
fn mount_proc() {
    let mi = mountinfo(|_| {});
    assert_eq!(mount_of(&mi, "/proc").fstype, "proc");
}

#[test]
fn mount_sysfs_readonly() {
    let mi = mountinfo(|_| {});
    let m = mount_of(&mi, "/sys");
    assert_eq!(m.fstype, "sysfs");
    assert!(m.has_opt("ro"));
}

#[test]
fn mount_order_is_respected() {
    // Mounts are made in order: a later mount over an earlier one's subdir is visible.
    let o = sh_out("grep ' /data' /proc/self/mountinfo | awk '{print $5}'", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &[]).mount("/data/inner", "tmpfs", "tmpfs", &["size=1m"]);
    });
    assert_eq!(o.trim(), "/data\n/data/inner");
}

#[test]
fn mount_tmpfs_size_option() {
    let mi = mountinfo(|s| {
        s.mount("/data", "tmpfs", "tmpfs", &["size=1m"]);
    });
    let m = mount_of(&mi, "/data");
    assert_eq!(m.fstype, "tmpfs");
    assert!(m.has_super_opt("size=1024k"), "{:?}", m.super_options);
}

#[test]
fn mount_tmpfs_size_enforced() {
    let o = sh_out("dd if=/dev/zero of=/data/big bs=1k count=2048 2>/dev/null && echo fit || echo full", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &["size=1m"]);
    });
    assert_eq!(o.trim(), "full");
}

#[test]
fn mount_tmpfs_mode_option() {
    // Private rootfs: the destination does not exist before the mount.
    let mut c = Container::private_sh("stat -c %a /modedir");
    c.spec.mount("/modedir", "tmpfs", "tmpfs", &["mode=710"]);
    assert_eq!(c.run().ok().trim(), "710");
}

#[test]
#[ignore = "runc 1.1.5 chmods a tmpfs mount to the mode of the pre-existing destination dir, overriding mode="]
fn mount_tmpfs_mode_option_on_existing_dir() {
    let mut c = Container::private_sh("stat -c %a /root");
    std::fs::create_dir_all(c.rootfs().join("root")).unwrap();
    c.spec.mount("/root", "tmpfs", "tmpfs", &["mode=710"]);
    assert_eq!(c.run().ok().trim(), "710");
}

macro_rules! mount_option_tests {
    ($($name:ident: $opt:expr,)*) => {$(
        #[test]
        fn $name() {
            let mi = mountinfo(|s| { s.mount("/data", "tmpfs", "tmpfs", &[$opt]); });
            let m = mount_of(&mi, "/data");
            assert!(m.has_opt($opt), "{} missing from {:?}", $opt, m.options);
        }
    )*};
}

mount_option_tests! {
    mount_option_nosuid: "nosuid",
    mount_option_nodev: "nodev",
    mount_option_noexec: "noexec",
    mount_option_ro: "ro",
    mount_option_relatime: "relatime",
    mount_option_noatime: "noatime",
}

#[test]
fn mount_option_rw_default() {
    let mi = mountinfo(|s| {
        s.mount("/data", "tmpfs", "tmpfs", &[]);
    });
    assert!(mount_of(&mi, "/data").has_opt("rw"));
}

#[test]
fn mount_option_noexec_enforced() {
    let o = sh_out("cp /bin/busybox /data/true && (/data/true 2>/dev/null && echo ran || echo blocked)", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &["noexec"]);
    });
    assert_eq!(o.trim(), "blocked");
}

#[test]
fn mount_exec_allowed_without_noexec() {
    let o = sh_out("cp /bin/busybox /data/true && (/data/true && echo ran || echo blocked)", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &["exec"]);
    });
    assert_eq!(o.trim(), "ran");
}

#[test]
fn mount_option_ro_enforced() {
    let o = sh_out("touch /data/x 2>/dev/null && echo written || echo denied", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &["ro"]);
    });
    assert_eq!(o.trim(), "denied");
}

#[test]
fn mount_destination_created_if_missing() {
    let mut c = Container::private_sh("grep -c ' /new/deep/dir ' /proc/self/mountinfo");
    c.spec.mount("/new/deep/dir", "tmpfs", "tmpfs", &[]);
    assert_eq!(c.run().ok().trim(), "1");
}

#[test]
fn bind_mount_host_dir_file_visible() {
    let mut c = Container::sh("cat /hostdata/file.txt");
    let d = c.scratch("hostdata");
    std::fs::write(d.join("file.txt"), "from-host\n").unwrap();
    c.spec.bind(&d, "/hostdata", &[]);
    let mut c2 = c;
    c2.spec.set("/root/readonly", json!(true));
    assert_eq!(c2.run().ok().trim(), "from-host");
}

#[test]
fn bind_mount_rw_write_visible_on_host() {
    let mut c = Container::sh("echo from-container > /hostdata/out.txt");
    let d = c.scratch("hostdata");
    c.spec.bind(&d, "/hostdata", &["rw"]);
    c.run().ok();
    assert_eq!(std::fs::read_to_string(d.join("out.txt")).unwrap(), "from-container\n");
}

#[test]
fn bind_mount_ro_write_fails() {
    let mut c = Container::sh("cat /hostdata/f; echo x > /hostdata/f 2>/dev/null && echo written || echo denied");
    let d = c.scratch("hostdata");
    std::fs::write(d.join("f"), "orig\n").unwrap();
    c.spec.bind(&d, "/hostdata", &["ro"]);
    assert_eq!(c.run().ok(), "orig\ndenied\n");
    assert_eq!(std::fs::read_to_string(d.join("f")).unwrap(), "orig\n");
}

#[test]
fn bind_mount_ro_flag_in_mountinfo() {
    let mut c = Container::sh("cat /proc/self/mountinfo");
    let d = c.scratch("hostdata");
    c.spec.bind(&d, "/hostdata", &["ro"]);
    let mi = c.run().ok().to_string();
    assert!(mount_of(&mi, "/hostdata").has_opt("ro"));
}

#[test]
fn bind_mount_single_file() {
    let mut c = Container::private_sh("cat /etc/hostfile");
    let d = c.scratch("files");
    std::fs::write(d.join("f"), "single-file\n").unwrap();
    c.spec.bind(&d.join("f"), "/etc/hostfile", &["ro"]);
    assert_eq!(c.run().ok().trim(), "single-file");
}

#[test]
fn bind_mount_not_visible_on_host_after_exit() {
    let mut c = Container::sh("true");
    let d = c.scratch("hostdata");
    c.spec.bind(&d, "/hostdata", &[]);
    c.run().ok();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(d.to_str().unwrap()));
}

#[test]
fn mount_through_symlink_stays_in_rootfs() {
    let mut c = Container::private_sh("echo inside > /evil/f && cat /evil/f && grep -c tmpfs /proc/self/mountinfo >/dev/null");
    let host_dir = c.scratch("host-target");
    std::fs::write(host_dir.join("keep"), "host\n").unwrap();
    std::os::unix::fs::symlink(&host_dir, c.rootfs().join("evil")).unwrap();
    c.spec.mount("/evil", "tmpfs", "tmpfs", &[]);
    let o = c.run();
    // Either the runtime refuses, or it mounts inside the rootfs; the host never changes.
    if o.success() {
        assert_eq!(o.stdout.trim(), "inside");
    }
    let names: Vec<String> = std::fs::read_dir(&host_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["keep"], "host directory behind the symlink was modified");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(host_dir.to_str().unwrap()), "mount landed on the host");
}

#[test]
fn bind_mount_through_symlink_stays_in_rootfs() {
    let mut c = Container::private_sh("ls /evil");
    let host_dir = c.scratch("host-target");
    let src = c.scratch("src");
    std::fs::write(src.join("from-src"), "x").unwrap();
    std::os::unix::fs::symlink(&host_dir, c.rootfs().join("evil")).unwrap();
    c.spec.bind(&src, "/evil", &[]);
    let o = c.run();
    if o.success() {
        assert_eq!(o.stdout.trim(), "from-src");
    }
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 0, "host directory changed");
}

#[test]
fn mount_missing_bind_source_fails() {
    let mut c = Container::new(&["true"]);
    c.spec.bind(std::path::Path::new("/nonexistent/husk-src"), "/data", &[]);
    c.run().assert_failed_with_message();
    assert!(c.state().is_none());
}

// ---------- /dev ----------

macro_rules! device_tests {
    ($($name:ident: $path:expr, $maj:expr, $min:expr,)*) => {$(
        #[test]
        fn $name() {
            let o = sh_out(concat!("stat -L -c '%F %t %T' ", $path), |_| {});
            assert_eq!(o.trim(), format!("character special file {:x} {:x}", $maj, $min));
        }
    )*};
}

device_tests! {
    dev_null_1_3: "/dev/null", 1, 3,
    dev_zero_1_5: "/dev/zero", 1, 5,
    dev_full_1_7: "/dev/full", 1, 7,
    dev_random_1_8: "/dev/random", 1, 8,
    dev_urandom_1_9: "/dev/urandom", 1, 9,
    dev_tty_5_0: "/dev/tty", 5, 0,
}

#[test]
fn dev_ptmx_exists() {
    let o = sh_out("stat -L -c '%F %t' /dev/ptmx", |_| {});
    assert_eq!(o.trim(), "character special file 5");
}

macro_rules! dev_link_tests {
    ($($name:ident: $path:expr, $target:expr,)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(sh_out(concat!("readlink ", $path), |_| {}).trim(), $target);
        }
    )*};
}

dev_link_tests! {
    dev_fd_symlink: "/dev/fd", "/proc/self/fd",
    dev_stdin_symlink: "/dev/stdin", "/proc/self/fd/0",
    dev_stdout_symlink: "/dev/stdout", "/proc/self/fd/1",
    dev_stderr_symlink: "/dev/stderr", "/proc/self/fd/2",
}

#[test]
fn dev_null_works() {
    assert_eq!(sh_out("echo x > /dev/null && wc -c < /dev/null", |_| {}).trim(), "0");
}

#[test]
fn dev_zero_reads_zeros() {
    assert_eq!(sh_out("head -c 4 /dev/zero | od -An -tx1", |_| {}).trim(), "00 00 00 00");
}

#[test]
fn dev_full_write_fails() {
    let o = sh_out("echo x > /dev/full 2>/dev/null && echo ok || echo enospc", |_| {});
    assert_eq!(o.trim(), "enospc");
}

#[test]
fn dev_urandom_readable() {
    assert_eq!(sh_out("head -c 16 /dev/urandom | wc -c", |_| {}).trim(), "16");
}

#[test]
fn dev_pts_is_devpts() {
    assert_eq!(mount_of(&mountinfo(|_| {}), "/dev/pts").fstype, "devpts");
}

#[test]
fn dev_shm_is_tmpfs() {
    assert_eq!(mount_of(&mountinfo(|_| {}), "/dev/shm").fstype, "tmpfs");
}

#[test]
fn dev_mqueue_is_mqueue() {
    assert_eq!(mount_of(&mountinfo(|_| {}), "/dev/mqueue").fstype, "mqueue");
}

#[test]
fn dev_host_devices_not_exposed() {
    let o = sh_out("ls /dev", |_| {});
    let names: Vec<&str> = o.split_whitespace().collect();
    for host_only in ["vda", "sda", "kmsg", "mem", "loop0"] {
        assert!(!names.contains(&host_only), "/dev/{host_only} visible: {names:?}");
    }
}

#[test]
fn linux_devices_char_device() {
    let o = sh_out("stat -c '%F %t %T %a %u %g' /dev/mydev", |s| {
        s.push(
            "/linux/devices",
            json!({"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001}),
        );
    });
    assert_eq!(o.trim(), "character special file 1 3 640 1000 1001");
}

#[test]
fn linux_devices_block_device() {
    let o = sh_out("stat -c '%F %t %T' /dev/myblk", |s| {
        s.push("/linux/devices", json!({"path": "/dev/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600}));
    });
    assert_eq!(o.trim(), "block special file 7 c8");
}

#[test]
fn linux_devices_fifo() {
    let o = sh_out("stat -c '%F' /dev/myfifo", |s| {
        s.push("/linux/devices", json!({"path": "/dev/myfifo", "type": "p", "fileMode": 0o600}));
    });
    assert_eq!(o.trim(), "fifo");
}

#[test]
fn linux_devices_usable_when_allowed() {
    let o = sh_out("echo hi > /dev/mynull && echo wrote", |s| {
        s.push("/linux/devices", json!({"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}));
        s.push("/linux/resources/devices", json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
    });
    assert_eq!(o.trim(), "wrote");
}

// ---------- maskedPaths ----------

fn host_has(p: &str) -> bool {
    std::path::Path::new(p).exists()
}

macro_rules! default_masked_file_tests {
    ($($name:ident: $path:expr,)*) => {$(
        #[test]
        fn $name() {
            if !host_has($path) { eprintln!("{} absent on this kernel; skipping", $path); return; }
            let o = sh_out(concat!("wc -c < ", $path), |_| {});
            assert_eq!(o.trim(), "0", "{} readable", $path);
        }
    )*};
}

default_masked_file_tests! {
    masked_proc_keys: "/proc/keys",
    masked_proc_timer_list: "/proc/timer_list",
    masked_proc_kcore: "/proc/kcore",
    masked_proc_sched_debug: "/proc/sched_debug",
    masked_proc_latency_stats: "/proc/latency_stats",
}

macro_rules! default_masked_dir_tests {
    ($($name:ident: $path:expr,)*) => {$(
        #[test]
        fn $name() {
            if !host_has($path) { eprintln!("{} absent on this kernel; skipping", $path); return; }
            let o = sh_out(concat!("ls -A ", $path, " | wc -l"), |_| {});
            assert_eq!(o.trim(), "0", "{} not empty", $path);
        }
    )*};
}

default_masked_dir_tests! {
    masked_proc_acpi: "/proc/acpi",
    masked_sys_firmware: "/sys/firmware",
    masked_proc_scsi: "/proc/scsi",
    masked_proc_asound: "/proc/asound",
}

#[test]
fn masked_custom_file_reads_empty() {
    let o = sh_out("wc -c < /proc/version", |s| {
        s.set("/linux/maskedPaths", json!(["/proc/version"]));
    });
    assert_eq!(o.trim(), "0");
}

#[test]
fn masked_custom_file_unmasked_by_default() {
    let o = sh_out("wc -c < /proc/version", |_| {});
    assert_ne!(o.trim(), "0");
}

#[test]
fn masked_custom_dir_is_empty() {
    let o = sh_out("ls -A /sys/kernel | wc -l", |s| {
        s.set("/linux/maskedPaths", json!(["/sys/kernel"]));
    });
    assert_eq!(o.trim(), "0");
}

#[test]
fn masked_nonexistent_path_is_ignored() {
    let o = sh_out("echo ok", |s| {
        s.set("/linux/maskedPaths", json!(["/proc/does-not-exist-husk"]));
    });
    assert_eq!(o.trim(), "ok");
}

// ---------- readonlyPaths ----------

#[test]
fn readonly_proc_sys_write_fails() {
    let o = sh_out("echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo written || echo denied", |_| {});
    assert_eq!(o.trim(), "denied");
}

#[test]
fn readonly_proc_sys_mount_flag() {
    assert!(mount_of(&mountinfo(|_| {}), "/proc/sys").has_opt("ro"));
}

#[test]
fn readonly_proc_sysrq_trigger() {
    if !host_has("/proc/sysrq-trigger") {
        return;
    }
    let o = sh_out("echo h > /proc/sysrq-trigger 2>/dev/null && echo written || echo denied", |_| {});
    assert_eq!(o.trim(), "denied");
}

#[test]
fn readonly_custom_path() {
    let o = sh_out("touch /data/x 2>/dev/null && echo written || echo denied; grep -c ' /data ' /proc/self/mountinfo", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &[]);
        s.set("/linux/readonlyPaths", json!(["/data"]));
    });
    assert_eq!(o.lines().next(), Some("denied"));
}

#[test]
fn readonly_custom_path_still_readable() {
    let o = sh_out("cat /proc/version >/dev/null && echo readable", |s| {
        s.set("/linux/readonlyPaths", json!(["/proc/version"]));
    });
    assert_eq!(o.trim(), "readable");
}

#[test]
fn readonly_paths_absent_means_writable() {
    let o = sh_out("touch /data/x && echo written", |s| {
        s.mount("/data", "tmpfs", "tmpfs", &[]);
        s.set("/linux/readonlyPaths", json!([]));
    });
    assert_eq!(o.trim(), "written");
}

// ---------- sysctl ----------

#[test]
fn sysctl_net_ip_forward() {
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let o = sh_out("cat /proc/sys/net/ipv4/ip_forward", |s| {
        s.set("/linux/sysctl", json!({"net.ipv4.ip_forward": want}));
    });
    assert_eq!(o.trim(), want);
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host_before);
}

#[test]
fn sysctl_kernel_shm_rmid_forced() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let o = sh_out("cat /proc/sys/kernel/shm_rmid_forced", |s| {
        s.set("/linux/sysctl", json!({"kernel.shm_rmid_forced": want}));
    });
    assert_eq!(o.trim(), want);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(), host_before);
}

#[test]
fn sysctl_multiple_values() {
    let o = sh_out("cat /proc/sys/net/ipv4/tcp_syncookies /proc/sys/net/ipv4/ip_default_ttl", |s| {
        s.set("/linux/sysctl", json!({"net.ipv4.tcp_syncookies": "0", "net.ipv4.ip_default_ttl": "42"}));
    });
    assert_eq!(o.trim(), "0\n42");
}

#[test]
fn sysctl_unknown_key_fails() {
    let mut c = Container::new(&["true"]);
    c.spec.set("/linux/sysctl", json!({"net.husk.does_not_exist": "1"}));
    c.run().assert_failed_with_message();
    assert!(c.state().is_none());
}

#[test]
fn failing_mount_error_names_the_mount() {
    // The container's setup fails while the runtime is still moving it
    // into its cgroups: the error must be the child's, not a broken pipe.
    for _ in 0..3 {
        let mut c = Container::new(&["true"]);
        c.spec.mount("/husk-no-such-fs-here", "nosuchfs", "none", &[]);
        let o = c.create();
        o.assert_failed_with_message();
        assert!(o.stderr.contains("/husk-no-such-fs-here"), "the error does not name the mount: {o}");
        assert!(c.cgroup_dirs().is_empty(), "cgroups left: {:?}", c.cgroup_dirs());
    }
}

/// Recursive options (`rro`, `rnosuid`, `rnoexec`, mount_setattr with
/// AT_RECURSIVE) apply to the bind mount and to every mount below it. A
/// runtime that dropped them would leave both writable, suid and exec.
#[test]
fn recursive_mount_options_apply_to_the_mount_and_its_submounts() {
    let mut c = Container::sh("cat /proc/self/mountinfo");
    let src = c.scratch("rsrc");
    let sub = src.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let o = host("mount", &["-t", "tmpfs", "husk-st-sub", sub.to_str().unwrap()]);
    assert!(o.success(), "{o}");
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = host("umount", &["-l", self.0.to_str().unwrap()]);
        }
    }
    let _sub = Umount(sub);
    c.spec.bind(&src, "/mnt", &["rro", "rnosuid", "rnoexec"]);
    let out = c.run();
    let text = out.ok().to_string();
    for mp in ["/mnt", "/mnt/sub"] {
        let m = mount_at(&text, mp).unwrap_or_else(|| panic!("{mp} not mounted in the container:\n{text}"));
        for opt in ["ro", "nosuid", "noexec"] {
            assert!(m.has_opt(opt), "{mp} lacks {opt}: {m:?}");
        }
    }
}

/// A tmpfs mounted without `mode=` keeps the mode of the directory it
/// covers (runc), instead of tmpfs's own 1777.
#[test]
fn tmpfs_without_mode_keeps_the_mode_of_its_mount_point() {
    let mut c = Container::private(&["stat", "-c", "%a", "/data"]);
    c.spec.mount("/data", "tmpfs", "tmpfs", &["nosuid", "nodev"]);
    let dir = c.rootfs().join("data");
    std::fs::create_dir(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let o = c.run();
    assert_eq!(o.ok().trim(), "750", "{o}");
}

/// Duplicate entries in maskedPaths and readonlyPaths are harmless.
#[test]
fn duplicate_masked_and_readonly_paths_are_harmless() {
    let o = sh_out("head -c1 /proc/keys | wc -c; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo read-only", |s| {
        s.set("/linux/maskedPaths", json!(["/proc/keys", "/proc/keys"]));
        s.set("/linux/readonlyPaths", json!(["/proc/sys", "/proc/sys"]));
    });
    assert_eq!(o.lines().map(str::trim).collect::<Vec<_>>(), ["0", "read-only"], "{o}");
}

/// A read-only /dev still gets its devices and its submounts (/dev/pts,
/// /dev/shm, /dev/mqueue): their mount points are made first and /dev is
/// made read-only last.
#[test]
fn read_only_dev_still_gets_its_submounts() {
    let o = sh_out(
        "test -c /dev/null && echo null; grep -c ' /dev/pts \\| /dev/shm \\| /dev/mqueue ' /proc/self/mountinfo; \
         touch /dev/x 2>/dev/null && echo dev-writable || echo dev-read-only; touch /dev/shm/y && echo shm-writable",
        |s| {
            s.set("/mounts/1/options", json!(["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]));
        },
    );
    assert_eq!(o.lines().collect::<Vec<_>>(), ["null", "3", "dev-read-only", "shm-writable"], "{o}");
}

/// A mount destination that is a dangling symlink in the rootfs resolves
/// inside the rootfs: the missing target is made there, never on the host.
#[test]
fn dangling_symlink_destination_resolves_inside_the_rootfs() {
    let host_target = std::path::PathBuf::from(format!("/husk-st-dangling-{}", std::process::id()));
    assert!(!host_target.exists());
    let mut c = Container::private_sh(&format!("cat {}/payload", host_target.display()));
    let src = c.scratch("src");
    std::fs::write(src.join("payload"), "through-the-link\n").unwrap();
    std::os::unix::fs::symlink(&host_target, c.rootfs().join("link")).unwrap();
    c.spec.bind(&src, "/link", &[]);
    let o = c.run();
    let exists_on_host = host_target.exists();
    let _ = std::fs::remove_dir(&host_target);
    assert!(!exists_on_host, "the runtime made {} on the host", host_target.display());
    assert_eq!(o.ok().trim(), "through-the-link", "{o}");
    assert!(c.rootfs().join(host_target.strip_prefix("/").unwrap()).is_dir());
}

/// Options that clear a flag (suid, dev, exec) clear it on a bind mount
/// even where the source has it set.
#[test]
#[ignore = "runc 1.1.5 keeps the source's nosuid, nodev and noexec"]
fn bind_options_clear_the_sources_flags() {
    let mut c = Container::sh("cat /proc/self/mountinfo");
    let src = TmpfsMount::new(&c.scratch("flagged"), "nosuid,nodev,noexec,size=1m");
    c.spec.bind(&src.0, "/flagged", &["suid", "dev", "exec"]);
    let o = c.run();
    let mi = o.ok();
    let m = mount_of(mi, "/flagged");
    for f in ["nosuid", "nodev", "noexec"] {
        assert!(!m.has_opt(f), "{f} still set: {:?}", m.options);
    }
}

/// And options that set one set it, the source's other flags kept.
#[test]
#[ignore = "runc 1.1.5 drops the source's nosuid when it remounts a bind read-only"]
fn bind_options_set_flags_and_keep_the_sources() {
    let mut c = Container::sh("cat /proc/self/mountinfo");
    let src = TmpfsMount::new(&c.scratch("flagged"), "nosuid,size=1m");
    c.spec.bind(&src.0, "/flagged", &["ro", "nodev"]);
    let o = c.run();
    let m = mount_of(o.ok(), "/flagged");
    for f in ["ro", "nodev", "nosuid"] {
        assert!(m.has_opt(f), "{f} missing: {:?}", m.options);
    }
}

/// In a user namespace, flags the kernel locked on the source cannot be
/// cleared: they are kept, and the mount does not fail with EPERM.
#[test]
#[ignore = "runc 1.1.5 fails the remount with EPERM"]
fn bind_options_keep_locked_flags_in_a_user_namespace() {
    let mut c = Container::private_sh("cat /proc/self/mountinfo");
    // The namespace's root could not make it in a rootfs the host owns.
    std::fs::create_dir_all(c.rootfs().join("flagged")).unwrap();
    let src = TmpfsMount::new(&c.scratch("flagged"), "nosuid,nodev,size=1m");
    c.spec.user_namespace(100000, 100000);
    c.spec.bind(&src.0, "/flagged", &["suid", "dev", "ro"]);
    let o = c.run();
    let m = mount_of(o.ok(), "/flagged");
    for f in ["ro", "nosuid", "nodev"] {
        assert!(m.has_opt(f), "{f} missing: {:?}", m.options);
    }
}

/// With a user namespace, a bind source under a directory only the host's
/// root may enter still mounts: the runtime opens it before the container
/// process (root only inside its namespace) would have to look it up.
#[test]
fn bind_source_only_host_root_may_reach_with_a_user_namespace() {
    let mut c = Container::private_sh("cat /data/payload");
    // The mount point exists: the namespace's root could not make it in a
    // rootfs the host's root owns.
    std::fs::create_dir_all(c.rootfs().join("data")).unwrap();
    let locked = c.scratch("locked");
    std::fs::create_dir_all(locked.join("data")).unwrap();
    std::fs::write(locked.join("data/payload"), "reached\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(locked.join("data/payload"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    c.spec.user_namespace(100000, 100000);
    c.spec.bind(&locked.join("data"), "/data", &["ro"]);
    let o = c.run();
    assert_eq!(o.ok().trim(), "reached", "{o}");
}
