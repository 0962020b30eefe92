//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient unit systemd makes and owns, as runc, crun and youki do
//! on systemd hosts, where engines are configured for it.
//!
//! `linux.cgroupsPath` is `slice:prefix:name`: the unit `prefix-name.scope`
//! in `slice` (a `name` ending in `.slice` is a slice unit of its own, as
//! kubelet makes for pods). The unit is started with the container's init
//! as its one PID, `Delegate=yes` and the resource properties systemd knows;
//! husk then writes every limit to cgroupfs itself as well (what systemd
//! does not manage, and the same values where it does), so the two
//! drivers leave the same files. Hierarchies systemd does not manage on a
//! v1 host (cpuset, freezer, net_cls …) get the same path, made by husk.

pub mod dbus;

use std::path::PathBuf;
use std::time::Duration;

use dbus::{Call, Connection, DbusError, Value};

use super::devices::{self, DevType};
use super::resources::{self, Resources};
use super::{Kind, Placement};

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {0:?} instead")]
    PathFormat(String),
    #[error("invalid slice name {0:?}: {1}")]
    Slice(String, &'static str),
    #[error("systemd: no D-Bus connection (tried {tried}): {last}")]
    Connect { tried: String, last: DbusError },
    #[error("systemd: {what} {unit}: {err}")]
    Call { what: &'static str, unit: String, err: DbusError },
    #[error("systemd: job for {unit} finished with result {result:?}")]
    Job { unit: String, result: String },
    #[error("systemd cgroup driver: {0}")]
    Resources(#[from] resources::ResourceError),
    #[error("rootless systemd cgroup driver: XDG_RUNTIME_DIR is not set, so the user's systemd cannot be found")]
    NoUserManager,
    #[error("rootless systemd cgroup driver: needs cgroup v2 (this host has v1 hierarchies, which an ordinary user cannot manage)")]
    UserOnV1,
}

/// Every D-Bus exchange is bounded by this: a systemd that does not answer
/// (overloaded, stuck) is an error naming what was asked.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where a container's unit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The slice the unit is placed in (`system.slice`, `user.slice` …).
    pub slice: String,
    /// `prefix-name.scope`, or `name` when that is a slice.
    pub unit: String,
}

impl UnitSpec {
    /// Parse `slice:prefix:name`; an empty path is `system.slice:husk:<id>`
    /// (`user.slice` when rootless), as runc's default with its own name.
    pub fn parse(cgroups_path: Option<&str>, id: &str, rootless: bool) -> Result<UnitSpec, SystemdError> {
        let default_slice = if rootless { "user.slice" } else { "system.slice" };
        let path = cgroups_path.unwrap_or("");
        if path.is_empty() {
            return Ok(UnitSpec { slice: default_slice.into(), unit: format!("husk-{id}.scope") });
        }
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else { return Err(SystemdError::PathFormat(path.into())) };
        if name.is_empty() || name.contains('/') || prefix.contains('/') {
            return Err(SystemdError::PathFormat(path.into()));
        }
        let slice = if slice.is_empty() { default_slice } else { slice };
        expand_slice(slice)?;
        let unit = if name.ends_with(".slice") {
            expand_slice(name)?;
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(UnitSpec { slice: slice.into(), unit })
    }

    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }

    /// The unit's cgroup, from the hierarchy's root.
    pub fn cgroup_path(&self) -> Result<PathBuf, SystemdError> {
        // A slice unit lives where its name says, not under `slice`.
        if self.is_slice() {
            return expand_slice(&self.unit);
        }
        Ok(expand_slice(&self.slice)?.join(&self.unit))
    }
}

/// The socket path of a `unix:path=...` D-Bus address in `var`.
fn bus_path(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .and_then(|a| a.split(';').find_map(|a| a.strip_prefix("unix:path=").map(|p| p.split(',').next().unwrap_or(p).to_string())))
}

/// Does a cgroupsPath have the systemd driver's `slice:prefix:name` shape
/// (two colons, no slash: a cgroupfs path is a path)?
pub fn is_unit_path(path: &str) -> bool {
    path.matches(':').count() == 2 && !path.contains('/') && !path.ends_with(':')
}

/// A slice's cgroup path as systemd lays it out: `a-b-c.slice` is
/// `/a.slice/a-b.slice/a-b-c.slice`, and `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf, SystemdError> {
    let bad = |why| SystemdError::Slice(slice.into(), why);
    let name = slice.strip_suffix(".slice").ok_or(bad("it must end in .slice"))?;
    if slice.contains('/') {
        return Err(bad("it must not contain '/'"));
    }
    if name == "-" {
        return Ok(PathBuf::from("/"));
    }
    if name.is_empty() || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(bad("empty or misplaced '-'"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

/// Is this placement made and removed by systemd with the unit? On v2,
/// and systemd's own named v1 hierarchy. On a v1 or hybrid host systemd
/// makes the unit's cgroup in a v1 controller only when the unit uses that
/// controller (a scope without an IO setting gets no blkio cgroup), so husk
/// makes every v1 controller's directory itself, at the unit's path, as
/// runc does; where systemd also makes one, it finds it there.
pub fn manages(p: &Placement) -> bool {
    match p.kind {
        Kind::V2 => true,
        Kind::V1 => p.controllers.iter().all(|c| c.starts_with("name=")),
    }
}

/// The unit properties for `r`: what systemd manages itself, so that its
/// own reloads keep the container's limits.
pub fn resource_properties(r: &Resources, v2: bool) -> Result<Vec<(&'static str, Value)>, SystemdError> {
    let mut p: Vec<(&'static str, Value)> = Vec::new();
    let max = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(m) = &r.memory {
        if let Some(l) = m.limit {
            p.push((if v2 { "MemoryMax" } else { "MemoryLimit" }, Value::U64(max(l))));
        }
        if v2 {
            if let Some(res) = m.reservation {
                p.push(("MemoryLow", Value::U64(max(res))));
            }
            if let (Some(swap), Some(limit)) = (m.swap, m.limit) {
                if let Some(s) = resources::swap_to_v2(swap, limit)? {
                    p.push(("MemorySwapMax", Value::U64(max(s))));
                }
            }
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(shares) = c.shares.filter(|s| *s != 0) {
            if v2 {
                p.push(("CPUWeight", Value::U64(resources::shares_to_weight(shares))));
            } else {
                p.push(("CPUShares", Value::U64(shares)));
            }
        }
        let period = c.period.filter(|p| *p != 0);
        if let Some(period) = period {
            p.push(("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if let Some(quota) = c.quota.filter(|q| *q != 0) {
            p.push(("CPUQuotaPerSecUSec", Value::U64(quota_per_sec(quota, period.unwrap_or(100_000)))));
        }
        if v2 {
            if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
                p.push(("AllowedCPUs", bitmask(cpus)?));
            }
            if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
                p.push(("AllowedMemoryNodes", bitmask(mems)?));
            }
        }
    }
    if let Some(limit) = r.pids.as_ref().and_then(|p| p.limit) {
        // systemd cannot say 0 (see resources::pids_max).
        p.push(("TasksMax", Value::U64(if limit == 0 { 1 } else { max(limit) })));
    }
    if let Some(w) = r.block_io.as_ref().and_then(|b| b.weight).filter(|w| *w != 0) {
        if v2 {
            p.push(("IOWeight", Value::U64(resources::blkio_to_io_weight(w))));
        } else {
            p.push(("BlockIOWeight", Value::U64(w as u64)));
        }
    }
    p.extend(device_properties(&r.devices)?);
    Ok(p)
}

/// CPUQuotaPerSecUSec as runc computes it: systemd keeps it in 10 ms steps,
/// so it is rounded up to the next one; a negative quota is no limit.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota < 0 {
        return u64::MAX;
    }
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpuset list ("0-2,4") as systemd's byte mask, bit i for CPU i.
fn bitmask(list: &str) -> Result<Value, SystemdError> {
    let bad = || resources::ResourceError::Invalid { what: "linux.resources.cpu".into(), why: format!("cpuset list {list:?}") };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.trim().split_once('-').unwrap_or((part.trim(), part.trim()));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= 8192 {
            return Err(bad().into());
        }
        for i in a..=b {
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(Value::Array("y".into(), bytes.into_iter().map(Value::Byte).collect()))
}

/// DevicePolicy/DeviceAllow for the device rules, as runc translates them:
/// a deny-by-default list becomes `strict` plus its allows; an
/// allow-by-default one (denies only) cannot be said to systemd and is left
/// to husk's own cgroupfs rules, with `auto`.
fn device_properties(rules: &[devices::Rule]) -> Result<Vec<(&'static str, Value)>, SystemdError> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let n = devices::normalize(rules)?;
    if n.default_allow {
        return Ok(vec![("DevicePolicy", Value::Str("auto".into())), ("DeviceAllow", Value::Array("(ss)".into(), vec![]))]);
    }
    let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let mut allow = Vec::new();
    for e in &n.exceptions {
        let access = devices::access_str(e.access);
        let kinds: &[(&str, &str)] = match e.typ {
            DevType::All => &[("char", "Character"), ("block", "Block")],
            DevType::Char => &[("char", "Character")],
            DevType::Block => &[("block", "Block")],
        };
        for (kind, section) in kinds {
            let entry = match (e.major, e.minor) {
                (Some(maj), Some(min)) => format!("/dev/{kind}/{maj}:{min}"),
                (None, _) => format!("{kind}-*"),
                // A whole major: systemd wants the driver's name.
                (Some(maj), None) => match major_name(&proc_devices, section, maj) {
                    Some(name) => format!("{kind}-{name}"),
                    None => {
                        tracing::warn!("systemd: no driver name for {kind} major {maj} in /proc/devices: not in DeviceAllow");
                        continue;
                    }
                },
            };
            allow.push(Value::Struct(vec![Value::Str(entry), Value::Str(access.clone())]));
        }
    }
    Ok(vec![("DevicePolicy", Value::Str("strict".into())), ("DeviceAllow", Value::Array("(ss)".into(), allow))])
}

fn major_name(proc_devices: &str, section: &str, major: u32) -> Option<String> {
    let mut in_section = false;
    for line in proc_devices.lines() {
        if line.ends_with("devices:") {
            in_section = line.starts_with(section);
            continue;
        }
        let mut it = line.split_whitespace();
        if in_section && it.next().and_then(|m| m.parse::<u32>().ok()) == Some(major) {
            return it.next().map(String::from);
        }
    }
    None
}

/// A connection to systemd's manager.
pub struct Systemd {
    conn: Connection,
}

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

impl Systemd {
    /// systemd's private socket (root only), then the system bus, as runc
    /// (go-systemd) does: the private socket works without dbus-daemon (a
    /// minimal node) and while the bus restarts, and takes no Hello.
    pub fn connect() -> Result<Systemd, SystemdError> {
        let bus = bus_path("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|| "/run/dbus/system_bus_socket".into());
        Self::connect_to([(PathBuf::from("/run/systemd/private"), false), (PathBuf::from(bus), true)])
    }

    /// The system's systemd, or (`user`, rootless) the caller's own.
    pub fn connect_for(user: bool) -> Result<Systemd, SystemdError> {
        match user {
            true => Self::connect_user(),
            false => Self::connect(),
        }
    }

    /// The calling user's own systemd (rootless, as runc): its private
    /// socket in $XDG_RUNTIME_DIR/systemd, then the session bus
    /// (DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus).
    pub fn connect_user() -> Result<Systemd, SystemdError> {
        let run = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()).map(PathBuf::from).ok_or(SystemdError::NoUserManager)?;
        let bus = bus_path("DBUS_SESSION_BUS_ADDRESS").map_or_else(|| run.join("bus"), PathBuf::from);
        Self::connect_to([(run.join("systemd/private"), false), (bus, true)])
    }

    fn connect_to(candidates: [(PathBuf, bool); 2]) -> Result<Systemd, SystemdError> {
        let mut tried = Vec::new();
        let mut last = None;
        for (path, is_bus) in candidates {
            tried.push(path.display().to_string());
            match Connection::open(&path, is_bus, TIMEOUT) {
                Ok(conn) => {
                    let mut s = Systemd { conn };
                    if is_bus {
                        s.conn
                            .call(&Call {
                                destination: Some("org.freedesktop.DBus"),
                                path: "/org/freedesktop/DBus",
                                interface: "org.freedesktop.DBus",
                                member: "AddMatch",
                                args: vec![Value::Str(format!(
                                    "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'"
                                ))],
                            })
                            .map_err(|err| SystemdError::Call { what: "subscribing to", unit: "JobRemoved".into(), err })?;
                    }
                    // Without a subscriber systemd sends no job signals on
                    // the bus; direct connections are subscribed already.
                    if is_bus {
                        s.manager("Subscribe", "", vec![])?;
                    }
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(SystemdError::Connect {
            tried: tried.join(", "),
            last: last.unwrap_or(DbusError::Malformed("no socket")),
        })
    }

    /// The manager's own cgroup: a user's systemd places its units below
    /// it (`/user.slice/user-1000.slice/user@1000.service`), the system's
    /// at the root.
    pub fn manager_cgroup(&mut self) -> Result<PathBuf, SystemdError> {
        let reply = self
            .conn
            .call(&Call {
                destination: Some(DEST),
                path: PATH,
                interface: "org.freedesktop.DBus.Properties",
                member: "Get",
                args: vec![Value::Str(MANAGER.into()), Value::Str("ControlGroup".into())],
            })
            .map_err(|err| SystemdError::Call { what: "Get", unit: "ControlGroup".into(), err })?;
        match reply.first() {
            Some(Value::Variant(v)) => v.as_str().map(PathBuf::from),
            _ => None,
        }
        .ok_or(SystemdError::Call { what: "Get", unit: "ControlGroup".into(), err: DbusError::Malformed("not a string") })
    }

    fn manager(&mut self, member: &'static str, unit: &str, args: Vec<Value>) -> Result<Vec<Value>, SystemdError> {
        self.conn
            .call(&Call { destination: Some(DEST), path: PATH, interface: MANAGER, member, args })
            .map_err(|err| SystemdError::Call { what: member, unit: unit.into(), err })
    }

    /// Wait for the job a call returned to be removed, and check its result.
    fn wait_job(&mut self, unit: &str, reply: Vec<Value>) -> Result<(), SystemdError> {
        let Some(job) = reply.first().and_then(Value::as_str).map(String::from) else {
            return Err(SystemdError::Call { what: "job", unit: unit.into(), err: DbusError::Malformed("no job path in reply") });
        };
        let body = self
            .conn
            .wait_signal("JobRemoved", TIMEOUT, |b| b.get(1).and_then(Value::as_str) == Some(job.as_str()))
            .map_err(|err| SystemdError::Call { what: "waiting for the job of", unit: unit.into(), err })?;
        match body.get(3).and_then(Value::as_str) {
            Some("done") => Ok(()),
            other => Err(SystemdError::Job { unit: unit.into(), result: other.unwrap_or("?").into() }),
        }
    }

    /// Start the container's unit with `pid` in it. A unit of that name
    /// left over from an earlier container is stopped and the start
    /// retried once, as runc does.
    pub fn start(&mut self, spec: &UnitSpec, id: &str, pid: i32, resources: Vec<(&'static str, Value)>) -> Result<(), SystemdError> {
        let mut props = vec![
            ("Description", Value::Str(format!("husk container {id}"))),
            ("Delegate", Value::Bool(true)),
            ("DefaultDependencies", Value::Bool(false)),
        ];
        if spec.is_slice() {
            // A pod's slice: its parent from the name, no processes and no
            // delegation (systemd refuses it for slices).
            props.retain(|(k, _)| *k != "Delegate");
            props.push(("Wants", Value::Array("s".into(), vec![Value::Str(spec.slice.clone())])));
        } else {
            props.push(("Slice", Value::Str(spec.slice.clone())));
            props.push(("PIDs", Value::Array("u".into(), vec![Value::U32(pid as u32)])));
        }
        props.extend(resources);
        let args = || {
            vec![
                Value::Str(spec.unit.clone()),
                Value::Str("replace".into()),
                dbus::properties(props.clone()),
                Value::Array("(sa(sv))".into(), vec![]),
            ]
        };
        match self.manager("StartTransientUnit", &spec.unit, args()) {
            Ok(reply) => self.wait_job(&spec.unit, reply),
            Err(SystemdError::Call { err: DbusError::Remote(name, _), .. }) if name == "org.freedesktop.systemd1.UnitExists" => {
                if spec.is_slice() {
                    // Slices are shared by a pod's containers.
                    return Ok(());
                }
                self.stop(&spec.unit)?;
                let reply = self.manager("StartTransientUnit", &spec.unit, args())?;
                self.wait_job(&spec.unit, reply)
            }
            Err(e) => Err(e),
        }
    }

    /// Stop the unit and forget a failed state; a unit that is gone is fine.
    pub fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        match self.manager("StopUnit", unit, vec![Value::Str(unit.into()), Value::Str("replace".into())]) {
            Ok(reply) => match self.wait_job(unit, reply) {
                Ok(()) | Err(SystemdError::Job { .. }) => {}
                Err(e) => return Err(e),
            },
            Err(SystemdError::Call { err: DbusError::Remote(name, _), .. }) if name == "org.freedesktop.systemd1.NoSuchUnit" => {}
            Err(e) => return Err(e),
        }
        // Only a failed unit is kept around; for others this is NoSuchUnit.
        let _ = self.manager("ResetFailedUnit", unit, vec![Value::Str(unit.into())]);
        Ok(())
    }

    /// `update`: the new limits as runtime properties of the unit.
    pub fn set_properties(&mut self, unit: &str, props: Vec<(&'static str, Value)>) -> Result<(), SystemdError> {
        if props.is_empty() {
            return Ok(());
        }
        self.manager("SetUnitProperties", unit, vec![Value::Str(unit.into()), Value::Bool(true), dbus::properties(props)])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cgroups_path_to_unit_as_runc() {
        let u = UnitSpec::parse(Some("system.slice:docker:abc"), "abc", false).unwrap();
        assert_eq!((u.slice.as_str(), u.unit.as_str()), ("system.slice", "docker-abc.scope"));
        assert_eq!(u.cgroup_path().unwrap(), Path::new("/system.slice/docker-abc.scope"));
        let u = UnitSpec::parse(None, "c1", false).unwrap();
        assert_eq!((u.slice.as_str(), u.unit.as_str()), ("system.slice", "husk-c1.scope"));
        let u = UnitSpec::parse(Some(":cri-containerd:c2"), "c2", true).unwrap();
        assert_eq!(u.cgroup_path().unwrap(), Path::new("/user.slice/cri-containerd-c2.scope"));
        let u = UnitSpec::parse(Some("kubepods-besteffort.slice:cri-containerd:c3"), "c3", false).unwrap();
        assert_eq!(u.cgroup_path().unwrap(), Path::new("/kubepods.slice/kubepods-besteffort.slice/cri-containerd-c3.scope"));
        let u = UnitSpec::parse(Some("kubepods.slice::kubepods-pod1.slice"), "p", false).unwrap();
        assert!(u.is_slice());
        assert_eq!(u.cgroup_path().unwrap(), Path::new("/kubepods.slice/kubepods-pod1.slice"));
        for bad in ["/foo", "a:b", "a.slice:b:c:d", "nope:b:c", "system.slice:b:", "a--b.slice:x:y"] {
            assert!(UnitSpec::parse(Some(bad), "x", false).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_paths_are_told_from_cgroupfs_paths() {
        assert!(is_unit_path("system.slice:docker:abc"));
        assert!(is_unit_path(":cri-containerd:abc"));
        assert!(!is_unit_path("/default/abc"));
        assert!(!is_unit_path("abc"));
        assert!(!is_unit_path("a:b:"));
    }

    #[test]
    fn slices_expand_as_systemd_lays_them_out() {
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), Path::new("/a.slice/a-b.slice/a-b-c.slice"));
        for bad in ["a", "-a.slice", "a-.slice", "a/b.slice", ".slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resources_become_the_properties_runc_sets() {
        let r: Resources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
            "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
            "pids": {"limit": 0},
            "blockIO": {"weight": 500}
        }))
        .unwrap();
        let p: std::collections::HashMap<&str, Value> = resource_properties(&r, true).unwrap().into_iter().collect();
        assert_eq!(p["MemoryMax"], Value::U64(104857600));
        assert_eq!(p["MemoryLow"], Value::U64(52428800));
        assert_eq!(p["MemorySwapMax"], Value::U64(104857600));
        assert_eq!(p["CPUWeight"], Value::U64(39));
        assert_eq!(p["CPUQuotaPerSecUSec"], Value::U64(250000));
        assert_eq!(p["CPUQuotaPeriodUSec"], Value::U64(100000));
        assert_eq!(p["AllowedCPUs"], Value::Array("y".into(), vec![Value::Byte(0b1011)]));
        assert_eq!(p["TasksMax"], Value::U64(1));
        assert_eq!(p["IOWeight"], Value::U64(4950));
        let v1: std::collections::HashMap<&str, Value> = resource_properties(&r, false).unwrap().into_iter().collect();
        assert_eq!(v1["MemoryLimit"], Value::U64(104857600));
        assert_eq!(v1["CPUShares"], Value::U64(1024));
        assert!(!v1.contains_key("AllowedCPUs"));
        assert_eq!(quota_per_sec(1234, 100000), 20000);
        assert_eq!(quota_per_sec(-1, 100000), u64::MAX);
    }

    #[test]
    fn device_rules_become_device_allow() {
        // What a config usually says (deny all, then allow), plus runc's defaults.
        let mut rules = vec![devices::Rule { allow: false, typ: Some("a".into()), major: None, minor: None, access: Some("rwm".into()) }];
        rules.push(devices::Rule { allow: true, typ: Some("c".into()), major: Some(10), minor: Some(229), access: Some("rw".into()) });
        rules.extend(devices::default_rules());
        let p = device_properties(&rules).unwrap();
        assert_eq!(p[0], ("DevicePolicy", Value::Str("strict".into())));
        let Value::Array(_, allow) = &p[1].1 else { panic!() };
        let entries: Vec<String> = allow.iter().map(|v| match v {
            Value::Struct(f) => format!("{} {}", f[0].as_str().unwrap(), f[1].as_str().unwrap()),
            _ => panic!(),
        }).collect();
        assert!(entries.contains(&"/dev/char/1:3 rwm".to_string()), "{entries:?}");
        assert!(entries.contains(&"/dev/char/10:229 rw".to_string()), "{entries:?}");
        assert!(entries.contains(&"char-* m".to_string()), "{entries:?}");
        let open = vec![devices::Rule { allow: true, typ: Some("a".into()), major: None, minor: None, access: Some("rwm".into()) }];
        assert_eq!(device_properties(&open).unwrap()[0], ("DevicePolicy", Value::Str("auto".into())));
    }

    #[test]
    fn drivers_are_named_from_proc_devices() {
        let pd = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        assert_eq!(major_name(pd, "Character", 136).as_deref(), Some("pts"));
        assert_eq!(major_name(pd, "Block", 8).as_deref(), Some("sd"));
        assert_eq!(major_name(pd, "Block", 136), None);
    }
}
