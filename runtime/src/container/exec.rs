//! `exec`: run another process inside a running container.
//!
//! Like `create`, husk forks (no re-exec) and the child enters the
//! container's namespaces through a pidfd of the container's init, which
//! cannot be confused by pid reuse, then sets up the process exactly as the
//! init's own (shared `init::finalize`) and execs. The pid and time
//! namespaces are entered by the parent around the fork, because they only
//! apply to children.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Capabilities as SpecCaps, Process, Spec};

use super::clone::{self, Forked};
use super::create::ChildGuard;
use super::init::{self, Finalize};
use super::ops;
use super::ContainerError;
use crate::console;
use crate::namespaces;
use crate::process;
use crate::spec;
use crate::state::{self, Status, Store};
use crate::sync::{self, Channel, Msg, SyncError};

#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// Rootless (see crate::rootless): a cgroup the caller may not enter is
    /// not entered.
    pub rootless: bool,
    pub id: String,
    /// A full process.json; otherwise the container's process with `args`.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    /// See `CreateOptions::pidfd_socket`.
    pub pidfd_socket: Option<PathBuf>,
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's to run the process in.
    pub cgroup: Vec<String>,
    /// Explicit stdin, stdout and stderr for the process (see
    /// `CreateOptions::stdio`); otherwise it inherits the caller's.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// Returns the process's exit code (0 when detached).
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<i32, ContainerError> {
    let prepare = tracing::debug_span!("exec_prepare").entered();
    let sub_cgroups = crate::cgroups::sub::parse(&opts.cgroup)?;
    let dir = store.open(&opts.id)?;
    let st = dir.read()?;
    let status = state::status_of(&st, dir.path());
    match status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        _ => {
            return Err(ContainerError::BadStatus {
                id: opts.id.clone(),
                status,
                what: match status {
                    Status::Paused => "cannot exec in a paused container (use --ignore-paused to override)".into(),
                    _ => "cannot exec in a stopped container".into(),
                },
            })
        }
    }
    let config_path = dir.path().join(state::CONFIG_FILE);
    let raw = spec::read_limited(&config_path)?;
    let config = spec::parse(&config_path, &raw)?;
    let mut process = build_process(&config, opts)?;
    crate::capabilities::drop_ungrantable(&mut process);
    if opts.apparmor.is_some() || process.apparmor_profile().as_ref().is_some_and(|p| !p.is_empty()) {
        crate::lsm::check_apparmor()?;
    }
    if opts.process_label.is_some() || process.selinux_label().as_ref().is_some_and(|p| !p.is_empty()) {
        crate::lsm::check_selinux()?;
    }
    // Before anything the re-executed command would redo (see
    // sealed_exe::protect). A process with CAP_SYS_PTRACE in the container
    // could watch the new one's setup: the container's own, or one exec'd
    // before (marked in the state directory before it ran).
    let mark = dir.path().join(crate::exec_trampoline::PTRACE_EXEC_MARK);
    let ptrace_seen = config.process().as_ref().is_some_and(crate::exec_trampoline::has_ptrace) || mark.exists();
    let trampoline = crate::sealed_exe::protect(&process, config.linux().as_ref(), None, opts.rootless, ptrace_seen, store.root())
        .map_err(|e| ContainerError::Init(e.to_string()))?;
    if crate::exec_trampoline::has_ptrace(&process) && !ptrace_seen {
        std::fs::write(&mark, b"").map_err(|e| ContainerError::Io(mark.clone(), e))?;
    }
    let pidfd = crate::pidfd::open(st.pid).ok_or(ContainerError::Init("container init process is gone".into()))?;
    // The pidfd pins the process; check it is still the one we recorded.
    if state::status_of(&st, dir.path()) == Status::Stopped {
        return Err(ContainerError::BadStatus { id: opts.id.clone(), status: Status::Stopped, what: "cannot exec in a stopped container".into() });
    }
    // The exec'd process joins the container's resctrl group, as runc's do.
    let rdt = match config.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) {
        Some(_) => Some(dir.read_record::<crate::intel_rdt::Record>(crate::intel_rdt::RECORD_FILE)?),
        None => None,
    };
    // No lock while the new process is set up and waited for: in a paused
    // container (--ignore-paused) it stays frozen until `resume`, which
    // needs the lock. The pidfd keeps the init's identity.
    drop(dir);
    let linux = config.linux().as_ref();
    let mut child_ns = CloneFlags::empty();
    let mut parent_ns = CloneFlags::empty();
    for ns in linux.and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
        let f = namespaces::flag(ns.typ());
        if f.intersects(CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
            parent_ns |= f;
        } else {
            child_ns |= f;
        }
    }
    let in_userns = child_ns.contains(CloneFlags::CLONE_NEWUSER);
    // An ordinary user may enter the container's pid namespace only from
    // inside its user namespace, from which there is no way back: both are
    // entered in the intermediate process (clone::spawn's one_way).
    let one_way = in_userns && !parent_ns.is_empty() && !nix::unistd::geteuid().is_root();
    if one_way {
        child_ns.remove(CloneFlags::CLONE_NEWUSER);
        parent_ns |= CloneFlags::CLONE_NEWUSER;
    }
    // A container in the runtime's mount namespace has only a chroot: the
    // new process takes the init's root (the pidfd pins the process).
    let root = match child_ns.contains(CloneFlags::CLONE_NEWNS) {
        true => None,
        false => Some(
            nix::fcntl::open(
                format!("/proc/{}/root", st.pid).as_str(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|err| ContainerError::Sys { what: "opening the container's root".into(), err })?,
        ),
    };
    let mut own_console = None;
    let console = match (&opts.console_socket, process.terminal().unwrap_or(false)) {
        (Some(p), true) => Some(console::connect(p)?),
        (None, true) if !opts.detach => {
            let (ours, theirs) = console::pair()?;
            own_console = Some(ours);
            Some(theirs)
        }
        (None, true) => return Err(ContainerError::Usage("--tty with --detach needs --console-socket".into())),
        (Some(_), false) => return Err(ContainerError::Usage("--console-socket needs --tty".into())),
        (None, false) => None,
    };
    let setgroups_ok = !in_userns || (linux.and_then(|l| l.gid_mappings().as_ref()).is_some_and(|m| !m.is_empty()) && !process::setgroups_denied(&st.pid.to_string()));
    let joiner = match (&st.cgroup, sub_cgroups.is_empty()) {
        (Some(c), true) => Some(c.joiner()?),
        (Some(c), false) => Some(c.with_sub_cgroups(&sub_cgroups)?.joiner()?),
        (None, true) => None,
        (None, false) => return Err(ContainerError::Usage("--cgroup: the container has no cgroups".into())),
    };
    let seccomp_listener = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => crate::seccomp::connect_listener(s).map_err(|e| ContainerError::Init(e.to_string()))?,
        None => None,
    };
    let pidfd_socket = super::connect_pidfd_socket(opts.pidfd_socket.as_deref())?;
    let (parent_chan, child_chan) = sync::pair()?;
    drop(prepare);
    let forked = clone::spawn(0, joiner.as_ref().and_then(|j| j.clone_into()), one_way, || enter_for_children(&pidfd, parent_ns));
    match forked {
        Ok(Forked::Child) => {
            drop(parent_chan);
            child(ChildArgs {
                id: &opts.id,
                chan: child_chan,
                pidfd,
                ns: child_ns,
                root,
                in_userns,
                console,
                console_ours: opts.console_socket.is_none(),
                process: &process,
                config: &config,
                setgroups_ok,
                preserve_fds: opts.preserve_fds,
                seccomp_listener,
                state: st.spec_state(status).value(),
                host_pid: 0,
                stdio: opts.stdio,
                join: joiner.as_ref(),
                trampoline: trampoline.as_ref().map(|t| t.fd()),
            })
        }
        Ok(Forked::Parent { pid, into_cgroup }) => {
            drop(child_chan);
            let setup = tracing::debug_span!("exec_setup").entered();
            let reap = ChildGuard(Some(pid));
            let signals = (!opts.detach).then(ops::block_signals);
            let go = (|| -> Result<(), ContainerError> {
                if let Some(j) = joiner.as_ref().filter(|_| !into_cgroup) {
                    match j.add_unified(pid) {
                        // An ordinary user outside the container's delegated
                        // subtree may not move a process into it: it stays
                        // in the caller's cgroup, as with runc.
                        Err(crate::cgroups::CgroupError::Io(path, e)) if opts.rootless && e.kind() == std::io::ErrorKind::PermissionDenied => {
                            tracing::warn!("rootless exec: not joining the container's cgroup: {}: {e}", path.display())
                        }
                        other => other?,
                    }
                }
                if let Some(r) = &rdt {
                    crate::intel_rdt::join(r, pid)?;
                }
                Ok(parent_chan.send(&Msg::Go)?)
            })();
            // As in create: the child's own error, if it failed meanwhile.
            go.map_err(|e| parent_chan.pending_error().map_or(e, ContainerError::Init))?;
            match parent_chan.recv() {
                Err(SyncError::Closed) => {}
                Ok(Msg::Error(e)) => return Err(ContainerError::Init(e)),
                Ok(other) => return Err(SyncError::Unexpected { got: other, wanted: "EOF" }.into()),
                Err(e) => return Err(e.into()),
            }
            drop(setup);
            super::send_pidfd(pidfd_socket.as_ref(), pid)?;
            reap.disarm();
            if let Some(pf) = &opts.pid_file {
                super::create::write_pid_file(pf, pid)?;
            }
            let proxy = match own_console {
                Some(s) => Some(console::Proxy::start(console::recv_master(&s)?)),
                None => None,
            };
            let code = match signals {
                None => 0,
                Some(set) => ops::forward_and_wait(pid, &set),
            };
            if let Some(p) = proxy {
                p.finish();
            }
            Ok(code)
        }
        Err(e) => Err(ContainerError::Init(e.to_string())),
    }
}

/// The process to run: a process.json, or the container's own process with
/// the command line's changes, as runc builds it.
fn build_process(config: &Spec, o: &ExecOptions) -> Result<Process, ContainerError> {
    if let Some(path) = &o.process {
        let raw = spec::read_limited(path)?;
        let p: Process = spec::parse_process(path, &raw)?;
        spec::validate_process(&p)?;
        return Ok(p);
    }
    if o.args.is_empty() {
        return Err(ContainerError::Usage("exec needs a command (or --process)".into()));
    }
    let mut p = config.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &o.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let bad = || ContainerError::Usage(format!("invalid --user {u:?}: use uid[:gid]"));
        p.user_mut().set_uid(uid.parse().map_err(|_| bad())?);
        if let Some(g) = gid {
            p.user_mut().set_gid(g.parse().map_err(|_| bad())?);
        }
    }
    if !o.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(o.additional_gids.clone()));
    }
    if !o.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        let add = |set: Option<SpecCaps>, names: &[String]| -> Result<SpecCaps, ContainerError> {
            let mut set = set.unwrap_or_default();
            for n in names {
                let name = n.strip_prefix("CAP_").unwrap_or(n);
                let cap = name.parse().map_err(|_| ContainerError::Usage(format!("unknown capability {n:?}")))?;
                set.insert(cap);
            }
            Ok(set)
        };
        c.set_bounding(Some(add(c.bounding().clone(), &o.caps)?));
        c.set_effective(Some(add(c.effective().clone(), &o.caps)?));
        c.set_permitted(Some(add(c.permitted().clone(), &o.caps)?));
        // Ambient needs inheritable: only where the spec already has some.
        if c.inheritable().is_some() {
            c.set_ambient(Some(add(c.ambient().clone(), &o.caps)?));
        }
        p.set_capabilities(Some(c));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    spec::validate_process(&p)?;
    Ok(p)
}

/// Enter the pid/time namespaces of the pidfd for our children only, and
/// go back when dropped.
fn enter_for_children(pidfd: &OwnedFd, flags: CloneFlags) -> Result<Option<Restore>, ContainerError> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut saved = Vec::new();
    for (f, link) in [(CloneFlags::CLONE_NEWPID, "pid_for_children"), (CloneFlags::from_bits_retain(libc::CLONE_NEWTIME), "time_for_children")] {
        if flags.contains(f) {
            let own = std::fs::File::open(format!("/proc/self/ns/{link}"))
                .map_err(|e| ContainerError::Io(format!("/proc/self/ns/{link}").into(), e))?;
            saved.push((f, OwnedFd::from(own)));
        }
    }
    nix::sched::setns(pidfd.as_fd(), flags).map_err(|err| ContainerError::Sys { what: "entering the container's pid namespace".into(), err })?;
    Ok(Some(Restore(saved)))
}

struct Restore(Vec<(CloneFlags, OwnedFd)>);

impl Drop for Restore {
    fn drop(&mut self) {
        for (f, fd) in &self.0 {
            let _ = nix::sched::setns(fd.as_fd(), *f);
        }
    }
}

struct ChildArgs<'a> {
    id: &'a str,
    chan: Channel,
    pidfd: OwnedFd,
    ns: CloneFlags,
    /// The root to chroot into, when the container has no mount namespace.
    root: Option<OwnedFd>,
    in_userns: bool,
    console: Option<OwnedFd>,
    /// See `InitArgs::console_ours`.
    console_ours: bool,
    process: &'a Process,
    config: &'a Spec,
    setgroups_ok: bool,
    preserve_fds: i32,
    seccomp_listener: Option<OwnedFd>,
    /// The container state, for the seccomp listener.
    state: serde_json::Value,
    /// Our pid as the host sees it (read before entering the namespaces).
    host_pid: i32,
    stdio: Option<[std::os::fd::RawFd; 3]>,
    join: Option<&'a crate::cgroups::Joiner>,
    /// See init::InitArgs::trampoline.
    trampoline: Option<std::os::fd::RawFd>,
}

fn child(mut a: ChildArgs) -> ! {
    let ready = init::install_stdio(a.stdio).and_then(|_| tracing::debug_span!("join_cgroups").in_scope(|| init::join_cgroups(a.join)));
    if let Err(e) = ready {
        let _ = a.chan.send(&crate::sync::error(e.to_string()));
        init::exit(1)
    }
    let _ = nix::sys::prctl::set_dumpable(false);
    let mut keep = vec![a.chan.as_raw_fd(), a.pidfd.as_raw_fd()];
    keep.extend(a.root.as_ref().map(|r| r.as_raw_fd()));
    keep.extend(a.console.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(a.seccomp_listener.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(a.trampoline);
    process::close_fds_except(3 + a.preserve_fds, &keep);
    init::reset_signals();
    // Still in the host's mount namespace: its /proc/self is our host pid.
    a.host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    match setup(&a) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = a.chan.send(&crate::sync::error(e.to_string()));
            init::exit(1)
        }
    }
}

fn setup(a: &ChildArgs) -> Result<std::convert::Infallible, init::InitError> {
    init::set_pdeathsig(true)?;
    init::apply_initial_affinity(Some(a.process))?;
    a.chan.expect(Msg::Go, "Go")?;
    if let Some(root) = &a.root {
        // Before joining a user namespace, which takes the right to chroot
        // in the host's mount namespace.
        nix::unistd::fchdir(root.as_fd()).map_err(|err| init::InitError::Sys { what: "entering the container's root", err })?;
        nix::unistd::chroot(".").map_err(|err| init::InitError::Sys { what: "chroot", err })?;
    }
    tracing::debug_span!("namespaces")
        .in_scope(|| nix::sched::setns(a.pidfd.as_fd(), a.ns))
        .map_err(|err| init::InitError::Sys { what: "joining the container's namespaces", err })?;
    if a.in_userns {
        let (g, u) = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
        let _ = nix::unistd::setresgid(g, g, g);
        let _ = nix::unistd::setresuid(u, u, u);
    }
    nix::unistd::setsid().map_err(|err| init::InitError::Sys { what: "setsid", err })?;
    if let Some(sock) = &a.console {
        let pty = console::give_master(sock, a.process.console_size(), a.console_ours, a.process.user().uid())?;
        console::become_stdio(&pty.peer)?;
    }
    let linux = a.config.linux().as_ref();
    let (exec, stage) = tracing::debug_span!("process_setup").in_scope(|| {
        init::finalize(&Finalize {
            process: a.process,
            linux,
            setgroups_ok: a.setgroups_ok,
            preserve_fds: a.preserve_fds,
        })
    })?;
    // A failed execve in the trampoline reaches the parent as an error
    // message on the channel (see sync).
    let exec = exec.through(a.trampoline.map(|trampoline| process::Via { trampoline, start: None, report: a.chan.as_raw_fd() }));
    let metadata = linux.and_then(|l| l.seccomp().as_ref()).and_then(|s| s.listener_metadata().clone());
    let mut state = a.state.clone();
    state["pid"] = a.host_pid.into();
    init::notify_listener(a.seccomp_listener.as_ref(), stage, a.host_pid, metadata.as_deref(), state)?;
    // A detached exec outlives us: no parent-death signal past this point.
    init::set_pdeathsig(false)?;
    let _ = a.id;
    Err(exec.exec().into())
}
