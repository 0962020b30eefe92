//! husk's cgroup stats (runc's `events --stats` shape) as containerd's
//! `Metrics` messages, what `ctr task metrics` and the CRI read: the cgroup
//! v1 one on v1 and hybrid hosts, the v2 one on pure v2 hosts (containerd
//! picks the type it expects by the host's cgroup mode, as here).

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use containerd_shim::protos::cgroups_v2::metrics as v2m;
use containerd_shim::protos::protobuf;
use serde_json::Value;

pub const V1_METRICS_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
pub const V2_METRICS_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// The stats as the message containerd expects on this host, serialised,
/// and its type.
///
/// Through the concrete types' `Message::write_to_bytes`, never protobuf's
/// `MessageDyn`: its `write_to_bytes_dyn` asks for the message's descriptor
/// (only to name it in an error), and the first such call builds the
/// reflection tables of metrics.proto and everything it imports, ~600 KiB
/// of heap the shim then keeps for its whole life (a third of a pod's
/// shim after one `ctr task metrics`).
pub fn for_host(stats: &husk::cgroups::stats::Stats) -> (protobuf::Result<Vec<u8>>, &'static str) {
    use protobuf::Message;
    // containerd's own test of a unified host.
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        (v2(stats).write_to_bytes(), V2_METRICS_TYPE)
    } else {
        (v1(stats).write_to_bytes(), V1_METRICS_TYPE)
    }
}

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

pub fn v2(stats: &husk::cgroups::stats::Stats) -> v2m::Metrics {
    let mut m = v2m::Metrics::new();
    let cpu = &stats.cpu;
    m.cpu = protobuf::MessageField::some(v2m::CPUStat {
        usage_usec: n(cpu, &["usage", "total"]) / 1000,
        user_usec: n(cpu, &["usage", "user"]) / 1000,
        system_usec: n(cpu, &["usage", "kernel"]) / 1000,
        nr_periods: n(cpu, &["throttling", "periods"]),
        nr_throttled: n(cpu, &["throttling", "throttledPeriods"]),
        throttled_usec: n(cpu, &["throttling", "throttledTime"]) / 1000,
        ..Default::default()
    });
    let mem = &stats.memory;
    let raw = |k: &str| n(mem, &["raw", k]);
    // husk reports an unlimited memory.max as no limit at all; containerd
    // reads "max" as the largest u64.
    let limit = |key: &str| match n(mem, &[key, "limit"]) {
        0 => u64::MAX,
        l => l,
    };
    m.memory = protobuf::MessageField::some(v2m::MemoryStat {
        anon: raw("anon"),
        file: raw("file"),
        kernel_stack: raw("kernel_stack"),
        slab: raw("slab"),
        sock: raw("sock"),
        shmem: raw("shmem"),
        file_mapped: raw("file_mapped"),
        file_dirty: raw("file_dirty"),
        file_writeback: raw("file_writeback"),
        anon_thp: raw("anon_thp"),
        inactive_anon: raw("inactive_anon"),
        active_anon: raw("active_anon"),
        inactive_file: raw("inactive_file"),
        active_file: raw("active_file"),
        unevictable: raw("unevictable"),
        slab_reclaimable: raw("slab_reclaimable"),
        slab_unreclaimable: raw("slab_unreclaimable"),
        pgfault: raw("pgfault"),
        pgmajfault: raw("pgmajfault"),
        workingset_refault: raw("workingset_refault"),
        workingset_activate: raw("workingset_activate"),
        workingset_nodereclaim: raw("workingset_nodereclaim"),
        pgrefill: raw("pgrefill"),
        pgscan: raw("pgscan"),
        pgsteal: raw("pgsteal"),
        pgactivate: raw("pgactivate"),
        pgdeactivate: raw("pgdeactivate"),
        pglazyfree: raw("pglazyfree"),
        pglazyfreed: raw("pglazyfreed"),
        thp_fault_alloc: raw("thp_fault_alloc"),
        thp_collapse_alloc: raw("thp_collapse_alloc"),
        usage: n(mem, &["usage", "usage"]),
        usage_limit: limit("usage"),
        max_usage: n(mem, &["usage", "max"]),
        swap_usage: n(mem, &["swap", "usage"]),
        swap_limit: limit("swap"),
        swap_max_usage: n(mem, &["swap", "max"]),
        ..Default::default()
    });
    m.memory_events = protobuf::MessageField::some(v2m::MemoryEvents {
        max: n(mem, &["usage", "failcnt"]),
        ..Default::default()
    });
    m.pids = protobuf::MessageField::some(v2m::PidsStat {
        current: n(&stats.pids, &["current"]),
        limit: n(&stats.pids, &["limit"]),
        ..Default::default()
    });
    // One entry per device, from the per-operation rows.
    let mut io: Vec<v2m::IOEntry> = Vec::new();
    for (key, bytes) in [("ioServiceBytesRecursive", true), ("ioServicedRecursive", false)] {
        let rows = stats.blkio.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        for row in rows {
            let (major, minor) = (n(&row, &["major"]), n(&row, &["minor"]));
            let i = match io.iter().position(|e| e.major == major && e.minor == minor) {
                Some(i) => i,
                None => {
                    io.push(v2m::IOEntry { major, minor, ..Default::default() });
                    io.len() - 1
                }
            };
            let v = n(&row, &["value"]);
            match (row.get("op").and_then(Value::as_str), bytes) {
                (Some("Read"), true) => io[i].rbytes = v,
                (Some("Write"), true) => io[i].wbytes = v,
                (Some("Read"), false) => io[i].rios = v,
                (Some("Write"), false) => io[i].wios = v,
                _ => {}
            }
        }
    }
    m.io = protobuf::MessageField::some(v2m::IOStat { usage: io, ..Default::default() });
    m
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn stats() -> husk::cgroups::stats::Stats {
        husk::cgroups::stats::Stats {
            cpu: json!({"usage": {"total": 5_000_000, "user": 3_000_000, "kernel": 2_000_000},
                        "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 7000}}),
            cpuset: json!({}),
            memory: json!({"usage": {"usage": 4096, "limit": 67108864, "max": 8192, "failcnt": 3},
                           "raw": {"anon": 100, "file": 200, "inactive_file": 50, "pgfault": 9}}),
            pids: json!({"current": 2, "limit": 20}),
            blkio: json!({"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 4096},
                                                      {"major": 8, "minor": 0, "op": "Write", "value": 512}],
                          "ioServicedRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 1}]}),
            hugetlb: json!({}),
            intel_rdt: json!({}),
            network_interfaces: serde_json::Value::Null,
        }
    }

    #[test]
    fn v2_metrics_carry_what_the_cri_reads() {
        let m = super::v2(&stats());
        assert_eq!((m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec), (5000, 3000, 2000));
        assert_eq!((m.cpu.nr_periods, m.cpu.nr_throttled, m.cpu.throttled_usec), (10, 2, 7));
        assert_eq!((m.memory.usage, m.memory.usage_limit, m.memory.max_usage), (4096, 67108864, 8192));
        assert_eq!((m.memory.anon, m.memory.file, m.memory.inactive_file, m.memory.pgfault), (100, 200, 50, 9));
        assert_eq!(m.memory.swap_limit, u64::MAX, "no swap limit reads as max");
        assert_eq!(m.memory_events.max, 3);
        assert_eq!((m.pids.current, m.pids.limit), (2, 20));
        assert_eq!(m.io.usage.len(), 1);
        let e = &m.io.usage[0];
        assert_eq!((e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios), (8, 0, 4096, 512, 1, 0));
    }

    #[test]
    fn for_host_encodes_the_hosts_type() {
        use containerd_shim::protos::protobuf::Message;
        let (bytes, type_url) = super::for_host(&stats());
        let bytes = bytes.unwrap();
        if type_url == super::V2_METRICS_TYPE {
            let m = super::v2m::Metrics::parse_from_bytes(&bytes).unwrap();
            assert_eq!(m.memory.usage, 4096);
        } else {
            assert_eq!(type_url, super::V1_METRICS_TYPE);
            let m = super::Metrics::parse_from_bytes(&bytes).unwrap();
            assert_eq!((m.cpu.usage.total, m.memory.usage.limit), (5_000_000, 67108864));
        }
    }

    #[test]
    fn v1_metrics_carry_usage_and_limits() {
        let m = super::v1(&stats());
        assert_eq!(m.cpu.usage.total, 5_000_000);
        assert_eq!((m.memory.usage.usage, m.memory.usage.limit), (4096, 67108864));
        assert_eq!((m.pids.current, m.pids.limit), (2, 20));
    }
}
