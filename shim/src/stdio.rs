//! A process's stdio as containerd hands it over: fifo paths (or empty
//! strings) and a terminal flag.
//!
//! Without a terminal, stdout and stderr fifos are given to the process
//! directly (no copying in the shim; containerd's reader sees EOF when the
//! last process holding them exits). stdin goes through a pipe fed by a
//! thread, so that CloseIO can give the process EOF. With a terminal, the
//! pty master arrives on a console socket and two threads copy between it
//! and the fifos.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{io, Result, ShimError};

#[derive(Debug, Clone, Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Opened before create/exec.
pub struct Prepared {
    fds: [OwnedFd; 3],
    stdin_writer: Option<File>,
    console: Option<(UnixListener, PathBuf)>,
    stdio: Stdio,
}

/// Kept by the shim while the process lives.
pub struct Attached {
    /// The pty master, for ResizePty.
    pub console: Option<Arc<OwnedFd>>,
    /// The write end of the process's stdin pipe, dropped by CloseIO.
    pub stdin: Arc<Mutex<Option<File>>>,
    /// Closed when the terminal output was copied out entirely.
    pub drained: Option<mpsc::Receiver<()>>,
    /// Dropped with the process's record: the stdin thread then stops, even
    /// if containerd never opened its end of the fifo.
    _stop_feeder: Option<OwnedFd>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn dev_null(write: bool) -> Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")
        .map_err(io("/dev/null"))?;
    Ok(f.into())
}

/// A fifo opened read-write: never blocks, whether or not containerd has
/// opened its end yet.
fn open_fifo_rw(path: &str) -> Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io(format!("opening {path}")))?;
    Ok(f.into())
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ShimError::Sys("pipe".into(), e))
}

impl Prepared {
    /// `socket_dir` holds the console socket of a terminal process.
    pub fn open(stdio: &Stdio, socket_dir: &Path) -> Result<Prepared> {
        let mut stdin_writer = None;
        let mut console = None;
        let fds = if stdio.terminal {
            std::fs::create_dir_all(socket_dir).map_err(io(socket_dir.display().to_string()))?;
            let path = socket_dir.join(format!(
                "c{}-{}.sock",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path).map_err(io(format!("binding {}", path.display())))?;
            console = Some((l, path));
            [dev_null(false)?, dev_null(true)?, dev_null(true)?]
        } else {
            let stdin = if stdio.stdin.is_empty() {
                dev_null(false)?
            } else {
                let (r, w) = pipe()?;
                stdin_writer = Some(File::from(w));
                r
            };
            let out = |p: &str| if p.is_empty() { dev_null(true) } else { open_fifo_rw(p) };
            [stdin, out(&stdio.stdout)?, out(&stdio.stderr)?]
        };
        Ok(Prepared { fds, stdin_writer, console, stdio: stdio.clone() })
    }

    pub fn raw_fds(&self) -> [RawFd; 3] {
        [self.fds[0].as_raw_fd(), self.fds[1].as_raw_fd(), self.fds[2].as_raw_fd()]
    }

    pub fn console_socket(&self) -> Option<PathBuf> {
        self.console.as_ref().map(|(_, p)| p.clone())
    }

    /// After create/exec succeeded: close our copies of the process's fds,
    /// take the pty master, start the copying threads.
    pub fn attach(mut self) -> Result<Attached> {
        let fds = std::mem::replace(&mut self.fds, [dev_null(true)?, dev_null(true)?, dev_null(true)?]);
        drop(fds);
        let stdin = Arc::new(Mutex::new(self.stdin_writer.take()));
        let (stop, stop_feeder) = if self.stdio.stdin.is_empty() { (None, None) } else { pipe().map(|(r, w)| (Some(r), Some(w)))? };
        let Some((listener, path)) = self.console.take() else {
            if let Some(stop) = stop {
                let path = self.stdio.stdin.clone();
                let w = stdin.clone();
                std::thread::spawn(move || {
                    let eof = feed_stdin(&path, &stop, |data| {
                        let mut guard = w.lock().unwrap_or_else(|e| e.into_inner());
                        guard.as_mut().is_some_and(|f| f.write_all(data).is_ok())
                    });
                    if eof {
                        // EOF from containerd: the process gets EOF too.
                        w.lock().unwrap_or_else(|e| e.into_inner()).take();
                    }
                });
            }
            return Ok(Attached { console: None, stdin, drained: None, _stop_feeder: stop_feeder });
        };
        let master = recv_console(&listener);
        let _ = std::fs::remove_file(&path);
        let master = Arc::new(master?);
        if let Some(stop) = stop {
            let path = self.stdio.stdin.clone();
            let mut m = File::from(dup(&master)?);
            std::thread::spawn(move || feed_stdin(&path, &stop, |data| m.write_all(data).is_ok()));
        }
        let (tx, rx) = mpsc::channel();
        if self.stdio.stdout.is_empty() {
            drop(tx);
        } else {
            let path = self.stdio.stdout.clone();
            let m = dup(&master)?;
            std::thread::spawn(move || {
                let _done = tx;
                if let Ok(mut fifo) = OpenOptions::new().write(true).open(&path) {
                    copy_until_hangup(&mut File::from(m), &mut fifo);
                }
            });
        }
        Ok(Attached { console: Some(master), stdin, drained: Some(rx), _stop_feeder: stop_feeder })
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some((_, p)) = &self.console {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(io("dup"))
}

/// The connection was queued before create returned; wait a little for it
/// all the same.
fn recv_console(l: &UnixListener) -> Result<OwnedFd> {
    l.set_nonblocking(true).map_err(io("console socket"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(io("console socket"))?;
                return husk::console::recv_master(&OwnedFd::from(s))
                    .map_err(|e| ShimError::Io("receiving the pty master".into(), std::io::Error::other(e.to_string())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(ShimError::Io("waiting for the pty master".into(), e)),
        }
    }
}

/// Pass what containerd writes into the stdin fifo to `write` until
/// containerd closes its end (returns true), `write` refuses, or `stop`
/// hangs up. The fifo is opened without blocking and watched with poll: a
/// blocking open would wait forever for a client that never opens its end
/// (`ctr task exec` whose process exited first), one thread per exec.
fn feed_stdin(path: &str, stop: &OwnedFd, mut write: impl FnMut(&[u8]) -> bool) -> bool {
    let Ok(mut fifo) = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path) else {
        return false;
    };
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return false;
        }
        // Before its first writer, a fifo polls neither readable nor hung
        // up, so a read of 0 here is containerd closing its end.
        match fifo.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if !write(&buf[..n]) => return false,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(_) => return true,
        }
    }
}

/// Reading a pty master fails with EIO once every slave fd is closed.
fn copy_until_hangup(from: &mut File, to: &mut File) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
