//! Performing the mounts of `config.json`, each destination resolved inside
//! the rootfs (see [`super::secure`]).

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::options::MountOptions;
use super::secure::{self, ensure_file, fd_path, mkdir_all, open_in_root, SecureError};
use crate::cgroups::{CgroupRecord, Kind};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {src} to {dest} (type {typ}): {err}")]
    Mount {
        src: String,
        dest: PathBuf,
        typ: String,
        err: nix::Error,
    },
    #[error("mount destination {0}: {1}")]
    Dest(PathBuf, SecureError),
    #[error("mount source {0}: {1}")]
    Source(PathBuf, std::io::Error),
    // runc's words, which tools match on; the path says where.
    #[error("mount destination {0}: filesystem {1:?} must be mounted on ordinary directory (it goes through a symlink in the rootfs)")]
    Symlink(PathBuf, String),
    #[error("mount {0}: id-mapped, but husk made no id-mapped tree for it")]
    NoIdmappedTree(PathBuf),
}

pub struct Ctx<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    pub cgroup: Option<&'a CgroupRecord>,
    pub new_cgroupns: bool,
    pub in_userns: bool,
    /// `linux.mountLabel`, on a host where SELinux is enabled.
    pub mount_label: Option<&'a str>,
    /// Bind sources opened by the parent, by mount index (see
    /// [`open_bind_sources`]).
    pub bind_sources: &'a [Option<OwnedFd>],
    /// Detached id-mapped trees made by the parent, by mount index (see
    /// [`super::idmap::open_trees`]).
    pub idmapped: &'a [Option<OwnedFd>],
}

/// Is this a bind mount (type `bind`, or a `bind`/`rbind` option)?
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
}

/// With a new user namespace the container process looks up bind sources
/// as its own root, which is nobody on the host: a source only the host's
/// root may reach would fail. So the parent, still the host's root, opens
/// each one (O_PATH) through `/proc/PID/root` of the child, which puts the
/// fd on the child's own copy of the mount (a bind from another mount
/// namespace is refused), and sends it over (`Msg::BindSources`); the
/// child binds from the fd, as runc does. A source that cannot be opened
/// is left to the child, whose error says why. Returns (mount index, fd).
pub fn open_bind_sources(mounts: &[Mount], bundle: &Path, child: i32) -> Vec<(usize, OwnedFd)> {
    mounts
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let src = m.source().as_ref().filter(|_| is_bind(m))?;
            let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
            let via_child = Path::new(&format!("/proc/{child}/root")).join(src.strip_prefix("/").unwrap_or(&src));
            let fd = nix::fcntl::open(&via_child, OFlag::O_PATH | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()?;
            Some((i, fd))
        })
        .collect()
}

fn mount_err(src: &str, dest: &Path, typ: &str) -> impl FnOnce(nix::Error) -> MountError {
    let (src, dest, typ) = (src.to_string(), dest.to_path_buf(), typ.to_string());
    move |err| MountError::Mount { src, dest, typ, err }
}

/// Mount everything, in config order. A read-only mount that later mounts
/// (or the default devices, for /dev) go below is mounted writable for now:
/// their mount points could not be made in it. Its destination is
/// returned, for [`make_read_only`] once everything below it exists.
pub fn mount_all(ctx: &Ctx, mounts: &[Mount]) -> Result<Vec<PathBuf>, MountError> {
    let mut later = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let source_fd = ctx.bind_sources.get(i).and_then(|f| f.as_ref());
        let tree = ctx.idmapped.get(i).and_then(|f| f.as_ref());
        let dest = m.destination();
        let ro = m.options().iter().flatten().any(|o| o == "ro");
        let covers = dest == Path::new("/dev") || mounts[i + 1..].iter().any(|n| n.destination() != dest && n.destination().starts_with(dest));
        let phase = crate::logging::Phase::start();
        if ro && covers {
            let mut writable = m.clone();
            writable.set_options(m.options().as_ref().map(|o| o.iter().filter(|o| *o != "ro").cloned().collect()));
            mount_one(ctx, &writable, source_fd, tree)?;
            later.push(dest.clone());
        } else {
            mount_one(ctx, m, source_fd, tree)?;
        }
        if let Some(p) = phase {
            p.done(format_args!("mount:{}", dest.display()));
        }
    }
    Ok(later)
}

/// The read-only remount `mount_all` put off.
pub fn make_read_only(root: BorrowedFd, dests: &[PathBuf]) -> Result<(), MountError> {
    for d in dests {
        remount_bind(root, d, MsFlags::MS_RDONLY, MsFlags::empty())?;
    }
    Ok(())
}

/// One mount; `source_fd` is its bind source opened by the parent, if any,
/// `tree` its id-mapped tree (an id-mapped mount has one).
pub fn mount_one(ctx: &Ctx, m: &Mount, source_fd: Option<&OwnedFd>, tree: Option<&OwnedFd>) -> Result<(), MountError> {
    let dest = m.destination();
    let typ = m.typ().clone().unwrap_or_default();
    let opts_raw = m.options().clone().unwrap_or_default();
    let opts = MountOptions::parse(&opts_raw);
    if super::idmap::is_idmapped(m) {
        let tree = tree.ok_or_else(|| MountError::NoIdmappedTree(dest.clone()))?;
        return attach_tree(ctx, m, tree, &opts);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, dest, &opts);
    }
    let is_bind = opts.bind || typ == "bind";
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    if is_bind {
        let src = match source_fd {
            Some(fd) => PathBuf::from(fd_path(fd)),
            None if source.is_absolute() => source,
            None => ctx.bundle.join(source),
        };
        // Errors name the config's source, not the fd's path.
        let shown = if source_fd.is_some() { m.source().clone().unwrap_or_default() } else { src.clone() };
        let meta = std::fs::metadata(&src).map_err(|e| MountError::Source(shown.clone(), e))?;
        let target = if meta.is_dir() {
            mkdir_all(ctx.root, dest, 0o755)
        } else {
            ensure_file(ctx.root, dest)
        }
        .map_err(|e| MountError::Dest(dest.clone(), e))?;
        bind(ctx, &src, &shown, target, dest, &opts)
    } else {
        if (typ == "proc" || typ == "sysfs") && secure::has_symlink(ctx.root, dest) {
            return Err(MountError::Symlink(dest.clone(), typ));
        }
        let target = mkdir_all(ctx.root, dest, 0o755).map_err(|e| MountError::Dest(dest.clone(), e))?;
        let src = source.display().to_string();
        let mut data = opts.data();
        if let Some(label) = ctx.mount_label.filter(|_| takes_context(&typ)) {
            let ctx_opt = format!("context=\"{label}\"");
            data = Some(data.map_or(ctx_opt.clone(), |d| format!("{d},{ctx_opt}")));
        }
        // A tmpfs without mode= keeps the mode of the directory it covers,
        // as in runc (tmpfs itself would make it 1777).
        if typ == "tmpfs" && !opts.data.iter().any(|d| d.starts_with("mode=")) {
            if let Ok(st) = nix::sys::stat::fstat(&target) {
                let mode = format!("mode={:o}", st.st_mode & 0o7777);
                data = Some(data.map_or(mode.clone(), |d| format!("{d},{mode}")));
            }
        }
        let res = mount(
            Some(src.as_str()),
            fd_path(&target).as_str(),
            Some(typ.as_str()),
            opts.flags,
            data.as_deref(),
        );
        match res {
            Ok(()) => {}
            // Without its own network namespace, a user namespace may not
            // mount sysfs (or mqueue without its ipc namespace): bind the
            // host's, as runc does.
            Err(nix::Error::EPERM) if ctx.in_userns && (typ == "sysfs" || typ == "mqueue") => {
                let host = if typ == "sysfs" { "/sys" } else { "/dev/mqueue" };
                let mut o = opts.clone();
                o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                return bind(ctx, Path::new(host), Path::new(host), target, dest, &o);
            }
            Err(e) => return Err(mount_err(&src, dest, &typ)(e)),
        }
        if opts.tmpcopyup && typ == "tmpfs" {
            copy_up(&target, ctx, dest)?;
        }
        set_recursive(ctx, dest, &opts)?;
        propagate(ctx, dest, &opts)
    }
}

/// Filesystems that get `context=` for linux.mountLabel, as runc labels
/// them: not proc and sysfs, whose files keep their kernel labels.
fn takes_context(typ: &str) -> bool {
    !matches!(typ, "proc" | "sysfs")
}

/// Bind `src` (`shown` in errors) at `dest`, then apply the options.
fn bind(ctx: &Ctx, src: &Path, shown: &Path, target: OwnedFd, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    let s = shown.display().to_string();
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(Some(src), fd_path(&target).as_str(), None::<&str>, flags, None::<&str>)
        .map_err(mount_err(&s, dest, "bind"))?;
    bind_options(ctx, dest, opts)
}

/// An id-mapped bind mount: the parent's detached `tree` (see
/// [`super::idmap`]) moved onto its destination, then the options applied
/// as for any bind.
fn attach_tree(ctx: &Ctx, m: &Mount, tree: &OwnedFd, opts: &MountOptions) -> Result<(), MountError> {
    let dest = m.destination();
    let shown = m.source().clone().unwrap_or_default().display().to_string();
    let st = nix::sys::stat::fstat(tree).map_err(mount_err(&shown, dest, "bind"))?;
    let target = if (st.st_mode & libc::S_IFMT) == libc::S_IFDIR {
        mkdir_all(ctx.root, dest, 0o755)
    } else {
        ensure_file(ctx.root, dest)
    }
    .map_err(|e| MountError::Dest(dest.clone(), e))?;
    // SAFETY: move_mount reads two empty C strings; both fds are ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(mount_err(&shown, dest, "bind (id-mapped)")(nix::Error::last()));
    }
    bind_options(ctx, dest, opts)
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// What a bind mount takes after it is attached: flags, recursive
/// attributes, propagation.
fn bind_options(ctx: &Ctx, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    let extra = opts.remount_flags();
    if !extra.is_empty() || !opts.cleared.is_empty() {
        remount_bind(ctx.root, dest, extra, opts.cleared)?;
    }
    set_recursive(ctx, dest, opts)?;
    propagate(ctx, dest, opts)
}

/// Recursive options (`rro`, `rnosuid`, ...) on the mount at `dest` and
/// every mount below it, with mount_setattr(2). Never dropped silently:
/// a kernel without it (before 5.12) fails the mount.
fn set_recursive(ctx: &Ctx, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    if opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let attr = MountAttr { attr_set: opts.rec_set, attr_clr: opts.rec_clr, propagation: 0, userns_fd: 0 };
    let fd = open_in_root(ctx.root, dest, OFlag::empty()).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    mount_setattr(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, &attr)
        .map_err(mount_err("recursive mount options", dest, "mount_setattr"))
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
pub(super) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// mount_setattr(2) on `path` relative to `dirfd`.
pub(super) fn mount_setattr(dirfd: RawFd, path: &CStr, flags: libc::c_int, attr: &MountAttr) -> nix::Result<()> {
    // SAFETY: mount_setattr reads a C string and `attr`, of the size
    // passed; it takes no ownership of the fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// Change the flags of an existing bind mount. Flags the mount already
/// carries (nosuid, nodev, noexec, ...) are kept unless the config clears
/// them: dropping locked flags is refused by the kernel in a user namespace.
/// Remount the bind mount at `dest` with its current flags, minus
/// `cleared`, plus `flags`; nothing to do, nothing done. Flags the kernel
/// locked on the source (a mount made in a more privileged user namespace)
/// cannot be cleared: they are kept (EPERM otherwise), as runc keeps them.
pub fn remount_bind(root: BorrowedFd, dest: &Path, flags: MsFlags, cleared: MsFlags) -> Result<(), MountError> {
    let fd = open_in_root(root, dest, OFlag::empty()).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    let current = current_flags(&fd);
    if flags.is_empty() && (current & cleared).is_empty() {
        return Ok(());
    }
    let remount = |keep: MsFlags| {
        mount(None::<&str>, fd_path(&fd).as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep, None::<&str>)
    };
    match remount(current & !cleared) {
        Err(nix::Error::EPERM) if !(current & cleared).is_empty() => remount(current),
        other => other,
    }
    .map_err(mount_err("remount", dest, "bind"))
}

pub fn current_flags(fd: &impl AsFd) -> MsFlags {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME as the kernel reports it; musl's libc names no such flag.
        (FsFlags::from_bits_retain(0x1000), MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

fn propagate(ctx: &Ctx, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let fd = open_in_root(ctx.root, dest, OFlag::empty()).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    for p in &opts.propagation {
        mount(None::<&str>, fd_path(&fd).as_str(), None::<&str>, *p, None::<&str>)
            .map_err(mount_err("propagation", dest, "none"))?;
    }
    Ok(())
}

/// `tmpcopyup`: the new tmpfs starts with what the image had at that path.
/// `under` still refers to the directory the tmpfs now covers.
fn copy_up(under: &OwnedFd, ctx: &Ctx, dest: &Path) -> Result<(), MountError> {
    let top = open_in_root(ctx.root, dest, OFlag::O_DIRECTORY).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    let from = PathBuf::from(fd_path(under));
    let to = PathBuf::from(fd_path(&top));
    copy_tree(&from, &to).map_err(|e| MountError::Source(dest.to_path_buf(), e))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// The `cgroup` mount: a tmpfs with one directory per hierarchy (v1 or
/// hybrid), or the cgroup2 filesystem itself on a pure v2 host. With a new
/// cgroup namespace the real filesystems are mounted (the namespace shows
/// the container's cgroup as the root); without one, the container's own
/// cgroup directories are bind-mounted so it still sees only itself.
fn mount_cgroup(ctx: &Ctx, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    let target = mkdir_all(ctx.root, dest, 0o755).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    let placements = ctx.cgroup.map(|c| c.placements.as_slice()).unwrap_or(&[]);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let flags = opts.flags & !(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
    let pure_v2 = placements.len() == 1 && placements[0].kind == Kind::V2;
    if pure_v2 {
        let p = &placements[0];
        mount_hierarchy(ctx, &target, dest, p.kind, &p.controllers, &p.path, flags)?;
        if ro {
            remount_bind(ctx.root, dest, MsFlags::MS_RDONLY, MsFlags::empty())?;
        }
        return Ok(());
    }
    let d = dest.display().to_string();
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(mount_err("tmpfs", dest, "tmpfs"))?;
    // Read-only in one step where the kernel can (mount_setattr, 5.12):
    // the tmpfs and every hierarchy under it, as mount attributes, instead
    // of a remount per hierarchy and one of the tmpfs (11 calls on a v1
    // host, ~0.2 ms of `run`).
    let tmpfs = open_in_root(ctx.root, dest, OFlag::empty()).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
    let ro_each = ro && !all_read_only_supported();
    for p in placements {
        let name = hierarchy_dir_name(p.kind, &p.controllers);
        let sub = dest.join(&name);
        let fd = mkdir_all(ctx.root, &sub, 0o755).map_err(|e| MountError::Dest(sub.clone(), e))?;
        mount_hierarchy(ctx, &fd, &sub, p.kind, &p.controllers, &p.path, flags)?;
        if ro_each {
            remount_bind(ctx.root, &sub, MsFlags::MS_RDONLY, MsFlags::empty())?;
        }
        // cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if p.controllers.len() > 1 {
            let dir = open_in_root(ctx.root, dest, OFlag::O_DIRECTORY).map_err(|e| MountError::Dest(dest.to_path_buf(), e))?;
            for c in &p.controllers {
                let _ = nix::unistd::symlinkat(name.as_str(), dir.as_fd(), c.as_str());
            }
        }
    }
    if ro && !ro_each {
        let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
        mount_setattr(tmpfs.as_raw_fd(), c"", libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, &attr)
            .map_err(mount_err("read-only", dest, "mount_setattr"))?;
    } else if ro {
        mount(
            None::<&str>,
            fd_path(&tmpfs).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
        )
        .map_err(mount_err(&d, dest, "tmpfs"))?;
    }
    Ok(())
}

const MOUNT_ATTR_RDONLY: u64 = 1;

/// Does this kernel have mount_setattr(2)? Probed once with a call that
/// can only fail: EBADF says the call exists, ENOSYS that it does not.
fn all_read_only_supported() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let attr = MountAttr { attr_set: 0, attr_clr: 0, propagation: 0, userns_fd: 0 };
        !matches!(mount_setattr(-1, c"", libc::AT_EMPTY_PATH, &attr), Err(nix::Error::ENOSYS))
    })
}

pub fn hierarchy_dir_name(kind: Kind, controllers: &[String]) -> String {
    match kind {
        Kind::V2 => "unified".into(),
        Kind::V1 => controllers
            .iter()
            .map(|c| c.strip_prefix("name=").unwrap_or(c))
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn mount_hierarchy(
    ctx: &Ctx,
    target: &OwnedFd,
    dest: &Path,
    kind: Kind,
    controllers: &[String],
    host_path: &Path,
    flags: MsFlags,
) -> Result<(), MountError> {
    if ctx.new_cgroupns {
        let (fstype, data) = match kind {
            Kind::V2 => ("cgroup2", String::new()),
            Kind::V1 => ("cgroup", controllers.join(",")),
        };
        mount(
            Some(fstype),
            fd_path(target).as_str(),
            Some(fstype),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(mount_err(fstype, dest, fstype))
    } else {
        mount(
            Some(host_path),
            fd_path(target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mount_err(&host_path.display().to_string(), dest, "bind"))
    }
}
