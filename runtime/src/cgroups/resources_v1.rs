//! Writing resources into cgroup v1 hierarchies.

use std::path::Path;

use super::devices::{self, Rule};
use super::resources::{read, write, write_each, BlockIo, Cpu, Memory, Network, ResourceError, Target};
use super::CgroupRecord;

pub fn memory(dir: &Path, m: &Memory) -> Result<(), ResourceError> {
    let limit = m.limit.filter(|&v| v != 0);
    let swap = m.swap.filter(|&v| v != 0);
    if let (Some(l), Some(s)) = (limit, swap) {
        if s != -1 && l != -1 && s < l {
            return Err(ResourceError::Invalid {
                what: "linux.resources.memory.swap".into(),
                why: "memory+swap limit must be >= memory limit".into(),
            });
        }
    }
    if let Some(l) = limit {
        check_usage(m, l, || {
            read(dir, "memory.usage_in_bytes").map(|s| s.trim().parse::<u64>().unwrap_or(0))
        })?;
    }
    // The kernel keeps limit <= memsw at every instant: when growing, raise
    // memsw first; when shrinking, lower the limit first.
    let grows = match (limit, swap) {
        (_, Some(-1)) => true,
        (Some(-1), _) => true,
        (Some(l), _) => {
            let cur: i64 = read(dir, "memory.limit_in_bytes")?.trim().parse().unwrap_or(i64::MAX);
            l > cur
        }
        _ => false,
    };
    let set_swap = |s: i64| write(dir, "memory.memsw.limit_in_bytes", &s.to_string(), "linux.resources.memory.swap");
    let set_limit = |l: i64| write(dir, "memory.limit_in_bytes", &l.to_string(), "linux.resources.memory.limit");
    if grows {
        if let Some(s) = swap {
            set_swap(s)?;
        }
        if let Some(l) = limit {
            set_limit(l)?;
        }
    } else {
        if let Some(l) = limit {
            set_limit(l)?;
        }
        if let Some(s) = swap {
            set_swap(s)?;
        }
    }
    if let Some(r) = m.reservation.filter(|&v| v != 0) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string(), "linux.resources.memory.reservation")?;
    }
    if m.kernel.is_some_and(|k| k != 0) {
        // As in runc: kernel memory limits are obsolete (no-ops since Linux 5.16).
        tracing::warn!("linux.resources.memory.kernel is deprecated and ignored");
    }
    if let Some(k) = m.kernel_tcp.filter(|&v| v != 0) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &k.to_string(), "linux.resources.memory.kernelTCP")?;
    }
    if let Some(s) = m.swappiness.filter(|&v| v != -1) {
        if !(0..=100).contains(&s) {
            return Err(ResourceError::Invalid {
                what: "linux.resources.memory.swappiness".into(),
                why: format!("{s} is not within 0..=100"),
            });
        }
        write(dir, "memory.swappiness", &s.to_string(), "linux.resources.memory.swappiness")?;
    }
    if m.disable_oom_killer == Some(true) {
        write(dir, "memory.oom_control", "1", "linux.resources.memory.disableOOMKiller")?;
    }
    Ok(())
}

pub(crate) fn check_usage(m: &Memory, limit: i64, usage: impl FnOnce() -> Result<u64, ResourceError>) -> Result<(), ResourceError> {
    if m.check_before_update != Some(true) || limit <= 0 {
        return Ok(());
    }
    let usage = usage()?;
    if (limit as u64) < usage {
        return Err(ResourceError::BelowUsage { limit, usage });
    }
    Ok(())
}

pub fn cpu(dir: &Path, c: &Cpu) -> Result<(), ResourceError> {
    if let Some(s) = c.shares.filter(|&s| s != 0) {
        write(dir, "cpu.shares", &s.to_string(), "linux.resources.cpu.shares")?;
        // The kernel clamps silently; runc reports it, so do we.
        let got: u64 = read(dir, "cpu.shares")?.trim().parse().unwrap_or(0);
        if got != s {
            return Err(ResourceError::Invalid {
                what: "linux.resources.cpu.shares".into(),
                why: format!("{s} is out of range (the kernel set {got})"),
            });
        }
    }
    if let Some(p) = c.period.filter(|&p| p != 0) {
        write(dir, "cpu.cfs_period_us", &p.to_string(), "linux.resources.cpu.period")?;
    }
    if let Some(q) = c.quota.filter(|&q| q != 0) {
        write(dir, "cpu.cfs_quota_us", &q.to_string(), "linux.resources.cpu.quota")?;
    }
    if let Some(b) = c.burst {
        write(dir, "cpu.cfs_burst_us", &b.to_string(), "linux.resources.cpu.burst")?;
    }
    // The runtime must fit the period at all times: period first.
    if let Some(p) = c.realtime_period.filter(|&p| p != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string(), "linux.resources.cpu.realtimePeriod")?;
    }
    if let Some(r) = c.realtime_runtime.filter(|&r| r != 0) {
        write(dir, "cpu.rt_runtime_us", &r.to_string(), "linux.resources.cpu.realtimeRuntime")?;
    }
    if let Some(i) = c.idle {
        write(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    Ok(())
}

pub fn block_io(dir: &Path, b: &BlockIo) -> Result<(), ResourceError> {
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        // Without CFQ the weight lives in BFQ's file (same range).
        let file = if dir.join("blkio.weight").exists() { "blkio.weight" } else { "blkio.bfq.weight" };
        write(dir, file, &w.to_string(), "linux.resources.blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight.filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string(), "linux.resources.blockIO.leafWeight")?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            let file = if dir.join("blkio.weight_device").exists() { "blkio.weight_device" } else { "blkio.bfq.weight_device" };
            write(dir, file, &format!("{}:{} {w}", d.major, d.minor), "linux.resources.blockIO.weightDevice")?;
        }
        if let Some(w) = d.leaf_weight {
            write(dir, "blkio.leaf_weight_device", &format!("{}:{} {w}", d.major, d.minor), "linux.resources.blockIO.weightDevice.leafWeight")?;
        }
    }
    for (file, list, what) in [
        ("blkio.throttle.read_bps_device", &b.throttle_read_bps_device, "throttleReadBpsDevice"),
        ("blkio.throttle.write_bps_device", &b.throttle_write_bps_device, "throttleWriteBpsDevice"),
        ("blkio.throttle.read_iops_device", &b.throttle_read_iops_device, "throttleReadIOPSDevice"),
        ("blkio.throttle.write_iops_device", &b.throttle_write_iops_device, "throttleWriteIOPSDevice"),
    ] {
        for d in list {
            write(dir, file, &format!("{}:{} {}", d.major, d.minor, d.rate), &format!("linux.resources.blockIO.{what}"))?;
        }
    }
    Ok(())
}

/// net_cls and net_prio exist only on v1.
pub fn network(cg: &CgroupRecord, n: &Network) -> Result<(), ResourceError> {
    if let Some(id) = n.class_id {
        match cg.target("net_cls") {
            Some(Target::V1(d)) => write(d, "net_cls.classid", &id.to_string(), "linux.resources.network.classID")?,
            Some(Target::V2(_)) => return Err(ResourceError::NotOnV2 { what: "linux.resources.network.classID".into() }),
            None if cg.v2_dir().is_some() && cg.placements.len() == 1 => {
                return Err(ResourceError::NotOnV2 { what: "linux.resources.network.classID".into() })
            }
            None => {
                return Err(ResourceError::NoController { controller: "net_cls".into(), what: "linux.resources.network.classID".into() })
            }
        }
    }
    if !n.priorities.is_empty() {
        let d = match cg.target("net_prio") {
            Some(Target::V1(d)) => d,
            Some(Target::V2(_)) => return Err(ResourceError::NotOnV2 { what: "linux.resources.network.priorities".into() }),
            None => {
                return Err(ResourceError::NoController { controller: "net_prio".into(), what: "linux.resources.network.priorities".into() })
            }
        };
        for p in &n.priorities {
            write(d, "net_prio.ifpriomap", &format!("{} {}", p.name, p.priority), "linux.resources.network.priorities")?;
        }
    }
    Ok(())
}

/// Reset to the normalized default, then list the exceptions.
pub fn devices(dir: &Path, rules: &[Rule]) -> Result<(), ResourceError> {
    let n = devices::normalize(rules)?;
    let what = "linux.resources.devices";
    let (reset, except) = if n.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    write(dir, reset, "a", what)?;
    if n.exceptions.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = n.exceptions.iter().map(|e| e.v1_line()).collect();
    write_each(dir, except, &lines, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::testutil::{dir_with, get};

    #[test]
    fn memory_files() {
        let t = dir_with(&[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.swappiness", ""),
            ("memory.oom_control", ""),
            ("memory.usage_in_bytes", "4096"),
        ]);
        let m = Memory {
            limit: Some(1 << 20),
            swap: Some(2 << 20),
            reservation: Some(1 << 19),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
            ..Default::default()
        };
        memory(t.path(), &m).unwrap();
        assert_eq!(get(&t, "memory.limit_in_bytes"), "1048576");
        assert_eq!(get(&t, "memory.memsw.limit_in_bytes"), "2097152");
        assert_eq!(get(&t, "memory.soft_limit_in_bytes"), "524288");
        assert_eq!(get(&t, "memory.oom_control"), "1");
        let bad = Memory { swappiness: Some(101), ..Default::default() };
        assert!(memory(t.path(), &bad).is_err());
        let below = Memory { limit: Some(100), check_before_update: Some(true), ..Default::default() };
        assert!(matches!(memory(t.path(), &below), Err(ResourceError::BelowUsage { .. })));
    }

    #[test]
    fn blkio_lines() {
        let t = dir_with(&[("blkio.bfq.weight", ""), ("blkio.throttle.read_bps_device", "")]);
        let b = BlockIo {
            weight: Some(300),
            throttle_read_bps_device: vec![super::super::resources::ThrottleDevice { major: 8, minor: 0, rate: 1024 }],
            ..Default::default()
        };
        block_io(t.path(), &b).unwrap();
        assert_eq!(get(&t, "blkio.bfq.weight"), "300");
        assert_eq!(get(&t, "blkio.throttle.read_bps_device"), "8:0 1024");
        let w = BlockIo { leaf_weight: Some(5), ..Default::default() };
        assert!(matches!(block_io(t.path(), &w), Err(ResourceError::Unsupported { .. })));
    }
}
