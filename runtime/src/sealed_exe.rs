//! CVE-2019-5736: no husk process that a container can see runs from a file
//! the container could write.
//!
//! husk forks its container processes instead of executing a separate init,
//! so until their final execve they run husk's own image, and so do the
//! children of `exec`, the startContainer hooks' parents and, in the shim,
//! every process it forks into a container. Whatever such a process
//! executes as `/proc/self/exe` (a container's entrypoint, a script with
//! `#!/proc/self/exe`, an exec'd command) is husk's binary too, and that one
//! is dumpable and visible to the whole container: a process there can keep
//! its /proc/PID/exe open and, once no process runs the file any more,
//! reopen it for writing and replace the host's husk.
//!
//! So `create`, `run` and `exec` send the container's process through the
//! exec trampoline where it fits (crate::exec_trampoline: the program is
//! executed from a tiny sealed memfd, and husk's image never meets the
//! container's execve), and otherwise, like the shim's server, first
//! re-execute husk from a handle no one can write ([`protect`]), so that
//! everything it forks inherits that image:
//!
//! - an overlayfs made of the binary's directory over the state root (see
//!   [`overlay_handle`]), with no upper layer, mounted read-only and never
//!   attached anywhere (fsopen/fsmount): zero-copy, since the overlay's
//!   pages are the original file's page cache, and impossible to remount
//!   from inside a container; runc 1.2+ does the same;
//! - where overlayfs or the new mount API is missing, a copy in a sealed
//!   memfd (F_SEAL_WRITE, so even its owner cannot change it), which costs
//!   the copy and the memory.
//!
//! A binary already on a read-only mount needs neither: a container has no
//! way to remount the host's mounts.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MEMFD_SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Set across the re-exec: the new image must find itself sealed, or fail
/// rather than re-execute again.
const REEXEC_ENV: &str = "_HUSK_SEALED_REEXEC";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealing husk's binary: {what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> SealError {
    move |err| SealError::Sys { what, err }
}

fn io_sys(what: &'static str) -> impl FnOnce(std::io::Error) -> SealError {
    move |e| SealError::Sys { what, err: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) }
}

/// Is this process running from a binary nothing can write: a sealed memfd
/// or a file on a read-only mount (which includes the sealing overlay)?
pub fn is_sealed() -> bool {
    let Ok(exe) = nix::fcntl::open(
        "/proc/self/exe",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return false;
    };
    // SAFETY: F_GET_SEALS only reads the seals of our own fd.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & MEMFD_SEALS == MEMFD_SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&exe).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-execute from a sealed handle unless already running from one; returns
/// only when the process runs sealed, or with the reason it cannot.
/// `bottom_dir` is a directory of husk's own (the state root) that serves as
/// the overlay's second, bottom layer (see [`overlay_handle`]).
///
/// Must be called before any thread exists (it edits the environment).
pub fn ensure(bottom_dir: &Path) -> Result<(), SealError> {
    if sealed_now()? {
        return Ok(());
    }
    reexec_sealed(bottom_dir)
}

/// [`ensure`]'s re-exec, for a process known not to run sealed.
fn reexec_sealed(bottom_dir: &Path) -> Result<(), SealError> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(io_sys("readlink /proc/self/exe"))?;
    let handle = match overlay_handle(&exe, bottom_dir) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("no overlayfs for the sealed binary ({e}): copying it to a sealed memfd");
            memfd_copy()?
        }
    };
    Err(reexec(&handle))
}

/// [`is_sealed`]; an error instead of false in the image [`ensure`]
/// re-executed. Takes [`REEXEC_ENV`] out of the environment: it is not for
/// the commands a sealed husk runs, nor for a container.
fn sealed_now() -> Result<bool, SealError> {
    let re_executed = std::env::var_os(REEXEC_ENV).is_some();
    if re_executed {
        std::env::remove_var(REEXEC_ENV);
    }
    match is_sealed() {
        false if re_executed => Err(sys("re-executed, yet not running from a sealed binary")(nix::Error::EIO)),
        sealed => Ok(sealed),
    }
}

/// Before a process is forked into a container: how it will reach the
/// container's program without exposing husk's file. None: this husk runs
/// sealed already (from a read-only mount, or re-executed); the trampoline
/// where it fits (see crate::exec_trampoline); otherwise re-execute sealed
/// now, which returns only on failure. Must be called before any thread
/// exists and before anything the re-executed command would redo.
pub fn protect(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
    hooks: Option<&oci_spec::runtime::Hooks>,
    rootless: bool,
    ptrace_seen: bool,
    state_root: &Path,
) -> Result<Option<crate::exec_trampoline::Trampoline>, SealError> {
    if sealed_now()? {
        return Ok(None);
    }
    let why = match crate::exec_trampoline::unfit(process, linux, hooks, rootless, ptrace_seen) {
        None => match crate::exec_trampoline::Trampoline::load() {
            Ok(t) => return Ok(Some(t)),
            Err(e) => format!("no executable memfd: {e}"),
        },
        Some(why) => why.to_string(),
    };
    tracing::debug!("no exec trampoline ({why}): re-executing from a sealed binary");
    // Older kernels layer the state root under the overlay by path.
    let _ = crate::state::Store::new(state_root).ensure_root();
    reexec_sealed(state_root).map(|()| None)
}

/// `/proc/self/exe` seen through a read-only, detached overlayfs of its
/// directory (an O_PATH fd). overlayfs is read-only only with two lower
/// layers and no upper one; the bottom layer's content never shows, since
/// the binary's own directory is above it and only the binary is opened
/// (a file found in an upper layer hides the layers below). Where the
/// kernel takes layers as fds (`lowerdir+`, Linux 6.8) the bottom layer is
/// `bottom_dir` (the state root), or, if overlayfs refuses it as nested with
/// the binary's directory, a detached empty tmpfs; that costs one more
/// filesystem to make and one more detached mount to dissolve (an expedited
/// RCU grace period), so it is only the fallback. Older kernels take
/// `bottom_dir` by path.
fn overlay_handle(exe: &Path, bottom_dir: &Path) -> Result<OwnedFd, SealError> {
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(sys("binary path")(nix::Error::EINVAL));
    };
    let name = CString::new(name.as_bytes()).map_err(|_| sys("binary name")(nix::Error::EINVAL))?;
    use nix::fcntl::OFlag;
    let open_dir = |p: &Path| nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty());
    let dir_fd = open_dir(dir).map_err(sys("opening the binary's directory"))?;
    // Each attempt takes a fresh context: a failed one may hold a layer.
    let by_fd = |bottom: &OwnedFd| -> nix::Result<OwnedFd> {
        let ctx = fsopen(c"overlay")?;
        fsconfig(&ctx, FSCONFIG_SET_FD, c"lowerdir+", None, dir_fd.as_raw_fd())?;
        fsconfig(&ctx, FSCONFIG_SET_FD, c"lowerdir+", None, bottom.as_raw_fd())?;
        create(&ctx)?;
        Ok(ctx)
    };
    let ctx = match open_dir(bottom_dir).and_then(|b| by_fd(&b)) {
        Ok(ctx) => Some(ctx),
        // No `lowerdir+` (before Linux 6.8), or a layer overlayfs will not
        // take: the by-path way below, and failing that the memfd copy.
        Err(nix::Error::EINVAL) => None,
        // Nested layers (ELOOP) or an unusable state root: an empty tmpfs,
        // which must stay open until the overlay is made (overlayfs clones
        // its layers' mounts then, and a detached mount whose last fd is
        // closed is gone).
        Err(_) => empty_tmpfs().and_then(|t| by_fd(&t)).ok(),
    };
    let ctx = match ctx {
        Some(ctx) => ctx,
        None => {
            let mut lower = escape_lowerdir(dir.as_os_str().as_bytes());
            lower.push(b':');
            lower.extend(escape_lowerdir(bottom_dir.as_os_str().as_bytes()));
            let lower = CString::new(lower).map_err(|_| sys("lowerdir")(nix::Error::EINVAL))?;
            let ctx = fsopen(c"overlay").map_err(sys("fsopen overlay"))?;
            fsconfig(&ctx, FSCONFIG_SET_STRING, c"lowerdir", Some(&lower), 0).map_err(sys("fsconfig lowerdir"))?;
            create(&ctx).map_err(sys("creating the overlay"))?;
            ctx
        }
    };
    open_in(ctx, &name)
}

/// Make the overlay of `ctx` (its layers set).
fn create(ctx: &OwnedFd) -> nix::Result<()> {
    // Inode-number mapping is of no use here and only logs when the layers
    // are on different filesystems.
    let _ = fsconfig(ctx, FSCONFIG_SET_STRING, c"xino", Some(c"off"), 0);
    fsconfig(ctx, FSCONFIG_CMD_CREATE, c"", None, 0)
}

/// An empty tmpfs, mounted nowhere.
fn empty_tmpfs() -> nix::Result<OwnedFd> {
    let ctx = fsopen(c"tmpfs")?;
    fsconfig(&ctx, FSCONFIG_CMD_CREATE, c"", None, 0)?;
    mount(ctx, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
}

/// Mount the overlay of `ctx` (made already) read-only and open `name` in it.
fn open_in(ctx: OwnedFd, name: &CString) -> Result<OwnedFd, SealError> {
    use nix::fcntl::OFlag;
    let mnt = mount(ctx, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV).map_err(sys("mounting the overlay"))?;
    nix::fcntl::openat(&mnt, name.as_c_str(), OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(sys("opening the binary through the overlay"))
}

fn fsopen(fs: &std::ffi::CStr) -> nix::Result<OwnedFd> {
    // SAFETY: fsopen reads a C string and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Mount the filesystem of `ctx` (created already) detached, with `attrs`.
fn mount(ctx: OwnedFd, attrs: u32) -> nix::Result<OwnedFd> {
    // SAFETY: fsmount(fd, FSMOUNT_CLOEXEC, attrs) returns a new fd or -1.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if mnt < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as i32) })
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;
const MOUNT_ATTR_RDONLY: u32 = 1;
const MOUNT_ATTR_NOSUID: u32 = 2;
const MOUNT_ATTR_NODEV: u32 = 4;
const MOUNT_ATTR_NOEXEC: u32 = 8;

/// fsconfig(2): `key` is ignored (passed as NULL) by FSCONFIG_CMD_CREATE.
fn fsconfig(ctx: &OwnedFd, cmd: u32, key: &std::ffi::CStr, value: Option<&std::ffi::CStr>, aux: i32) -> nix::Result<()> {
    let key = if cmd == FSCONFIG_CMD_CREATE { std::ptr::null() } else { key.as_ptr() };
    let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: fsconfig reads C strings that outlive the call (or NULL).
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), cmd, key, value, aux) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// overlayfs splits lowerdir on ':' and takes '\' as its escape.
fn escape_lowerdir(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b == b':' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// A copy of the binary in a memfd sealed against writes and resizing.
fn memfd_copy() -> Result<OwnedFd, SealError> {
    let exe = std::fs::File::open("/proc/self/exe").map_err(io_sys("open /proc/self/exe"))?;
    // SAFETY: memfd_create reads a C string and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"husk".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(sys("memfd_create")(nix::Error::last()));
    }
    // SAFETY: a new fd we own.
    let mem = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut left = exe.metadata().map_err(io_sys("stat /proc/self/exe"))?.len() as usize;
    while left > 0 {
        // SAFETY: sendfile between two fds we own; the kernel copies.
        let n = unsafe { libc::sendfile(mem.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), left) };
        if n <= 0 {
            return Err(sys("sendfile")(if n < 0 { nix::Error::last() } else { nix::Error::EIO }));
        }
        left -= n as usize;
    }
    // SAFETY: F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, MEMFD_SEALS) } < 0 {
        return Err(sys("sealing the memfd")(nix::Error::last()));
    }
    Ok(mem)
}

/// execveat(handle, "", AT_EMPTY_PATH) with our own arguments and
/// environment, plus [`REEXEC_ENV`]. Returns only on failure.
fn reexec(handle: &OwnedFd) -> SealError {
    let cstr = |v: Vec<u8>| CString::new(v).ok();
    let args: Vec<CString> = std::env::args_os().filter_map(|a| cstr(a.into_encoded_bytes())).collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            cstr(kv)
        })
        .collect();
    env.extend(cstr(format!("{REEXEC_ENV}=1").into_bytes()));
    let err = nix::unistd::execveat(handle, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .err()
        .unwrap_or(nix::Error::EIO);
    sys("re-executing from the sealed binary")(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowerdir_separators_are_escaped() {
        assert_eq!(super::escape_lowerdir(b"/a:b\\c"), b"/a\\:b\\\\c".to_vec());
    }

    #[test]
    fn test_binary_is_not_sealed() {
        // The test harness runs from a writable build directory.
        assert!(!super::is_sealed());
    }

    /// Runs this test binary from `handle`, as [`probe_sealed_child`], and
    /// returns what it printed.
    fn probe(handle: &std::os::fd::OwnedFd) -> String {
        let out = std::process::Command::new(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(handle)))
            .args(["--exact", "sealed_exe::tests::probe_sealed_child", "--nocapture", "--include-ignored"])
            .env("HUSK_SEAL_PROBE", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text
    }

    /// Runs the test binary itself through the overlay (fsmount needs root):
    /// the sealed process sees its exe on a read-only mount, unwritable even
    /// by root.
    #[test]
    fn a_sealed_reexec_runs_from_a_read_only_overlay() {
        let exe = std::env::current_exe().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let handle = super::overlay_handle(&exe, empty.path()).unwrap();
        let text = probe(&handle);
        assert!(text.contains("probe: sealed=true write=EROFS"), "{text}");
    }

    /// A binary inside the state root: overlayfs refuses the state root as
    /// the bottom layer (nested layers), and an empty tmpfs takes its place.
    #[test]
    fn a_binary_inside_the_state_root_is_sealed_over_an_empty_tmpfs() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("bin")).unwrap();
        let exe = root.path().join("bin").join("husk-test");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        let handle = super::overlay_handle(&exe, root.path()).unwrap();
        let text = probe(&handle);
        assert!(text.contains("probe: sealed=true write=EROFS"), "{text}");
    }

    /// The fallback where overlayfs is missing: the same, from a memfd copy.
    #[test]
    fn a_sealed_memfd_copy_cannot_be_written() {
        let handle = super::memfd_copy().unwrap();
        let text = probe(&handle);
        assert!(text.contains("probe: sealed=true write=ETXTBSY"), "{text}");
        // Once no process runs it, it can be opened for writing, but F_SEAL_WRITE
        // refuses every write.
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let err = std::io::Write::write(&mut w, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }

    /// The child half of the tests above (does nothing when run on its own).
    #[test]
    #[ignore]
    fn probe_sealed_child() {
        if std::env::var_os("HUSK_SEAL_PROBE").is_none() {
            return;
        }
        let w = std::fs::OpenOptions::new().append(true).open("/proc/self/exe");
        let werr = match w {
            Ok(_) => "opened".to_string(),
            Err(e) => format!("{:?}", nix::Error::from_raw(e.raw_os_error().unwrap_or(0))),
        };
        println!("probe: sealed={} write={werr}", super::is_sealed());
    }
}
