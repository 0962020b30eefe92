//! `linux.resources`: the limits a container's cgroups enforce.
//!
//! The config's resources are read into husk's own plain structs (the same
//! JSON shape as the runtime-spec, so `update -r file.json` reads them too),
//! then written by `resources_v1` or `resources_v2` into whichever placement
//! carries each controller. On a hybrid host a controller lives in exactly
//! one of the two; a resource the config asks for whose controller is in
//! neither is an error, while a controller the config does not use may be
//! missing without consequence.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::devices::Rule;
use super::{resources_v1, resources_v2, CgroupRecord, Kind};

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("cannot set {file} to {value:?}: {source}")]
    Write {
        file: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file} does not exist: this host cannot apply {what}")]
    Unsupported { file: PathBuf, what: String },
    #[error("the {controller} cgroup controller is not available: cannot apply {what}")]
    NoController { controller: String, what: String },
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{what} is not supported on cgroup v2")]
    NotOnV2 { what: String },
    #[error("{what} is not supported on cgroup v1")]
    NotOnV1 { what: String },
    #[error("memory limit {limit} is below the current usage {usage} (checkBeforeUpdate)")]
    BelowUsage { limit: i64, usage: u64 },
    #[error("device cgroup program: {0}")]
    Bpf(#[from] super::devices::bpf::BpfError),
}

fn invalid(what: &str, why: impl Into<String>) -> ResourceError {
    ResourceError::Invalid { what: what.into(), why: why.into() }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub rdma: HashMap<String, Rdma>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub unified: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    pub swap: Option<i64>,
    pub kernel: Option<i64>,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<i64>,
    #[serde(rename = "disableOOMKiller")]
    pub disable_oom_killer: Option<bool>,
    pub use_hierarchy: Option<bool>,
    pub check_before_update: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub burst: Option<u64>,
    pub period: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub idle: Option<i64>,
}

/// pids.max for a `pids.limit`, as current runc writes it (runtime-spec
/// 1.3): negative is no limit; 0 is a real limit, written as 1 because
/// systemd's TasksMax cannot say 0 and runc keeps its two drivers alike (the
/// container's init already counts as one task, so no fork succeeds either
/// way). runc 1.1.5 still read 0 as "unset".
pub fn pids_max(limit: i64) -> String {
    match limit {
        l if l < 0 => "max".to_string(),
        0 => "1".to_string(),
        l => l.to_string(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pids {
    /// Optional since runtime-spec 1.3: a `pids` object without it changes
    /// nothing.
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    #[serde(default)]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default)]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default)]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleReadIOPSDevice")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleWriteIOPSDevice")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(rename = "classID")]
    pub class_id: Option<u32>,
    #[serde(default)]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

impl Resources {
    /// The resources a new container gets: the config's, plus (as runc
    /// does) the default device rules and an allow rule per `linux.devices`
    /// entry appended after the config's rules, so a container can always
    /// use /dev/null & co. and the nodes it was explicitly given.
    /// `raw` is config.json as given: oci-spec reads a `pids` object
    /// without `limit` (optional since runtime-spec 1.3) as limit 0, which
    /// is a real limit now, so a 0 is checked against the document.
    pub fn for_container(linux: &oci_spec::runtime::Linux, raw: &[u8]) -> Result<Resources, ResourceError> {
        let mut r: Resources = match linux.resources() {
            Some(res) => {
                let v = serde_json::to_value(res).map_err(|e| invalid("linux.resources", e.to_string()))?;
                serde_json::from_value(v).map_err(|e| invalid("linux.resources", e.to_string()))?
            }
            None => Resources::default(),
        };
        if let Some(p) = r.pids.as_mut().filter(|p| p.limit == Some(0)) {
            let doc: serde_json::Value =
                serde_json::from_slice(raw).map_err(|e| invalid("config.json", e.to_string()))?;
            if doc.pointer("/linux/resources/pids/limit").is_none() {
                p.limit = None;
            }
        }
        r.devices.extend(super::devices::default_rules());
        for d in linux.devices().iter().flatten() {
            let typ = match d.typ() {
                oci_spec::runtime::LinuxDeviceType::B => 'b',
                oci_spec::runtime::LinuxDeviceType::P => continue,
                _ => 'c',
            };
            r.devices.push(Rule {
                allow: true,
                typ: Some(typ.to_string()),
                major: Some(d.major()),
                minor: Some(d.minor()),
                access: Some("rwm".into()),
            });
        }
        Ok(r)
    }

    /// Parse a runtime-spec `linux.resources` JSON document (`update -r`).
    pub fn from_json(text: &[u8]) -> Result<Resources, ResourceError> {
        serde_json::from_slice(text).map_err(|e| invalid("resources JSON", e.to_string()))
    }
}

/// Where a controller lives for this container.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl CgroupRecord {
    pub(crate) fn v2_dir(&self) -> Option<&Path> {
        self.placements.iter().find(|p| p.kind == Kind::V2).map(|p| p.path.as_path())
    }

    /// The v1 hierarchy carrying `ctrl`, else the v2 cgroup if the kernel
    /// offers `ctrl` there (listed in its cgroup.controllers).
    pub(crate) fn target(&self, ctrl: &str) -> Option<Target<'_>> {
        if let Some(p) = self
            .placements
            .iter()
            .find(|p| p.kind == Kind::V1 && p.controllers.iter().any(|c| c == ctrl))
        {
            return Some(Target::V1(&p.path));
        }
        let dir = self.v2_dir()?;
        // Device filtering on v2 is a BPF program, which attaches to any cgroup.
        if ctrl == "devices" {
            return Some(Target::V2(dir));
        }
        let ctrls = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        ctrls.split_whitespace().any(|c| c == ctrl).then_some(Target::V2(dir))
    }

    fn need(&self, ctrl: &str, what: &str) -> Result<Target<'_>, ResourceError> {
        self.target(ctrl).ok_or_else(|| ResourceError::NoController {
            controller: ctrl.into(),
            what: what.into(),
        })
    }

    /// A v1 cgroup's realtime runtime must fit in its parent's (EINVAL
    /// otherwise), and a new cgroup starts with none: give each parent husk
    /// made for this container, top down, at least `runtime`. Parents husk
    /// did not make are left alone.
    fn grant_rt_budget(&self, dir: &Path, runtime: i64) -> Result<(), ResourceError> {
        for parent in self.created.iter().filter(|c| dir.starts_with(c) && c.as_path() != dir) {
            let f = parent.join("cpu.rt_runtime_us");
            let have: i64 = std::fs::read_to_string(&f).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            if have < runtime {
                write(parent, "cpu.rt_runtime_us", &runtime.to_string(), "linux.resources.cpu.realtimeRuntime (for a parent cgroup)")?;
            }
        }
        Ok(())
    }

    /// Write every resource the config sets. Called once the cgroups exist
    /// and before the user program runs; `update` calls it again with only
    /// the values to change (devices are never changed by `update`).
    ///
    /// A record without placements is a rootless container's that has no
    /// cgroup (`create_rootless` made none and warned that the limits are
    /// ignored): nothing to write. (`update` refuses such a container before.)
    pub fn apply(&self, r: &Resources) -> Result<(), ResourceError> {
        if self.placements.is_empty() {
            return Ok(());
        }
        if let Some(m) = &r.memory {
            if memory_is_set(m) {
                match self.need("memory", "linux.resources.memory")? {
                    Target::V1(d) => resources_v1::memory(d, m)?,
                    Target::V2(d) => resources_v2::memory(d, m)?,
                }
            }
        }
        if let Some(c) = &r.cpu {
            if c.shares.is_some_and(|s| s != 0)
                || c.quota.is_some_and(|q| q != 0)
                || c.period.is_some_and(|p| p != 0)
                || c.burst.is_some()
                || c.realtime_runtime.is_some_and(|v| v != 0)
                || c.realtime_period.is_some_and(|v| v != 0)
                || c.idle.is_some()
            {
                match self.need("cpu", "linux.resources.cpu")? {
                    Target::V1(d) => {
                        if let Some(rt) = c.realtime_runtime.filter(|&v| v > 0) {
                            self.grant_rt_budget(d, rt)?;
                        }
                        resources_v1::cpu(d, c)?
                    }
                    Target::V2(d) => resources_v2::cpu(d, c)?,
                }
            }
            if c.cpus.as_deref().is_some_and(|s| !s.is_empty()) || c.mems.as_deref().is_some_and(|s| !s.is_empty()) {
                let d = match self.need("cpuset", "linux.resources.cpu.cpus/mems")? {
                    Target::V1(d) | Target::V2(d) => d,
                };
                cpuset(d, c)?;
            }
        }
        if let Some(limit) = r.pids.as_ref().and_then(|p| p.limit) {
            let d = match self.need("pids", "linux.resources.pids")? {
                Target::V1(d) | Target::V2(d) => d,
            };
            write(d, "pids.max", &pids_max(limit), "linux.resources.pids.limit")?;
        }
        if let Some(b) = &r.block_io {
            if block_io_is_set(b) {
                match self.need(if self.target("blkio").is_some() { "blkio" } else { "io" }, "linux.resources.blockIO")? {
                    Target::V1(d) => resources_v1::block_io(d, b)?,
                    Target::V2(d) => resources_v2::block_io(d, b)?,
                }
            }
        }
        for h in &r.hugepage_limits {
            validate_page_size(&h.page_size)?;
            let what = format!("linux.resources.hugepageLimits[{}]", h.page_size);
            match self.need("hugetlb", &what)? {
                Target::V1(d) => write(d, &format!("hugetlb.{}.limit_in_bytes", h.page_size), &h.limit.to_string(), &what)?,
                Target::V2(d) => write(d, &format!("hugetlb.{}.max", h.page_size), &h.limit.to_string(), &what)?,
            }
        }
        if let Some(n) = &r.network {
            resources_v1::network(self, n)?;
        }
        for (dev, lim) in &r.rdma {
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(invalid("linux.resources.rdma", format!("device name {dev:?}")));
            }
            let mut line = dev.clone();
            if let Some(h) = lim.hca_handles {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects {
                line.push_str(&format!(" hca_object={o}"));
            }
            if line == *dev {
                continue;
            }
            let d = match self.need("rdma", "linux.resources.rdma")? {
                Target::V1(d) | Target::V2(d) => d,
            };
            write(d, "rdma.max", &line, "linux.resources.rdma")?;
        }
        // Allow-all needs no write: a new cgroup already allows what its
        // parent does, and writing "a" would fail under a restricted parent.
        if !r.devices.is_empty() && super::devices::normalize(&r.devices)? != super::devices::Normalized::allow_all() {
            match self.need("devices", "linux.resources.devices")? {
                Target::V1(d) => resources_v1::devices(d, &r.devices)?,
                Target::V2(d) => resources_v2::devices(d, &r.devices)?,
            }
        }
        if !r.unified.is_empty() {
            let Some(d) = self.v2_dir() else {
                return Err(ResourceError::NotOnV1 { what: "linux.resources.unified".into() });
            };
            // Sorted, so a failure is reproducible.
            let mut keys: Vec<&String> = r.unified.keys().collect();
            keys.sort();
            for k in keys {
                if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                    return Err(invalid("linux.resources.unified", format!("key {k:?} is not a cgroup file name")));
                }
                write(d, k, &r.unified[k], &format!("linux.resources.unified[{k}]"))?;
            }
        }
        Ok(())
    }
}

fn memory_is_set(m: &Memory) -> bool {
    m.limit.is_some_and(|v| v != 0)
        || m.reservation.is_some_and(|v| v != 0)
        || m.swap.is_some_and(|v| v != 0)
        || m.kernel_tcp.is_some_and(|v| v != 0)
        || m.swappiness.is_some_and(|v| v != -1)
        || m.disable_oom_killer == Some(true)
}

fn block_io_is_set(b: &BlockIo) -> bool {
    b.weight.is_some_and(|w| w != 0)
        || b.leaf_weight.is_some_and(|w| w != 0)
        || !b.weight_device.is_empty()
        || !b.throttle_read_bps_device.is_empty()
        || !b.throttle_write_bps_device.is_empty()
        || !b.throttle_read_iops_device.is_empty()
        || !b.throttle_write_iops_device.is_empty()
}

fn cpuset(dir: &Path, c: &Cpu) -> Result<(), ResourceError> {
    if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus, "linux.resources.cpu.cpus")?;
    }
    if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

/// Page sizes become part of a file name: only "2MB", "1GB", "64KB" shapes.
fn validate_page_size(s: &str) -> Result<(), ResourceError> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB") {
        return Err(invalid("hugepageLimits pageSize", format!("{s:?} (want e.g. 2MB)")));
    }
    Ok(())
}

/// Write one cgroup file. A file that does not exist means the kernel
/// lacks the feature: say so, naming the file and the config field.
pub(crate) fn write(dir: &Path, file: &str, value: &str, what: &str) -> Result<(), ResourceError> {
    let f = dir.join(file);
    if !f.exists() {
        return Err(ResourceError::Unsupported { file: f, what: what.into() });
    }
    std::fs::write(&f, value).map_err(|source| ResourceError::Write { file: f, value: value.into(), source })
}

/// Several values into one file, a write(2) each (files such as
/// devices.allow take one entry per write), through one open: a v1
/// container's default device rules are a dozen lines.
pub(crate) fn write_each(dir: &Path, file: &str, values: &[String], what: &str) -> Result<(), ResourceError> {
    use std::io::Write;
    let f = dir.join(file);
    let mut out = match std::fs::OpenOptions::new().write(true).open(&f) {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ResourceError::Unsupported { file: f, what: what.into() }),
        Err(source) => return Err(ResourceError::Write { file: f, value: values.first().cloned().unwrap_or_default(), source }),
    };
    for v in values {
        out.write_all(v.as_bytes()).map_err(|source| ResourceError::Write { file: f.clone(), value: v.clone(), source })?;
    }
    Ok(())
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, ResourceError> {
    let f = dir.join(file);
    std::fs::read_to_string(&f).map_err(|source| ResourceError::Read { file: f, source })
}

/// runc's cgroup v1 shares -> v2 weight mapping ([2, 262144] -> [1, 10000]).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's blkio weight [10, 1000] -> io.weight [1, 10000] mapping.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// The OCI swap value is memory+swap (v1 semantics); v2's memory.swap.max
/// is swap alone. None means leave memory.swap.max alone; -1 means "max".
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>, ResourceError> {
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if limit == 0 || limit == -1 {
        return Err(invalid("memory.swap", "a swap limit needs a memory limit"));
    }
    if limit < 0 || swap < 0 {
        return Err(invalid("memory", format!("limit {limit}, swap {swap}")));
    }
    if swap < limit {
        return Err(invalid("memory.swap", "memory+swap limit must be >= memory limit"));
    }
    Ok(Some(swap - limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn pids_limits_like_current_runc() {
        assert_eq!((pids_max(-1), pids_max(0), pids_max(7)), ("max".into(), "1".into(), "7".into()));
        let limit = |raw: &str| {
            let linux: oci_spec::runtime::Linux = serde_json::from_str(raw).unwrap();
            let doc = format!(r#"{{"linux":{raw}}}"#);
            Resources::for_container(&linux, doc.as_bytes()).unwrap().pids.and_then(|p| p.limit)
        };
        assert_eq!(limit(r#"{"resources":{"pids":{"limit":0}}}"#), Some(0));
        assert_eq!(limit(r#"{"resources":{"pids":{}}}"#), None);
        assert_eq!(limit(r#"{"resources":{"pids":{"limit":-1}}}"#), Some(-1));
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(0, 100).unwrap(), None);
        assert_eq!(swap_to_v2(300, 100).unwrap(), Some(200));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn spec_json_parses() {
        let r = Resources::from_json(
            br#"{"memory":{"limit":1048576,"swap":-1,"disableOOMKiller":true},
                 "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},
                 "pids":{"limit":10},
                 "blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}],
                            "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":7}]},
                 "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                 "network":{"classID":5,"priorities":[{"name":"eth0","priority":3}]},
                 "devices":[{"allow":false,"access":"rwm"}],
                 "unified":{"memory.high":"100000"}}"#,
        )
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().disable_oom_killer, Some(true));
        assert_eq!(r.block_io.as_ref().unwrap().throttle_write_iops_device[0].rate, 7);
        assert_eq!(r.network.as_ref().unwrap().class_id, Some(5));
        assert_eq!(r.devices.len(), 1);
    }

    #[test]
    fn page_sizes_are_checked() {
        validate_page_size("2MB").unwrap();
        validate_page_size("1GB").unwrap();
        assert!(validate_page_size("../x").is_err());
        assert!(validate_page_size("2").is_err());
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let e = write(t.path(), "pids.max", "5", "linux.resources.pids.limit").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("pids.max") && msg.contains("linux.resources.pids"), "{msg}");
    }
}
