//! CVE-2019-5736: between fork and exec, the container's processes can see
//! husk's own process, and /proc/PID/exe of it is husk's binary. Whoever can
//! open it could, once no husk runs any more, reopen it for writing and
//! replace the host's husk.
//!
//! husk's forked processes are non-dumpable from birth, so /proc/PID/exe is
//! closed to anyone without CAP_SYS_PTRACE in the user namespace husk was
//! executed in (the host's). Only a container that keeps CAP_SYS_PTRACE in
//! its bounding set *and* shares the host's user namespace could still open
//! it: for those, husk first re-executes itself from a sealed memfd copy,
//! whose /proc/PID/exe can never be written. (The copy costs a few
//! milliseconds, which is why it is not paid by every container.)

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("copying husk to a sealed memfd: {what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> CloneError {
    move |err| CloneError::Sys { what, err }
}

/// Could a process of a container with this config open a non-dumpable
/// husk's /proc/PID/exe? `extra_caps` are capabilities an `exec` adds.
pub fn needed(spec: &oci_spec::runtime::Spec, extra_caps: &[String]) -> bool {
    let own_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User));
    if own_userns {
        return false;
    }
    let bounding_ptrace = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::SysPtrace));
    bounding_ptrace || extra_caps.iter().any(|c| c.trim_start_matches("CAP_").eq_ignore_ascii_case("SYS_PTRACE"))
}

/// [`needed`] for a container's config file and, for `exec`, the process
/// file and extra capabilities given. Unreadable or invalid files answer
/// false: the command that reads them reports the error.
pub fn needed_for_files(config: &Path, process: Option<&Path>, extra_caps: &[String]) -> bool {
    let Ok(raw) = crate::spec::read_limited(config) else { return false };
    let process_raw = process.and_then(|p| crate::spec::read_limited(p).ok());
    // Parsing costs more than this whole check on the common path: parse
    // only when CAP_SYS_PTRACE can be involved at all. A \u escape could
    // spell the name any other way: parse then too.
    let mentions = |r: &[u8]| r.windows(10).any(|w| w == b"SYS_PTRACE") || r.windows(2).any(|w| w == b"\\u");
    if !mentions(&raw) && !process_raw.as_deref().is_some_and(mentions) && extra_caps.is_empty() {
        return false;
    }
    let Ok(spec) = crate::spec::parse(config, &raw) else { return false };
    let mut caps = extra_caps.to_vec();
    if let (Some(path), Some(raw)) = (process, process_raw) {
        let Ok(p) = crate::spec::parse_json::<oci_spec::runtime::Process>(path, &raw) else { return false };
        let bounding = p.capabilities().as_ref().and_then(|c| c.bounding().as_ref());
        caps.extend(bounding.into_iter().flatten().map(|c| c.to_string()));
    }
    needed(&spec, &caps)
}

/// Are we running from a sealed copy already?
pub fn is_cloned() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS only reads the seals of our own fd.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-execute from a sealed memfd copy unless already running from one.
/// Returns only on failure.
pub fn ensure() -> Result<(), CloneError> {
    if is_cloned() {
        return Ok(());
    }
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| sys("open /proc/self/exe")(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    // SAFETY: memfd_create reads a C string and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"husk".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(sys("memfd_create")(nix::Error::last()));
    }
    // SAFETY: a new fd we own.
    let mem = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = exe.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut left = len;
    while left > 0 {
        // SAFETY: sendfile between two fds we own; the kernel copies.
        let n = unsafe { libc::sendfile(mem.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), left) };
        if n <= 0 {
            return Err(sys("sendfile")(if n < 0 { nix::Error::last() } else { nix::Error::EIO }));
        }
        left -= n as usize;
    }
    // SAFETY: F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(sys("sealing")(nix::Error::last()));
    }
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.into_encoded_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let err = nix::unistd::fexecve(&mem, &args, &env).err().unwrap_or(nix::Error::EIO);
    Err(sys("fexecve")(err))
}

#[cfg(test)]
mod tests {
    fn spec(v: serde_json::Value) -> oci_spec::runtime::Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_ptrace_capable_containers_in_the_host_userns_need_the_copy() {
        let base = |caps: &[&str], ns: &[&str]| {
            spec(serde_json::json!({
                "ociVersion": "1.0.2",
                "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["x"],
                            "capabilities": {"bounding": caps}},
                "linux": {"namespaces": ns.iter().map(|t| serde_json::json!({"type": t})).collect::<Vec<_>>()}
            }))
        };
        assert!(!super::needed(&base(&["CAP_KILL"], &["mount"]), &[]));
        assert!(super::needed(&base(&["CAP_SYS_PTRACE"], &["mount"]), &[]));
        assert!(!super::needed(&base(&["CAP_SYS_PTRACE"], &["mount", "user"]), &[]));
        assert!(super::needed(&base(&["CAP_KILL"], &["mount"]), &["CAP_SYS_PTRACE".into()]));
    }

    #[test]
    fn an_exec_process_file_keeping_ptrace_needs_the_copy() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join("config.json");
        let process = d.path().join("process.json");
        let write = |p: &std::path::Path, v: serde_json::Value| std::fs::write(p, v.to_string()).unwrap();
        let proc_with = |caps: &[&str]| serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["x"],
                                                          "capabilities": {"bounding": caps}});
        write(&config, serde_json::json!({"ociVersion": "1.0.2", "process": proc_with(&["CAP_KILL"]),
                                          "linux": {"namespaces": [{"type": "mount"}]}}));
        assert!(!super::needed_for_files(&config, None, &[]));
        write(&process, proc_with(&["CAP_KILL"]));
        assert!(!super::needed_for_files(&config, Some(&process), &[]));
        write(&process, proc_with(&["CAP_SYS_PTRACE"]));
        assert!(super::needed_for_files(&config, Some(&process), &[]));
        assert!(super::needed_for_files(&config, None, &["SYS_PTRACE".into()]));
    }

    #[test]
    fn test_binary_is_not_a_sealed_copy() {
        // The test harness runs from disk: is_cloned must say so.
        assert!(!super::is_cloned());
    }
}
