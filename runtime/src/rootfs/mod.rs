//! The container's root filesystem: mounts and devices before pivot_root,
//! sysctls and masked/readonly paths after it.

pub mod devices;
pub mod host_mountns;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod secure;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::cgroups::CgroupRecord;
use secure::{fd_path, mkdir_all, open_in_root, SecureError};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Mount(#[from] mounts::MountError),
    #[error(transparent)]
    Idmap(#[from] idmap::IdmapError),
    #[error(transparent)]
    Device(#[from] devices::DeviceError),
    #[error("{0}: {1}")]
    Path(PathBuf, SecureError),
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    #[error("invalid rootfsPropagation {0:?}")]
    Propagation(String),
    #[error("sysctl {key}: {err}")]
    Sysctl { key: String, err: String },
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
    #[error("{0} is not the null device: refusing to use it for masking")]
    NotNull(PathBuf),
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> RootfsError {
    let what = what.into();
    move |err| RootfsError::Sys { what, err }
}

pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: Option<&'a CgroupRecord>,
    pub new_cgroupns: bool,
    pub in_userns: bool,
    /// False when the container shares the runtime's mount namespace: the
    /// parent has bound the rootfs already (see `host_mountns`), and the
    /// host's propagation is not ours to change.
    pub own_mount_ns: bool,
    /// See `mounts::open_bind_sources`.
    pub bind_sources: &'a [Option<OwnedFd>],
    /// See `idmap::open_trees`.
    pub idmapped: &'a [Option<OwnedFd>],
}

fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>, RootfsError> {
    match spec.linux().as_ref().and_then(|l| l.rootfs_propagation().clone()) {
        None => Ok(None),
        Some(p) if p.is_empty() => Ok(None),
        Some(p) => options::propagation(&p)
            .map(Some)
            .ok_or(RootfsError::Propagation(p)),
    }
}

/// Everything that happens inside the new mount namespace before pivot_root.
/// Returns the rootfs as an O_PATH fd, for pivoting.
pub fn prepare(s: &Setup) -> Result<OwnedFd, RootfsError> {
    if s.own_mount_ns {
        tracing::debug_span!("bind_rootfs").in_scope(|| bind_rootfs(s))?;
    }
    let root: OwnedFd = std::fs::File::open(s.rootfs)
        .map_err(|e| RootfsError::Sys {
            what: format!("opening rootfs {}", s.rootfs.display()),
            err: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?
        .into();
    let mounts = s.spec.mounts().clone().unwrap_or_default();
    let ctx = mounts::Ctx {
        root: root.as_fd(),
        bundle: s.bundle,
        cgroup: s.cgroup,
        new_cgroupns: s.new_cgroupns,
        in_userns: s.in_userns,
        // Without SELinux a mount label means nothing; `create` warned.
        mount_label: s
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty() && crate::lsm::selinux_enabled()),
        bind_sources: s.bind_sources,
        idmapped: s.idmapped,
    };
    let read_only_later = mounts::mount_all(&ctx, &mounts)?;
    // /dev is ours to fill unless the config bind-mounts one in.
    let dev_is_bind = mounts.iter().any(|m| m.destination() == Path::new("/dev") && mounts::is_bind(m));
    let _devices = tracing::debug_span!("devices").entered();
    if !dev_is_bind {
        devices::create_defaults(root.as_fd(), s.in_userns)?;
        devices::create_symlinks(root.as_fd())?;
    }
    if let Some(devs) = s.spec.linux().as_ref().and_then(|l| l.devices().as_ref()) {
        devices::create_configured(root.as_fd(), devs, s.in_userns)?;
    }
    drop(_devices);
    if let Some(p) = s.spec.process() {
        mkdir_all(root.as_fd(), p.cwd(), 0o755).map_err(|e| RootfsError::Path(p.cwd().clone(), e))?;
        // The console is bound over /dev/console after pivot_root, when a
        // read-only /dev could no longer take the mount point.
        if p.terminal() == Some(true) && !dev_is_bind {
            secure::replace_with_file(root.as_fd(), Path::new("/dev/console"))
                .map_err(|e| RootfsError::Path("/dev/console".into(), e))?;
        }
    }
    tracing::debug_span!("read_only_remounts").in_scope(|| mounts::make_read_only(root.as_fd(), &read_only_later))?;
    Ok(root)
}

/// In the container's own mount namespace: keep our mounts from reaching
/// the host, and bind the rootfs onto itself, which makes it a mount point
/// as pivot_root needs.
fn bind_rootfs(s: &Setup) -> Result<(), RootfsError> {
    // Only a shared rootfsPropagation is applied before the bind (our
    // mounts are meant to reach the host's peers then); the others wait
    // for `finish`, after pivot_root: an unbindable / would forbid the
    // bind below.
    let host_prop = match root_propagation(s.spec)? {
        Some(p) if p.contains(MsFlags::MS_SHARED) => p,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, host_prop, None::<&str>).map_err(sys("making / private to the container"))?;
    if host_prop.contains(MsFlags::MS_SHARED) {
        make_parent_private(s.rootfs)?;
    }
    mount(Some(s.rootfs), s.rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(sys(format!("bind mounting rootfs {}", s.rootfs.display())))
}

fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<PathBuf> = None;
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else { continue };
        let mp = PathBuf::from(mp);
        if rootfs.starts_with(&mp) && best.as_ref().is_none_or(|b| mp.as_os_str().len() > b.as_os_str().len()) {
            best = Some(mp);
        }
    }
    if let Some(mp) = best {
        mount(None::<&str>, &mp, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(sys(format!("making {} private", mp.display())))?;
    }
    Ok(())
}

/// Make `root` the container's `/`. pivot_root(".", ".") stacks the old
/// root on top of the new one, from where it is detached; with `no_pivot`
/// (for ramfs roots, where pivot_root is impossible) the rootfs is moved over
/// `/` and chrooted into instead. In the runtime's own mount namespace
/// (`own_mount_ns` false) nothing is moved: a chroot only.
pub fn pivot(root: &OwnedFd, rootfs: &Path, no_pivot: bool, own_mount_ns: bool) -> Result<(), RootfsError> {
    nix::unistd::fchdir(root.as_fd()).map_err(sys("entering rootfs"))?;
    if !own_mount_ns {
        nix::unistd::chroot(".").map_err(sys("chroot"))?;
    } else if no_pivot {
        mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(sys("moving rootfs to /"))?;
        nix::unistd::chroot(".").map_err(sys("chroot"))?;
    } else {
        nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root"))?;
        // The old root must not take our unmount to the host.
        mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
            .map_err(sys("making old root a slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(sys("detaching old root"))?;
    }
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// Everything after pivot_root: `/` is now the container's root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let root: OwnedFd = open_in_root_dir("/")?;
    let linux = spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()).filter(|s| !s.is_empty()) {
        let proc = crate::procfs::Proc::open()?;
        let mut keys: Vec<_> = sysctl.iter().collect();
        keys.sort();
        for (k, v) in keys {
            write_sysctl(&proc, k, v)?;
        }
    }
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        readonly_path(root.as_fd(), Path::new(p))?;
    }
    let masked = linux.and_then(|l| l.masked_paths().as_ref());
    if masked.is_some_and(|m| !m.is_empty()) {
        let null = verified_null(root.as_fd())?;
        for p in masked.into_iter().flatten() {
            mask_path(root.as_fd(), &null, Path::new(p))?;
        }
    }
    if let Some(l) = linux {
        host_cgroups_read_only(l)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        let cur = mounts::current_flags(&root);
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | cur,
            None::<&str>,
        )
        .map_err(sys("remounting / read-only"))?;
    }
    // Last: an unbindable / would forbid the bind mounts above.
    if let Some(prop) = root_propagation(spec)? {
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>).map_err(sys("rootfsPropagation"))?;
    }
    Ok(())
}

/// A container with a user namespace but no cgroup namespace of its own
/// sees the host's cgroup hierarchies at /sys/fs/cgroup (a recursive bind
/// of /sys, as rootless configs have, or binds of the host's hierarchies):
/// all of it is made read-only, recursively, so that no delegation of the
/// host's (systemd's user@.service gives the user a writable subtree) is
/// writable from inside (CVE-2023-25809).
fn host_cgroups_read_only(linux: &oci_spec::runtime::Linux) -> Result<(), RootfsError> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let has = |t: T| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    if !has(T::User) || has(T::Cgroup) {
        return Ok(());
    }
    // A mount point: another device than /sys/fs (sysfs).
    let (Ok(cg), Ok(fs)) = (nix::sys::stat::stat("/sys/fs/cgroup"), nix::sys::stat::stat("/sys/fs")) else {
        return Ok(());
    };
    if cg.st_dev == fs.st_dev {
        return Ok(());
    }
    let attr = mounts::MountAttr { attr_set: libc::MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    mounts::mount_setattr(libc::AT_FDCWD, c"/sys/fs/cgroup", libc::AT_RECURSIVE, &attr)
        .map_err(sys("making the host's cgroups at /sys/fs/cgroup read-only"))
}

fn open_in_root_dir(p: &str) -> Result<OwnedFd, RootfsError> {
    nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(sys(format!("opening {p}")))
}

fn write_sysctl(proc: &crate::procfs::Proc, key: &str, value: &str) -> Result<(), RootfsError> {
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    proc.write(&format!("sys/{rel}"), value.as_bytes())
        .map_err(|e| RootfsError::Sysctl { key: key.to_string(), err: e.to_string() })
}

fn readonly_path(root: BorrowedFd, path: &Path) -> Result<(), RootfsError> {
    let fd = match open_in_root(root, path, OFlag::empty()) {
        Ok(fd) => fd,
        Err(SecureError::Resolve { err: nix::Error::ENOENT, .. }) => return Ok(()),
        Err(e) => return Err(RootfsError::Path(path.to_path_buf(), e)),
    };
    mount(
        Some(fd_path(&fd).as_str()),
        fd_path(&fd).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("readonly path {}", path.display())))?;
    mounts::remount_bind(root, path, MsFlags::MS_RDONLY | MsFlags::MS_REC, MsFlags::empty())?;
    Ok(())
}

/// The container's /dev/null, checked to really be the 1:3 character device
/// before it is bind-mounted over anything: an image could make it a link to
/// a writable file and turn masking into exposure.
fn verified_null(root: BorrowedFd) -> Result<OwnedFd, RootfsError> {
    let p = Path::new("/dev/null");
    let fd = open_in_root(root, p, OFlag::O_NOFOLLOW).map_err(|e| RootfsError::Path(p.to_path_buf(), e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(sys("stat /dev/null"))?;
    let is_chr = (st.st_mode & libc::S_IFMT) == libc::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        return Err(RootfsError::NotNull(p.to_path_buf()));
    }
    Ok(fd)
}

fn mask_path(root: BorrowedFd, null: &OwnedFd, path: &Path) -> Result<(), RootfsError> {
    let fd = match open_in_root(root, path, OFlag::empty()) {
        Ok(fd) => fd,
        Err(SecureError::Resolve { err: nix::Error::ENOENT, .. }) => return Ok(()),
        Err(e) => return Err(RootfsError::Path(path.to_path_buf(), e)),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(sys(format!("stat {}", path.display())))?;
    let what = format!("masking {}", path.display());
    if (st.st_mode & libc::S_IFMT) == libc::S_IFDIR {
        mount(
            Some("tmpfs"),
            fd_path(&fd).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(sys(what))
    } else {
        mount(
            Some(fd_path(null).as_str()),
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(what))
    }
}

/// Is this path a char device? Used by the console code to check /dev/console.
pub fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}
