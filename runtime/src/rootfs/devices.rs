//! /dev inside the container: the default devices, `linux.devices`, and the
//! standard symlinks. In a user namespace mknod is not allowed, so each
//! device is a bind mount of the host's node instead (as runc does).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::secure::{ensure_file, fd_path, mkdir_all, open_in_root, SecureError};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device {0}: {1}")]
    Path(PathBuf, SecureError),
    #[error("device {path}: {what}: {err}")]
    Sys {
        path: PathBuf,
        what: &'static str,
        err: nix::Error,
    },
    #[error("device {0}: path must be absolute and under /dev")]
    BadPath(PathBuf),
}

pub struct Dev {
    pub path: &'static str,
    pub major: u64,
    pub minor: u64,
}

/// runc's default set: every container gets these, with mode 0666.
pub const DEFAULT_DEVICES: &[Dev] = &[
    Dev { path: "/dev/null", major: 1, minor: 3 },
    Dev { path: "/dev/zero", major: 1, minor: 5 },
    Dev { path: "/dev/full", major: 1, minor: 7 },
    Dev { path: "/dev/random", major: 1, minor: 8 },
    Dev { path: "/dev/urandom", major: 1, minor: 9 },
    Dev { path: "/dev/tty", major: 5, minor: 0 },
];

pub fn create_defaults(root: BorrowedFd, bind: bool) -> Result<(), DeviceError> {
    for d in DEFAULT_DEVICES {
        make(root, Path::new(d.path), SFlag::S_IFCHR, d.major, d.minor, 0o666, 0, 0, bind)?;
    }
    Ok(())
}

pub fn create_configured(root: BorrowedFd, devices: &[LinuxDevice], bind: bool) -> Result<(), DeviceError> {
    for d in devices {
        let path = d.path();
        if !path.is_absolute() || !path.starts_with("/dev") {
            return Err(DeviceError::BadPath(path.clone()));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => return Err(DeviceError::BadPath(path.clone())),
        };
        make(
            root,
            path,
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
            bind,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make(
    root: BorrowedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    bind: bool,
) -> Result<(), DeviceError> {
    let sys = |what| {
        let path = path.to_path_buf();
        move |err| DeviceError::Sys { path, what, err }
    };
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path.file_name().ok_or_else(|| DeviceError::BadPath(path.to_path_buf()))?;
    let dir = mkdir_all(root, parent, 0o755).map_err(|e| DeviceError::Path(path.to_path_buf(), e))?;
    // An O_PATH fd cannot be used for *at calls that create; reopen it.
    let dir = nix::fcntl::openat(dir.as_fd(), ".", OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("opening parent"))?;
    if bind {
        let host = format!("/dev/{}", path.strip_prefix("/dev").unwrap_or(path).display());
        let target = ensure_file(root, path).map_err(|e| DeviceError::Path(path.to_path_buf(), e))?;
        return mount(
            Some(host.as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind mount"));
    }
    let dev = nix::sys::stat::makedev(major, minor);
    match nixx_unlinkat(&dir, name) {
        Ok(()) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(sys("replacing")(e)),
    }
    mknodat(dir.as_fd(), name, kind, Mode::from_bits_truncate(mode), dev).map_err(sys("mknod"))?;
    // mknod honours the umask: set the exact mode afterwards.
    nix::sys::stat::fchmodat(
        dir.as_fd(),
        name,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| if e == nix::Error::EOPNOTSUPP { Ok(()) } else { Err(e) })
    .map_err(sys("chmod"))?;
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(sys("chown"))
}

fn nixx_unlinkat(dir: &impl AsFd, name: &std::ffi::OsStr) -> nix::Result<()> {
    nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and (where the host has it)
/// /dev/core.
pub fn create_symlinks(root: BorrowedFd) -> Result<(), DeviceError> {
    let dev = open_in_root(root, Path::new("/dev"), OFlag::O_DIRECTORY)
        .map_err(|e| DeviceError::Path("/dev".into(), e))?;
    let dev = nix::fcntl::openat(dev.as_fd(), ".", OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|err| DeviceError::Sys { path: "/dev".into(), what: "open", err })?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(err) => {
                return Err(DeviceError::Sys {
                    path: Path::new("/dev").join(name),
                    what: "symlink",
                    err,
                })
            }
        }
    }
    // /dev/ptmx must point into the container's own devpts instance.
    let _ = nixx_unlinkat(&dev, std::ffi::OsStr::new("ptmx"));
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(|err| DeviceError::Sys {
        path: "/dev/ptmx".into(),
        what: "symlink",
        err,
    })
}
