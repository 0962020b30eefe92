//! A container without a mount namespace of its own (none listed: the
//! runtime-spec says it inherits the runtime's). Its mounts are made in the
//! host's mount namespace, so husk keeps them all under one mount it can
//! take away again: before the container process exists, the parent binds
//! the rootfs onto itself, makes that bind private (nothing mounted under
//! it reaches other namespaces) and records its mount id in the state
//! directory. The container then chroots into it. `delete`, a failed
//! `create` and `delete --force` after a crash detach that one mount, and
//! every mount of the container goes with it (runc leaves the container's
//! /proc, /dev and /sys mounted on the host).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::RootfsError;

/// The state directory's record of the bind: its mount id and the rootfs.
pub const RECORD_FILE: &str = "rootfs-mount.json";

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Eq)]
pub struct Record {
    pub rootfs: std::path::PathBuf,
    pub mnt_id: u64,
}

fn open_path(p: &Path) -> Result<OwnedFd, RootfsError> {
    nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|err| RootfsError::Sys { what: format!("opening rootfs {}", p.display()), err })
}

/// The id of the mount `fd` is on, from /proc/self/fdinfo.
fn mount_id(fd: &OwnedFd) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines().find_map(|l| l.strip_prefix("mnt_id:")).and_then(|v| v.trim().parse().ok())
}

/// Bind the rootfs onto itself, private, and return the record to keep.
pub fn bind_rootfs(rootfs: &Path) -> Result<Record, RootfsError> {
    let what = |w: &str| {
        let w = format!("{w} {}", rootfs.display());
        move |err| RootfsError::Sys { what: w, err }
    };
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(what("bind mounting rootfs"))?;
    let record = open_path(rootfs).map(|fd| mount_id(&fd)).map(|id| Record { rootfs: rootfs.to_path_buf(), mnt_id: id.unwrap_or(0) });
    let made_private = mount(None::<&str>, rootfs, None::<&str>, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None::<&str>)
        .map_err(what("making the rootfs bind private"));
    match (record, made_private) {
        (Ok(r), Ok(())) if r.mnt_id != 0 => Ok(r),
        (Ok(_), Ok(())) => {
            let _ = umount2(rootfs, MntFlags::MNT_DETACH);
            Err(RootfsError::Sys { what: "reading the mount id of the rootfs bind".into(), err: nix::Error::EIO })
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = umount2(rootfs, MntFlags::MNT_DETACH);
            Err(e)
        }
    }
}

/// Detach the bind and everything under it, if it is still the mount on
/// top of the rootfs (it is never another one's: ids are compared).
pub fn release(r: &Record) -> Result<(), RootfsError> {
    let fd = match open_path(&r.rootfs) {
        Ok(fd) => fd,
        // The rootfs is gone: so is anything mounted on it.
        Err(RootfsError::Sys { err: nix::Error::ENOENT, .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    if mount_id(&fd) != Some(r.mnt_id) {
        return Ok(());
    }
    drop(fd);
    umount2(&r.rootfs, MntFlags::MNT_DETACH)
        .map_err(|err| RootfsError::Sys { what: format!("detaching the container's mounts at {}", r.rootfs.display()), err })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted_at(p: &Path) -> usize {
        // The test thread unshared its mount namespace, not the process.
        let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        let p = p.to_str().unwrap();
        info.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m == p || m.starts_with(&format!("{p}/")))).count()
    }

    #[test]
    fn release_detaches_the_bind_and_everything_under_it_once() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // A private mount namespace for the test itself, in a child.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        let child = std::process::Command::new("/proc/self/exe")
            .args(["--exact", "rootfs::host_mountns::tests::in_private_ns", "--nocapture", "--include-ignored"])
            .env("HUSK_TEST_ROOT", &root)
            .output()
            .unwrap();
        assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
        assert!(String::from_utf8_lossy(&child.stdout).contains("1 passed"), "{}", String::from_utf8_lossy(&child.stdout));
    }

    #[test]
    #[ignore = "run by release_detaches_the_bind_and_everything_under_it_once"]
    fn in_private_ns() {
        let Some(root) = std::env::var_os("HUSK_TEST_ROOT") else { return };
        let root = std::path::PathBuf::from(root);
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None::<&str>).unwrap();
        let before = mounted_at(&root);
        let r = bind_rootfs(&root).unwrap();
        mount(Some("proc"), &root.join("proc"), Some("proc"), MsFlags::empty(), None::<&str>).unwrap();
        assert_eq!(mounted_at(&root), before + 2);
        release(&r).unwrap();
        assert_eq!(mounted_at(&root), before);
        // A second release, and one for a mount that is not ours, do nothing.
        release(&r).unwrap();
        let other = bind_rootfs(&root).unwrap();
        release(&Record { rootfs: root.clone(), mnt_id: other.mnt_id + 100_000 }).unwrap();
        assert_eq!(mounted_at(&root), before + 1);
        release(&other).unwrap();
        assert_eq!(mounted_at(&root), before);
    }
}
