//! Running commands with a timeout and capturing their output.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Result of one command.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub cmdline: String,
    /// Exit code, if the command exited normally.
    pub status: Option<i32>,
    /// Terminating signal, if the command was killed.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0) && !self.timed_out
    }
    /// Exit code, or -1 if there is none.
    pub fn code(&self) -> i32 {
        self.status.unwrap_or(-1)
    }
    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.success(), "command failed: {self}");
        &self.stdout
    }
    /// Assert the command failed (non-zero exit, not a timeout) with a message on stderr.
    #[track_caller]
    pub fn assert_failed_with_message(&self) {
        assert!(!self.timed_out, "command timed out: {self}");
        assert!(self.status.is_some() && self.status != Some(0), "command should have failed: {self}");
        assert!(!self.stderr.trim().is_empty(), "failure without a message on stderr: {self}");
    }
    /// Stdout lines, trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_string()).collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` => status {:?} signal {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.status,
            self.signal,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

fn memfd(name: &str) -> File {
    let c = std::ffi::CString::new(name).unwrap();
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    unsafe { File::from_raw_fd(fd) }
}

fn read_all(f: &mut File) -> String {
    let mut s = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut s).unwrap();
    String::from_utf8_lossy(&s).into_owned()
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr captured into
/// memory files (so detached grandchildren holding them never block us).
/// The command is killed if it runs longer than `timeout`.
pub fn exec(mut cmd: Command, timeout: Duration) -> Output {
    let mut out = memfd("stdout");
    let mut err = memfd("stderr");
    let cmdline = format!("{:?}", cmd).replace('"', "");
    cmd.stdin(Stdio::null());
    cmd.stdout(Stdio::from(out.try_clone().unwrap()));
    cmd.stderr(Stdio::from(err.try_clone().unwrap()));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output { cmdline, status: Some(127), stderr: format!("spawn failed: {e}"), ..Default::default() }
        }
    };
    // Drop our copies of the child's ends held by `cmd`.
    drop(cmd);
    let end = Instant::now() + timeout;
    let mut timed_out = false;
    let st = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("wait: {e}"),
        }
        if Instant::now() > end {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        cmdline,
        status: st.code(),
        signal: st.signal(),
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
        timed_out,
    }
}

/// Run a host command (program + args) with the default timeout.
pub fn host(prog: &str, args: &[&str]) -> Output {
    let mut c = Command::new(prog);
    c.args(args);
    exec(c, crate::TIMEOUT)
}
