//! runtime-spec 1.1–1.3 fields (personality, scheduler, ioPriority,
//! execCPUAffinity, timeOffsets, netDevices, intelRdt) and `features`.
//! runc 1.1.5 predates them: those tests are ignored for it and run with
//! --include-ignored against husk.

use serde_json::json;
use spec_tests::output::host;
use spec_tests::Container;

const OLD_RUNC: &str = "runc 1.1.5 predates this runtime-spec field";

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn personality_linux32_changes_uname() {
    let mut c = Container::new(&["uname", "-m"]);
    c.spec.set("/linux/personality", json!({"domain": "LINUX32"}));
    let out = c.run();
    let m = out.ok().trim().to_string();
    assert!(m == "i686" || m == "i386", "{OLD_RUNC}: uname -m = {m}");
}

#[test]
fn personality_linux_keeps_native_arch() {
    let mut c = Container::new(&["uname", "-m"]);
    c.spec.set("/linux/personality", json!({"domain": "LINUX"}));
    assert_eq!(c.run().ok().trim(), std::env::consts::ARCH);
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn scheduler_policy_and_nice_apply() {
    let mut c = Container::sh("grep -E '^policy' /proc/self/sched; cut -d' ' -f19 /proc/self/stat");
    c.spec.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 7}));
    let out = c.run();
    let lines = out.lines();
    assert!(lines[0].ends_with(" 3"), "SCHED_BATCH is policy 3: {out}");
    assert_eq!(lines[1], "7", "nice: {out}");
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn io_priority_applies() {
    // ioprio is not in /proc: ask the kernel through the container's own
    // process from the host while it runs.
    let mut c = Container::new(&["sleep", "30"]);
    c.spec.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}));
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    // SAFETY: ioprio_get on a pid; plain integers.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid as libc::c_long) };
    assert_eq!(v >> 13, 3, "class idle (3), got raw {v}");
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn exec_cpu_affinity_final_applies() {
    if std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) < 2 {
        return;
    }
    let mut c = Container::sh("grep Cpus_allowed_list /proc/self/status");
    c.spec.set("/process/execCPUAffinity", json!({"initial": "0", "final": "1"}));
    let out = c.run();
    assert!(out.ok().trim().ends_with("\t1"), "{out}");
}

/// config.md: execCPUAffinity is a cpu list ("0-3,7"). Anything else is
/// refused at create, with nothing left behind. (The Arabic-Indic digit is
/// a Unicode \d that must not pass for a cpu number.)
#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn exec_cpu_affinity_that_is_not_a_cpu_list_is_refused() {
    for bad in ["0-", "a", "1,,2", "1 2", "-1", "\u{0661}"] {
        let mut c = Container::new(&["true"]);
        c.spec.set("/process/execCPUAffinity", json!({"final": bad}));
        let o = c.create();
        o.assert_failed_with_message();
        assert!(o.stderr.contains(bad), "{OLD_RUNC}: the error names the value {bad:?}: {o}");
        assert!(c.state().is_none(), "failed create left state for {bad:?}");
    }
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn time_namespace_offsets_shift_boottime_and_monotonic() {
    let mut c = Container::sh("cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime");
    c.spec.namespace("time", None);
    c.spec.set("/linux/timeOffsets", json!({"boottime": {"secs": 864000}, "monotonic": {"secs": 5000, "nanosecs": 7}}));
    let out = c.run();
    let text = out.ok();
    assert!(text.contains("monotonic") && text.contains("5000") && text.contains("864000"), "{out}");
    let uptime: f64 = out.lines().last().unwrap().parse().unwrap();
    assert!(uptime > 864000.0, "uptime in the namespace: {uptime}");
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn time_namespace_is_new_and_host_is_untouched() {
    let mut c = Container::sh("readlink /proc/self/ns/time");
    c.spec.namespace("time", None);
    let out = c.run();
    assert_ne!(out.ok().trim(), spec_tests::host_ns("time"));
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn time_offsets_without_time_namespace_fail() {
    let mut c = Container::new(&["true"]);
    c.spec.set("/linux/timeOffsets", json!({"boottime": {"secs": 1}}));
    c.run().assert_failed_with_message();
}

/// A veth pair made for the test, removed at the end.
struct Veth(String);

impl Veth {
    fn new(tag: &str) -> Option<Veth> {
        let a = format!("hsk{}{}", std::process::id() % 10000, tag);
        let out = host("ip", &["link", "add", &a, "type", "veth", "peer", "name", &format!("{a}p")]);
        out.success().then_some(Veth(a))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = host("ip", &["link", "del", &format!("{}p", self.0)]);
        let _ = host("ip", &["link", "del", &self.0]);
    }
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn net_devices_move_and_rename_into_the_container() {
    let Some(v) = Veth::new("a") else { return };
    let mut c = Container::sh("ip -o link show | cut -d: -f2");
    c.spec.set("/linux/netDevices", json!({v.0.clone(): {"name": "ctr0"}}));
    let out = c.run();
    assert!(out.ok().contains("ctr0"), "{out}");
    let host_links = host("ip", &["-o", "link", "show"]).stdout;
    assert!(!host_links.contains(&format!("{}:", v.0)), "device still on the host");
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn net_devices_unknown_interface_fails_cleanly() {
    let mut c = Container::new(&["true"]);
    c.spec.set("/linux/netDevices", json!({"hsk-no-such0": {}}));
    c.run().assert_failed_with_message();
    assert!(!c.listed());
}

#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn intel_rdt_on_a_host_without_resctrl_is_an_error() {
    if std::path::Path::new("/sys/fs/resctrl/info").exists() {
        return;
    }
    let mut c = Container::new(&["true"]);
    c.spec.set("/linux/intelRdt", json!({"closID": "husk-test"}));
    c.run().assert_failed_with_message();
    assert!(!c.listed());
}

#[test]
#[ignore = "runc 1.1.5's experimental `features` lacks fields of the final format"]
fn features_document_is_complete() {
    let c = Container::new(&["true"]);
    let out = c.rt(&["features"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    for key in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"] {
        assert!(v.get(key).is_some(), "missing {key}: {out}");
    }
    let hooks: Vec<&str> = v["hooks"].as_array().unwrap().iter().filter_map(|h| h.as_str()).collect();
    for h in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
        assert!(hooks.contains(&h), "hook {h} not listed");
    }
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n == "time"));
    assert!(v["linux"]["seccomp"]["enabled"].as_bool().unwrap());
    // Not claimed where this host has no such LSM.
    assert_eq!(v["linux"]["apparmor"]["enabled"], json!(false));
    // runtime-spec 1.3.
    assert_eq!(v["ociVersionMax"], "1.3.0");
    assert_eq!(v["linux"]["intelRdt"], json!({"enabled": true, "schemata": true, "monitoring": true}));
    let modes = v["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(modes.contains(&json!("MPOL_BIND")) && modes.contains(&json!("MPOL_WEIGHTED_INTERLEAVE")), "{out}");
}

/// runtime-spec 1.3 linux.memoryPolicy: set_mempolicy for the container
/// process; /proc/self/numa_maps shows the task policy on every mapping
/// without one of its own.
#[test]
#[ignore = "runc 1.1.5 predates this runtime-spec field"]
fn memory_policy_applies() {
    let node = std::fs::read_to_string("/sys/devices/system/node/online").expect("a NUMA-aware kernel (/sys/devices/system/node)");
    let first = node.trim().split([',', '-']).next().unwrap().to_string();
    let policy = |p: serde_json::Value| {
        let mut c = Container::sh("head -1 /proc/self/numa_maps");
        c.spec.set("/linux/memoryPolicy", p);
        c.run()
    };
    let o = policy(json!({"mode": "MPOL_BIND", "nodes": first}));
    assert!(o.ok().contains(&format!(" bind:{first} ")), "{o}");
    let o = policy(json!({"mode": "MPOL_INTERLEAVE", "nodes": first, "flags": ["MPOL_F_STATIC_NODES"]}));
    assert!(o.ok().contains(&format!(" interleave=static:{first} ")), "{o}");
    // A node the host does not have: set_mempolicy says EINVAL.
    let o = policy(json!({"mode": "MPOL_BIND", "nodes": "1000"}));
    o.assert_failed_with_message();
    assert!(o.stderr.contains("set_mempolicy"), "{o}");
}

/// `husk spec` writes the newest runtime-spec version husk supports.
#[test]
#[ignore = "runc 1.1.5 writes 1.0.2-dev"]
fn spec_writes_the_newest_supported_version() {
    let c = Container::new(&["true"]);
    let dir = c.scratch("spec-out");
    c.rt(&["spec", "--bundle", dir.to_str().unwrap()]).ok();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["ociVersion"], "1.3.0");
}

#[test]
fn features_mount_options_really_work() {
    let c = Container::new(&["true"]);
    let out = c.rt(&["features"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let opts: Vec<String> = v["mountOptions"].as_array().unwrap().iter().filter_map(|o| o.as_str().map(String::from)).collect();
    for o in ["ro", "nosuid", "nodev", "noexec", "rbind", "rprivate", "tmpcopyup"] {
        assert!(opts.contains(&o.to_string()), "{o} missing");
    }
    // Spot-check that advertised options are accepted on a tmpfs mount.
    let mut c = Container::sh("grep ' /mnt ' /proc/self/mountinfo");
    c.spec.mount("/mnt", "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec", "strictatime", "rprivate"]);
    let out = c.run();
    assert!(out.ok().contains("nosuid,nodev,noexec"), "{out}");
}
