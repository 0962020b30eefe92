//! Handing one fd to another process over a unix socket (SCM_RIGHTS), as
//! runc does for the pty master (`--console-socket`), the seccomp notify
//! fd (`listenerPath`) and the process's pidfd (`--pidfd-socket`).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Connect to the unix socket at `path`.
pub fn connect(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(std::os::unix::net::UnixStream::connect(path)?.into())
}

/// Send `fd` with `payload` as the message's data.
pub fn send(sock: &OwnedFd, payload: &[u8], fd: RawFd) -> nix::Result<()> {
    let fds = [fd];
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(payload)], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_and_payload_arrive() {
        use nix::sys::socket::{recvmsg, socketpair, AddressFamily, ControlMessageOwned, SockFlag, SockType};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        send(&a, b"pidfd", file.as_raw_fd()).unwrap();
        let mut buf = [0u8; 16];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(b.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let got: Vec<RawFd> = msg
            .cmsgs()
            .unwrap()
            .filter_map(|c| match c {
                ControlMessageOwned::ScmRights(f) => Some(f),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(msg.bytes, 5);
        assert_eq!(got.len(), 1);
        // SAFETY: the fd SCM_RIGHTS just installed.
        unsafe { libc::close(got[0]) };
        assert_eq!(&buf[..5], b"pidfd");
    }
}
