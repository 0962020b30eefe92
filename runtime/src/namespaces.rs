//! Translating `linux.namespaces` into clone flags and setns calls.
//!
//! New namespaces are created by the clone of the container process. A
//! namespace joined by `path` (other than user) is entered by the parent just
//! before the clone and left right after, so the child is born in it; pid and
//! time namespaces only take effect for children, which this also covers.
//! A user namespace given by path is joined by the child itself, because a
//! process can never go back to its parent user namespace.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{Linux, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("namespace {kind} path {path}: {err}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("joining {kind} namespace: {err}")]
    Join { kind: &'static str, err: nix::Error },
    #[error("time namespace offsets: {0}")]
    Offsets(String),
    #[error("returning to husk's own {kind} namespace: {err}")]
    Restore { kind: &'static str, err: nix::Error },
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespaces a container asks for, with the paths already opened.
pub struct Plan {
    /// Namespaces created by the clone.
    pub new: CloneFlags,
    /// Namespaces the parent enters around the clone.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// A user namespace the child enters first thing.
    pub join_user: Option<OwnedFd>,
}

impl Plan {
    /// Does the container get a mount namespace other than the runtime's?
    pub fn own_mount_ns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWNS) || self.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount)
    }

    pub fn from_spec(linux: &Linux) -> Result<Plan, NsError> {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            join: Vec::new(),
            join_user: None,
        };
        for ns in linux.namespaces().iter().flatten() {
            match ns.path() {
                None => plan.new |= flag(ns.typ()),
                Some(p) if p.as_os_str().is_empty() => plan.new |= flag(ns.typ()),
                Some(p) => {
                    let f = File::open(p).map_err(|err| NsError::Open {
                        kind: name(ns.typ()),
                        path: p.clone(),
                        err,
                    })?;
                    let fd: OwnedFd = f.into();
                    if ns.typ() == LinuxNamespaceType::User {
                        plan.join_user = Some(fd);
                    } else {
                        plan.join.push((ns.typ(), fd));
                    }
                }
            }
        }
        Ok(plan)
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(flag(t))
    }

    pub fn new_user(&self) -> bool {
        self.has_new(LinuxNamespaceType::User)
    }

    /// Does the container process end up in a user namespace other than
    /// the runtime's (a new one, or one joined by path)?
    pub fn enters_user_ns(&self) -> bool {
        self.new_user() || self.join_user.is_some()
    }

    /// Enter the joined namespaces; the returned guard goes back to husk's own
    /// when dropped.
    pub fn enter(&self) -> Result<Entered, NsError> {
        let mut entered = Entered { saved: Vec::new() };
        for (t, fd) in &self.join {
            let own = File::open(format!("/proc/self/ns/{}", own_link(*t))).map_err(|err| {
                NsError::Open {
                    kind: name(*t),
                    path: "/proc/self/ns".into(),
                    err,
                }
            })?;
            setns(fd.as_fd(), flag(*t)).map_err(|err| NsError::Join {
                kind: name(*t),
                err,
            })?;
            entered.saved.push((*t, own.into()));
        }
        Ok(entered)
    }
}

/// pid and time namespaces are entered "for children"; their own-namespace
/// link to return to is the *_for_children one.
fn own_link(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid_for_children",
        LinuxNamespaceType::Time => "time_for_children",
        other => name(other),
    }
}

pub struct Entered {
    saved: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl Entered {
    fn restore(&mut self) -> Result<(), NsError> {
        let cwd = File::open(".").ok();
        while let Some((t, fd)) = self.saved.pop() {
            setns(fd.as_fd(), flag(t)).map_err(|err| NsError::Restore {
                kind: name(t),
                err,
            })?;
        }
        // Entering a mount namespace moves the cwd to its root.
        if let Some(cwd) = cwd {
            let _ = nix::unistd::fchdir(cwd);
        }
        Ok(())
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// Make a new time namespace for our future children with the given
/// offsets; the returned guard puts our own time_for_children back.
pub fn new_time_for_children(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<TimeGuard, NsError> {
    let own = File::open("/proc/self/ns/time_for_children").map_err(|err| NsError::Open {
        kind: "time",
        path: "/proc/self/ns/time_for_children".into(),
        err,
    })?;
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .map_err(|err| NsError::Join { kind: "time", err })?;
    let guard = TimeGuard(own.into());
    let mut text = String::new();
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, o) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(NsError::Offsets(format!("unknown clock {clock:?}")));
        }
        text.push_str(&format!("{clock} {} {}\n", o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)));
    }
    let proc = crate::procfs::Proc::open().map_err(|e| NsError::Offsets(e.to_string()))?;
    proc.write(&format!("{}/timens_offsets", std::process::id()), text.as_bytes())
        .map_err(|e| NsError::Offsets(e.to_string()))?;
    Ok(guard)
}

pub struct TimeGuard(OwnedFd);

impl Drop for TimeGuard {
    fn drop(&mut self) {
        let _ = setns(self.0.as_fd(), CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
    }
}

/// Join a user namespace by fd and become its root.
pub fn join_user(fd: &OwnedFd) -> Result<(), NsError> {
    setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|err| NsError::Join { kind: "user", err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_clone_constants() {
        assert_eq!(flag(LinuxNamespaceType::Mount).bits(), libc::CLONE_NEWNS);
        assert_eq!(flag(LinuxNamespaceType::Network).bits(), libc::CLONE_NEWNET);
        assert_eq!(flag(LinuxNamespaceType::Time).bits(), libc::CLONE_NEWTIME);
    }

    #[test]
    fn plan_separates_new_and_joined() {
        let linux: Linux = serde_json::from_value(serde_json::json!({
            "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}, {"type": "mount"}]
        }))
        .unwrap();
        let p = Plan::from_spec(&linux).unwrap();
        assert!(p.has_new(LinuxNamespaceType::Pid));
        assert!(p.has_new(LinuxNamespaceType::Mount));
        assert!(!p.has_new(LinuxNamespaceType::Network));
        assert_eq!(p.join.len(), 1);
        assert!(!p.new_user());
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let linux: Linux = serde_json::from_value(serde_json::json!({
            "namespaces": [{"type": "network", "path": "/nonexistent/ns"}]
        }))
        .unwrap();
        let err = Plan::from_spec(&linux).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ns"), "{err}");
    }
}
