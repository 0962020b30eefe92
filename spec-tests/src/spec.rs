//! The baseline config.json and helpers to edit it.

use serde_json::{json, Value};
use std::path::Path;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const HOSTNAME: &str = "spec-test";

pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
];

pub const DEFAULT_READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A config.json as a JSON value, with edit helpers.
#[derive(Debug, Clone)]
pub struct Spec(pub Value);

impl Spec {
    /// Baseline close to `runc spec`, but non-terminal and running `args`.
    pub fn new(args: &[&str]) -> Spec {
        Spec(json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": [DEFAULT_PATH, "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": DEFAULT_CAPS,
                    "effective": DEFAULT_CAPS,
                    "permitted": DEFAULT_CAPS,
                    "ambient": DEFAULT_CAPS
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": HOSTNAME,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
                ],
                "maskedPaths": DEFAULT_MASKED,
                "readonlyPaths": DEFAULT_READONLY
            }
        }))
    }

    /// Get the value at a JSON pointer.
    pub fn get(&self, ptr: &str) -> Option<&Value> {
        self.0.pointer(ptr)
    }

    /// Set the value at a JSON pointer, creating intermediate objects.
    pub fn set(&mut self, ptr: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.0;
        for part in ptr.split('/').skip(1) {
            if !cur.is_object() && !cur.is_array() {
                *cur = json!({});
            }
            cur = match cur {
                Value::Array(a) => {
                    let i: usize = part.parse().expect("array index");
                    &mut a[i]
                }
                Value::Object(o) => o.entry(part.to_string()).or_insert(Value::Null),
                _ => unreachable!(),
            };
        }
        *cur = v;
        self
    }

    /// Remove the value at a JSON pointer (object key) if present.
    pub fn remove(&mut self, ptr: &str) -> &mut Self {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() { Some(&mut self.0) } else { self.0.pointer_mut(parent) };
        if let Some(Value::Object(o)) = parent {
            o.remove(key);
        }
        self
    }

    /// Append to the array at a JSON pointer (creating it).
    pub fn push(&mut self, ptr: &str, v: Value) -> &mut Self {
        if !matches!(self.get(ptr), Some(Value::Array(_))) {
            self.set(ptr, json!([]));
        }
        self.0.pointer_mut(ptr).unwrap().as_array_mut().unwrap().push(v);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// Append an `env` entry.
    pub fn env(&mut self, kv: &str) -> &mut Self {
        self.push("/process/env", json!(kv))
    }

    pub fn mount(&mut self, dest: &str, typ: &str, source: &str, opts: &[&str]) -> &mut Self {
        self.push("/mounts", json!({"destination": dest, "type": typ, "source": source, "options": opts}))
    }

    /// A bind mount of host path `src` at `dest` with extra options (e.g. "ro").
    pub fn bind(&mut self, src: &Path, dest: &str, opts: &[&str]) -> &mut Self {
        let mut o = vec!["rbind"];
        o.extend_from_slice(opts);
        self.push(
            "/mounts",
            json!({"destination": dest, "type": "bind", "source": src.to_str().unwrap(), "options": o}),
        )
    }

    /// A writable tmpfs at /tmp (the baseline root is read-only).
    pub fn tmp(&mut self) -> &mut Self {
        self.mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(Value::Array(a)) = self.0.pointer_mut("/linux/namespaces") {
            a.retain(|n| n["type"] != typ);
        }
        self
    }

    /// A new user namespace mapping 65536 ids from `host_uid`/`host_gid`,
    /// without the cgroup v1 mount (not mountable from a user namespace).
    pub fn user_namespace(&mut self, host_uid: u32, host_gid: u32) -> &mut Self {
        self.namespace("user", None);
        self.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": host_uid, "size": 65536}]));
        self.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": host_gid, "size": 65536}]));
        if let Some(Value::Array(m)) = self.0.pointer_mut("/mounts") {
            m.retain(|m| m["destination"] != "/sys/fs/cgroup");
        }
        self
    }

    /// Add (or replace) a namespace entry, optionally joining `path`.
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(typ);
        let v = match path {
            Some(p) => json!({"type": typ, "path": p}),
            None => json!({"type": typ}),
        };
        self.push("/linux/namespaces", v)
    }

    pub fn has_namespace(&self, typ: &str) -> bool {
        self.get("/linux/namespaces")
            .and_then(Value::as_array)
            .map(|a| a.iter().any(|n| n["type"] == typ))
            .unwrap_or(false)
    }

    /// Set every capability set (bounding/effective/permitted/inheritable/ambient).
    pub fn all_caps(&mut self, caps: &[&str]) -> &mut Self {
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            self.set(&format!("/process/capabilities/{set}"), json!(caps));
        }
        self
    }

    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid));
        self.set("/process/user/gid", json!(gid))
    }
}
