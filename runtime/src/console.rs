//! `process.terminal`: a pty whose master goes to the caller's console
//! socket (SCM_RIGHTS, as runc does) and whose peer becomes the process's
//! stdio, controlling terminal and /dev/console.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::MsgFlags;

use crate::rootfs::secure::{fd_path, replace_with_file};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console: {what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
    #[error("console: /dev/console: {0}")]
    Path(crate::rootfs::secure::SecureError),
    #[error("connecting to console socket {0}: {1}")]
    Connect(String, std::io::Error),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |err| ConsoleError::Sys { what, err }
}

pub fn connect(path: &Path) -> Result<OwnedFd, ConsoleError> {
    crate::fdpass::connect(path).map_err(|e| ConsoleError::Connect(path.display().to_string(), e))
}

/// A connected pair standing in for a console socket when husk itself
/// receives the master (foreground `run`/`exec` with a terminal).
pub fn pair() -> Result<(OwnedFd, OwnedFd), ConsoleError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(sys("console socketpair"))
}

/// Receive a pty master sent with [`send_master`].
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd, ConsoleError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(sys("receiving pty master"))?;
    for c in msg.cmsgs().map_err(sys("reading control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this fd in our table.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(sys("receiving pty master")(nix::Error::EBADMSG))
}

/// Copy between our stdio and a pty master until the master hangs up.
/// Our terminal (if stdin is one) is put in raw mode meanwhile, and window
/// size changes follow it; everything is restored when dropped.
pub struct Proxy {
    saved: Option<nix::sys::termios::Termios>,
    output: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(master: OwnedFd) -> Proxy {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
            copy_winsize(0, master.as_raw_fd());
        }
        let master = std::sync::Arc::new(std::fs::File::from(master));
        let m_in = master.clone();
        // Input: a detached thread; it ends with the process.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut &*m_in);
        });
        let m_out = master;
        let output = std::thread::spawn(move || {
            let _ = std::io::copy(&mut &*m_out, &mut std::io::stdout().lock());
        });
        Proxy { saved, output: Some(output) }
    }

    /// Wait for the output side to drain (the master reports EIO once the
    /// last holder of the pty's peer has exited).
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write one winsize struct.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Open a pty in the container's devpts (through /dev/ptmx), and get its
/// peer with TIOCGPTPEER: the peer is never looked up by path, so a fake
/// /dev/pts in the image cannot substitute another file.
pub fn open_pty() -> Result<Pty, ConsoleError> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("opening /dev/ptmx"))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(sys("unlocking pty")(nix::Error::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(sys("opening pty peer")(nix::Error::last()));
    }
    // SAFETY: the kernel just returned this fd to us.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    Ok(Pty { master, peer })
}

pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<(), ConsoleError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(sys("setting window size")(nix::Error::last()));
    }
    Ok(())
}

/// Open a pty sized as the process asks, hand its master to the console
/// socket, and return it (the caller makes the peer its terminal). With
/// `raw_output` (husk itself relays the pty to its caller: `run` or `exec
/// -t` without a console socket) ONLCR is cleared, as runc does, so the
/// caller reads what the process wrote, "\n" and not "\r\n"; done here,
/// before the process can write anything.
///
/// The peer belongs to the process's `uid`, mode 0620, as runc leaves it:
/// the process owns its terminal (mesg, ttyname checks).
pub fn give_master(socket: &OwnedFd, size: Option<oci_spec::runtime::Box>, raw_output: bool, uid: u32) -> Result<Pty, ConsoleError> {
    let pty = open_pty()?;
    nix::unistd::fchown(&pty.peer, Some(nix::unistd::Uid::from_raw(uid)), None).map_err(sys("chown of the pty"))?;
    nix::sys::stat::fchmod(&pty.peer, nix::sys::stat::Mode::from_bits_truncate(0o620)).map_err(sys("chmod of the pty"))?;
    if let Some(sz) = size {
        set_size(&pty.peer, sz.height() as u16, sz.width() as u16)?;
    }
    if raw_output {
        use nix::sys::termios;
        let mut t = termios::tcgetattr(&pty.peer).map_err(sys("reading the pty's settings"))?;
        t.output_flags.remove(termios::OutputFlags::ONLCR);
        termios::tcsetattr(&pty.peer, termios::SetArg::TCSANOW, &t).map_err(sys("clearing ONLCR"))?;
    }
    send_master(socket, &pty.master)?;
    Ok(pty)
}

/// Send the master to the console socket, named like runc names it.
pub fn send_master(socket: &OwnedFd, master: &OwnedFd) -> Result<(), ConsoleError> {
    crate::fdpass::send(socket, b"/dev/ptmx", master.as_raw_fd()).map_err(sys("sending pty master"))
}

/// Bind the pty peer over /dev/console, by fd on both sides. Whatever the
/// image had at /dev/console (a link to a procfs file, say: CVE-2025-52565)
/// is replaced by a plain file first, so the mount cannot land elsewhere.
pub fn mount_console(root: std::os::fd::BorrowedFd, peer: &OwnedFd) -> Result<(), ConsoleError> {
    let target = replace_with_file(root, Path::new("/dev/console")).map_err(ConsoleError::Path)?;
    mount(
        Some(fd_path(peer).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("mounting /dev/console"))
}

/// Make the peer our stdio and controlling terminal (we are a session leader).
pub fn become_stdio(peer: &OwnedFd) -> Result<(), ConsoleError> {
    for fd in 0..3 {
        dup2_raw(peer.as_fd().as_raw_fd(), fd).map_err(sys("dup2 onto stdio"))?;
    }
    // SAFETY: TIOCSCTTY with arg 0 on our own stdin.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(sys("setting controlling terminal")(nix::Error::last()));
    }
    Ok(())
}

pub fn dup2_raw(from: RawFd, to: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 on raw fds; `to` is a stdio slot we intend to replace.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
