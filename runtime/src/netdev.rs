//! `linux.netDevices`: move host network interfaces into the container's
//! network namespace (optionally renamed), with one rtnetlink request each.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    #[error("netDevices: no interface named {0:?} on the host")]
    NoSuchDevice(String),
    #[error("netDevices: invalid interface name {0:?}")]
    BadName(String),
    #[error("netDevices: moving {dev}: {err}")]
    Netlink { dev: String, err: nix::Error },
}

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() < libc::IFNAMSIZ && !n.contains(['/', ' ', ':']) && n != "." && n != ".."
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The RTM_NEWLINK request that moves interface `index` into the network
/// namespace of `pid`, renamed to `name` when given.
fn request(index: i32, pid: i32, name: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    // struct ifinfomsg: family, pad, type, index, flags, change
    body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut body, IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
    if let Some(n) = name {
        let mut z = n.as_bytes().to_vec();
        z.push(0);
        attr(&mut body, IFLA_IFNAME, &z);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend(body);
    msg
}

pub fn move_device(host_name: &str, pid: i32, new_name: Option<&str>) -> Result<(), NetdevError> {
    if !valid_name(host_name) {
        return Err(NetdevError::BadName(host_name.into()));
    }
    if let Some(n) = new_name {
        if !valid_name(n) {
            return Err(NetdevError::BadName(n.into()));
        }
    }
    let cname = std::ffi::CString::new(host_name).map_err(|_| NetdevError::BadName(host_name.into()))?;
    // SAFETY: if_nametoindex reads a C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(NetdevError::NoSuchDevice(host_name.into()));
    }
    let err = |err| NetdevError::Netlink { dev: host_name.into(), err };
    // SAFETY: socket(2) returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(err(nix::Error::last()));
    }
    // SAFETY: a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let msg = request(index as i32, pid, new_name);
    // SAFETY: send(2) of a buffer we own to the kernel (no address: the
    // socket is unbound, and netlink's default peer is the kernel).
    if unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(err(nix::Error::last()));
    }
    let mut buf = [0u8; 1024];
    // SAFETY: recv(2) into a buffer we own.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return Err(err(if n < 0 { nix::Error::last() } else { nix::Error::EBADMSG }));
    }
    let typ = u16::from_ne_bytes([buf[4], buf[5]]);
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if typ == NLMSG_ERROR && code != 0 {
        return Err(err(nix::Error::from_raw(-code)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let m = request(7, 1234, Some("eth1"));
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize, m.len());
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), RTM_NEWLINK);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(m.len() % 4, 0);
    }

    #[test]
    fn names_are_checked() {
        assert!(move_device("bad/name", 1, None).is_err());
        assert!(matches!(move_device("husk-none0", 1, None), Err(NetdevError::NoSuchDevice(_))));
        assert!(move_device("lo", 1, Some("a-name-that-is-way-too-long")).is_err());
    }
}
