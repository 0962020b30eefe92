//! The parent/child channel used while a container is being built.
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries, so every message is
//! one datagram and neither side needs framing. Either side sees EOF when the
//! other dies, which is how a crashed child is noticed without polling.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("creating the sync socket: {0}")]
    Create(nix::Error),
    #[error("sync socket send: {0}")]
    Send(nix::Error),
    #[error("sync socket receive: {0}")]
    Recv(nix::Error),
    #[error("sync peer closed the channel")]
    Closed,
    #[error("malformed sync message: {0}")]
    Decode(serde_json::Error),
    #[error("unexpected sync message {got:?}, wanted {wanted}")]
    Unexpected { got: Msg, wanted: &'static str },
}

/// Every step of the create handshake, in the order it happens.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// parent → child, before Go, with a new user namespace: the bind
    /// sources, opened by the parent in the child's mount namespace, as
    /// fds attached to this message; carries their mount indices.
    BindSources(Vec<usize>),
    /// parent → child, before Go: detached id-mapped mount trees (see
    /// rootfs::idmap), as fds attached to this message; carries their
    /// mount indices. The child moves them into place.
    IdmappedTrees(Vec<usize>),
    /// parent → child: id maps written, and the child in its v2 cgroup
    /// where it could not be born there (it joins its v1 cgroups itself,
    /// see cgroups::Joiner); go on.
    Go,
    /// child → parent: mounts are made; run prestart and createRuntime hooks.
    RunRuntimeHooks,
    /// parent → child: the hooks succeeded; carries our pid as the host
    /// sees it, for the state document of createContainer hooks. (Documents
    /// themselves are not sent: annotations can make them larger than a
    /// datagram, and the child has the config already.)
    HooksDone(i32),
    /// child → parent: setup finished, waiting for `start`.
    Ready,
    /// parent → child: the state is recorded; outlive the parent from now on.
    /// Carries the host pid, as HooksDone.
    Commit(i32),
    /// child → parent: the parent-death signal is cleared.
    Committed,
    /// child → parent: setup failed.
    Error(String),
}

/// Longest error text sent over the channel: error messages can quote user
/// input (a path of megabytes), and one datagram must carry them.
pub const MAX_ERROR: usize = 4096;

/// An `Error` message, its text cut to [`MAX_ERROR`] bytes.
pub fn error(text: impl Into<String>) -> Msg {
    let mut t: String = text.into();
    if t.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push_str("...");
    }
    Msg::Error(t)
}

/// A message, or the exec trampoline's report of a failed execve (which
/// starts with a zero byte, as no JSON does).
fn decode(buf: &[u8]) -> Result<Msg, SyncError> {
    match crate::exec_trampoline::failure_text(buf) {
        Some(text) => Ok(error(text)),
        None => serde_json::from_slice(buf).map_err(SyncError::Decode),
    }
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyncError::Create)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        self.send_with_fds(msg, &[])
    }

    /// Receive a message; an fd sent along with it is closed.
    pub fn recv(&self) -> Result<Msg, SyncError> {
        self.recv_with_fds().map(|(msg, _)| msg)
    }

    /// Send a message with fds attached (SCM_RIGHTS).
    pub fn send_with_fds(&self, msg: &Msg, fds: &[std::os::fd::RawFd]) -> Result<(), SyncError> {
        let buf = serde_json::to_vec(msg).map_err(SyncError::Decode)?;
        let rights = [nix::sys::socket::ControlMessage::ScmRights(fds)];
        let cmsg: &[_] = if fds.is_empty() { &[] } else { &rights };
        loop {
            match nix::sys::socket::sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[std::io::IoSlice::new(&buf)],
                cmsg,
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(SyncError::Send(e)),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receive a message and the fds attached to it, if any.
    pub fn recv_with_fds(&self) -> Result<(Msg, Vec<OwnedFd>), SyncError> {
        use std::os::fd::FromRawFd;
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 253]);
        let (n, fds) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match nix::sys::socket::recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(SyncError::Recv(e)),
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs().map_err(SyncError::Recv)? {
                        if let nix::sys::socket::ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: SCM_RIGHTS just installed these fds for us.
                            fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                        }
                    }
                    break (m.bytes, fds);
                }
            }
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        Ok((decode(&buf[..n])?, fds))
    }

    /// The error the peer sent before it went away, if it did. Does not
    /// wait: a live peer that has sent nothing yields None.
    pub fn pending_error(&self) -> Option<String> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT).ok()?;
        match decode(&buf[..n]).ok()? {
            Msg::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Receive and insist on one particular message; an `Error` from the peer
    /// becomes the error text the user sees.
    pub fn expect(&self, wanted: Msg, name: &'static str) -> Result<(), ExpectError> {
        match self.recv()? {
            m if m == wanted => Ok(()),
            Msg::Error(e) => Err(ExpectError::Peer(e)),
            got => Err(SyncError::Unexpected { got, wanted: name }.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{0}")]
    Peer(String),
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
