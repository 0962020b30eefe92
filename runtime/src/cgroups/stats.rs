//! Resource usage read from the container's cgroups, in the JSON shape of
//! runc's `events` (libcontainer's types.Stats): same field names, and the
//! same omissions of zero values so the documents compare equal.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use serde::Serialize;

use super::resources::Target;
use super::CgroupRecord;

/// Field order as in runc's types.Stats.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub cpu: Value,
    pub cpuset: Value,
    pub memory: Value,
    pub pids: Value,
    pub blkio: Value,
    pub hugetlb: Value,
    pub intel_rdt: Value,
    pub network_interfaces: Value,
}

/// "0-2,5" -> [0, 1, 2, 5]
pub fn parse_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b.min(a.saturating_add(65536)));
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

fn read(dir: &Path, f: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(f)).ok()
}

fn num(dir: &Path, f: &str) -> u64 {
    read(dir, f).and_then(|s| parse_u64(s.trim())).unwrap_or(0)
}

/// "max" and v1's "unlimited" sentinel both read as u64::MAX, as runc does.
fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), parse_u64(v.trim())?))
        })
        .collect()
}

/// Drop zero numbers and empty objects/arrays: Go's omitempty.
fn omit(mut m: Map<String, Value>, keep: &[&str]) -> Value {
    m.retain(|k, v| {
        keep.contains(&k.as_str())
            || !(v.as_u64() == Some(0) || v.as_object().is_some_and(|o| o.is_empty()) || v.as_array().is_some_and(|a| a.is_empty()) || v.is_null())
    });
    Value::Object(m)
}

fn entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    let mut m = Map::new();
    m.insert("limit".into(), limit.into());
    m.insert("usage".into(), usage.into());
    m.insert("max".into(), max.into());
    m.insert("failcnt".into(), failcnt.into());
    omit(m, &["limit", "failcnt"])
}

impl CgroupRecord {
    /// The `data` of a runc stats event.
    pub fn stats(&self) -> Stats {
        Stats {
            cpu: self.cpu_stats(),
            cpuset: self.cpuset_stats(),
            memory: self.memory_stats(),
            pids: self.pids_stats(),
            blkio: self.blkio_stats(),
            hugetlb: self.hugetlb_stats(),
            intel_rdt: json!({}),
            network_interfaces: Value::Null,
        }
    }

    fn cpuset_stats(&self) -> Value {
        let mut m = Map::new();
        let (d, v2) = match self.target("cpuset") {
            Some(Target::V1(d)) => (d, false),
            Some(Target::V2(d)) => (d, true),
            None => return Value::Object(m),
        };
        let (cpus, mems) = if v2 { ("cpuset.cpus.effective", "cpuset.mems.effective") } else { ("cpuset.cpus", "cpuset.mems") };
        m.insert("cpus".into(), json!(parse_list(&read(d, cpus).unwrap_or_default())));
        m.insert("mems".into(), json!(parse_list(&read(d, mems).unwrap_or_default())));
        if !v2 {
            for f in [
                "cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level",
            ] {
                let v: i64 = read(d, &format!("cpuset.{f}")).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                m.insert(f.into(), v.into());
            }
        }
        Value::Object(m)
    }

    fn cpu_stats(&self) -> Value {
        let mut usage = Map::new();
        let mut throttling = Map::new();
        if let Some(Target::V1(d)) = self.target("cpuacct") {
            usage.insert("total".into(), num(d, "cpuacct.usage").into());
            let percpu: Vec<u64> = read(d, "cpuacct.usage_percpu")
                .map(|s| s.split_whitespace().filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default();
            usage.insert("percpu".into(), percpu.into());
            // "cpu user system" rows, in nanoseconds.
            let all = read(d, "cpuacct.usage_all").unwrap_or_default();
            let rows: Vec<Vec<u64>> = all
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().filter_map(|x| x.parse().ok()).collect::<Vec<u64>>())
                .filter(|r| r.len() == 3)
                .collect();
            usage.insert("percpu_kernel".into(), rows.iter().map(|r| r[2]).collect::<Vec<u64>>().into());
            usage.insert("percpu_user".into(), rows.iter().map(|r| r[1]).collect::<Vec<u64>>().into());
            let st = flat_keyed(&read(d, "cpuacct.stat").unwrap_or_default());
            // USER_HZ ticks to nanoseconds.
            // SAFETY: sysconf only reads a configuration value.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            let ns = 1_000_000_000 / hz;
            usage.insert("kernel".into(), (st.get("system").copied().unwrap_or(0) * ns).into());
            usage.insert("user".into(), (st.get("user").copied().unwrap_or(0) * ns).into());
        }
        match self.target("cpu") {
            Some(Target::V1(d)) => {
                let st = flat_keyed(&read(d, "cpu.stat").unwrap_or_default());
                throttling.insert("periods".into(), st.get("nr_periods").copied().unwrap_or(0).into());
                throttling.insert("throttledPeriods".into(), st.get("nr_throttled").copied().unwrap_or(0).into());
                throttling.insert("throttledTime".into(), st.get("throttled_time").copied().unwrap_or(0).into());
            }
            Some(Target::V2(d)) => {
                let st = flat_keyed(&read(d, "cpu.stat").unwrap_or_default());
                let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
                usage.insert("total".into(), us("usage_usec").into());
                usage.insert("kernel".into(), us("system_usec").into());
                usage.insert("user".into(), us("user_usec").into());
                throttling.insert("periods".into(), st.get("nr_periods").copied().unwrap_or(0).into());
                throttling.insert("throttledPeriods".into(), st.get("nr_throttled").copied().unwrap_or(0).into());
                throttling.insert("throttledTime".into(), us("throttled_usec").into());
            }
            None => {
                // cpu.stat's usage exists in every v2 cgroup, controller or not.
                if let Some(d) = self.v2_dir().filter(|_| !usage.contains_key("total")) {
                    let st = flat_keyed(&read(d, "cpu.stat").unwrap_or_default());
                    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
                    usage.insert("total".into(), us("usage_usec").into());
                    usage.insert("kernel".into(), us("system_usec").into());
                    usage.insert("user".into(), us("user_usec").into());
                }
            }
        }
        let mut m = Map::new();
        m.insert("usage".into(), omit(usage, &["kernel", "user"]));
        m.insert("throttling".into(), omit(throttling, &[]));
        Value::Object(m)
    }

    fn memory_stats(&self) -> Value {
        let mut m = Map::new();
        match self.target("memory") {
            Some(Target::V1(d)) => {
                let raw = flat_keyed(&read(d, "memory.stat").unwrap_or_default());
                m.insert("cache".into(), raw.get("total_cache").or(raw.get("cache")).copied().unwrap_or(0).into());
                m.insert(
                    "usage".into(),
                    entry(num(d, "memory.limit_in_bytes"), num(d, "memory.usage_in_bytes"), num(d, "memory.max_usage_in_bytes"), num(d, "memory.failcnt")),
                );
                if d.join("memory.memsw.usage_in_bytes").exists() {
                    m.insert(
                        "swap".into(),
                        entry(
                            num(d, "memory.memsw.limit_in_bytes"),
                            num(d, "memory.memsw.usage_in_bytes"),
                            num(d, "memory.memsw.max_usage_in_bytes"),
                            num(d, "memory.memsw.failcnt"),
                        ),
                    );
                }
                m.insert(
                    "kernel".into(),
                    entry(num(d, "memory.kmem.limit_in_bytes"), num(d, "memory.kmem.usage_in_bytes"), num(d, "memory.kmem.max_usage_in_bytes"), num(d, "memory.kmem.failcnt")),
                );
                m.insert(
                    "kernelTCP".into(),
                    entry(
                        num(d, "memory.kmem.tcp.limit_in_bytes"),
                        num(d, "memory.kmem.tcp.usage_in_bytes"),
                        num(d, "memory.kmem.tcp.max_usage_in_bytes"),
                        num(d, "memory.kmem.tcp.failcnt"),
                    ),
                );
                m.insert("raw".into(), json!(raw));
            }
            Some(Target::V2(d)) => {
                let raw = flat_keyed(&read(d, "memory.stat").unwrap_or_default());
                m.insert("cache".into(), raw.get("file").copied().unwrap_or(0).into());
                let events = flat_keyed(&read(d, "memory.events").unwrap_or_default());
                m.insert(
                    "usage".into(),
                    entry(num(d, "memory.max"), num(d, "memory.current"), num(d, "memory.peak"), events.get("max").copied().unwrap_or(0)),
                );
                if d.join("memory.swap.current").exists() {
                    m.insert("swap".into(), entry(num(d, "memory.swap.max"), num(d, "memory.swap.current"), num(d, "memory.swap.peak"), 0));
                }
                m.insert("raw".into(), json!(raw));
            }
            None => {}
        }
        omit(m, &[])
    }

    fn pids_stats(&self) -> Value {
        let mut m = Map::new();
        if let Some(Target::V1(d) | Target::V2(d)) = self.target("pids") {
            m.insert("current".into(), num(d, "pids.current").into());
            let lim = read(d, "pids.max").map(|s| s.trim().to_string()).unwrap_or_default();
            // runc reports "max" as 0 (no limit).
            m.insert("limit".into(), lim.parse::<u64>().unwrap_or(0).into());
        }
        omit(m, &[])
    }

    fn blkio_stats(&self) -> Value {
        let mut m = Map::new();
        match self.target("blkio").or_else(|| self.target("io")) {
            Some(Target::V1(d)) => {
                for (key, file) in [
                    ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
                    ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
                ] {
                    m.insert(key.into(), Value::Array(blkio_v1_entries(&read(d, file).unwrap_or_default())));
                }
            }
            Some(Target::V2(d)) => {
                let (bytes, ios) = io_stat_v2(&read(d, "io.stat").unwrap_or_default());
                m.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
                m.insert("ioServicedRecursive".into(), Value::Array(ios));
            }
            None => {}
        }
        omit(m, &[])
    }

    fn hugetlb_stats(&self) -> Value {
        let mut m = Map::new();
        let (d, v2) = match self.target("hugetlb") {
            Some(Target::V1(d)) => (d, false),
            Some(Target::V2(d)) => (d, true),
            None => return Value::Object(m),
        };
        let Ok(rd) = std::fs::read_dir(d) else {
            return Value::Object(m);
        };
        let mut sizes: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| {
                let rest = n.strip_prefix("hugetlb.")?;
                let (size, file) = rest.split_once('.')?;
                (file == if v2 { "current" } else { "usage_in_bytes" }).then(|| size.to_string())
            })
            .collect();
        sizes.sort();
        for s in sizes {
            let e = if v2 {
                let ev = flat_keyed(&read(d, &format!("hugetlb.{s}.events")).unwrap_or_default());
                let mut e = Map::new();
                e.insert("usage".into(), num(d, &format!("hugetlb.{s}.current")).into());
                e.insert("failcnt".into(), ev.get("max").copied().unwrap_or(0).into());
                omit(e, &["failcnt"])
            } else {
                let mut e = Map::new();
                e.insert("usage".into(), num(d, &format!("hugetlb.{s}.usage_in_bytes")).into());
                e.insert("max".into(), num(d, &format!("hugetlb.{s}.max_usage_in_bytes")).into());
                e.insert("failcnt".into(), num(d, &format!("hugetlb.{s}.failcnt")).into());
                omit(e, &["failcnt"])
            };
            m.insert(s, e);
        }
        Value::Object(m)
    }
}

fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    let mut m = Map::new();
    m.insert("major".into(), major.into());
    m.insert("minor".into(), minor.into());
    m.insert("op".into(), op.into());
    m.insert("value".into(), value.into());
    m.retain(|_, v| v.as_u64() != Some(0) && v.as_str() != Some(""));
    Value::Object(m)
}

/// "8:0 Read 4096" lines; the trailing "Total N" line has no device.
pub fn blkio_v1_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(blkio_entry(maj.parse().ok()?, min.parse().ok()?, f[1], f[2].parse().ok()?))
        })
        .collect()
}

/// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." into runc's v1-style entries.
pub fn io_stat_v2(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else { continue };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => bytes.push(blkio_entry(maj, min, "Read", v)),
                "wbytes" => bytes.push(blkio_entry(maj, min, "Write", v)),
                "rios" => ios.push(blkio_entry(maj, min, "Read", v)),
                "wios" => ios.push(blkio_entry(maj, min, "Write", v)),
                _ => {}
            }
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let m = flat_keyed("cache 4096\nrss 8192\nbad\n");
        assert_eq!(m["rss"], 8192);
        assert_eq!(blkio_v1_entries("8:0 Read 10\n8:0 Write 0\nTotal 10\n"), vec![json!({"major":8,"op":"Read","value":10}), json!({"major":8,"op":"Write"})]);
        let (b, i) = io_stat_v2("8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0\n");
        assert_eq!(b.len(), 2);
        assert_eq!(i[1], json!({"major":8,"minor":16,"op":"Write","value":4}));
        assert_eq!(entry(5, 0, 0, 0), json!({"limit":5,"failcnt":0}));
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
    }
}
