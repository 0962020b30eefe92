//! Path resolution that cannot leave the container's root.
//!
//! Every destination inside the rootfs is opened with openat2 and
//! RESOLVE_IN_ROOT, so a symlink in the image (absolute or `..`-laden) is
//! resolved as if the rootfs were `/`. Mounts then target the opened fd via
//! its /proc/self/fd link, so there is no window in which a swapped path
//! component could redirect them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    #[error("{path}: {err}")]
    Resolve { path: PathBuf, err: nix::Error },
    #[error("{path}: creating: {err}")]
    Create { path: PathBuf, err: nix::Error },
    #[error("{0}: a path component is not a directory")]
    NotDir(PathBuf),
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// The path relative to the root, with `.` dropped; `..` is left for the
/// kernel, which clamps it at the root.
pub fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

/// Open `path` (relative to `root`, which acts as `/`) as an O_PATH fd.
pub fn open_in_root(root: BorrowedFd, path: &Path, extra: OFlag) -> Result<OwnedFd, SecureError> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    openat2(root, &rel, how(OFlag::O_PATH | extra)).map_err(|err| SecureError::Resolve {
        path: path.to_path_buf(),
        err,
    })
}

/// `mkdir -p` inside the root. Returns the final directory as an O_PATH fd.
/// A component that is a dangling symlink is followed, inside the root,
/// and its target created, as `mkdir -p` through the image would.
pub fn mkdir_all(root: BorrowedFd, path: &Path, mode: u32) -> Result<OwnedFd, SecureError> {
    mkdir_all_depth(root, path, mode, 0)
}

/// The kernel's own limit on symlinks in one lookup.
const MAX_SYMLINKS: usize = 40;

fn mkdir_all_depth(root: BorrowedFd, path: &Path, mode: u32, depth: usize) -> Result<OwnedFd, SecureError> {
    if depth > MAX_SYMLINKS {
        return Err(SecureError::Resolve { path: path.to_path_buf(), err: nix::Error::ELOOP });
    }
    let rel = relative(path);
    let comps: Vec<Component> = rel.components().collect();
    let mut prefix = PathBuf::new();
    let mut cur = open_in_root(root, Path::new("."), OFlag::O_DIRECTORY)?;
    for (i, comp) in comps.iter().enumerate() {
        let parent = prefix.clone();
        prefix.push(comp);
        match open_in_root(root, &prefix, OFlag::O_DIRECTORY) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(SecureError::Resolve { err: nix::Error::ENOENT, .. }) => {}
            Err(SecureError::Resolve { err: nix::Error::ENOTDIR, .. }) => return Err(SecureError::NotDir(prefix)),
            Err(e) => return Err(e),
        }
        let name = Path::new(comp.as_os_str());
        match nix::sys::stat::mkdirat(cur.as_fd(), name, Mode::from_bits_truncate(mode)) {
            Ok(()) => {
                cur = open_in_root(root, &prefix, OFlag::O_DIRECTORY)?;
            }
            // Made by someone else meanwhile (containers sharing a rootfs)?
            Err(nix::Error::EEXIST) if open_in_root(root, &prefix, OFlag::O_DIRECTORY).is_ok() => {
                cur = open_in_root(root, &prefix, OFlag::O_DIRECTORY)?;
            }
            // Something is there but does not resolve: a dangling symlink.
            Err(nix::Error::EEXIST) => {
                let target = nix::fcntl::readlinkat(cur.as_fd(), name)
                    .map_err(|err| SecureError::Resolve { path: prefix.clone(), err })?;
                let mut next = parent.join(PathBuf::from(target));
                for rest in &comps[i + 1..] {
                    next.push(rest);
                }
                return mkdir_all_depth(root, &next, mode, depth + 1);
            }
            Err(err) => return Err(SecureError::Create { path: prefix.clone(), err }),
        }
    }
    Ok(cur)
}

/// Make sure a regular file exists at `path` (for file bind mounts), creating
/// parents as needed. Returns it as an O_PATH fd.
pub fn ensure_file(root: BorrowedFd, path: &Path) -> Result<OwnedFd, SecureError> {
    if let Ok(fd) = open_in_root(root, path, OFlag::empty()) {
        return Ok(fd);
    }
    if let Some(parent) = path.parent() {
        mkdir_all(root, parent, 0o755)?;
    }
    let rel = relative(path);
    let fd = openat2(
        root,
        &rel,
        how(OFlag::O_CREAT | OFlag::O_WRONLY).mode(Mode::from_bits_truncate(0o644)),
    )
    .map_err(|err| SecureError::Create {
        path: path.to_path_buf(),
        err,
    })?;
    drop(fd);
    open_in_root(root, path, OFlag::empty())
}

/// Is any component of `path` (inside the root) a symlink? proc and sysfs
/// must be mounted on a real directory of the image: a /proc that is a link
/// is how CVE-2019-19921 and CVE-2023-27561 moved procfs where the runtime's
/// later writes would hit something else.
pub fn has_symlink(root: BorrowedFd, path: &Path) -> bool {
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return false;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    match openat2(root, &rel, how) {
        Err(nix::Error::ELOOP) => true,
        Ok(fd) => nix::sys::stat::fstat(&fd).is_ok_and(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFLNK),
        Err(_) => false,
    }
}

/// Create (or replace) a regular file `name` in the directory `dir`
/// without following a link an image may have put there.
pub fn replace_with_file(root: BorrowedFd, path: &Path) -> Result<OwnedFd, SecureError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| SecureError::NotDir(path.to_path_buf()))?;
    let dir = mkdir_all(root, parent, 0o755)?;
    let dir = nix::fcntl::openat(dir.as_fd(), ".", OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|err| SecureError::Resolve { path: parent.to_path_buf(), err })?;
    let stat = nix::sys::stat::fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
    // A regular file is used as it is: it may be a mount point made
    // earlier on a file system that is read-only by now.
    let is_file = stat.is_ok_and(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFREG);
    if !is_file {
        if stat.is_ok() {
            nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(|err| SecureError::Create { path: path.to_path_buf(), err })?;
        }
        let f = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|err| SecureError::Create { path: path.to_path_buf(), err })?;
        drop(f);
    }
    nix::fcntl::openat(dir.as_fd(), name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|err| SecureError::Resolve { path: path.to_path_buf(), err })
}

/// The /proc/self/fd path that names an open fd, for mount(2) targets.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        // An absolute symlink to a host directory, and a ../ escape.
        symlink(host.path(), root.path().join("abs")).unwrap();
        symlink("../../../../..", root.path().join("up")).unwrap();
        let rootfd: OwnedFd = std::fs::File::open(root.path()).unwrap().into();
        mkdir_all(rootfd.as_fd(), Path::new("/abs/made"), 0o755).unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/up/tmp/made2"), 0o755).unwrap();
        ensure_file(rootfd.as_fd(), Path::new("/abs/file")).unwrap();
        assert!(std::fs::read_dir(host.path()).unwrap().next().is_none(), "host dir touched");
        // The symlink's target was reinterpreted inside the root.
        let inside = root.path().join(host.path().strip_prefix("/").unwrap());
        assert!(inside.join("made").is_dir());
        assert!(inside.join("file").is_file());
        assert!(root.path().join("tmp/made2").is_dir());
    }

    #[test]
    fn symlinked_components_are_detected() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        symlink("/tmp", root.path().join("proc")).unwrap();
        symlink("real", root.path().join("rel")).unwrap();
        let rootfd: OwnedFd = std::fs::File::open(root.path()).unwrap().into();
        assert!(has_symlink(rootfd.as_fd(), Path::new("/proc")));
        assert!(has_symlink(rootfd.as_fd(), Path::new("/rel/x")));
        assert!(!has_symlink(rootfd.as_fd(), Path::new("/real")));
        assert!(!has_symlink(rootfd.as_fd(), Path::new("/missing")));
    }

    #[test]
    fn replace_with_file_removes_a_planted_link() {
        let root = tempfile::tempdir().unwrap();
        let host = tempfile::NamedTempFile::new().unwrap();
        std::fs::create_dir(root.path().join("dev")).unwrap();
        symlink(host.path(), root.path().join("dev/console")).unwrap();
        let rootfd: OwnedFd = std::fs::File::open(root.path()).unwrap().into();
        replace_with_file(rootfd.as_fd(), Path::new("/dev/console")).unwrap();
        let m = std::fs::symlink_metadata(root.path().join("dev/console")).unwrap();
        assert!(m.file_type().is_file());
        assert!(host.path().exists());
    }

    #[test]
    fn file_in_the_way_is_not_a_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"").unwrap();
        let rootfd: OwnedFd = std::fs::File::open(root.path()).unwrap().into();
        assert!(mkdir_all(rootfd.as_fd(), Path::new("/f/x"), 0o755).is_err());
    }
}
