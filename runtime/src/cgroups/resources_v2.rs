//! Writing resources into a cgroup v2 directory.

use std::path::Path;

use super::devices::{self, Rule};
use super::resources::{blkio_to_io_weight, read, shares_to_weight, swap_to_v2, write, BlockIo, Cpu, Memory, ResourceError};

/// v2 spells "no limit" as "max".
pub fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub fn memory(dir: &Path, m: &Memory) -> Result<(), ResourceError> {
    let limit = m.limit.unwrap_or(0);
    if let Some(s) = swap_to_v2(m.swap.unwrap_or(0), limit)? {
        write(dir, "memory.swap.max", &limit_str(s), "linux.resources.memory.swap")?;
    }
    if limit != 0 {
        super::resources_v1::check_usage(m, limit, || {
            read(dir, "memory.current").map(|s| s.trim().parse::<u64>().unwrap_or(0))
        })?;
        write(dir, "memory.max", &limit_str(limit), "linux.resources.memory.limit")?;
    }
    if let Some(r) = m.reservation.filter(|&v| v != 0) {
        write(dir, "memory.low", &limit_str(r), "linux.resources.memory.reservation")?;
    }
    if m.kernel.is_some_and(|k| k != 0) {
        tracing::warn!("linux.resources.memory.kernel is deprecated and ignored");
    }
    if m.kernel_tcp.is_some_and(|k| k != 0) {
        return Err(ResourceError::NotOnV2 { what: "linux.resources.memory.kernelTCP".into() });
    }
    if m.swappiness.is_some_and(|s| s != -1) {
        return Err(ResourceError::NotOnV2 { what: "linux.resources.memory.swappiness".into() });
    }
    if m.disable_oom_killer == Some(true) {
        return Err(ResourceError::NotOnV2 { what: "linux.resources.memory.disableOOMKiller".into() });
    }
    Ok(())
}

/// The new cpu.max content: values not given keep what the file has.
pub fn cpu_max(current: &str, quota: Option<i64>, period: Option<u64>) -> String {
    let mut parts = current.split_whitespace();
    let cur_quota = parts.next().unwrap_or("max").to_string();
    let cur_period = parts.next().unwrap_or("100000").to_string();
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(q) if q < 0 => "max".into(),
        _ => cur_quota,
    };
    let p = match period {
        Some(p) if p > 0 => p.to_string(),
        _ => cur_period,
    };
    format!("{q} {p}")
}

pub fn cpu(dir: &Path, c: &Cpu) -> Result<(), ResourceError> {
    if let Some(s) = c.shares.filter(|&s| s != 0) {
        write(dir, "cpu.weight", &shares_to_weight(s).to_string(), "linux.resources.cpu.shares")?;
    }
    let quota = c.quota.filter(|&q| q != 0);
    let period = c.period.filter(|&p| p != 0);
    if quota.is_some() || period.is_some() {
        let cur = read(dir, "cpu.max").unwrap_or_default();
        write(dir, "cpu.max", &cpu_max(&cur, quota, period), "linux.resources.cpu.quota/period")?;
    }
    if let Some(b) = c.burst {
        write(dir, "cpu.max.burst", &b.to_string(), "linux.resources.cpu.burst")?;
    }
    if c.realtime_runtime.is_some_and(|v| v != 0) || c.realtime_period.is_some_and(|v| v != 0) {
        return Err(ResourceError::NotOnV2 { what: "linux.resources.cpu.realtimeRuntime/realtimePeriod".into() });
    }
    if let Some(i) = c.idle {
        write(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    Ok(())
}

pub fn block_io(dir: &Path, b: &BlockIo) -> Result<(), ResourceError> {
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        // BFQ takes the v1 range as is; io.weight (iocost) needs converting.
        if dir.join("io.bfq.weight").exists() {
            write(dir, "io.bfq.weight", &w.to_string(), "linux.resources.blockIO.weight")?;
        } else {
            write(dir, "io.weight", &format!("default {}", blkio_to_io_weight(w)), "linux.resources.blockIO.weight")?;
        }
    }
    if b.leaf_weight.is_some_and(|w| w != 0) {
        return Err(ResourceError::NotOnV2 { what: "linux.resources.blockIO.leafWeight".into() });
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            write(dir, "io.bfq.weight", &format!("{}:{} {w}", d.major, d.minor), "linux.resources.blockIO.weightDevice")?;
        }
        if d.leaf_weight.is_some() {
            return Err(ResourceError::NotOnV2 { what: "linux.resources.blockIO.weightDevice.leafWeight".into() });
        }
    }
    for line in io_max_lines(b) {
        write(dir, "io.max", &line, "linux.resources.blockIO.throttle*")?;
    }
    Ok(())
}

/// One io.max line per throttle entry; the kernel merges keys per device.
pub fn io_max_lines(b: &BlockIo) -> Vec<String> {
    let mut out = Vec::new();
    for (key, list) in [
        ("rbps", &b.throttle_read_bps_device),
        ("wbps", &b.throttle_write_bps_device),
        ("riops", &b.throttle_read_iops_device),
        ("wiops", &b.throttle_write_iops_device),
    ] {
        for d in list {
            // 0 means "no limit" in the runtime-spec, as in v1.
            let v = if d.rate == 0 { "max".to_string() } else { d.rate.to_string() };
            out.push(format!("{}:{} {key}={v}", d.major, d.minor));
        }
    }
    out
}

pub fn devices(dir: &Path, rules: &[Rule]) -> Result<(), ResourceError> {
    let n = devices::normalize(rules)?;
    devices::bpf::apply(dir, &n)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::resources::ThrottleDevice;
    use super::*;

    use super::super::testutil::{dir_with, get};

    #[test]
    fn memory_max_and_swap() {
        let t = dir_with(&[("memory.max", "max"), ("memory.swap.max", "max"), ("memory.low", "0"), ("memory.current", "0")]);
        memory(t.path(), &Memory { limit: Some(1 << 20), swap: Some(3 << 20), reservation: Some(4096), ..Default::default() }).unwrap();
        assert_eq!(get(&t, "memory.max"), "1048576");
        assert_eq!(get(&t, "memory.swap.max"), "2097152");
        assert_eq!(get(&t, "memory.low"), "4096");
        memory(t.path(), &Memory { limit: Some(-1), ..Default::default() }).unwrap();
        assert_eq!(get(&t, "memory.max"), "max");
        assert_eq!(get(&t, "memory.swap.max"), "max");
        let e = memory(t.path(), &Memory { swappiness: Some(5), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("swappiness"));
    }

    #[test]
    fn cpu_weight_and_max() {
        let t = dir_with(&[("cpu.weight", "100"), ("cpu.max", "max 100000\n"), ("cpu.max.burst", "0")]);
        cpu(t.path(), &Cpu { shares: Some(1024), quota: Some(50000), ..Default::default() }).unwrap();
        assert_eq!(get(&t, "cpu.weight"), "39");
        assert_eq!(get(&t, "cpu.max"), "50000 100000");
        cpu(t.path(), &Cpu { period: Some(200000), ..Default::default() }).unwrap();
        assert_eq!(get(&t, "cpu.max"), "50000 200000");
        cpu(t.path(), &Cpu { quota: Some(-1), ..Default::default() }).unwrap();
        assert_eq!(get(&t, "cpu.max"), "max 200000");
        assert!(cpu(t.path(), &Cpu { realtime_runtime: Some(5), ..Default::default() }).is_err());
    }

    #[test]
    fn io_weight_and_max_lines() {
        let t = dir_with(&[("io.weight", "default 100"), ("io.max", "")]);
        let b = BlockIo {
            weight: Some(500),
            throttle_read_bps_device: vec![ThrottleDevice { major: 8, minor: 0, rate: 1048576 }],
            throttle_write_iops_device: vec![ThrottleDevice { major: 8, minor: 16, rate: 0 }],
            ..Default::default()
        };
        assert_eq!(io_max_lines(&b), vec!["8:0 rbps=1048576", "8:16 wiops=max"]);
        block_io(t.path(), &b).unwrap();
        assert_eq!(get(&t, "io.weight"), "default 4950");
        // A plain file keeps only the last write.
        assert_eq!(get(&t, "io.max"), "8:16 wiops=max");
    }

    #[test]
    fn limit_strings() {
        assert_eq!(limit_str(-1), "max");
        assert_eq!(limit_str(10), "10");
        assert_eq!(cpu_max("", Some(1000), None), "1000 100000");
    }
}
