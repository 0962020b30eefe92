//! Operations on an existing container: start, state, kill, delete, and the
//! foreground wait of `run`.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;

use nix::sys::signal::{kill as send, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::ContainerError;
use crate::hooks;
use crate::intel_rdt;
use crate::rootfs::host_mountns;
use crate::state::{self, ContainerDir, ContainerState, Status, Store};

pub fn status(store: &Store, id: &str) -> Result<(ContainerState, Status), ContainerError> {
    let st = store.read(id)?;
    let status = state::status_of(&st, &store.dir(id));
    Ok((st, status))
}

/// Every container of the store with its status, in id order; directories
/// without a readable state (a create in progress, a leftover) are skipped.
/// Each status is a few small file reads, which with hundreds of containers
/// are spread over a thread per CPU (up to 8).
pub fn list(store: &Store) -> Result<Vec<(ContainerState, Status)>, ContainerError> {
    const PER_THREAD_MIN: usize = 64;
    let ids = store.ids()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cpus.min(8).min(ids.len() / PER_THREAD_MIN).max(1);
    let read = |part: &[String]| part.iter().filter_map(|id| status(store, id).ok()).collect::<Vec<_>>();
    if threads == 1 {
        return Ok(read(&ids));
    }
    let chunk = ids.len().div_ceil(threads);
    Ok(std::thread::scope(|s| {
        let parts: Vec<_> = ids.chunks(chunk).map(|part| s.spawn(move || read(part))).collect();
        // A worker cannot fail (no panics: panic = "abort").
        parts.into_iter().flat_map(|p| p.join().unwrap_or_default()).collect()
    }))
}

pub fn start(store: &Store, id: &str) -> Result<(), ContainerError> {
    let _span = tracing::debug_span!("start").entered();
    let dir = store.open(id)?;
    let st = dir.read()?;
    let status = state::status_of(&st, dir.path());
    if status != Status::Created {
        return Err(ContainerError::BadStatus {
            id: id.into(),
            status,
            what: match status {
                Status::Stopped => "cannot start a container that has stopped".into(),
                Status::Running => "cannot start an already running container".into(),
                other => format!("cannot start a container in the {other} state"),
            },
        });
    }
    let (tx, mut reply) = open_start_fifos(&dir)?;
    (&tx).write_all(b"0").map_err(|e| ContainerError::Io(dir.exec_fifo(), e))?;
    drop(tx);
    // From here the container counts as running, whatever the exec does.
    for f in [dir.exec_fifo(), dir.reply_fifo()] {
        std::fs::remove_file(&f).map_err(|e| ContainerError::Io(f, e))?;
    }
    let reply_path = dir.reply_fifo();
    // The transition is done: no lock while the container process runs its
    // startContainer hooks and execs (a frozen or slow one must not block
    // `delete --force`, `resume` or `kill`).
    drop(dir);
    // EOF: the exec closed the process's end; the user program runs.
    let mut why = Vec::new();
    reply.read_to_end(&mut why).map_err(|e| ContainerError::Io(reply_path, e))?;
    if !why.is_empty() {
        // Husk's own error text, or the exec trampoline's report.
        let text = crate::exec_trampoline::failure_text(&why).unwrap_or_else(|| String::from_utf8_lossy(&why).into_owned());
        return Err(ContainerError::Init(text));
    }
    if let Err(e) = poststart(&st) {
        // runtime-spec 1.3 and runc 1.2+: a failed poststart hook stops the
        // container and fails `start` (runc 1.1 ran poststart in `create`).
        if let Err(k) = stop(&st) {
            tracing::warn!("stopping the container after a failed poststart hook: {k}");
        }
        return Err(e);
    }
    Ok(())
}

/// Open both fifos without blocking: with nobody reading the exec fifo the
/// container process is gone, and the open fails with ENXIO instead of
/// hanging.
fn open_start_fifos(dir: &ContainerDir) -> Result<(std::fs::File, std::fs::File), ContainerError> {
    let tx = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.exec_fifo())
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => ContainerError::Init("container init process is gone".into()),
            _ => ContainerError::Io(dir.exec_fifo(), e),
        })?;
    let reply = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.reply_fifo())
        .map_err(|e| ContainerError::Io(dir.reply_fifo(), e))?;
    // Reading the reply must block until the process writes or exec's.
    nix::fcntl::fcntl(&reply, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()))
        .map_err(|err| ContainerError::Sys { what: "reply fifo".into(), err })?;
    Ok((tx, reply))
}

/// The poststart hooks in order, up to the first that fails.
fn poststart(st: &ContainerState) -> Result<(), ContainerError> {
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
        let doc = st.spec_state(Status::Running).to_string();
        hooks::run_all("poststart", Some(h), doc.as_bytes())?;
    }
    Ok(())
}

pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<(), ContainerError> {
    let dir = store.open(id)?;
    let st = dir.read()?;
    let status = state::status_of(&st, dir.path());
    if status == Status::Stopped {
        return Err(ContainerError::BadStatus {
            id: id.into(),
            status,
            what: "container not running".into(),
        });
    }
    if all {
        return signal_all(&st, sig);
    }
    signal_pid(st.pid, sig)
}

/// Signal every process of the container: through its cgroups, or, with
/// none (rootless on cgroup v1), every process of its pid namespace.
fn signal_all(st: &ContainerState, sig: i32) -> Result<(), ContainerError> {
    match &st.cgroup {
        Some(cg) if !cg.placements.is_empty() => Ok(cg.signal_all(sig)?),
        _ => {
            for pid in crate::procfs::pid_ns_members(st.pid) {
                signal_pid(pid, sig)?;
            }
            Ok(())
        }
    }
}

fn signal_pid(pid: i32, sig: i32) -> Result<(), ContainerError> {
    // SAFETY: kill(2) on the pid recorded in the state, verified alive by
    // status_of (start time matched) just before.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let err = nix::Error::last();
        if err != nix::Error::ESRCH {
            return Err(ContainerError::Sys { what: format!("kill {pid}"), err });
        }
    }
    Ok(())
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), ContainerError> {
    let _span = tracing::debug_span!("delete").entered();
    let opened = if force { store.open_forced(id) } else { store.open(id) };
    let dir = match opened {
        Ok(d) => d,
        Err(state::StateError::NotFound) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = match dir.read() {
        Ok(st) => st,
        // A create that died half-way left a directory without a state
        // file; a crash or a full disk can tear one.
        Err(state::StateError::NotFound) => return recover(dir, id),
        Err(e) if force => {
            tracing::warn!("{e}: cleaning up from the cgroup record");
            return recover(dir, id);
        }
        Err(e) => return Err(e.into()),
    };
    let status = state::status_of(&st, dir.path());
    match status {
        Status::Stopped => {}
        // A container never started can always be deleted (as in runc).
        Status::Created => stop(&st)?,
        _ if force => stop(&st)?,
        _ => {
            return Err(ContainerError::BadStatus {
                id: id.into(),
                status,
                what: format!("cannot delete container {id} that is not stopped: {status}"),
            })
        }
    }
    destroy(dir, &st)
}

/// Clean up a container whose state.json is missing or unreadable, from
/// what `create` wrote before: the cgroup record (made before any process
/// existed: killing everything in those cgroups kills every process of
/// the container, and only the directories husk made are removed) or, for
/// a create killed between making the cgroups and recording them (or a
/// torn record), the saved config. Those cgroups cannot be told from ones
/// that existed before, so they are only removed when empty (the init dies
/// with its parent, by PR_SET_PDEATHSIG). Reports success only when
/// nothing is left.
fn recover(dir: ContainerDir, id: &str) -> Result<(), ContainerError> {
    release_host_mounts(&dir)?;
    release_intel_rdt(&dir)?;
    match dir.read_cgroup() {
        Ok(rec) => rec.destroy()?,
        // Not written yet, or torn as well (then by a crash of the whole
        // host, after which no process of the container is left).
        Err(e) => {
            if !matches!(e, state::StateError::NotFound) {
                tracing::warn!("{e}: falling back to the saved config");
            }
            for p in planned_cgroups(&dir, id) {
                remove_empty_cgroup(&p)?;
            }
        }
    }
    Ok(dir.remove()?)
}

/// Where `create` would have put the cgroups, by the config it saved (none
/// when it died before saving it, which it does before making anything).
fn planned_cgroups(dir: &ContainerDir, id: &str) -> Vec<std::path::PathBuf> {
    let path = dir.path().join(state::CONFIG_FILE);
    let Ok(raw) = crate::spec::read_limited(&path) else { return Vec::new() };
    let Ok(spec) = crate::spec::parse(&path, &raw) else { return Vec::new() };
    let cg = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    crate::cgroups::plan(cg.as_deref(), id).map(|ps| ps.into_iter().map(|p| p.path).collect()).unwrap_or_default()
}

fn remove_empty_cgroup(path: &std::path::Path) -> Result<(), ContainerError> {
    // A dying process may still be in it for a moment.
    crate::cgroups::remove_dir_when_free(path, std::time::Duration::from_secs(2)).map_err(|e| {
        ContainerError::Io(path.to_path_buf(), std::io::Error::new(e.kind(), format!(
            "cgroup of a create that was interrupted, not removed: {e} (processes husk cannot attribute to the container may be in it)"
        )))
    })
}

/// The mounts of a container without a mount namespace of its own, made on
/// the host (see `rootfs::host_mountns`).
fn release_host_mounts(dir: &ContainerDir) -> Result<(), ContainerError> {
    release_recorded(dir, host_mountns::RECORD_FILE, "mounts under its rootfs", |r| Ok(host_mountns::release(r)?))
}

/// The resctrl groups made for the container (see `intel_rdt`).
fn release_intel_rdt(dir: &ContainerDir) -> Result<(), ContainerError> {
    release_recorded(dir, intel_rdt::RECORD_FILE, "resctrl groups", |r| Ok(intel_rdt::release(r)?))
}

/// Undo what a record in the state directory names. No record: nothing
/// was made. A record torn by a crash cannot say what it named any more,
/// and `delete --force` must still get rid of the rest: a warning.
fn release_recorded<T: serde::de::DeserializeOwned>(
    dir: &ContainerDir,
    file: &str,
    what: &str,
    release: impl FnOnce(&T) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    match dir.read_record::<T>(file) {
        Ok(r) => release(&r),
        Err(state::StateError::NotFound) => Ok(()),
        Err(e) => {
            tracing::warn!("{e}: the container's {what}, if any, are left");
            Ok(())
        }
    }
}

/// SIGKILL everything and wait until the init process is really gone.
fn stop(st: &ContainerState) -> Result<(), ContainerError> {
    let pidfd = crate::pidfd::open(st.pid);
    signal_all(st, libc::SIGKILL)?;
    signal_pid(st.pid, libc::SIGKILL)?;
    if let Some(fd) = pidfd {
        let _ = crate::pidfd::wait_exit(&fd, std::time::Duration::from_secs(10));
    }
    Ok(())
}

fn destroy(dir: ContainerDir, st: &ContainerState) -> Result<(), ContainerError> {
    release_host_mounts(&dir)?;
    release_intel_rdt(&dir)?;
    if let Some(cg) = &st.cgroup {
        tracing::debug_span!("remove_cgroups").in_scope(|| cg.destroy())?;
    }
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        let doc = st.spec_state(Status::Stopped).to_string();
        hooks::run_all_warning("poststop", Some(h), doc.as_bytes());
    }
    dir.remove()?;
    Ok(())
}

/// Signals `run` relays to the container rather than acting on itself.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

/// Block the forwarded signals (and SIGCHLD) so they queue for
/// [`forward_and_wait`]. Call after the container process was forked: the
/// child must not inherit the mask.
pub fn block_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    let _ = set.thread_block();
    set
}

/// Relay signals to `pid` until it exits; return its exit code as a shell
/// would (128+N for a signal death).
pub fn forward_and_wait(pid: i32, set: &SigSet) -> i32 {
    let _span = tracing::debug_span!("wait").entered();
    let target = Pid::from_raw(pid);
    loop {
        match waitpid(target, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = send(target, sig);
            }
            Err(_) => {}
        }
    }
}
