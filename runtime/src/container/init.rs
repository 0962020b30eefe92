//! The container process, from the clone until execve of the user program.
//!
//! It runs in the forked copy of husk, already inside its new namespaces.
//! Every failure before `Ready` goes back to the parent over the sync channel
//! and becomes `create`'s error; the parent then removes everything.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, SigSet, Signal};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::capabilities;
use crate::cgroups::{CgroupRecord, Joiner};
use crate::console;
use crate::hooks;
use crate::namespaces::Plan;
use crate::process::{self, Exec};
use crate::process_attrs;
use crate::rootfs;
use crate::seccomp;
use crate::state::{ContainerState, Status};
use crate::sync::{Channel, Msg};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Expect(#[from] crate::sync::ExpectError),
    #[error(transparent)]
    Ns(#[from] crate::namespaces::NsError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Caps(#[from] capabilities::CapError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Attr(#[from] process_attrs::AttrError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("{what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
    #[error("{0}")]
    Other(String),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> InitError {
    move |err| InitError::Sys { what, err }
}

pub struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub chan: Channel,
    /// The exec fifo and its reply fifo (see create::StartFifos).
    pub start: super::create::StartFifos,
    pub console: Option<OwnedFd>,
    /// The console socket is husk's own (no --console-socket): it relays
    /// the pty itself.
    pub console_ours: bool,
    pub ns: &'a Plan,
    pub cgroup: Option<&'a CgroupRecord>,
    pub join: Option<&'a Joiner>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Connected to linux.seccomp.listenerPath when the filter notifies.
    pub seccomp_listener: Option<OwnedFd>,
    /// Explicit fds for 0-2 (see `CreateOptions::stdio`).
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// Stay dumpable until the parent has written our id maps (see
    /// crate::rootless::Dumpable).
    pub dumpable_until_mapped: bool,
    /// The exec trampoline's fd, if the program is to be executed through
    /// it (see crate::exec_trampoline).
    pub trampoline: Option<RawFd>,
}

/// Does the create handshake include the hooks round trip?
pub fn wants_hook_sync(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        [h.prestart(), h.create_runtime(), h.create_container()]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
    })
}

/// Never returns: execs the user program or exits.
pub fn run(a: InitArgs) -> ! {
    if let Err(e) = install_stdio(a.stdio).and_then(|_| join_cgroups(a.join)) {
        let _ = a.chan.send(&crate::sync::error(e.to_string()));
        exit(1);
    }
    protect_self(&a);
    reset_signals();
    let prepared = match setup(&a) {
        Ok(p) => p,
        Err(e) => {
            let _ = a.chan.send(&crate::sync::error(e.to_string()));
            exit(1);
        }
    };
    match wait_and_exec(&a, prepared) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("husk: container {}: {e}", a.id);
            exit(127)
        }
    }
}

/// First thing in a forked child: drop every fd of the parent's we do not
/// need (the state lock, the cgroup dir, ...), and become non-dumpable, so
/// that until exec no process of the container can open our /proc entries
/// (/proc/PID/exe is the husk binary: CVE-2019-5736).
pub fn protect_self(a: &InitArgs) {
    if !a.dumpable_until_mapped {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
    let mut keep = vec![a.chan.as_raw_fd(), a.start.start_rx.as_raw_fd(), a.start.reply_tx.as_raw_fd()];
    keep.extend(a.console.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(a.ns.join_user.as_ref().map(|u| u.as_raw_fd()));
    keep.extend(a.seccomp_listener.as_ref().map(|u| u.as_raw_fd()));
    keep.extend(a.trampoline);
    process::close_fds_except(3 + a.preserve_fds, &keep);
}

/// Put explicit stdio fds on 0, 1 and 2. Each is first copied above 2, so
/// that a source which is itself one of 0-2 is not overwritten before use;
/// the copies are close-on-exec and dropped by `protect_self` anyway.
pub(super) fn install_stdio(fds: Option<[std::os::fd::RawFd; 3]>) -> Result<(), InitError> {
    let Some(fds) = fds else { return Ok(()) };
    let mut high = [-1; 3];
    for (i, fd) in fds.iter().enumerate() {
        // SAFETY: F_DUPFD_CLOEXEC only creates a new fd; an invalid source
        // fails with EBADF.
        high[i] = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3) };
        if high[i] < 0 {
            return Err(sys("duplicating the stdio fds")(nix::Error::last()));
        }
    }
    for (i, fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto 0-2, which this forked process owns.
        if unsafe { libc::dup2(*fd, i as i32) } < 0 {
            return Err(sys("installing the stdio fds")(nix::Error::last()));
        }
        // SAFETY: closing the temporary copy made above.
        unsafe { libc::close(*fd) };
    }
    Ok(())
}

/// Our first act, while still single-threaded and before anything is
/// charged to the runtime's cgroups (see `cgroups::Joiner`). The fds are
/// closed right after, with the parent's others.
pub(super) fn join_cgroups(j: Option<&Joiner>) -> Result<(), InitError> {
    Ok(j.map_or(Ok(()), |j| j.join_self())?)
}

pub(super) fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong
    // to the parent husk process this one was forked from.
    unsafe { libc::_exit(code) }
}

/// Rust ignores SIGPIPE, and an ignored signal stays ignored across execve:
/// give the container default dispositions and an empty mask.
pub(super) fn reset_signals() {
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: resetting to SIG_DFL installs no handler code.
            let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
        }
    }
    let _ = SigSet::empty().thread_set_mask();
}

pub(super) fn set_pdeathsig(on: bool) -> Result<(), InitError> {
    nix::sys::prctl::set_pdeathsig(if on { Some(Signal::SIGKILL) } else { None })
        .map_err(sys("PR_SET_PDEATHSIG"))
}

struct Prepared {
    exec: Exec,
    /// The seccomp filter, pending or already loaded.
    seccomp: seccomp::Stage,
    /// The state document for startContainer hooks, with our pid as the
    /// parent told it (inside a new pid namespace we cannot see it).
    state: String,
}

fn setup(a: &InitArgs) -> Result<Prepared, InitError> {
    set_pdeathsig(true)?;
    apply_initial_affinity(a.spec.process().as_ref())?;
    // The parent writes our id maps first and, where the kernel would not
    // let us be born in our v2 cgroup, moves us there: after Go we are in
    // every cgroup of the container.
    let (bind_sources, idmapped) =
        tracing::debug_span!("wait_for_go").in_scope(|| receive_bind_sources(&a.chan, a.spec.mounts().as_ref().map_or(0, |m| m.len())))?;
    let namespaces = tracing::debug_span!("namespaces").entered();
    let linux = a.spec.linux().as_ref();
    // Born in it: a user namespace joined by path was entered before the
    // clone (create::spawn).
    let in_userns = a.ns.enters_user_ns();
    // Mapped: nothing needs our /proc files any more.
    let _ = nix::sys::prctl::set_dumpable(false);
    if in_userns {
        let root_g = nix::unistd::Gid::from_raw(0);
        let root_u = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g).map_err(sys("setresgid 0 in user namespace"))?;
        nix::unistd::setresuid(root_u, root_u, root_u).map_err(sys("setresuid 0 in user namespace"))?;
        set_pdeathsig(true)?;
    }
    // Unshared only now, once we are in our cgroups, so that the
    // namespace's root is the container's cgroup.
    let new_cgroupns = a.ns.has_new(LinuxNamespaceType::Cgroup);
    if new_cgroupns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare cgroup namespace"))?;
    }
    nix::unistd::setsid().map_err(sys("setsid"))?;
    if let Some(h) = a.spec.hostname() {
        nix::unistd::sethostname(h).map_err(sys("sethostname"))?;
    }
    if let Some(d) = a.spec.domainname() {
        let c = std::ffi::CString::new(d.as_str()).map_err(|_| sys("setdomainname")(nix::Error::EINVAL))?;
        // SAFETY: setdomainname reads len bytes from the C string.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(sys("setdomainname")(nix::Error::last()));
        }
    }
    // Setup creates files with exact modes; the process's umask is set last.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    drop(namespaces);
    let _mounts = tracing::debug_span!("mounts").entered();
    let root = rootfs::prepare(&rootfs::Setup {
        spec: a.spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        cgroup: a.cgroup,
        new_cgroupns,
        // Born in a user namespace, or husk runs in one (root of Podman's
        // rootless namespace): no mknod, devices are bind mounts (runc's
        // userns.RunningInUserNS()).
        in_userns: in_userns || crate::rootless::in_partial_userns(),
        own_mount_ns: a.ns.own_mount_ns(),
        bind_sources: &bind_sources,
        idmapped: &idmapped,
    })?;
    if wants_hook_sync(a.spec) {
        a.chan.send(&Msg::RunRuntimeHooks)?;
        let state = match a.chan.recv()? {
            Msg::HooksDone(pid) => hook_state(a, pid, Status::Creating),
            Msg::Error(e) => return Err(crate::sync::ExpectError::Peer(e).into()),
            got => return Err(crate::sync::SyncError::Unexpected { got, wanted: "HooksDone" }.into()),
        };
        let h = a.spec.hooks().as_ref();
        hooks::run_all("createContainer", h.and_then(|h| h.create_container().as_ref()), state.as_bytes())?;
    }
    tracing::debug_span!("pivot_root").in_scope(|| rootfs::pivot(&root, a.rootfs, a.no_pivot, a.ns.own_mount_ns()))?;
    drop(root);
    drop(_mounts);
    let process = a.spec.process().as_ref().ok_or(sys("process")(nix::Error::EINVAL))?;
    if process.terminal().unwrap_or(false) {
        if let Some(sock) = &a.console {
            let pty = console::give_master(sock, process.console_size(), a.console_ours, process.user().uid())?;
            let root = nix::fcntl::open("/", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .map_err(sys("open /"))?;
            console::mount_console(root.as_fd(), &pty.peer)?;
            console::become_stdio(&pty.peer)?;
        }
    }
    tracing::debug_span!("masked_readonly_sysctl").in_scope(|| rootfs::finish(a.spec))?;
    process::reopen_dev_null()?;
    if !a.no_new_keyring {
        process::join_session_keyring(a.id)?;
    }
    let setgroups_ok = !in_userns || (linux.and_then(|l| l.gid_mappings().as_ref()).is_some_and(|m| !m.is_empty()) && !process::setgroups_denied("self"));
    let (exec, seccomp) = tracing::debug_span!("process_setup").in_scope(|| {
        finalize(&Finalize {
            process,
            linux,
            setgroups_ok,
            preserve_fds: a.preserve_fds,
        })
    })?;
    let exec = exec.through(a.trampoline.map(|trampoline| process::Via {
        trampoline,
        start: Some(a.start.start_rx.as_raw_fd()),
        report: a.start.reply_tx.as_raw_fd(),
    }));
    a.chan.send(&Msg::Ready)?;
    let (state, pid) = match a.chan.recv()? {
        Msg::Commit(pid) => (hook_state(a, pid, Status::Created), pid),
        Msg::Error(e) => return Err(crate::sync::ExpectError::Peer(e).into()),
        got => return Err(crate::sync::SyncError::Unexpected { got, wanted: "Commit" }.into()),
    };
    // A seccomp listener gets the notify fd now, during create, as runc
    // sends it: agents wait for it before they call `start`, and a filter
    // loaded early (noNewPrivileges false) may already be stopping us on a
    // notifying syscall. So, as in runc, the filter is in force from here
    // on, startContainer hooks included; without a listener it is still
    // loaded as late as possible.
    let seccomp = match (&a.seccomp_listener, seccomp) {
        (Some(_), stage) => {
            let creating = ContainerState::new(a.id, a.spec, a.bundle, a.rootfs, pid, None).spec_state(Status::Creating).value();
            let metadata = linux.and_then(|l| l.seccomp().as_ref()).and_then(|s| s.listener_metadata().clone());
            notify_listener(a.seccomp_listener.as_ref(), stage, pid, metadata.as_deref(), creating)?;
            seccomp::Stage::None
        }
        (None, stage) => stage,
    };
    set_pdeathsig(false)?;
    a.chan.send(&Msg::Committed)?;
    Ok(Prepared { exec, state, seccomp })
}

/// Bind sources or id-mapped trees, by mount index.
type ByMount = Vec<Option<OwnedFd>>;

/// Wait for Go, taking the bind sources (see
/// `rootfs::mounts::open_bind_sources`) and id-mapped trees (see
/// `rootfs::idmap::open_trees`) the parent may send first, by mount index.
fn receive_bind_sources(chan: &crate::sync::Channel, mounts: usize) -> Result<(ByMount, ByMount), InitError> {
    let mut sources: ByMount = (0..mounts).map(|_| None).collect();
    let mut trees: ByMount = (0..mounts).map(|_| None).collect();
    let put = |into: &mut ByMount, idx: Vec<usize>, fds: Vec<OwnedFd>| {
        for (i, fd) in idx.into_iter().zip(fds) {
            if let Some(slot) = into.get_mut(i) {
                *slot = Some(fd);
            }
        }
    };
    loop {
        match chan.recv_with_fds()? {
            (Msg::BindSources(idx), fds) if idx.len() == fds.len() => put(&mut sources, idx, fds),
            (Msg::IdmappedTrees(idx), fds) if idx.len() == fds.len() => put(&mut trees, idx, fds),
            (Msg::Go, _) => return Ok((sources, trees)),
            (Msg::Error(e), _) => return Err(crate::sync::ExpectError::Peer(e).into()),
            (got, _) => return Err(crate::sync::SyncError::Unexpected { got, wanted: "Go" }.into()),
        }
    }
}

fn wait_and_exec(a: &InitArgs, p: Prepared) -> Result<std::convert::Infallible, InitError> {
    if p.exec.via_trampoline() {
        // The trampoline waits for `start` in our place, and the parent for
        // its exec: with the seccomp filter loaded (no listener, see
        // exec_trampoline::unfit), nothing of husk's is left to do.
        let phase = crate::logging::Phase::start();
        let err = match notify_listener(None, p.seccomp, 0, None, serde_json::Value::Null) {
            Ok(()) => {
                if let Some(phase) = phase {
                    phase.done("to_trampoline");
                }
                InitError::from(p.exec.exec())
            }
            Err(e) => e,
        };
        let _ = a.chan.send(&crate::sync::error(err.to_string()));
        exit(1)
    }
    // `start` writes one byte. We hold the fifo open for writing as well, so
    // read never sees EOF: it blocks until start, or until we are killed.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(&a.start.start_rx, &mut b) {
            Ok(1) => break,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys("waiting for start")(e)),
        }
    }
    let phase = crate::logging::Phase::start();
    let err = match start_and_exec(a, p, phase) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if let Msg::Error(text) = crate::sync::error(err.to_string()) {
        let _ = nix::unistd::write(&a.start.reply_tx, text.as_bytes());
    }
    exit(1)
}

/// `phase` times from `start`'s byte to the execve, logged just before it.
fn start_and_exec(a: &InitArgs, p: Prepared, phase: Option<crate::logging::Phase>) -> Result<std::convert::Infallible, InitError> {
    if let Some(h) = a.spec.hooks().as_ref().and_then(|h| h.start_container().as_ref()) {
        // A startContainer hook without an env of its own gets the container
        // process's (runc's de facto behaviour, which hooks rely on).
        let env = a.spec.process().as_ref().and_then(|p| p.env().clone());
        let h: Vec<_> = h
            .iter()
            .map(|hook| {
                let mut hook = hook.clone();
                if hook.env().is_none() {
                    hook.set_env(env.clone());
                }
                hook
            })
            .collect();
        hooks::run_all("startContainer", Some(&h), p.state.as_bytes())?;
    }
    let state: serde_json::Value = serde_json::from_str(&p.state).unwrap_or_default();
    let pid = state["pid"].as_i64().unwrap_or(0) as i32;
    let metadata = a.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()).and_then(|s| s.listener_metadata().clone());
    notify_listener(a.seccomp_listener.as_ref(), p.seccomp, pid, metadata.as_deref(), state)?;
    if let Some(phase) = phase {
        phase.done("start_to_execve");
    }
    // On success the exec closes our end of the reply fifo (CLOEXEC): that
    // EOF is how `start` learns the user program is running.
    Err(p.exec.exec().into())
}

fn hook_state(a: &InitArgs, pid: i32, status: Status) -> String {
    ContainerState::new(a.id, a.spec, a.bundle, a.rootfs, pid, None)
        .spec_state(status)
        .to_string()
}

/// Load a pending filter and hand its notify fd, if any, to the listener.
pub fn notify_listener(
    listener: Option<&OwnedFd>,
    stage: seccomp::Stage,
    pid: i32,
    metadata: Option<&str>,
    state: serde_json::Value,
) -> Result<(), InitError> {
    if let Some(fd) = stage.finish()? {
        if let Some(sock) = listener {
            seccomp::send_to_listener(sock, fd, pid, metadata.unwrap_or(""), state)?;
        }
        // SAFETY: our copy of the notify fd; the listener has its own now.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// execCPUAffinity.initial applies while the process is still husk's,
/// before it joins the container's cgroup; `final` applies just before exec.
pub fn apply_initial_affinity(p: Option<&oci_spec::runtime::Process>) -> Result<(), InitError> {
    if let Some(cpus) = p.and_then(|p| p.exec_cpu_affinity().as_ref()).and_then(|a| a.initial().as_deref()) {
        process_attrs::set_cpu_affinity(cpus)?;
    }
    Ok(())
}

/// The part of process setup shared by `create` and `exec`.
pub struct Finalize<'a> {
    pub process: &'a oci_spec::runtime::Process,
    pub linux: Option<&'a oci_spec::runtime::Linux>,
    pub setgroups_ok: bool,
    pub preserve_fds: i32,
}

/// rlimits, credentials, capabilities, cwd, no_new_privs, umask, and the
/// resolved program. Everything husk itself needs (the cwd and its check,
/// the program's path, the LSM labels, the credentials) is done before the
/// seccomp filter is loaded, so a profile cannot break the runtime's own
/// steps: with noNewPrivileges the filter waits until just before exec;
/// without it, it must be loaded while CAP_SYS_ADMIN is still effective,
/// which is here, after the uid change and before the final capset.
pub fn finalize(f: &Finalize) -> Result<(Exec, seccomp::Stage), InitError> {
    let process = f.process;
    // Mark every fd of ours close-on-exec now, before a seccomp filter can be
    // loaded: a strict profile need not allow close_range (runtime-tools'
    // default does not). fds made after this point are CLOEXEC already.
    crate::preserved_fds::close_placeholders();
    process::seal_fds(f.preserve_fds)?;
    process::set_rlimits(process)?;
    let env = process::environment(process);
    let args = process.args().clone().unwrap_or_default();
    let caps = capabilities::resolve(process.capabilities().as_ref())?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(p) = f.linux.and_then(|l| l.personality().as_ref()) {
        process_attrs::set_personality(p)?;
    }
    if let Some(m) = f.linux.and_then(|l| l.memory_policy().as_ref()) {
        process_attrs::set_memory_policy(m)?;
    }
    if let Some(s) = process.scheduler() {
        process_attrs::set_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        process_attrs::set_io_priority(io)?;
    }
    match process.exec_cpu_affinity().as_ref().and_then(|a| a.cpu_affinity_final().as_deref()) {
        Some(cpus) => process_attrs::set_cpu_affinity(cpus)?,
        // Not the caller's affinity (`taskset -c 0 husk run`): every CPU
        // the container's cpuset allows, as runc gives.
        None => process_attrs::allow_all_cpus()?,
    }
    let filter = tracing::debug_span!("seccomp_compile").in_scope(|| f.linux.and_then(|l| l.seccomp().as_ref()).map(seccomp::build).transpose())?;
    if let Some(p) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        crate::lsm::set_exec_label(crate::lsm::LabelKind::AppArmor, p).map_err(|e| InitError::Other(e.to_string()))?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        crate::lsm::set_exec_label(crate::lsm::LabelKind::Selinux, l).map_err(|e| InitError::Other(e.to_string()))?;
    }
    let creds = tracing::debug_span!("caps_user").entered();
    capabilities::drop_bounding(&caps)?;
    // The cwd while still privileged, as runc does: a directory the
    // runtime's user can reach but the container's cannot still works; one
    // only the container's user may enter is tried again after the switch.
    let cwd_later = process::chdir(process).map_or_else(process::retry_as_user, |()| Ok(false))?;
    process::set_user(process, f.setgroups_ok)?;
    if cwd_later {
        process::chdir(process)?;
    }
    drop(creds);
    let path = process::find_executable(&args[0], &env)?;
    let _load = tracing::debug_span!("seccomp_load").entered();
    let stage = match filter {
        None => seccomp::Stage::None,
        Some(fl) if nnp => seccomp::Stage::Pending(fl),
        Some(fl) => {
            // The uid change emptied the effective set (the permitted one
            // was kept): loading a filter without no_new_privs needs
            // CAP_SYS_ADMIN effective. The final capset below replaces it.
            capabilities::raise_effective(caps::Capability::CAP_SYS_ADMIN)?;
            seccomp::Stage::Loaded(fl.load()?)
        }
    };
    let after_filter = |e: InitError| match &stage {
        seccomp::Stage::Loaded(_) => InitError::Other(format!("{e} (after the container's seccomp filter was loaded; it may deny this call)")),
        _ => e,
    };
    capabilities::apply(&caps).map_err(|e| after_filter(e.into()))?;
    // Changing credentials cleared the parent-death signal.
    set_pdeathsig(true).map_err(after_filter)?;
    if nnp {
        process::set_no_new_privs()?;
    }
    process::set_umask(process);
    Ok((Exec::new(&path, &args, &env)?, stage))
}
