//! The long-lived shim process: the ttrpc server, signal handling and
//! reaping. The containerd-shim crate has all of this in its `run`, but
//! serves the Task API only under its v3 name, which containerd 1.6/1.7
//! (calling `containerd.task.v2.Task`) do not find; here the same service
//! answers under both names.

use std::os::fd::IntoRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use containerd_shim::protos::shim::shim_ttrpc::create_task;
use containerd_shim::protos::ttrpc::Server;
use containerd_shim::synchronous::monitor::monitor_notify_by_pid;
use containerd_shim::{ExitSignal, Flags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGPIPE, SIGTERM};
use signal_hook::iterator::Signals;

use crate::task::TaskService;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("shim socket cannot be empty")]
    NoSocket,
    #[error("TTRPC_ADDRESS is not set")]
    NoTtrpcAddress,
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("{0}")]
    Shim(#[from] containerd_shim::Error),
    #[error("ttrpc: {0}")]
    Ttrpc(#[from] containerd_shim::protos::ttrpc::Error),
    #[error("prctl(PR_SET_CHILD_SUBREAPER): {0}")]
    Subreaper(nix::Error),
}

fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

pub fn serve(flags: &Flags) -> Result<(), ServeError> {
    if flags.socket.is_empty() {
        return Err(ServeError::NoSocket);
    }
    // Registered before any thread exists, as signal-hook asks.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGPIPE, SIGCHLD]).map_err(|e| ServeError::Io("signals", e))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(ServeError::Subreaper)?;
    containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)?;
    let path = socket_path(&flags.socket).to_string();
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // Another shim of this group serves the socket already.
            if UnixStream::connect(&path).is_ok() {
                containerd_shim::util::write_address(&flags.socket)?;
                signal_started();
                return Ok(());
            }
            let _ = std::fs::remove_file(&path);
            bind(&path).map_err(|e| ServeError::Io("binding the shim socket", e))?
        }
        Err(e) => return Err(ServeError::Io("binding the shim socket", e)),
    };
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").map_err(|_| ServeError::NoTtrpcAddress)?;
    // Before any child exists: the reaper below takes every exit status.
    husk::reaper::install(Box::new(crate::exits::ShimReaper));
    let publisher = crate::events::Publisher::connect(&ttrpc_address)?;
    let exit = Arc::new(ExitSignal::default());
    let task = TaskService::new(
        &flags.namespace,
        crate::service::state_root(&flags.namespace),
        publisher,
        exit.clone(),
    );
    let v3 = create_task(Arc::new(task.clone()));
    let v2 = create_task(Arc::new(task))
        .into_iter()
        .map(|(k, v)| (k.replacen("/containerd.task.v3.", "/containerd.task.v2.", 1), v))
        .collect();
    // One idle worker per connection, and a worker that has served a
    // request exits rather than wait for the next one if another is idle
    // (ttrpc: a worker leaves when idle ones would exceed the maximum; it
    // starts one when none is left, so a blocking Wait never holds up the
    // connection). Each request thus runs on a fresh thread whose stack is
    // unmapped when it ends: create, start and exec touch ~50 KiB of stack
    // in husk's code, which an idle worker kept resident for the shim's
    // life, 8 of them in a pod of 2 after some execs (~400 KiB). A thread
    // costs ~30 us to start. `start` refuses default == min, hence
    // start_listen, which is `start` without that check.
    let mut server = Server::new()
        .set_thread_count_default(1)
        .set_thread_count_min(1)
        .set_thread_count_max(1)
        .add_listener(listener.into_raw_fd())?
        .register_service(v3)
        .register_service(v2);
    server.start_listen()?;
    signal_started();
    std::thread::spawn(move || handle_signals(&mut signals));
    exit.wait();
    server.shutdown();
    let _ = std::fs::remove_file(&path);
    Ok(())
}

fn bind(path: &str) -> std::io::Result<UnixListener> {
    if let Some(parent) = Path::new(path).parent() {
        std::fs::create_dir_all(parent)?;
    }
    UnixListener::bind(path)
}

/// containerd waits for our stdout to close before it dials the socket.
fn signal_started() {
    // SAFETY: dup2 of our own stderr onto our own stdout.
    unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
}

/// Reap every child, reporting each exit once to the Task service's
/// subscription; ignore SIGTERM/SIGINT (containerd stops us with Shutdown).
fn handle_signals(signals: &mut Signals) {
    loop {
        for sig in signals.wait() {
            if sig != SIGCHLD {
                log::debug!("signal {sig} ignored");
                continue;
            }
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) => {
                        let _ = monitor_notify_by_pid(pid.as_raw(), code);
                    }
                    Ok(WaitStatus::Signaled(pid, sig, _)) => {
                        let _ = monitor_notify_by_pid(pid.as_raw(), 128 + sig as i32);
                    }
                    Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                    Ok(_) => {}
                    Err(nix::Error::EINTR) => {}
                    Err(e) => {
                        log::warn!("waitpid: {e}");
                        break;
                    }
                }
            }
        }
    }
}
