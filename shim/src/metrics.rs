//! husk's cgroup stats (runc's `events --stats` shape) as containerd's
//! cgroup v1 `Metrics` message, what `ctr task metrics` and the CRI read.

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use containerd_shim::protos::protobuf;
use serde_json::Value;

pub const V1_METRICS_TYPE: &str = "io.containerd.cgroups.v1.Metrics";

fn n(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

fn entry(v: &Value, key: &str) -> MemoryEntry {
    MemoryEntry {
        limit: n(v, &[key, "limit"]),
        usage: n(v, &[key, "usage"]),
        max: n(v, &[key, "max"]),
        failcnt: n(v, &[key, "failcnt"]),
        ..Default::default()
    }
}

pub fn v1(stats: &husk::cgroups::stats::Stats) -> Metrics {
    let mut m = Metrics::new();
    let cpu = &stats.cpu;
    m.cpu = protobuf::MessageField::some(CPUStat {
        usage: protobuf::MessageField::some(CPUUsage {
            total: n(cpu, &["usage", "total"]),
            kernel: n(cpu, &["usage", "kernel"]),
            user: n(cpu, &["usage", "user"]),
            per_cpu: cpu
                .get("usage")
                .and_then(|u| u.get("percpu"))
                .and_then(|p| p.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default(),
            ..Default::default()
        }),
        throttling: protobuf::MessageField::some(Throttle {
            periods: n(cpu, &["throttling", "periods"]),
            throttled_periods: n(cpu, &["throttling", "throttledPeriods"]),
            throttled_time: n(cpu, &["throttling", "throttledTime"]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mem = &stats.memory;
    let raw = |k: &str| n(mem, &["raw", k]);
    m.memory = protobuf::MessageField::some(MemoryStat {
        cache: n(mem, &["cache"]),
        rss: raw("rss"),
        rss_huge: raw("rss_huge"),
        mapped_file: raw("mapped_file"),
        dirty: raw("dirty"),
        writeback: raw("writeback"),
        pg_fault: raw("pgfault"),
        pg_maj_fault: raw("pgmajfault"),
        inactive_anon: raw("inactive_anon"),
        active_anon: raw("active_anon"),
        inactive_file: raw("inactive_file"),
        active_file: raw("active_file"),
        unevictable: raw("unevictable"),
        hierarchical_memory_limit: raw("hierarchical_memory_limit"),
        total_cache: raw("total_cache"),
        total_rss: raw("total_rss"),
        total_inactive_file: raw("total_inactive_file"),
        usage: protobuf::MessageField::some(entry(mem, "usage")),
        swap: protobuf::MessageField::some(entry(mem, "swap")),
        kernel: protobuf::MessageField::some(entry(mem, "kernel")),
        kernel_tcp: protobuf::MessageField::some(entry(mem, "kernelTCP")),
        ..Default::default()
    });
    m.pids = protobuf::MessageField::some(PidsStat {
        current: n(&stats.pids, &["current"]),
        limit: n(&stats.pids, &["limit"]),
        ..Default::default()
    });
    m
}
