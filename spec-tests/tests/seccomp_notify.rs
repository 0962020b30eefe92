//! SCMP_ACT_NOTIFY: the runtime hands the seccomp notify fd, with the
//! container's state, to the process listening on `listenerPath`; the
//! listener then decides the outcome of the notifying syscalls.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use serde_json::json;
use spec_tests::Container;

/// struct seccomp_notif / seccomp_notif_resp, and their ioctls.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Accept one connection, read the state message and the fd, then answer
/// every notification with `errno` until the fd closes. Returns the message.
fn listen(l: UnixListener, errno: i32) -> std::thread::JoinHandle<Option<(serde_json::Value, usize)>> {
    listen_and_tell(l, errno, None)
}

/// [`listen`], telling `got` as soon as the state message and fd arrived.
fn listen_and_tell(
    l: UnixListener,
    errno: i32,
    got: Option<std::sync::mpsc::Sender<()>>,
) -> std::thread::JoinHandle<Option<(serde_json::Value, usize)>> {
    std::thread::spawn(move || {
        l.set_nonblocking(false).ok()?;
        let (conn, _) = l.accept().ok()?;
        let mut buf = vec![0u8; 65536];
        let mut cmsg = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        // SAFETY: a zeroed msghdr pointing at buffers we own.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = iov.as_mut_ptr().cast();
        hdr.msg_iovlen = 1;
        hdr.msg_control = cmsg.as_mut_ptr().cast();
        hdr.msg_controllen = cmsg.len();
        // SAFETY: recvmsg into the buffers above.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut hdr, 0) };
        if n <= 0 {
            return None;
        }
        // SAFETY: CMSG_FIRSTHDR/CMSG_DATA on the control buffer the kernel filled.
        let fd: RawFd = unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            if c.is_null() {
                return None;
            }
            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd)
        };
        // SAFETY: SCM_RIGHTS installed this fd for us.
        let notify = unsafe { OwnedFd::from_raw_fd(fd) };
        let msg: serde_json::Value = serde_json::from_slice(&buf[..n as usize]).ok()?;
        if let Some(tx) = got {
            let _ = tx.send(());
        }
        let mut answered = 0;
        loop {
            let mut req = Notif::default();
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills the struct we own.
            if unsafe { libc::ioctl(notify.as_raw_fd(), NOTIF_RECV, &mut req) } < 0 {
                break;
            }
            let resp = Resp { id: req.id, val: 0, error: -errno, flags: 0 };
            // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads the struct we own.
            unsafe { libc::ioctl(notify.as_raw_fd(), NOTIF_SEND, &resp) };
            answered += 1;
        }
        Some((msg, answered))
    })
}

#[test]
fn notify_fd_and_state_reach_the_listener_which_decides_the_syscall() {
    let mut c = Container::sh("mkdir /tmp/notified; echo mkdir=$?; mkdir -p /tmp; echo done");
    c.spec.tmp();
    let sock = c.dir.join("listener.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let h = listen(l, libc::EACCES);
    c.spec.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "husk-test-meta",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    let out = c.run();
    let text = out.ok();
    assert!(text.contains("mkdir=1"), "the listener's EACCES must reach mkdir: {out}");
    let (msg, answered) = h.join().unwrap().expect("listener got nothing");
    assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
    assert_eq!(msg["metadata"], "husk-test-meta", "{msg}");
    assert_eq!(msg["state"]["id"], json!(c.id), "{msg}");
    assert!(msg["pid"].as_i64().unwrap_or(0) > 0, "{msg}");
    assert!(answered >= 1);
}

#[test]
fn notify_without_a_listener_path_is_an_error() {
    let mut c = Container::new(&["true"]);
    c.spec.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    c.run().assert_failed_with_message();
    assert!(!c.listed());
}

#[test]
fn notify_with_nobody_listening_is_an_error() {
    let mut c = Container::new(&["true"]);
    let sock = c.dir.join("nobody.sock");
    c.spec.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let out = c.run();
    out.assert_failed_with_message();
    assert!(!out.timed_out);
    std::thread::sleep(Duration::from_millis(10));
    assert!(!c.listed());
}

/// Agents wait for the notify fd before they call `start` (runc sends it
/// during `create`): it must arrive while the container is only created,
/// with noNewPrivileges true (filter loaded late) and false (loaded early),
/// and the container must then start and finish. Bounded: a runtime that
/// sends the fd only at start fails here instead of hanging.
#[test]
fn the_notify_fd_reaches_the_listener_during_create() {
    for nnp in [true, false] {
        let mut c = Container::sh("mkdir /tmp/notified; echo mkdir=$? > /tmp/out");
        c.spec.tmp();
        c.spec.set("/process/noNewPrivileges", json!(nnp));
        let sock = c.dir.join("listener.sock");
        let l = UnixListener::bind(&sock).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = listen_and_tell(l, libc::EACCES, Some(tx));
        c.spec.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        );
        c.create_ok();
        c.assert_status("created");
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "noNewPrivileges {nnp}: the listener got no fd during create"
        );
        c.start_ok();
        assert!(c.wait_status("stopped", Duration::from_secs(10)), "noNewPrivileges {nnp}: the container did not finish");
        let (msg, answered) = h.join().unwrap().expect("listener got nothing");
        assert_eq!(msg["state"]["id"], json!(c.id), "{msg}");
        assert!(msg["pid"].as_i64().unwrap_or(0) > 0, "{msg}");
        assert!(answered >= 1, "noNewPrivileges {nnp}: the mkdir never reached the listener");
    }
}
