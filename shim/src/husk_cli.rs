//! CVE-2019-5736 in the shim. A process the shim forks runs the shim's own
//! image until it execs, and a container that keeps CAP_SYS_PTRACE in the
//! host's user namespace may open such a process's /proc/PID/exe even though
//! it is non-dumpable; once no shim runs, it could write the shim binary.
//! For those containers (`cloned_binary::needed_for_files`) create and exec
//! go through the husk binary instead, which re-executes from a sealed copy
//! before it forks. Everything else goes through the library, as before.

use std::ffi::OsString;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{io, Result, ShimError};
use crate::stdio::Prepared;

/// The longest a husk create or exec may take (it runs the config's hooks).
const TIMEOUT: Duration = Duration::from_secs(120);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The husk binary next to the shim's (as installed), else the first on PATH.
fn find_husk() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("husk")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).map(|d| d.join("husk")).collect::<Vec<_>>());
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}

/// `husk create` of container `id` from `bundle`, its pid written to `pid_file`.
pub fn create(root: &Path, bundle: &Path, id: &str, stdio: &Prepared, pid_file: &Path) -> Result<()> {
    let mut args: Vec<OsString> = vec!["create".into(), "--bundle".into(), bundle.into()];
    args.extend(["--pid-file".into(), pid_file.into()]);
    if let Some(s) = stdio.console_socket() {
        args.extend(["--console-socket".into(), s.into()]);
    }
    args.push(id.into());
    run(root, &args, stdio.raw_fds(), bundle)
}

/// `husk exec --detach` of `process_file` into container `id`.
pub fn exec(root: &Path, id: &str, process_file: &Path, stdio: &Prepared, pid_file: &Path, log_dir: &Path) -> Result<()> {
    let mut args: Vec<OsString> = vec!["exec".into(), "--process".into(), process_file.into()];
    args.extend(["--detach".into(), "--pid-file".into(), pid_file.into()]);
    if let Some(s) = stdio.console_socket() {
        args.extend(["--tty".into(), "--console-socket".into(), s.into()]);
    }
    args.push(id.into());
    run(root, &args, stdio.raw_fds(), log_dir)
}

/// Run `husk --root ROOT ARGS...` with `stdio` as its stdin, stdout and
/// stderr (husk hands them to the container process). husk's own errors go
/// to a JSON log in `log_dir`, as containerd's runc shim reads runc's.
fn run(root: &Path, args: &[OsString], stdio: [RawFd; 3], log_dir: &Path) -> Result<()> {
    let bin = find_husk().ok_or_else(|| {
        ShimError::FailedPrecondition(
            "this container keeps CAP_SYS_PTRACE, so the husk binary must make it, and none is beside the shim or on PATH"
                .into(),
        )
    })?;
    let log = log_dir.join(format!(".husk-cli-{}-{}.log", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let mut cmd = Command::new(&bin);
    cmd.arg("--root").arg(root).arg("--log").arg(&log).arg("--log-format").arg("json").args(args);
    let dup = |fd: RawFd| -> Result<std::process::Stdio> {
        // SAFETY: the caller's fds stay open for the whole call.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        Ok(b.try_clone_to_owned().map_err(io("dup of a stdio fd"))?.into())
    };
    cmd.stdin(dup(stdio[0])?).stdout(dup(stdio[1])?).stderr(dup(stdio[2])?);
    // The shim's reaper collects every child of ours: the exit status comes
    // through a watch made before the child can exit.
    let mut watch = husk::reaper::watch().ok_or_else(|| ShimError::FailedPrecondition("no exit watch installed".into()))?;
    let child = cmd.spawn().map_err(io(format!("running {}", bin.display())))?;
    let pid = child.id() as i32;
    let code = watch.wait(pid, Some(TIMEOUT));
    let msg = last_error(&log);
    let _ = std::fs::remove_file(&log);
    match code {
        Some(0) => Ok(()),
        Some(c) => Err(ShimError::FailedPrecondition(msg.unwrap_or_else(|| format!("{} exited with {c}", bin.display())))),
        None => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            Err(ShimError::FailedPrecondition(format!("{} did not finish within {TIMEOUT:?}", bin.display())))
        }
    }
}

/// The message of the last error line of a husk JSON log.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error").then(|| v["msg"].as_str().map(str::to_string)).flatten()
    })
}
