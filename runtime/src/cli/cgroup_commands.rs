//! The cgroup commands: update, pause, resume, ps, events. Argument parsing
//! and output formatting only; the work is in container::cgroup_ops.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cgroups::resources::{BlockIo, Cpu, Memory, Pids};
use crate::cgroups::Resources;
use crate::container::cgroup_ops;
use crate::container::ContainerError;
use crate::state::Store;

type Result<T> = std::result::Result<T, ContainerError>;

#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    pub id: String,
    /// Read the new resources (runtime-spec linux.resources JSON) from this
    /// file, or from stdin with "-". Other options are then ignored.
    #[arg(short = 'r', long = "resources")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (microseconds).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds per period; -1 for none).
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// CPU CFS burst (microseconds a period's unused quota may be carried).
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// CPU realtime period (microseconds).
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (microseconds per period).
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (accepted for compatibility; ignored, as the kernel does).
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 100m, 1g).
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema ("L3:0=ff;1=ff"), for a container with linux.intelRdt.
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema ("MB:0=50"), for a container with linux.intelRdt.
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    /// table (run ps and keep the container's lines) or json (the pids).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Arguments for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    pub id: String,
    /// Interval between stats events, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
}

fn usage(msg: String) -> ContainerError {
    ContainerError::Usage(msg)
}

/// docker's units.RAMInBytes: "512", "100k", "1.5g", "64MiB" (binary units).
pub fn ram_in_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: {s:?}"))?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let mut u = unit.as_str();
    u = u.strip_suffix('b').unwrap_or(u);
    u = u.strip_suffix('i').unwrap_or(u);
    let mult: f64 = match u {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0f64.powi(3),
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(format!("invalid size: {s:?}")),
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(format!("invalid size: {s:?}"));
    }
    Ok(v as i64)
}

fn mem_value(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => ram_in_bytes(s).map(Some).map_err(|e| usage(format!("--{flag}: {e}"))),
    }
}

/// The resources an `update` command line asks for.
pub fn update_resources(a: &UpdateArgs) -> Result<Resources> {
    if let Some(p) = &a.resources {
        let text = if p.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map_err(|e| ContainerError::Io("stdin".into(), e))?;
            v
        } else {
            std::fs::read(p).map_err(|e| ContainerError::Io(p.clone(), e))?
        };
        return Resources::from_json(&text).map_err(|e| ContainerError::Cgroup(e.into()));
    }
    let mut r = Resources::default();
    let memory = Memory {
        limit: mem_value("memory", &a.memory)?,
        reservation: mem_value("memory-reservation", &a.memory_reservation)?,
        swap: mem_value("memory-swap", &a.memory_swap)?,
        kernel: mem_value("kernel-memory", &a.kernel_memory)?,
        kernel_tcp: mem_value("kernel-memory-tcp", &a.kernel_memory_tcp)?,
        ..Default::default()
    };
    if memory != Memory::default() {
        r.memory = Some(memory);
    }
    let cpu = Cpu {
        shares: a.cpu_share,
        quota: a.cpu_quota,
        period: a.cpu_period,
        burst: a.cpu_burst,
        realtime_runtime: a.cpu_rt_runtime,
        realtime_period: a.cpu_rt_period,
        cpus: a.cpuset_cpus.clone(),
        mems: a.cpuset_mems.clone(),
        ..Default::default()
    };
    if cpu != Cpu::default() {
        r.cpu = Some(cpu);
    }
    if let Some(l) = a.pids_limit {
        r.pids = Some(Pids { limit: Some(l) });
    }
    if let Some(w) = a.blkio_weight {
        r.block_io = Some(BlockIo { weight: Some(w), ..Default::default() });
    }
    Ok(r)
}

pub fn update(store: &Store, a: &UpdateArgs) -> Result<i32> {
    let r = update_resources(a)?;
    // Written before the cgroup limits, in runc's order: L3, then MB.
    let rdt: Vec<String> = [&a.l3_cache_schema, &a.mem_bw_schema].into_iter().flatten().cloned().collect();
    if !rdt.is_empty() {
        cgroup_ops::update_intel_rdt(store, &a.id, &rdt)?;
    }
    cgroup_ops::update(store, &a.id, r)?;
    Ok(0)
}

pub fn pause(store: &Store, id: &str) -> Result<i32> {
    cgroup_ops::pause(store, id).map(|_| 0)
}

pub fn resume(store: &Store, id: &str) -> Result<i32> {
    cgroup_ops::resume(store, id).map(|_| 0)
}

pub fn ps(store: &Store, a: &PsArgs) -> Result<i32> {
    let pids = cgroup_ops::pids(store, &a.id)?;
    let mut out = std::io::stdout().lock();
    match a.format.as_str() {
        "json" => {
            // runc prints its empty (nil) list as null.
            let list = (!pids.is_empty()).then_some(&pids);
            let _ = serde_json::to_writer(&mut out, &list);
            let _ = writeln!(out);
            return Ok(0);
        }
        "table" => {}
        f => return Err(usage(format!("invalid format option {f:?}"))),
    }
    let args: Vec<String> = if a.ps_args.is_empty() { vec!["-ef".into()] } else { a.ps_args.clone() };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| ContainerError::Io("ps".into(), e))?;
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    if !o.status.success() {
        return Err(usage(format!("ps: {}: {}", o.status, text.trim())));
    }
    let _ = out.write_all(filter_ps(&text, &pids)?.as_bytes());
    Ok(0)
}

/// Keep the header and the lines whose PID column is one of `pids`.
pub fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let idx = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| usage("couldn't find PID field in ps output".into()))?;
    let mut s = format!("{header}\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let pid = l.split_whitespace().nth(idx).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            s.push_str(l);
            s.push('\n');
        }
    }
    Ok(s)
}

pub fn events(store: &Store, a: &EventsArgs) -> Result<i32> {
    let emit = |v: &cgroup_ops::Event| {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, v).is_ok() && writeln!(out).is_ok() && out.flush().is_ok()
    };
    if a.stats {
        emit(&cgroup_ops::stats(store, &a.id)?);
        return Ok(0);
    }
    let interval: Duration = humantime::parse_duration(&a.interval)
        .map_err(|e| usage(format!("--interval {:?}: {e}", a.interval)))?;
    if interval.is_zero() {
        return Err(usage("duration interval must be greater than 0".into()));
    }
    cgroup_ops::events(store, &a.id, interval, emit)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert_eq!(ram_in_bytes("100k").unwrap(), 102400);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert!(ram_in_bytes("12x").is_err());
        assert!(ram_in_bytes("").is_err());
    }

    #[test]
    fn ps_filtering() {
        let text = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sh\nroot   43    42 sleep\n";
        assert_eq!(filter_ps(text, &[42, 43]).unwrap(), "UID   PID  PPID CMD\nroot   42     1 sh\nroot   43    42 sleep\n");
        assert!(filter_ps("A B\n1 2\n", &[1]).is_err());
    }
}
