//! Setting up the container process itself: rlimits, user and groups,
//! environment, the executable's path, fds, and the final execve.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("setrlimit {0}: {1}")]
    Rlimit(String, nix::Error),
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {0:?}: {1}")]
    NotExecutable(String, String),
    #[error("chdir to cwd ({0:?}) set in config.json failed: {1}")]
    Cwd(PathBuf, nix::Error),
    #[error("cwd ({0:?}) set in config.json: getcwd failed: {1}")]
    Getcwd(PathBuf, nix::Error),
    #[error("cwd ({0:?}) set in config.json is outside the container's root ({1:?})")]
    CwdOutside(PathBuf, PathBuf),
    #[error("argument or environment contains a NUL byte")]
    Nul,
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ProcessError {
    let what = what.into();
    move |err| ProcessError::Sys { what, err }
}

fn resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => Resource::RLIMIT_CPU,
        R::RlimitFsize => Resource::RLIMIT_FSIZE,
        R::RlimitData => Resource::RLIMIT_DATA,
        R::RlimitStack => Resource::RLIMIT_STACK,
        R::RlimitCore => Resource::RLIMIT_CORE,
        R::RlimitRss => Resource::RLIMIT_RSS,
        R::RlimitNproc => Resource::RLIMIT_NPROC,
        R::RlimitNofile => Resource::RLIMIT_NOFILE,
        R::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        R::RlimitAs => Resource::RLIMIT_AS,
        R::RlimitLocks => Resource::RLIMIT_LOCKS,
        R::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        R::RlimitNice => Resource::RLIMIT_NICE,
        R::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        R::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(p: &Process) -> Result<(), ProcessError> {
    for r in p.rlimits().iter().flatten() {
        setrlimit(resource(r.typ()), r.soft(), r.hard()).map_err(|e| ProcessError::Rlimit(r.typ().to_string(), e))?;
    }
    Ok(())
}

/// Supplementary groups, then gid, then uid. `keep_caps` keeps the permitted
/// set across the uid change so the configured capabilities can be applied
/// afterwards.
pub fn set_user(p: &Process, setgroups_allowed: bool) -> Result<(), ProcessError> {
    let user = p.user();
    if setgroups_allowed {
        let gids: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(sys("setgroups"))?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(sys("PR_SET_KEEPCAPS"))?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(sys(format!("setresgid {}", user.gid())))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(sys(format!("setresuid {}", user.uid())))?;
    Ok(())
}

/// Stdio that is the host's /dev/null becomes the container's own (opened
/// after pivot_root), as runc's reOpenDevNull: the container then holds no
/// file of a mount outside it, which is also what lets CRIU dump a
/// container started with `</dev/null`.
pub fn reopen_dev_null() -> Result<(), ProcessError> {
    let null = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(sys("open /dev/null"))?;
    let ours = nix::sys::stat::fstat(&null).map_err(sys("fstat /dev/null"))?;
    for fd in 0..3 {
        // SAFETY: fstat of a possibly closed fd only fills `st` or fails.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        let same_device = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == ours.st_rdev;
        let same_file = st.st_dev == ours.st_dev && st.st_ino == ours.st_ino;
        if same_device && !same_file {
            // SAFETY: dup2 onto one of our own stdio fds.
            if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) } < 0 {
                return Err(sys("dup2 /dev/null")(nix::Error::last()));
            }
        }
    }
    Ok(())
}

/// Has the user namespace of `pid` ("self" for ours) denied setgroups(2)
/// (an ordinary user's namespace mapping only its own gid, see
/// crate::rootless)? Then the supplementary groups stay as they are.
pub fn setgroups_denied(pid: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/setgroups")).is_ok_and(|s| s.starts_with(b"deny"))
}

pub fn set_no_new_privs() -> Result<(), ProcessError> {
    nix::sys::prctl::set_no_new_privs().map_err(sys("PR_SET_NO_NEW_PRIVS"))
}

pub fn set_umask(p: &Process) {
    let mask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
}

/// chdir to process.cwd, then make sure we really are inside the
/// container: a cwd such as /proc/self/fd/N could otherwise name a directory
/// of the host through a leaked fd (CVE-2024-21626). getcwd fails (or says
/// "(unreachable)") for a directory outside our root.
pub fn chdir(p: &Process) -> Result<(), ProcessError> {
    nix::unistd::chdir(p.cwd()).map_err(|e| ProcessError::Cwd(p.cwd().clone(), e))?;
    match nix::unistd::getcwd() {
        Ok(d) if d.is_absolute() && !d.starts_with("(unreachable)") => Ok(()),
        Ok(d) => Err(ProcessError::CwdOutside(p.cwd().clone(), d)),
        Err(e) => Err(ProcessError::Getcwd(p.cwd().clone(), e)),
    }
}

/// After a failed privileged `chdir`: should it be tried again as the
/// container's user (permission denied), or is the error final?
pub fn retry_as_user(e: ProcessError) -> Result<bool, ProcessError> {
    match e {
        ProcessError::Cwd(_, nix::Error::EACCES | nix::Error::EPERM) => Ok(true),
        e => Err(e),
    }
}

/// Close every fd from `first` up, except those in `keep`: the container
/// process must not hold any fd of husk's beyond the ones it needs until
/// exec (those are CLOEXEC).
pub fn close_fds_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut from = first as u32;
    for k in keep.into_iter().map(|k| k as u32) {
        if k > from {
            close_range(from, k - 1, 0);
        }
        from = k + 1;
    }
    close_range(from, u32::MAX, 0);
}

/// close_range(2) by syscall number: musl has no wrapper for it.
fn close_range(first: u32, last: u32, flags: libc::c_uint) -> libc::c_long {
    // SAFETY: only closes (or marks CLOEXEC) fds in [first, last]; callers
    // pass ranges holding none that husk still uses.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }
}

/// A new session keyring, so the container does not share the caller's.
pub fn join_session_keyring(name: &str) -> Result<(), ProcessError> {
    let name = CString::new(name).map_err(|_| ProcessError::Nul)?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = nix::Error::last();
        // Kernels without keyrings, or seccomp'd hosts: not fatal, as in runc.
        if e != nix::Error::ENOSYS && e != nix::Error::EPERM && e != nix::Error::EACCES {
            return Err(ProcessError::Sys { what: "joining session keyring".into(), err: e });
        }
    }
    Ok(())
}

/// The process environment, with HOME added from the container's
/// /etc/passwd when the config does not set it (as runc does).
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok()? == uid).then(|| f[5].to_string())
    })
}

/// Find the program like execvp would, with the container's PATH, inside the
/// container (call after pivot_root).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        check_executable(arg0, &p)?;
        return Ok(p);
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if check_executable(arg0, &cand).is_ok() {
            return Ok(cand);
        }
    }
    Err(ProcessError::NotFound(arg0.to_string()))
}

fn check_executable(arg0: &str, p: &Path) -> Result<(), ProcessError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(m) if m.is_dir() => Err(ProcessError::NotExecutable(arg0.into(), "is a directory".into())),
        Ok(_) => Err(ProcessError::NotExecutable(arg0.into(), "permission denied".into())),
        // A path is reported as Go's stat error, a name as "not found in
        // $PATH": runc's two wordings, which Docker maps to exit 127.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && arg0.contains('/') => {
            Err(ProcessError::NotExecutable(arg0.into(), format!("stat {arg0}: no such file or directory")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ProcessError::NotFound(arg0.into())),
        Err(e) => Err(ProcessError::NotExecutable(arg0.into(), e.to_string())),
    }
}

/// Close every fd above the preserved range on exec, and make sure the
/// preserved ones survive it. Nothing of husk's reaches the container.
pub fn seal_fds(preserve: RawFd) -> Result<(), ProcessError> {
    let first = 3 + preserve;
    if close_range(first as u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
        return Err(sys("close_range")(nix::Error::last()));
    }
    for fd in 3..first {
        // SAFETY: F_SETFD on an fd the caller asked us to pass through.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

pub struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    via: Option<Via>,
}

/// Execute through the trampoline (see crate::exec_trampoline): its fd, the
/// fd to wait on for `start` (None: at once) and the fd that reports a
/// failed execve to the parent.
#[derive(Clone, Copy)]
pub struct Via {
    pub trampoline: RawFd,
    pub start: Option<RawFd>,
    pub report: RawFd,
}

impl Exec {
    pub fn new(path: &Path, args: &[String], env: &[String]) -> Result<Exec, ProcessError> {
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &[u8]| CString::new(s).map_err(|_| ProcessError::Nul);
        Ok(Exec {
            path: c(path.as_os_str().as_bytes())?,
            args: args.iter().map(|a| c(a.as_bytes())).collect::<Result<_, _>>()?,
            env: env.iter().map(|a| c(a.as_bytes())).collect::<Result<_, _>>()?,
            via: None,
        })
    }

    pub fn through(mut self, via: Option<Via>) -> Exec {
        self.via = via;
        self
    }

    pub fn via_trampoline(&self) -> bool {
        self.via.is_some()
    }

    /// Replace the process image. Only returns on failure.
    pub fn exec(&self) -> ProcessError {
        let err = match self.via {
            None => match nix::unistd::execve(&self.path, &self.args, &self.env) {
                Err(e) => e,
                Ok(never) => match never {},
            },
            Some(v) => crate::exec_trampoline::exec(v.trampoline, v.start, v.report, &self.path, &self.args, &self.env),
        };
        ProcessError::NotExecutable(self.path.to_string_lossy().into_owned(), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_reports_missing() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(find_executable("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        let e = find_executable("no-such-program-xyz", &env).unwrap_err().to_string();
        assert!(e.contains("executable file not found"), "{e}");
        assert!(find_executable("/etc/passwd", &env).is_err());
        assert!(find_executable("/", &env).is_err());
    }

    #[test]
    fn home_is_added_only_when_missing() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["x"], "env": ["HOME=/h"]
        }))
        .unwrap();
        assert_eq!(environment(&p), vec!["HOME=/h".to_string()]);
        let p: Process = serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["x"], "env": ["A=b"]
        }))
        .unwrap();
        let env = environment(&p);
        assert_eq!(env[0], "A=b");
        assert!(env[1].starts_with("HOME="));
    }
}
