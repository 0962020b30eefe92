//! Id-mapped bind mounts (runtime-spec 1.2: `mounts[].uidMappings` and
//! `gidMappings`, the `idmap` and `ridmap` options), made as runc 1.2 makes
//! them.
//!
//! A mount's mappings `{containerID, hostID, size}` go, as written, into the
//! uid_map and gid_map of a user namespace made only for that: a file owned
//! on disk by `containerID + k` appears as `hostID + k`, and a file created
//! through the mount is stored with the inverse. Without mappings of its
//! own, an `idmap`/`ridmap` mount uses the container's user namespace.
//!
//! The parent builds each such mount before the container process may go on
//! (after its id maps are written): in the container's mount namespace it
//! clones the source with open_tree(OPEN_TREE_CLONE), sets
//! MOUNT_ATTR_IDMAP on the clone with mount_setattr, and sends the detached
//! tree to the child, which moves it into place with move_mount
//! ([`super::mounts`]). `rbind` clones the mounts below the source too;
//! `ridmap` id-maps them all, `idmap` only the top one (runc's rule).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::mounts::{is_bind, mount_setattr, MountAttr};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("mount {0}: id-mapped mounts are only supported for bind mounts")]
    NotBind(PathBuf),
    #[error("mount {0}: id-mapped mounts must have both uidMappings and gidMappings")]
    OneSided(PathBuf),
    #[error("mount {0}: idmap without uidMappings/gidMappings uses the container's user namespace, and the container has none")]
    NoUserns(PathBuf),
    #[error("mount {0}: id-mapped mounts need husk to run as root")]
    NotRoot(PathBuf),
    #[error("mount {dest}: user namespace for its id mapping: {what}: {err}")]
    Userns { dest: PathBuf, what: String, err: String },
    #[error("entering the container's mount namespace: {0}")]
    MountNs(String),
    #[error("mount {dest}: open_tree {src}: {err}")]
    OpenTree { dest: PathBuf, src: PathBuf, err: nix::Error },
    #[error("mount {dest}: filesystem {fs} of {src}{below} does not support id-mapped mounts on this kernel (mount_setattr MOUNT_ATTR_IDMAP: EINVAL)")]
    FsUnsupported { dest: PathBuf, src: PathBuf, fs: String, below: &'static str },
    #[error("mount {dest}: mount_setattr MOUNT_ATTR_IDMAP on {src}: {err}")]
    Setattr { dest: PathBuf, src: PathBuf, err: nix::Error },
}

/// Is `m` id-mapped: an `idmap`/`ridmap` option or mappings of its own?
pub fn is_idmapped(m: &Mount) -> bool {
    let opt = m.options().iter().flatten().any(|o| o == "idmap" || o == "ridmap");
    opt || has_maps(m.uid_mappings()) || has_maps(m.gid_mappings())
}

fn has_maps(m: &Option<Vec<LinuxIdMapping>>) -> bool {
    m.as_ref().is_some_and(|m| !m.is_empty())
}

/// Refuse what cannot be id-mapped, before anything is made (runc's
/// checks): only bind mounts; uid and gid mappings together; no mappings
/// only with a user namespace to take them from; husk as root.
pub fn validate(spec: &Spec) -> Result<(), IdmapError> {
    check(spec, nix::unistd::geteuid().is_root())
}

fn check(spec: &Spec, root: bool) -> Result<(), IdmapError> {
    let userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    for m in spec.mounts().iter().flatten().filter(|m| is_idmapped(m)) {
        let dest = m.destination().clone();
        if !is_bind(m) {
            return Err(IdmapError::NotBind(dest));
        }
        let (uid, gid) = (has_maps(m.uid_mappings()), has_maps(m.gid_mappings()));
        if uid != gid {
            return Err(IdmapError::OneSided(dest));
        }
        if !uid && !userns {
            return Err(IdmapError::NoUserns(dest));
        }
        if !root {
            return Err(IdmapError::NotRoot(dest));
        }
    }
    Ok(())
}

/// How much of the source an id-mapped mount takes, and maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recursion {
    /// `rbind`: the mounts below the source come along.
    pub tree: bool,
    /// `ridmap`: every mount of the tree is id-mapped, not just its top.
    pub idmap: bool,
}

impl Recursion {
    pub fn of(m: &Mount) -> Recursion {
        let has = |o: &str| m.options().iter().flatten().any(|x| x == o);
        Recursion { tree: has("rbind"), idmap: has("ridmap") }
    }
}

/// For every id-mapped mount of `mounts`, the detached id-mapped tree of
/// its source, by mount index. `child` is the container process, its id
/// maps written: sources are looked up in its mount namespace (a relative
/// one against `bundle`), and a mount without mappings of its own takes
/// its user namespace.
pub fn open_trees(mounts: &[Mount], bundle: &Path, child: i32) -> Result<Vec<(usize, OwnedFd)>, IdmapError> {
    let wanted: Vec<(usize, &Mount)> = mounts.iter().enumerate().filter(|(_, m)| is_idmapped(m)).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut cache = UsernsCache::default();
    let mut jobs = Vec::with_capacity(wanted.len());
    for (i, m) in wanted {
        let dest = m.destination().clone();
        let userns = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => cache.get(&map_text(u), &map_text(g), &dest)?,
            _ => cache.container(child, &dest)?,
        };
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() { src } else { bundle.join(src) };
        jobs.push((i, dest, src, Recursion::of(m), userns));
    }
    in_mount_ns_of(child, || {
        jobs.iter()
            .map(|(i, dest, src, rec, userns)| Ok((*i, make_idmapped(src, *rec, userns.as_fd(), dest)?)))
            .collect()
    })?
}

/// Run `f` in the mount namespace of `pid`: directly when it is ours,
/// else on a thread of our own that enters it (setns of a mount namespace
/// needs a thread with its own root and cwd, so not the caller's, which
/// may be one of many in the shim). open_tree clones only mounts of the
/// caller's own namespace.
fn in_mount_ns_of<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> Result<T, IdmapError> {
    let ns_err = |what: &str, e: std::io::Error| IdmapError::MountNs(format!("{what}: {e}"));
    let theirs = std::fs::File::open(format!("/proc/{pid}/ns/mnt")).map_err(|e| ns_err("open", e))?;
    let ours = std::fs::metadata("/proc/self/ns/mnt").map_err(|e| ns_err("stat", e))?;
    let theirs_md = theirs.metadata().map_err(|e| ns_err("stat", e))?;
    if (ours.dev(), ours.ino()) == (theirs_md.dev(), theirs_md.ino()) {
        return Ok(f());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            use nix::sched::{setns, unshare, CloneFlags};
            unshare(CloneFlags::CLONE_FS).map_err(|e| IdmapError::MountNs(format!("unshare CLONE_FS: {e}")))?;
            setns(theirs.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|e| IdmapError::MountNs(format!("setns: {e}")))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(IdmapError::MountNs("the thread panicked".into())))
    })
}

/// Clone `source` (with the mounts below it for `rec.tree`) into a detached
/// tree and id-map it with the user namespace `userns`. `dest` names the
/// mount in errors.
pub fn make_idmapped(source: &Path, rec: Recursion, userns: BorrowedFd, dest: &Path) -> Result<OwnedFd, IdmapError> {
    let c = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| IdmapError::OpenTree { dest: dest.into(), src: source.into(), err: nix::Error::EINVAL })?;
    let recursive = if rec.tree { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: open_tree reads a C string and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | recursive) };
    if fd < 0 {
        return Err(IdmapError::OpenTree { dest: dest.into(), src: source.into(), err: nix::Error::last() });
    }
    // SAFETY: open_tree just returned this fd to us.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    let flags = libc::AT_EMPTY_PATH | if rec.idmap { libc::AT_RECURSIVE } else { 0 };
    match mount_setattr(tree.as_raw_fd(), c"", flags, &attr) {
        Ok(()) => Ok(tree),
        Err(nix::Error::EINVAL) => Err(IdmapError::FsUnsupported {
            dest: dest.into(),
            src: source.into(),
            fs: fs_name(tree.as_fd()),
            below: if rec.idmap && rec.tree { " (or of a mount below it)" } else { "" },
        }),
        Err(err) => Err(IdmapError::Setattr { dest: dest.into(), src: source.into(), err }),
    }
}

/// The filesystem type of the mount `fd` is on, by its statfs magic.
fn fs_name(fd: BorrowedFd) -> String {
    let Ok(st) = nix::sys::statfs::fstatfs(fd) else {
        return "(unknown)".into();
    };
    let magic = st.filesystem_type().0 as u64;
    let known: &[(u64, &str)] = &[
        (0xEF53, "ext2/ext3/ext4"),
        (0x0102_1994, "tmpfs"),
        (0x8584_58f6, "ramfs"),
        (0x5846_5342, "xfs"),
        (0x9123_683E, "btrfs"),
        (0x794c_7630, "overlay"),
        (0x6969, "nfs"),
        (0x6573_5546, "fuse"),
        (0x7371_7368, "squashfs"),
        (0xE0F5_E1E2, "erofs"),
        (0x4d44, "vfat"),
        (0xF2F5_2010, "f2fs"),
        (0x2fc1_2fc1, "zfs"),
        (0x0102_1997, "9p"),
        (0xFF53_4D42, "cifs"),
        (0x00c3_6400, "ceph"),
        (0x9fa0, "proc"),
        (0x6265_6572, "sysfs"),
        (0x1cd1, "devpts"),
        (0x9584_58f6, "hugetlbfs"),
        (0x0027_e0eb, "cgroup"),
        (0x6367_7270, "cgroup2"),
    ];
    known.iter().find(|(m, _)| *m == magic).map_or_else(|| format!("0x{magic:x}"), |(_, n)| n.to_string())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// The user namespaces of one create: mounts with the same mappings share
/// one.
#[derive(Default)]
struct UsernsCache {
    made: Vec<(String, String, std::sync::Arc<OwnedFd>)>,
    container: Option<std::sync::Arc<OwnedFd>>,
}

impl UsernsCache {
    fn get(&mut self, uid: &str, gid: &str, dest: &Path) -> Result<std::sync::Arc<OwnedFd>, IdmapError> {
        if let Some((_, _, fd)) = self.made.iter().find(|(u, g, _)| u == uid && g == gid) {
            return Ok(fd.clone());
        }
        let fd = std::sync::Arc::new(userns_for(uid, gid, dest)?);
        self.made.push((uid.into(), gid.into(), fd.clone()));
        Ok(fd)
    }

    fn container(&mut self, child: i32, dest: &Path) -> Result<std::sync::Arc<OwnedFd>, IdmapError> {
        if let Some(fd) = &self.container {
            return Ok(fd.clone());
        }
        let path = format!("/proc/{child}/ns/user");
        let f = std::fs::File::open(&path).map_err(|e| IdmapError::Userns { dest: dest.into(), what: path, err: e.to_string() })?;
        let fd = std::sync::Arc::new(OwnedFd::from(f));
        self.container = Some(fd.clone());
        Ok(fd)
    }
}

/// A user namespace with the maps `uid` and `gid` (uid_map text): a child
/// is cloned into a new one, its maps are written, the namespace is opened
/// through /proc, and the child is killed and reaped.
///
/// The child is cloned without an exit signal: a program that reaps every
/// child it gets SIGCHLD for (the shim) does not take it from us, and only
/// a wait with __WALL sees it. It runs nothing but raw system calls (a
/// read that returns when we die, then _exit), so cloning from a
/// multi-threaded process is safe.
fn userns_for(uid: &str, gid: &str, dest: &Path) -> Result<OwnedFd, IdmapError> {
    let err = |what: &str, e: String| IdmapError::Userns { dest: dest.into(), what: what.into(), err: e };
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| err("pipe", e.to_string()))?;
    let (rx_raw, tx_raw) = (rx.as_raw_fd(), tx.as_raw_fd());
    // SAFETY: with a NULL stack clone behaves like fork: the child resumes
    // here on a copy of our memory and calls only async-signal-safe system
    // calls (no allocation, no locks) before _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_NEWUSER as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: raw system calls on fds we hold; _exit never returns.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::close(tx_raw);
            let mut b = 0u8;
            while libc::read(rx_raw, (&mut b as *mut u8).cast(), 1) < 0 && *libc::__errno_location() == libc::EINTR {}
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(err("clone CLONE_NEWUSER", nix::Error::last().to_string()));
    }
    let child = Helper { pid: pid as i32, release: Some(tx) };
    drop(rx);
    let proc = crate::procfs::Proc::open().map_err(|e| err("procfs", e.to_string()))?;
    proc.write(&format!("{}/uid_map", child.pid), uid.as_bytes()).map_err(|e| err("uid_map", e.to_string()))?;
    proc.write(&format!("{}/gid_map", child.pid), gid.as_bytes()).map_err(|e| err("gid_map", e.to_string()))?;
    let path = format!("/proc/{}/ns/user", child.pid);
    let ns = std::fs::File::open(&path).map_err(|e| err(&path, e.to_string()))?;
    Ok(ns.into())
}

/// The userns_for child, killed and reaped when dropped. (Its pipe is for
/// our death: the child leaves on EOF, should a concurrent fork in another
/// thread hold a copy of the write end.)
struct Helper {
    pid: i32,
    release: Option<OwnedFd>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.release.take());
        let pid = nix::unistd::Pid::from_raw(self.pid);
        // Our own unreaped child: the pid cannot have been reused.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        while let Err(nix::Error::EINTR) = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL)) {}
    }
}

/// Does this kernel implement id-mapped mounts (`husk features`)?
/// mount_setattr with MOUNT_ATTR_IDMAP and a user namespace fd that cannot
/// be open: a kernel that knows the attribute (5.12+) looks the fd up and
/// fails with EBADF before touching any mount; without the system call it
/// is ENOSYS, without the attribute EINVAL. Not proved: that a given
/// filesystem allows id-mapping (each does since its own kernel version;
/// a mount on one that does not fails with its name). Without the
/// privilege to mount (not root) it is EPERM, and reported as false.
pub fn kernel_supports() -> bool {
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: i32::MAX as u64 };
    matches!(mount_setattr(libc::AT_FDCWD, c"/", 0, &attr), Err(nix::Error::EBADF))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}]}
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn map() -> serde_json::Value {
        serde_json::json!([{"containerID": 1000, "hostID": 100000, "size": 1}])
    }

    #[test]
    fn mappings_or_an_idmap_option_make_a_mount_idmapped() {
        let s = spec(serde_json::json!({"mounts": [
            {"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind"]},
            {"destination": "/b", "type": "bind", "source": "/x", "options": ["rbind", "ridmap"]},
            {"destination": "/c", "type": "bind", "source": "/x", "uidMappings": map(), "gidMappings": map()},
        ]}));
        let m = s.mounts().as_ref().unwrap();
        assert_eq!(m.iter().map(is_idmapped).collect::<Vec<_>>(), [false, true, true]);
        assert_eq!(Recursion::of(&m[1]), Recursion { tree: true, idmap: true });
        assert_eq!(Recursion::of(&m[2]), Recursion { tree: false, idmap: false });
    }

    #[test]
    fn refuses_non_bind_one_sided_and_no_userns_to_take_maps_from() {
        let one = |m: serde_json::Value| check(&spec(serde_json::json!({"mounts": [m]})), true);
        let e = one(serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}));
        assert!(matches!(e, Err(IdmapError::NotBind(ref d)) if d == Path::new("/t")), "{e:?}");
        let e = one(serde_json::json!({"destination": "/m", "type": "bind", "source": "/x", "options": ["bind"], "uidMappings": map()}));
        assert!(matches!(e, Err(IdmapError::OneSided(_))), "{e:?}");
        let e = one(serde_json::json!({"destination": "/m", "type": "bind", "source": "/x", "options": ["idmap"]}));
        assert!(matches!(e, Err(IdmapError::NoUserns(_))), "{e:?}");
        assert!(one(serde_json::json!({"destination": "/m", "type": "bind", "source": "/x", "uidMappings": map(), "gidMappings": map()})).is_ok());
        assert!(one(serde_json::json!({"destination": "/m", "type": "bind", "source": "/x"})).is_ok());
    }

    #[test]
    fn idmap_without_mappings_takes_the_containers_user_namespace() {
        let s = spec(serde_json::json!({
            "mounts": [{"destination": "/m", "type": "bind", "source": "/x", "options": ["bind", "idmap"]}],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}
        }));
        assert!(check(&s, true).is_ok());
        assert!(matches!(check(&s, false), Err(IdmapError::NotRoot(_))));
    }

    #[test]
    fn map_text_is_one_line_per_entry_as_given() {
        let m: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 1000, "hostID": 5000, "size": 1}
        ]))
        .unwrap();
        assert_eq!(map_text(&m), "0 100000 1000\n1000 5000 1\n");
    }

    #[test]
    fn an_idmapped_tree_shows_the_mapped_owner() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::os::unix::fs::{chown, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        chown(&file, Some(1000), Some(2000)).unwrap();
        let ns = userns_for("1000 100000 1\n", "2000 200000 1\n", Path::new("/t")).unwrap();
        // Twice: the kernel keeps the namespace alive through our fd only.
        let again = userns_for("1000 100000 1\n", "2000 200000 1\n", Path::new("/t")).unwrap();
        drop(again);
        let tree = make_idmapped(dir.path(), Recursion { tree: false, idmap: false }, ns.as_fd(), Path::new("/t")).unwrap();
        let md = std::fs::metadata(format!("/proc/self/fd/{}/f", tree.as_raw_fd())).unwrap();
        assert_eq!((md.uid(), md.gid()), (100000, 200000));
        assert!(kernel_supports());
    }
}
