//! CVE-2019-5736 without re-executing husk: the container's process makes
//! its last execve from a tiny sealed program instead of from husk's image.
//!
//! The attack needs husk's own file to be what a container executes as
//! `/proc/self/exe` (an entrypoint or exec'd command that is, or whose
//! `#!` interpreter is, `/proc/self/exe`), or a container process that can
//! open `/proc/PID/exe` of a husk process in the container. [`crate::sealed_exe`]
//! defeats both by re-executing husk from a handle no one can write, which
//! costs a second execve of the 2 MB binary and a detached overlay to make
//! and dissolve (an expedited RCU grace period each): about a millisecond
//! of `run` (see the README's performance section).
//!
//! The trampoline removes the first way without that cost: husk still
//! builds the container, but its process then executes a 292-byte static
//! program (`exec_trampoline.S`) from a sealed memfd, and that program
//! executes the user's. What the container's execve sees as
//! `/proc/self/exe` is the trampoline, which no one can write
//! (F_SEAL_WRITE). runc shipped the same idea as runc-dmz
//! (1.2.0-rc) and dropped it for the cases it got wrong, which decide where
//! husk may use it ([`unfit`]): a second execve recomputes capabilities and
//! runs the LSM transition, so it must not change what the program gets.
//! The second way stays closed because husk's processes in a container are
//! non-dumpable and hold capabilities the container lacks; only a container
//! with CAP_SYS_PTRACE gets past that, so such containers keep the sealed
//! re-exec. In a created container the trampoline is what waits for
//! `start`, so no husk image stays there either.
//!
//! Where it does not fit, husk re-executes sealed as before.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use oci_spec::runtime::{Hooks, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Process};

/// The trampoline's machine code (x86_64), the `.text` of
/// `exec_trampoline.S` next to this file. Its arguments are `START REPORT
/// PATH ARGV...`: it marks itself non-dumpable first; if START is an fd (not
/// "-"), reads one byte from it (husk's `start`), retrying on EOF and
/// EINTR, and marks it close-on-exec; marks REPORT close-on-exec and
/// executes PATH with ARGV and its own environment. If that fails it
/// writes one message to REPORT, `[0][errno, 4 bytes LE][PATH]` (see
/// [`failure_text`]), and exits 1.
/// Malformed arguments exit 127, no fd touched.
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0xb8, 0x9d, 0x00, 0x00, 0x00, 0xbf, 0x04, 0x00, 0x00, 0x00, 0x31, 0xf6, 0x0f, 0x05, 0x48, 0x8b,
    0x1c, 0x24, 0x48, 0x83, 0xfb, 0x03, 0x0f, 0x82, 0xc7, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x7c, 0x24,
    0x08, 0xe8, 0xc9, 0x00, 0x00, 0x00, 0x49, 0x89, 0xc6, 0x48, 0x8b, 0x7c, 0x24, 0x10, 0xe8, 0xbc,
    0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x0f, 0x88, 0xa7, 0x00, 0x00, 0x00, 0x49, 0x89, 0xc5, 0x4d,
    0x85, 0xf6, 0x78, 0x38, 0x31, 0xc0, 0x4c, 0x89, 0xf7, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0xba, 0x01,
    0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0x01, 0x74, 0x0d, 0x48, 0x85, 0xc0, 0x74, 0xe4,
    0x48, 0x83, 0xf8, 0xfc, 0x74, 0xde, 0xeb, 0x74, 0xb8, 0x48, 0x00, 0x00, 0x00, 0x4c, 0x89, 0xf7,
    0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xb8, 0x48, 0x00, 0x00,
    0x00, 0x4c, 0x89, 0xef, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0x4c, 0x8b, 0x64, 0x24, 0x18, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x4c, 0x89, 0xe7, 0x48, 0x8d, 0x74,
    0x24, 0x20, 0x48, 0x8d, 0x54, 0xdc, 0x10, 0x0f, 0x05, 0xf7, 0xd8, 0x48, 0xc1, 0xe0, 0x08, 0x50,
    0x4c, 0x89, 0xe6, 0x31, 0xd2, 0x80, 0x3c, 0x16, 0x00, 0x74, 0x05, 0x48, 0xff, 0xc2, 0xeb, 0xf5,
    0x52, 0x56, 0x48, 0x8d, 0x44, 0x24, 0x10, 0x6a, 0x05, 0x50, 0xb8, 0x14, 0x00, 0x00, 0x00, 0x4c,
    0x89, 0xef, 0x48, 0x89, 0xe6, 0xba, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x01, 0x00, 0x00,
    0x00, 0xeb, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x31,
    0xc0, 0x0f, 0xb6, 0x0f, 0x85, 0xc9, 0x74, 0x24, 0x0f, 0xb6, 0x0f, 0x85, 0xc9, 0x74, 0x1c, 0x83,
    0xe9, 0x30, 0x83, 0xf9, 0x09, 0x77, 0x15, 0x48, 0x6b, 0xc0, 0x0a, 0x48, 0x01, 0xc8, 0x48, 0x3d,
    0xff, 0xff, 0xff, 0x7f, 0x77, 0x06, 0x48, 0xff, 0xc7, 0xeb, 0xdd, 0xc3, 0x48, 0xc7, 0xc0, 0xff,
    0xff, 0xff, 0xff, 0xc3,
];

/// Where the image is mapped: above any vm.mmap_min_addr.
#[cfg(target_arch = "x86_64")]
const BASE: u64 = 0x40_0000;

/// A static ELF of [`CODE`]: one read+execute segment (never writable, so
/// memory-deny-write-execute cannot refuse it) and a non-executable stack.
#[cfg(target_arch = "x86_64")]
pub fn image() -> Vec<u8> {
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    let code_at = EHDR + 2 * PHDR;
    let size = code_at + CODE.len() as u64;
    let mut e = Vec::with_capacity(size as usize);
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + code_at).to_le_bytes()); // entry
    e.extend_from_slice(&EHDR.to_le_bytes()); // program headers
    e.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    e.extend_from_slice(&0u32.to_le_bytes());
    for h in [EHDR as u16, PHDR as u16, 2, 64, 0, 0] {
        e.extend_from_slice(&h.to_le_bytes());
    }
    let phdr = |e: &mut Vec<u8>, kind: u32, flags: u32, filesz: u64| {
        e.extend_from_slice(&kind.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&0u64.to_le_bytes()); // offset
        e.extend_from_slice(&BASE.to_le_bytes());
        e.extend_from_slice(&BASE.to_le_bytes());
        e.extend_from_slice(&filesz.to_le_bytes());
        e.extend_from_slice(&filesz.to_le_bytes());
        e.extend_from_slice(&0x1000u64.to_le_bytes());
    };
    phdr(&mut e, 1, 5, size); // PT_LOAD, R+X
    phdr(&mut e, 0x6474_e551, 6, 0); // PT_GNU_STACK, RW
    e.extend_from_slice(CODE);
    e
}

#[cfg(not(target_arch = "x86_64"))]
pub fn image() -> Vec<u8> {
    Vec::new()
}

/// Is there a trampoline for this architecture ([`image`] is not empty)?
const AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// The trampoline in a sealed memfd, close-on-exec (execveat runs an ELF
/// from such an fd; the container never gets the fd).
pub struct Trampoline(OwnedFd);

impl Trampoline {
    pub fn load() -> std::io::Result<Trampoline> {
        if !AVAILABLE {
            return Err(std::io::Error::from_raw_os_error(libc::ENOEXEC));
        }
        let image = image();
        let name = c"husk-exec-trampoline";
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: memfd_create reads a C string and returns a new fd or -1.
        // MFD_EXEC (Linux 6.3) says so where vm.memfd_noexec asks; older
        // kernels refuse the flag, and their memfds are executable anyway.
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | libc::MFD_EXEC) };
        if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        }
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::io::Write::write_all(&mut std::fs::File::from(fd.try_clone()?), &image)?;
        let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: F_ADD_SEALS on our memfd.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Trampoline(fd))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The syscalls the trampoline makes, besides the user program's execve.
const TRAMPOLINE_SYSCALLS: [&str; 7] = ["execveat", "prctl", "read", "fcntl", "execve", "writev", "exit_group"];

/// Why the trampoline cannot stand in for the sealed re-exec here, or None
/// if it can. `ptrace_seen`: a process with CAP_SYS_PTRACE was exec'd into
/// the container before (see [`PTRACE_EXEC_MARK`]).
pub fn unfit(process: &Process, linux: Option<&oci_spec::runtime::Linux>, hooks: Option<&Hooks>, rootless: bool, ptrace_seen: bool) -> Option<&'static str> {
    if !AVAILABLE {
        return Some("no trampoline for this architecture");
    }
    // An ordinary user's container may map the binary's owner, and its
    // init stays dumpable until mapped (crate::rootless).
    if rootless {
        return Some("rootless");
    }
    // Other processes than the container's own could watch ours: another
    // container's or the host's.
    let own_pid_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()));
    if !own_pid_ns {
        return Some("no pid namespace of its own");
    }
    // The transition to the label would happen at the trampoline's execve,
    // and the label may not allow the second one (runc #4057).
    if process.apparmor_profile().as_deref().is_some_and(|p| !p.is_empty()) || process.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
        return Some("an LSM label");
    }
    // Run by the container's process in the container's namespaces.
    if let Some(h) = hooks {
        if [h.create_container(), h.start_container()].iter().any(|v| v.as_ref().is_some_and(|v| !v.is_empty())) {
            return Some("createContainer or startContainer hooks");
        }
    }
    // Non-dumpable and privileged, husk's processes in a container are out
    // of reach of /proc/PID/exe except to CAP_SYS_PTRACE.
    if ptrace_seen || has_ptrace(process) {
        return Some("CAP_SYS_PTRACE in the container");
    }
    let Ok(caps) = crate::capabilities::resolve(process.capabilities().as_ref()) else {
        return Some("capabilities husk cannot resolve");
    };
    // The user program's execve must run with the credentials husk's own
    // would have had (runc #4125): the sets capabilities::apply leaves
    // must be the ones the trampoline's execve makes of them. That execve
    // makes the permitted and effective sets bounding | inheritable |
    // ambient for root, ambient for anyone else (the memfd has no file
    // capabilities), and keeps the others.
    let effective: caps::CapsHashSet = caps.effective.intersection(&caps.permitted).copied().collect();
    let ambient: caps::CapsHashSet = caps.ambient.iter().filter(|c| caps.permitted.contains(c) && caps.inheritable.contains(c)).copied().collect();
    let after: caps::CapsHashSet = match process.user().uid() {
        0 => caps.bounding.union(&caps.inheritable).chain(ambient.iter()).copied().collect(),
        _ => ambient,
    };
    if effective != after || caps.permitted != effective {
        return Some("capability sets an extra execve would change");
    }
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        if s.listener_path().is_some() || !TRAMPOLINE_SYSCALLS.iter().all(|n| allows(s, n)) {
            return Some("a seccomp profile that does not plainly allow the trampoline's syscalls");
        }
    }
    None
}

/// Does the profile allow `name` whatever its arguments, without notifying,
/// logging or tracing?
fn allows(s: &LinuxSeccomp, name: &str) -> bool {
    let mut rules = s.syscalls().iter().flatten().filter(|r| r.names().iter().any(|n| n == name)).peekable();
    if rules.peek().is_none() {
        return s.default_action() == LinuxSeccompAction::ScmpActAllow;
    }
    rules.all(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().as_ref().map_or(true, |a| a.is_empty()))
}

/// In a container's state directory: a process with CAP_SYS_PTRACE was
/// exec'd into it, so every later exec re-executes sealed.
pub const PTRACE_EXEC_MARK: &str = "ptrace-exec";

/// Does `process` hold CAP_SYS_PTRACE in any set?
pub fn has_ptrace(process: &Process) -> bool {
    process.capabilities().as_ref().is_some_and(|c| {
        [c.bounding(), c.effective(), c.permitted(), c.inheritable(), c.ambient()]
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| s.contains(&oci_spec::runtime::Capability::SysPtrace)))
    })
}

/// Execute `path` through the trampoline; returns only on failure. `start`:
/// the fd `start` writes its byte to, or None to go on at once. `report`
/// carries a failure to the waiting parent. Both are made inheritable
/// here, and the trampoline marks them close-on-exec again.
pub fn exec(trampoline: RawFd, start: Option<RawFd>, report: RawFd, path: &CString, args: &[CString], env: &[CString]) -> nix::Error {
    let fd_arg = |fd: Option<RawFd>| CString::new(fd.map_or("-".to_string(), |f| f.to_string())).unwrap_or_default();
    let mut argv = vec![fd_arg(start), fd_arg(Some(report)), path.clone()];
    argv.extend(args.iter().cloned());
    let passed: Vec<RawFd> = start.into_iter().chain([report]).collect();
    for &fd in &passed {
        // SAFETY: F_SETFD on an fd of ours.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // SAFETY: the trampoline's fd stays open for the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(trampoline) };
    let err = nix::unistd::execveat(fd, c"", &argv, env, nix::fcntl::AtFlags::AT_EMPTY_PATH).err().unwrap_or(nix::Error::EIO);
    for &fd in &passed {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    err
}

/// The text of the trampoline's failure message (`[0][errno][path]`), as
/// husk words a failed execve of its own; None for any other message.
pub fn failure_text(msg: &[u8]) -> Option<String> {
    let (&[0, a, b, c, d], path) = msg.split_first_chunk::<5>()? else { return None };
    let errno = i32::from_le_bytes([a, b, c, d]);
    let path = String::from_utf8_lossy(path).into_owned();
    Some(crate::process::ProcessError::NotExecutable(path, nix::Error::from_raw(errno).to_string()).to_string())
}

/// Only x86_64 has a trampoline; elsewhere husk re-executes sealed.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    /// CODE is exactly what exec_trampoline.S assembles to. Needs cc and
    /// objcopy: a missing one fails the test rather than skipping it.
    #[test]
    fn the_code_is_the_assembled_source() {
        let dir = tempfile::tempdir().unwrap();
        let (elf, text) = (dir.path().join("t"), dir.path().join("t.bin"));
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/exec_trampoline.S");
        let cc = Command::new("cc").args(["-nostdlib", "-static", "-o"]).arg(&elf).arg(src).status().expect("cc is needed");
        assert!(cc.success());
        let oc = Command::new("objcopy").args(["-O", "binary", "--only-section=.text"]).arg(&elf).arg(&text).status().expect("objcopy is needed");
        assert!(oc.success());
        assert_eq!(std::fs::read(&text).unwrap(), CODE, "exec_trampoline.S and CODE differ: paste the new bytes");
    }

    /// A pipe without close-on-exec, its ends moved to `r` and `w` (high
    /// numbers, so that a listing of the program's fds cannot confuse them).
    fn pipe_at(r: RawFd, w: RawFd) -> (OwnedFd, OwnedFd) {
        let mut p = [0; 2];
        // SAFETY: pipe fills two fds; dup2 onto numbers this test owns.
        unsafe {
            assert_eq!(libc::pipe(p.as_mut_ptr()), 0);
            assert!(libc::dup2(p[0], r) >= 0 && libc::dup2(p[1], w) >= 0);
            libc::close(p[0]);
            libc::close(p[1]);
            (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w))
        }
    }

    /// The trampoline with `argv` (husk passes START as argv[0]).
    fn trampoline_cmd(t: &Trampoline, argv: &[&str]) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(format!("/proc/self/fd/{}", t.fd()));
        if let Some((arg0, rest)) = argv.split_first() {
            c.arg0(arg0).args(rest);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        c
    }

    #[test]
    fn the_trampoline_waits_for_start_then_runs_the_program_without_its_fds() {
        let t = Trampoline::load().unwrap();
        let (start_r, start_w) = pipe_at(401, 402);
        let (report_r, report_w) = pipe_at(403, 404);
        for fd in [&start_w, &report_r] {
            // SAFETY: F_SETFD on the test's own ends (other tests spawn too).
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // The program lists its fds (START and REPORT must not be among
        // them), its argv[0] and its environment.
        let mut child = trampoline_cmd(&t, &["401", "404", "/bin/sh", "my-argv0", "-c", "ls /proc/self/fd; echo \"$0\" $FOO"])
            .env_clear()
            .env("FOO", "bar")
            .spawn()
            .unwrap();
        drop((start_r, report_w));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "ran before the start byte");
        nix::unistd::write(&start_w, b"0").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}", out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fds: Vec<&str> = text.lines().take_while(|l| l.parse::<i32>().is_ok()).collect();
        assert!(!fds.contains(&"401") && !fds.contains(&"404"), "START or REPORT reached the program: {text}");
        assert!(fds.contains(&"0") && fds.contains(&"1"), "{text}");
        assert!(text.ends_with("my-argv0 bar\n"), "{text}");
        let mut report = Vec::new();
        std::fs::File::from(report_r).read_to_end(&mut report).unwrap();
        assert!(report.is_empty(), "a report after a good execve: {report:?}");
        drop(start_w);
    }

    #[test]
    fn a_failed_execve_is_reported_as_husk_words_it() {
        let t = Trampoline::load().unwrap();
        let (report_r, report_w) = pipe_at(405, 406);
        let st = trampoline_cmd(&t, &["-", "406", "/no/such/program", "x"]).status().unwrap();
        drop(report_w);
        assert_eq!(st.code(), Some(1));
        let mut report = Vec::new();
        std::fs::File::from(report_r).read_to_end(&mut report).unwrap();
        let direct = crate::process::ProcessError::NotExecutable("/no/such/program".into(), nix::Error::ENOENT.to_string()).to_string();
        assert_eq!(failure_text(&report).as_deref(), Some(direct.as_str()));
        // Anything else is not a report: the channel's JSON, husk's text.
        assert_eq!(failure_text(b"{\"Error\":\"x\"}"), None);
        assert_eq!(failure_text(b"exec failed"), None);
        assert_eq!(failure_text(&[0, 1]), None);
    }

    #[test]
    fn malformed_arguments_exit_127_without_touching_an_fd() {
        let t = Trampoline::load().unwrap();
        for args in [&[][..], &["/bin/true"][..], &["/proc/self/exe", "--version"][..], &["1", "x", "/bin/true"][..]] {
            let st = trampoline_cmd(&t, args).status().unwrap();
            assert_eq!((st.code(), st.signal()), (Some(127), None), "{args:?}");
        }
    }

    #[test]
    fn the_memfd_is_sealed_against_writes() {
        let t = Trampoline::load().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", t.fd()));
        let write = f.and_then(|mut f| std::io::Write::write_all(&mut f, b"x"));
        assert!(write.is_err(), "wrote to the trampoline");
    }

    fn process(v: serde_json::Value) -> Process {
        let mut base = serde_json::json!({"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn linux(v: serde_json::Value) -> oci_spec::runtime::Linux {
        let mut base = serde_json::json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn caps(e: &[&str], p: &[&str], b: &[&str], i: &[&str], a: &[&str]) -> serde_json::Value {
        serde_json::json!({"capabilities": {"effective": e, "permitted": p, "bounding": b, "inheritable": i, "ambient": a}})
    }

    const DOCKER: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"];

    #[test]
    fn the_trampoline_stands_in_only_where_the_program_gets_the_same() {
        let l = linux(serde_json::json!({}));
        let fit = |p: &Process, l: &oci_spec::runtime::Linux| unfit(p, Some(l), None, false, false);
        // Docker's root container; `runc spec`'s (ambient listed without
        // inheritable: never raised).
        assert_eq!(fit(&process(caps(DOCKER, DOCKER, DOCKER, &[], &[])), &l), None);
        assert_eq!(fit(&process(caps(&["CAP_KILL"], &["CAP_KILL"], &["CAP_KILL"], &[], &["CAP_KILL"])), &l), None);
        assert_eq!(fit(&process(serde_json::json!({})), &l), None);
        // Root whose effective set is smaller than an execve makes it.
        assert!(fit(&process(caps(&["CAP_KILL"], &["CAP_KILL"], DOCKER, &[], &[])), &l).is_some());
        // A user other than root keeps only its ambient set through an execve.
        let user = |c: serde_json::Value| {
            let mut v = c;
            v["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
            process(v)
        };
        assert!(fit(&user(caps(DOCKER, DOCKER, DOCKER, &[], &[])), &l).is_some());
        assert_eq!(fit(&user(caps(&["CAP_KILL"], &["CAP_KILL"], DOCKER, &["CAP_KILL"], &["CAP_KILL"])), &l), None);
        assert_eq!(fit(&user(caps(&[], &[], DOCKER, &[], &[])), &l), None);
        // Permitted beyond effective.
        assert!(fit(&process(caps(DOCKER, &[DOCKER, &["CAP_SYS_ADMIN"]].concat(), DOCKER, &[], &[])), &l).is_some());
        let ptrace = [DOCKER, &["CAP_SYS_PTRACE"]].concat();
        assert!(fit(&process(caps(&ptrace, &ptrace, &ptrace, &[], &[])), &l).is_some());
        assert!(fit(&process(caps(&[], &[], &["CAP_SYS_PTRACE"], &[], &[])), &l).is_some());
        let docker = process(caps(DOCKER, DOCKER, DOCKER, &[], &[]));
        assert!(unfit(&docker, Some(&l), None, false, true).is_some(), "a ptrace exec seen before");
        assert!(unfit(&docker, Some(&l), None, true, false).is_some(), "rootless");
        assert!(fit(&process(serde_json::json!({"apparmorProfile": "docker-default"})), &l).is_some());
        assert!(fit(&process(serde_json::json!({"selinuxLabel": "system_u:system_r:container_t:s0"})), &l).is_some());
        // Only a pid namespace of the container's own.
        let shared = linux(serde_json::json!({"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}));
        assert!(fit(&docker, &shared).is_some());
        assert!(fit(&docker, &linux(serde_json::json!({"namespaces": [{"type": "mount"}]}))).is_some());
        assert!(unfit(&docker, None, None, false, false).is_some());
        // Hooks the container's process runs itself; others do not matter.
        let hook = |kind: &str| -> Hooks { serde_json::from_value(serde_json::json!({kind: [{"path": "/bin/true"}]})).unwrap() };
        assert!(unfit(&docker, Some(&l), Some(&hook("startContainer")), false, false).is_some());
        assert!(unfit(&docker, Some(&l), Some(&hook("createContainer")), false, false).is_some());
        assert_eq!(unfit(&docker, Some(&l), Some(&hook("createRuntime")), false, false), None);
        assert_eq!(unfit(&docker, Some(&l), Some(&hook("poststop")), false, false), None);
    }

    #[test]
    fn a_seccomp_profile_must_plainly_allow_the_trampolines_syscalls() {
        let docker = process(caps(DOCKER, DOCKER, DOCKER, &[], &[]));
        let with = |s: serde_json::Value| unfit(&docker, Some(&linux(serde_json::json!({"seccomp": s}))), None, false, false);
        assert_eq!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]})), None);
        let all = TRAMPOLINE_SYSCALLS.to_vec();
        assert_eq!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": all, "action": "SCMP_ACT_ALLOW"}]})), None);
        let some: Vec<&str> = all.iter().copied().filter(|n| *n != "execveat").collect();
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": some, "action": "SCMP_ACT_ALLOW"}]})).is_some());
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["fcntl"], "action": "SCMP_ACT_LOG"}]})).is_some());
        let by_arg = serde_json::json!([{"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}]);
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["prctl"], "action": "SCMP_ACT_ALLOW", "args": by_arg}]})).is_some());
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})).is_some());
    }
}
