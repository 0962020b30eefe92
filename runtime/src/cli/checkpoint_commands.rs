//! `checkpoint` and `restore`: runc's flags, translated for
//! container::checkpoint / container::restore.

use std::path::PathBuf;

use clap::Args;

use crate::container::checkpoint::{self, CheckpointOptions};
use crate::container::restore::{self, RestoreOptions};
use crate::container::{ops, ContainerError};
use crate::state::Store;

/// runc's default image directory: `checkpoint` in the current directory.
fn default_image_path() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")).join("checkpoint")
}

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Container id.
    pub id: String,
    /// Where the checkpoint image goes [default: ./checkpoint].
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Where CRIU's log and work files go [default: the image path].
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// A pre-dump's image directory (relative to the image path) this one builds on.
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Checkpoint established TCP connections.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow a shell job (a process attached to a terminal outside).
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Leave the memory to be fetched lazily by `criu lazy-pages`.
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// With --lazy-pages: an fd CRIU writes to once the dump is ready.
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
    /// Checkpoint file locks.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Dump memory only, leaving the container running (for a later --parent-path).
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// soft, full, strict or ignore [default: soft].
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// A namespace (network ...) to leave empty, not dump (repeatable).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Deduplicate the image against its parent.
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// ADDRESS:PORT of a CRIU page server for the memory (with
    /// --lazy-pages: served from here while the restore runs).
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// Container id (the same or a new one).
    pub id: String,
    /// The bundle to restore into.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// The checkpoint image [default: ./checkpoint].
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Where CRIU's log and work files go [default: the image path].
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Return once restored instead of waiting for the container.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the restored pty's master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (husk does not become a subreaper).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted for runc compatibility (CRIU does the pivot).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// soft, full, strict or ignore [default: soft].
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Restore memory lazily from a page server.
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// A namespace (network ...) to leave empty (repeatable).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
}

pub fn checkpoint(store: &Store, a: &CheckpointArgs, criu: Option<String>) -> Result<i32, ContainerError> {
    checkpoint::checkpoint(
        store,
        &CheckpointOptions {
            id: a.id.clone(),
            criu,
            image_path: a.image_path.clone().unwrap_or_else(default_image_path),
            work_path: a.work_path.clone(),
            parent_path: a.parent_path.clone(),
            leave_running: a.leave_running,
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            lazy_pages: a.lazy_pages,
            status_fd: a.status_fd,
            file_locks: a.file_locks,
            pre_dump: a.pre_dump,
            manage_cgroups_mode: a.manage_cgroups_mode.clone(),
            empty_ns: a.empty_ns.clone(),
            auto_dedup: a.auto_dedup,
            page_server: a.page_server.clone(),
        },
    )?;
    Ok(0)
}

/// Without -d, as `run`: wait for the restored container, forward signals,
/// relay its terminal, delete it and exit with its status.
pub fn restore(store: &Store, a: &RestoreArgs, criu: Option<String>, rootless: bool) -> Result<i32, ContainerError> {
    let set = (!a.detach).then(ops::block_signals);
    let restored = restore::restore(
        store,
        &RestoreOptions {
            id: a.id.clone(),
            bundle: a.bundle.clone(),
            criu,
            image_path: a.image_path.clone().unwrap_or_else(default_image_path),
            work_path: a.work_path.clone(),
            detach: a.detach,
            pid_file: a.pid_file.clone(),
            console_socket: a.console_socket.clone(),
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            manage_cgroups_mode: a.manage_cgroups_mode.clone(),
            lazy_pages: a.lazy_pages,
            auto_dedup: a.auto_dedup,
            empty_ns: a.empty_ns.clone(),
            rootless,
            stdio: None,
        },
    )?;
    let Some(set) = set else {
        return Ok(0);
    };
    let proxy = restored.pty_master.map(crate::console::Proxy::start);
    let code = ops::forward_and_wait(restored.pid, &set);
    let res = ops::delete(store, &a.id, true);
    if let Some(p) = proxy {
        p.finish();
    }
    res.map(|_| code)
}
