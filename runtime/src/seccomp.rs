//! `linux.seccomp` compiled with libseccomp.
//!
//! The filter is built before the process drops its privileges and loaded
//! as late as possible (just before exec when noNewPrivileges is set), so
//! husk's own setup is not subject to it.

use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterAttr, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {what}: {err}")]
    Lib {
        what: String,
        err: libseccomp::error::SeccompError,
    },
    #[error("seccomp: {0}")]
    Invalid(String),
}

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |err| SeccompError::Lib { what, err }
}

/// What `features` advertises: exactly what [`build`] accepts.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_NOTIFY",
];
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
pub const SUPPORTED_ARCHS: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];
pub const KNOWN_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// WAIT_KILLABLE_RECV needs libseccomp 2.6; the others 2.5.
pub fn supported_flags() -> Vec<&'static str> {
    let v = libseccomp::ScmpVersion::current().ok();
    let at_least = |maj: u32, min: u32| v.as_ref().is_some_and(|v| (v.major, v.minor) >= (maj, min));
    KNOWN_FLAGS
        .iter()
        .copied()
        .filter(|f| *f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" || at_least(2, 6))
        .collect()
}

pub fn library_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

/// The errno an action without errnoRet returns: EPERM, as runc.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

pub fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction, SeccompError> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(errno_ret.unwrap_or(DEFAULT_ERRNO) as i32),
        A::ScmpActTrace => ScmpAction::Trace(errno_ret.unwrap_or(DEFAULT_ERRNO) as u16),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActNotify => ScmpAction::Notify,
    })
}

fn arch(a: Arch) -> Result<ScmpArch, SeccompError> {
    // oci-spec and libseccomp spell the same names (SCMP_ARCH_X86_64, ...).
    let name = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    ScmpArch::from_str(&name).map_err(|_| SeccompError::Invalid(format!("unsupported architecture {name}")))
}

fn compare(op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> ScmpCompareOp {
    use LinuxSeccompOperator as O;
    match op {
        O::ScmpCmpNe => ScmpCompareOp::NotEqual,
        O::ScmpCmpLt => ScmpCompareOp::Less,
        O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        O::ScmpCmpEq => ScmpCompareOp::Equal,
        O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        O::ScmpCmpGt => ScmpCompareOp::Greater,
        // For SCMP_CMP_MASKED_EQ the spec's `value` is the mask and
        // `valueTwo` the value to compare with.
        O::ScmpCmpMaskedEq => {
            let _ = two;
            ScmpCompareOp::MaskedEqual(value)
        }
    }
}

pub struct Filter {
    ctx: ScmpFilterContext,
    pub uses_notify: bool,
}

pub fn build(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("creating filter"))?;
    for a in s.architectures().iter().flatten() {
        let a = arch(*a)?;
        ctx.add_arch(a).map_err(lib(format!("adding architecture {a:?}")))?;
    }
    for f in s.flags().iter().flatten() {
        let attr = match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ScmpFilterAttr::CtlLog,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ScmpFilterAttr::CtlTsync,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ScmpFilterAttr::CtlSsb,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ScmpFilterAttr::CtlWaitkill,
        };
        ctx.set_filter_attr(attr, 1).map_err(lib(format!("flag {f}")))?;
    }
    // We set no_new_privs ourselves when the config asks for it; libseccomp
    // must not force it on.
    ctx.set_ctl_nnp(false).map_err(lib("disabling implicit no_new_privs"))?;
    let mut uses_notify = s.default_action() == LinuxSeccompAction::ScmpActNotify;
    for rule in s.syscalls().iter().flatten() {
        uses_notify |= rule.action() == LinuxSeccompAction::ScmpActNotify;
        add_rule(&mut ctx, rule, default)?;
    }
    if uses_notify && s.listener_path().is_none() {
        return Err(SeccompError::Invalid("SCMP_ACT_NOTIFY needs listenerPath".into()));
    }
    Ok(Filter { ctx, uses_notify })
}

fn add_rule(ctx: &mut ScmpFilterContext, rule: &LinuxSyscall, default: ScmpAction) -> Result<(), SeccompError> {
    let act = action(rule.action(), rule.errno_ret())?;
    // libseccomp refuses rules that repeat the default action; they are
    // no-ops anyway.
    if act == default {
        return Ok(());
    }
    let args: Vec<_> = rule.args().iter().flatten().collect();
    let cond = |a: &&oci_spec::runtime::LinuxSeccompArg| {
        let op = compare(a.op(), a.value(), a.value_two());
        let datum = if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
            a.value_two().unwrap_or(0)
        } else {
            a.value()
        };
        ScmpArgCompare::new(a.index() as u32, op, datum)
    };
    // libseccomp refuses two comparisons of one argument in a rule. runc
    // (whose behaviour profiles are written against) then adds each such
    // comparison as a rule of its own, and the others together as one.
    let shares_index = |a: &&oci_spec::runtime::LinuxSeccompArg| args.iter().filter(|b| b.index() == a.index()).count() > 1;
    let alone: Vec<ScmpArgCompare> = args.iter().filter(|a| shares_index(a)).map(cond).collect();
    let together: Vec<ScmpArgCompare> = args.iter().filter(|a| !shares_index(a)).map(cond).collect();
    for name in rule.names() {
        // Names this libseccomp or architecture does not know are skipped,
        // as runc does: profiles list syscalls of every architecture.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            tracing::debug!("seccomp: skipping unknown syscall {name}");
            continue;
        };
        for c in &alone {
            ctx.add_rule_conditional(act, sc, std::slice::from_ref(c)).map_err(lib(format!("rule for {name}")))?;
        }
        match (together.is_empty(), alone.is_empty()) {
            (true, true) => ctx.add_rule(act, sc).map(drop),
            (true, false) => Ok(()),
            (false, _) => ctx.add_rule_conditional(act, sc, &together).map(drop),
        }
        .map_err(lib(format!("rule for {name}")))?;
    }
    Ok(())
}

impl Filter {
    /// Load the filter into the calling thread (all threads with TSYNC).
    /// Returns the notify fd when the filter uses SCMP_ACT_NOTIFY.
    pub fn load(&self) -> Result<Option<std::os::fd::RawFd>, SeccompError> {
        self.ctx.load().map_err(lib("loading filter"))?;
        if self.uses_notify {
            return self.ctx.get_notify_fd().map(Some).map_err(lib("getting notify fd"));
        }
        Ok(None)
    }
}

/// Where the filter is between build and exec.
pub enum Stage {
    None,
    /// Built, to be loaded just before exec.
    Pending(Filter),
    /// Already loaded (without noNewPrivileges it must be loaded while
    /// CAP_SYS_ADMIN is held); carries the notify fd if any.
    Loaded(Option<std::os::fd::RawFd>),
}

impl Stage {
    /// Load the filter if it is still pending; return the notify fd.
    pub fn finish(self) -> Result<Option<std::os::fd::RawFd>, SeccompError> {
        match self {
            Stage::None => Ok(None),
            Stage::Pending(f) => f.load(),
            Stage::Loaded(fd) => Ok(fd),
        }
    }
}

/// Connect to `linux.seccomp.listenerPath` (a host path: done by the parent,
/// before the container process changes its root).
pub fn connect_listener(s: &LinuxSeccomp) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
    let uses_notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls().iter().flatten().any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    match (uses_notify, s.listener_path()) {
        (true, Some(p)) => crate::fdpass::connect(p)
            .map(Some)
            .map_err(|e| SeccompError::Invalid(format!("connecting to listenerPath {}: {e}", p.display()))),
        _ => Ok(None),
    }
}

/// Hand the notify fd to the listener the way runc does: a JSON
/// ContainerProcessState with `"fds": ["seccompFd"]` and the fd attached.
pub fn send_to_listener(
    sock: &std::os::fd::OwnedFd,
    notify_fd: std::os::fd::RawFd,
    pid: i32,
    metadata: &str,
    state: serde_json::Value,
) -> Result<(), SeccompError> {
    let msg = serde_json::json!({
        "ociVersion": "1.0.2",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
    .to_string();
    crate::fdpass::send(sock, msg.as_bytes(), notify_fd)
        .map_err(|e| SeccompError::Invalid(format!("sending the notify fd to the listener: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_rules_with_errno_args_and_unknown_names() {
        let s = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let f = build(&s).unwrap();
        assert!(!f.uses_notify);
    }

    #[test]
    fn notify_without_listener_is_an_error() {
        let s = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(build(&s).is_err());
    }

    #[test]
    fn unknown_action_is_a_parse_error() {
        let r: Result<LinuxSeccomp, _> = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_BOGUS"
        }));
        assert!(r.is_err());
    }

    #[test]
    fn errno_defaults_to_eperm() {
        assert_eq!(action(LinuxSeccompAction::ScmpActErrno, None).unwrap(), ScmpAction::Errno(libc::EPERM));
        assert_eq!(action(LinuxSeccompAction::ScmpActErrno, Some(38)).unwrap(), ScmpAction::Errno(38));
    }
}
