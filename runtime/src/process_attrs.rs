//! Per-process kernel attributes from runtime-spec 1.1 and later:
//! personality, scheduler, I/O priority, CPU affinity and memory policy.
//! Each is applied in the container process before it drops privileges
//! (real-time policies and the RT I/O class need them) and survives exec.

use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Scheduler, LinuxIOPriority,
};

#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("{what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
    #[error("invalid {what} {value:?}")]
    Invalid { what: &'static str, value: String },
}

fn check(what: &'static str, r: libc::c_long) -> Result<(), AttrError> {
    if r < 0 {
        Err(AttrError::Sys { what, err: nix::Error::last() })
    } else {
        Ok(())
    }
}

pub fn set_personality(p: &LinuxPersonality) -> Result<(), AttrError> {
    if let Some(f) = p.flags().as_ref().and_then(|f| f.first()) {
        return Err(AttrError::Invalid { what: "personality flag", value: f.clone() });
    }
    let domain: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain integer.
    check("personality", unsafe { libc::personality(domain) } as libc::c_long)
}

#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

pub fn set_scheduler(s: &Scheduler) -> Result<(), AttrError> {
    use LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag as F;
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr reads attr.size bytes from the struct we own.
    check("sched_setattr", unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &mut attr as *mut SchedAttr, 0) })
}

pub fn set_io_priority(p: &LinuxIOPriority) -> Result<(), AttrError> {
    let class: libc::c_long = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(AttrError::Invalid { what: "ioPriority.priority", value: p.priority().to_string() });
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_set takes plain integers.
    check("ioprio_set", unsafe {
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (class << 13) | p.priority() as libc::c_long)
    })
}

/// "0-3,7" → the listed numbers.
pub fn parse_list(what: &'static str, s: &str) -> Result<Vec<usize>, AttrError> {
    let bad = || AttrError::Invalid { what, value: s.to_string() };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Affinity to every CPU: the kernel narrows it to what the cgroup's
/// cpuset allows.
pub fn allow_all_cpus() -> Result<(), AttrError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in 0..nix::sched::CpuSet::count() {
        set.set(cpu).map_err(|err| AttrError::Sys { what: "CPU affinity", err })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|err| AttrError::Sys { what: "sched_setaffinity", err })
}

pub fn set_cpu_affinity(list: &str) -> Result<(), AttrError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in parse_list("CPU affinity", list)? {
        set.set(cpu).map_err(|err| AttrError::Sys { what: "CPU affinity", err })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|err| AttrError::Sys { what: "sched_setaffinity", err })
}

/// The `linux.memoryPolicy` modes and flags [`set_memory_policy`] knows
/// (for `husk features`).
pub const MEMORY_POLICY_MODES: &[&str] = &[
    "MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
pub const MEMORY_POLICY_FLAGS: &[&str] = &["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES", "MPOL_F_NUMA_BALANCING"];

pub fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<(), AttrError> {
    use MemoryPolicyModeType as M;
    let mut mode: libc::c_long = match m.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for f in m.flags().iter().flatten() {
        mode |= match f {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let mut mask = [0u64; 16];
    let maxnode = match m.nodes().as_deref().filter(|n| !n.is_empty()) {
        None => 0,
        Some(nodes) => {
            for n in parse_list("memoryPolicy.nodes", nodes)? {
                if n >= 1024 {
                    return Err(AttrError::Invalid { what: "memoryPolicy.nodes", value: nodes.into() });
                }
                mask[n / 64] |= 1 << (n % 64);
            }
            1024 + 1
        }
    };
    let ptr = if maxnode == 0 { std::ptr::null() } else { mask.as_ptr() };
    // SAFETY: set_mempolicy reads maxnode-1 bits from the mask we own.
    check("set_mempolicy", unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode as libc::c_ulong) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_memory_policies_parse() {
        for mode in MEMORY_POLICY_MODES {
            let m: LinuxMemoryPolicy = serde_json::from_value(serde_json::json!({"mode": mode, "flags": MEMORY_POLICY_FLAGS})).unwrap();
            assert_eq!(serde_json::to_value(m.mode()).unwrap(), *mode);
        }
    }

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("x", "0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_list("x", "3").unwrap(), vec![3]);
        for bad in ["", "a", "3-1", "1-", "99999"] {
            assert!(parse_list("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn affinity_and_io_priority_apply_in_a_child() {
        // Run in a forked child so the test process keeps its own settings.
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = set_cpu_affinity("0").is_ok()
                    && nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap().is_set(0).unwrap()
                    && set_io_priority(&serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})).unwrap()).is_ok();
                // SAFETY: leave the forked test child without unwinding.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
