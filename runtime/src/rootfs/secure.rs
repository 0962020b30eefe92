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
            // Something is there but did not resolve: a dangling symlink.
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
    fn file_in_the_way_is_not_a_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"").unwrap();
        let rootfd: OwnedFd = std::fs::File::open(root.path()).unwrap().into();
        assert!(mkdir_all(rootfd.as_fd(), Path::new("/f/x"), 0o755).is_err());
    }
}
