//! /proc access: the two /proc/PID/stat fields on husk's hot paths
//! (`state`, `list`, `kill`), a lean reader for such small files (state
//! and cgroup files too), and a verified procfs handle for writes.
//!
//! Writes that change the kernel's behaviour (sysctls, oom_score_adj, id
//! maps) go through a procfs instance husk mounts itself, detached
//! (fsopen/fsmount) and checked with fstatfs: a config that mounts a tmpfs
//! or a host file over /proc/sys or /proc/self cannot redirect them
//! (CVE-2019-16884, CVE-2025-52881). Only two fields of /proc/PID/stat are
//! needed on the hot paths, so they are parsed here rather than through a
//! general procfs library.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("opening a private procfs: {what}: {err}")]
    Mount { what: &'static str, err: nix::Error },
    #[error("{0} is not on procfs: refusing to write to it")]
    NotProc(String),
    #[error("writing {path}: {err}")]
    Write { path: String, err: std::io::Error },
}

/// A procfs instance of our own, not reachable by any path.
pub struct Proc {
    fd: OwnedFd,
}

impl Proc {
    pub fn open() -> Result<Proc, ProcError> {
        let m = |what| move |err| ProcError::Mount { what, err };
        // SAFETY: fsopen reads a C string and returns a new fd or -1.
        let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), 1u32 /* FSOPEN_CLOEXEC */) };
        if fs < 0 {
            return Self::fallback();
        }
        // SAFETY: a new fd we own.
        let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
        // SAFETY: FSCONFIG_CMD_CREATE (6) takes no key or value.
        let r = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), 6u32, 0usize, 0usize, 0i32) };
        if r < 0 {
            return Self::fallback();
        }
        // SAFETY: fsmount(fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID|NODEV|NOEXEC).
        let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), 1u32, 0x2u32 | 0x4 | 0x8) };
        if mnt < 0 {
            return Err(m("fsmount")(nix::Error::last()));
        }
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(mnt as i32) };
        check_proc(&fd, "private procfs")?;
        Ok(Proc { fd })
    }

    /// Where a new procfs cannot be mounted (a user namespace that does not
    /// own its pid namespace), the visible /proc, verified to be procfs.
    fn fallback() -> Result<Proc, ProcError> {
        let fd = nix::fcntl::open(
            "/proc",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|err| ProcError::Mount { what: "open /proc", err })?;
        check_proc(&fd, "/proc")?;
        Ok(Proc { fd })
    }

    /// Write `value` to `rel` (e.g. "sys/net/ipv4/ip_forward"), refusing to
    /// cross a mount or follow a symlink on the way.
    pub fn write(&self, rel: &str, value: &[u8]) -> Result<(), ProcError> {
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
        let werr = |err: std::io::Error| ProcError::Write { path: format!("/proc/{rel}"), err };
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(self.fd.as_fd(), Path::new(rel), how).map_err(|e| werr(e.into()))?;
        check_proc(&fd, rel)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(value).map_err(werr)
    }
}

fn check_proc(fd: &impl AsFd, what: &str) -> Result<(), ProcError> {
    match nix::sys::statfs::fstatfs(fd) {
        Ok(st) if st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC => Ok(()),
        _ => Err(ProcError::NotProc(what.to_string())),
    }
}

pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let raw = read_small(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    parse_stat(std::str::from_utf8(&raw).ok()?)
}

/// Read a small file (a state file, a /proc or cgroup file) in few system
/// calls: open, one read per 4 KiB and the read that finds the end. std's
/// `fs::read` first asks for the size and, for /proc and cgroup files,
/// which claim size 0, starts with a 32-byte read and grows; `list` reads
/// three such files per container.
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn parse_stat(raw: &str) -> Option<ProcStat> {
    // comm (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'.
    let rest = &raw[raw.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // state is field 3; starttime is field 22.
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The processes that share the pid namespace of `pid` (its container's,
/// for a container without cgroups: rootless on cgroup v1), `pid` first.
/// In our own pid namespace that is only `pid` itself: the rest of the
/// host is not the container. Processes whose namespace we may not read
/// are not ours anyway and are left out.
pub fn pid_ns_members(pid: i32) -> Vec<i32> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(target) = ns(&pid.to_string()) else { return Vec::new() };
    if ns("self").as_ref() == Some(&target) {
        return vec![pid];
    }
    let mut out = vec![pid];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if p != pid && ns(&p.to_string()).as_ref() == Some(&target) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{parse_stat, read_small};
    use std::path::Path;

    #[test]
    fn read_small_reads_whole_files_of_any_size() {
        let t = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 20000] {
            let p = t.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            assert_eq!(read_small(&p).unwrap(), data, "length {len}");
        }
        assert_eq!(read_small(&t.path().join("missing")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        // procfs files report size 0 but have content.
        let own = read_small(Path::new("/proc/self/stat")).unwrap();
        assert!(parse_stat(std::str::from_utf8(&own).unwrap()).is_some());
    }

    #[test]
    fn private_proc_writes_our_own_oom_score_adj() {
        let p = super::Proc::open().unwrap();
        let me = std::process::id();
        let cur = std::fs::read_to_string(format!("/proc/{me}/oom_score_adj")).unwrap();
        p.write(&format!("{me}/oom_score_adj"), cur.trim().as_bytes()).unwrap();
        // A symlink on the way is refused: /proc/self is one.
        assert!(p.write("self/oom_score_adj", cur.trim().as_bytes()).is_err());
    }

    #[test]
    fn parses_comm_with_parens_and_spaces() {
        let raw = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 0";
        let st = super::parse_stat(raw).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.start_time, 98765);
    }

    #[test]
    fn own_process_is_readable() {
        let st = super::proc_stat(std::process::id() as i32).unwrap();
        assert!(st.start_time > 0);
        assert!(super::proc_stat(i32::MAX).is_none());
    }
}
