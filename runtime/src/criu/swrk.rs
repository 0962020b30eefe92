//! Driving CRIU through its RPC interface, as runc does: `criu swrk FD`
//! with one end of a SOCK_SEQPACKET socketpair, one protobuf request,
//! then replies until the final one, answering each notification (the
//! `setup-namespaces`, `post-restore`, `orphan-pts-master` ... callbacks).
//!
//! The messages are CRIU's own `rpc.proto`, the few husk uses, encoded
//! and decoded by [`super::rpc`].

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

pub use super::rpc;

#[derive(Debug, thiserror::Error)]
pub enum SwrkError {
    #[error("running {criu}: {err} (is CRIU installed? --criu names its path)")]
    Spawn { criu: String, err: std::io::Error },
    #[error("talking to criu: {0}")]
    Io(#[from] std::io::Error),
    #[error("criu's RPC message: {0}")]
    Proto(#[from] rpc::RpcError),
    #[error("criu failed ({what}): {msg}")]
    Failed { what: String, msg: String },
    #[error("{0}")]
    Notify(String),
}

/// One swrk session. `extra_fds` are fds the request names by number (the
/// image and work directories, inherited stdio): they are passed to criu
/// under the same numbers.
pub struct Swrk {
    child: Child,
    sock: std::fs::File,
}

impl Swrk {
    pub fn start(criu: &str, extra_fds: &[RawFd]) -> Result<Swrk, SwrkError> {
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| SwrkError::Io(e.into()))?;
        let mut keep: Vec<RawFd> = extra_fds.to_vec();
        keep.push(theirs.as_raw_fd());
        let mut cmd = Command::new(criu);
        cmd.arg("swrk").arg(theirs.as_raw_fd().to_string()).stdin(Stdio::null());
        // SAFETY: between fork and exec only fcntl(2), which is
        // async-signal-safe, runs: it clears close-on-exec on the fds criu
        // is told about.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &keep {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|err| SwrkError::Spawn { criu: criu.to_string(), err })?;
        drop(theirs);
        Ok(Swrk { child, sock: std::fs::File::from(ours) })
    }

    /// criu's pid (restore moves it into the container's cgroups first).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send `req` and answer notifications with `notify(script, pid, fd)`
    /// until the reply to `req` comes. A failed callback fails criu's
    /// action (criu undoes it) and is the error returned.
    pub fn call(
        mut self,
        req: rpc::Req,
        mut notify: impl FnMut(&str, i32, Option<OwnedFd>) -> Result<(), String>,
    ) -> Result<rpc::Resp, SwrkError> {
        let want = req.ty;
        self.sock.write_all(&req.encode())?;
        let res = loop {
            let (data, fd) = recv(self.sock.as_raw_fd())?;
            let resp = rpc::Resp::decode(&data)?;
            if resp.ty == rpc::ReqType::Notify {
                let n = &resp.notify;
                let r = notify(&n.script, n.pid, fd);
                let ack = rpc::Req { ty: rpc::ReqType::Notify, notify_success: Some(r.is_ok()), ..Default::default() };
                self.sock.write_all(&ack.encode())?;
                if let Err(e) = r {
                    break Err(SwrkError::Notify(format!("{}: {e}", n.script)));
                }
                continue;
            }
            if !resp.success {
                let mut msg = resp.cr_errmsg;
                if msg.is_empty() {
                    msg = format!("errno {}", resp.cr_errno);
                }
                break Err(SwrkError::Failed { what: format!("{want:?}"), msg });
            }
            if resp.ty != want {
                break Err(SwrkError::Failed { what: format!("{want:?}"), msg: format!("unexpected reply {:?}", resp.ty) });
            }
            break Ok(resp);
        };
        drop(self.sock);
        let _ = self.child.wait();
        res
    }
}

/// One reply, and the fd it carries (only `orphan-pts-master` sends one).
fn recv(fd: RawFd) -> Result<(Vec<u8>, Option<OwnedFd>), SwrkError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = nix::cmsg_space!(RawFd);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC).map_err(|e| SwrkError::Io(e.into()))?;
    let n = msg.bytes;
    if n == 0 {
        return Err(SwrkError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "criu exited without replying")));
    }
    let mut passed = None;
    for c in msg.cmsgs().map_err(|e| SwrkError::Io(e.into()))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: a new fd the kernel just gave us.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                passed.get_or_insert(owned);
            }
        }
    }
    buf.truncate(n);
    Ok((buf, passed))
}
