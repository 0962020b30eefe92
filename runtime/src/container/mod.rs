//! Container lifecycle: create (parent side), init (container side), and the
//! operations on an existing container.

pub mod cgroup_ops;
pub mod checkpoint;
mod clone;
pub mod create;
pub mod exec;
pub mod init;
pub mod ops;
pub mod restore;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use create::{create, CreateOptions, Created};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Ns(#[from] crate::namespaces::NsError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// `what` is runc's own message for the case: tools match on it.
    #[error("{what}")]
    BadStatus {
        id: String,
        status: crate::state::Status,
        what: String,
    },
    #[error(transparent)]
    Signal(#[from] crate::signal::SignalError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
    #[error(transparent)]
    Netdev(#[from] crate::netdev::NetdevError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    IntelRdt(#[from] crate::intel_rdt::RdtError),
}

/// Connect to `--pidfd-socket` before the process is made, so that a bad
/// path fails early and leaves nothing.
fn connect_pidfd_socket(path: Option<&Path>) -> Result<Option<OwnedFd>, ContainerError> {
    path.map(|p| crate::fdpass::connect(p).map_err(|e| ContainerError::Io(p.to_path_buf(), e))).transpose()
}

/// Hand the new process's pidfd to `--pidfd-socket`.
fn send_pidfd(sock: Option<&OwnedFd>, pid: i32) -> Result<(), ContainerError> {
    match sock {
        Some(s) => crate::pidfd::send(s, pid).map_err(|err| ContainerError::Sys { what: "sending a pidfd to --pidfd-socket".into(), err }),
        None => Ok(()),
    }
}
