//! `create`: build the container up to the point where only `start` is
//! missing. Anything that fails undoes all of it: the child is killed and
//! reaped (its mounts die with its mount namespace), the cgroups husk made
//! are removed, and the state directory is deleted.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIntelRdt, Spec};

use super::clone::{self, Forked};
use super::init::{self, InitArgs};
use super::ContainerError;
use crate::cgroups::{self, CgroupRecord};
use crate::console;
use crate::hooks;
use crate::intel_rdt;
use crate::namespaces::Plan;
use crate::rootfs::host_mountns;
use crate::spec::{self, Bundle};
use crate::state::{self, ContainerDir, ContainerState, Status, Store};
use crate::sync::{self, Msg};

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// A unix socket that gets a pidfd of the container process (runc's
    /// `--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
    pub systemd_cgroup: bool,
    /// Use the systemd driver also when `linux.cgroupsPath` has its
    /// `slice:prefix:name` shape (husk's shim: engines say which driver
    /// they use through runc's options, which not every path carries).
    pub systemd_cgroup_by_path: bool,
    /// `run` in the foreground may use a terminal without a console socket.
    pub foreground: bool,
    /// Explicit stdin, stdout and stderr for the container process, dup'ed
    /// onto its fds 0-2 first thing after the fork (otherwise it inherits
    /// the caller's). The caller keeps them open until `create` returns.
    /// Used by the containerd shim, which must not swap its own fds 0-2.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// Rootless (`--rootless`, see crate::rootless): cgroups husk may not
    /// make or write are skipped, with a warning if the config sets limits.
    pub rootless: bool,
}

pub struct Created {
    pub pid: i32,
    pub state: ContainerState,
    pub dir: ContainerDir,
    /// The pty master, when a foreground `run` asked for a terminal without
    /// a console socket: the caller proxies it to its own terminal.
    pub pty_master: Option<OwnedFd>,
}

pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created, ContainerError> {
    let _create = tracing::debug_span!("create").entered();
    let mut bundle = tracing::debug_span!("load_config").in_scope(|| spec::load_bundle(&opts.bundle))?;
    // First, since it may re-execute husk (see sealed_exe::protect).
    let trampoline = match bundle.spec.process() {
        Some(p) => crate::sealed_exe::protect(p, bundle.spec.linux().as_ref(), bundle.spec.hooks().as_ref(), opts.rootless, false, store.root())
            .map_err(|e| ContainerError::Init(e.to_string()))?,
        None => None,
    };
    let trampoline = trampoline.as_ref().map(|t| t.fd());
    let prep = tracing::debug_span!("state_dir").entered();
    let mut dir = store.create(&opts.id)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.foreground {
        return Err(ContainerError::Usage(
            "process.terminal is true: --console-socket is required".into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(ContainerError::Usage(
            "--console-socket given but process.terminal is false".into(),
        ));
    }
    check_host_support(&bundle.spec)?;
    if let Some(p) = bundle.spec.process_mut() {
        crate::capabilities::drop_ungrantable(p);
    }
    dir.write_file(state::CONFIG_FILE, &bundle.raw)?;
    check_preserved_fds(opts.preserve_fds)?;
    let start = make_fifos(&dir)?;
    let linux = bundle.spec.linux().as_ref().ok_or(ContainerError::Usage("linux section is required".into()))?;
    drop(prep);
    let ns = Plan::from_spec(linux)?;
    let plan_span = tracing::debug_span!("cgroup_plan").entered();
    let by_path = opts.systemd_cgroup_by_path
        && linux.cgroups_path().as_deref().and_then(|p| p.to_str()).is_some_and(cgroups::systemd::is_unit_path);
    let unit = match opts.systemd_cgroup || by_path {
        true => Some(systemd_unit(linux, &opts.id, opts.rootless)?),
        false => None,
    };
    let placements = match &unit {
        Some(u) => systemd_placements(u, &opts.id, opts.rootless)?,
        None => cgroups::plan(linux.cgroups_path().as_deref(), &opts.id)?,
    };
    drop(plan_span);
    let cgroup = tracing::debug_span!("cgroups").in_scope(|| match &unit {
        Some(u) => cgroups::create_for_unit(placements, &u.unit, opts.rootless),
        None if opts.rootless => Ok(cgroups::create_rootless(placements, linux.resources().is_some())),
        None => cgroups::create(placements),
    })?;
    let guard = Undo::new(|| {
        let _ = cgroup.destroy();
    });
    // Before any process exists: a create killed from here on leaves a
    // record `delete --force` cleans up from (ops::recover).
    tracing::debug_span!("cgroup_record").in_scope(|| dir.write_cgroup(&cgroup))?;
    let mut resources = cgroups::Resources::for_container(linux, &bundle.raw).map_err(cgroups::CgroupError::from)?;
    if opts.rootless {
        // An ordinary user can load no device eBPF program (nor has v1 a
        // devices cgroup for it): its device nodes are binds of the host's,
        // guarded by the host's permissions. As runc.
        resources.devices.clear();
    }
    // With systemd the cgroup exists once the unit has the container's
    // process: the limits are written then (spawn's `placed`).
    if unit.is_none() {
        tracing::debug_span!("cgroup_limits").in_scope(|| cgroup.apply(&resources)).map_err(cgroups::CgroupError::from)?;
    }
    let placed = |pid: i32| -> Result<(), ContainerError> {
        match &unit {
            Some(u) => start_systemd_unit(&cgroup, u, &opts.id, pid, &resources),
            None => Ok(()),
        }
    };
    // Foreground with a terminal and no socket: we are our own console
    // socket, through a socketpair.
    let (console, own_console) = match (&opts.console_socket, terminal) {
        (Some(p), _) => (Some(console::connect(p)?), None),
        (None, true) => {
            let (ours, theirs) = console::pair()?;
            (Some(theirs), Some(ours))
        }
        (None, false) => (None, None),
    };
    let pidfd_socket = super::connect_pidfd_socket(opts.pidfd_socket.as_deref())?;
    let listener = match linux.seccomp() {
        Some(s) => crate::seccomp::connect_listener(s).map_err(|e| ContainerError::Init(e.to_string()))?,
        None => None,
    };
    let rdt = linux.intel_rdt().as_ref().map(|c| plan_intel_rdt(c, &opts.id, &dir)).transpose()?;
    let rdt_guard = Undo(rdt.as_ref().map(|r| move || warn_on_error(intel_rdt::release(r))));
    let host_rec = match ns.own_mount_ns() {
        true => None,
        false => Some(bind_in_host_mount_ns(&bundle.rootfs, &dir)?),
    };
    let host_mounts = Undo(host_rec.as_ref().map(|r| move || warn_on_error(host_mountns::release(r))));
    let (pid, chan) = tracing::debug_span!("clone").in_scope(|| spawn(&bundle, opts, &ns, &cgroup, &placed, start, console, listener, trampoline))?;
    let kill_guard = ChildGuard(Some(pid));
    if let (Some(rec), Some(c)) = (&rdt, linux.intel_rdt()) {
        intel_rdt::apply(rec, c, pid)?;
    }
    let st = tracing::debug_span!("container_setup").in_scope(|| handshake(&bundle, opts, &chan, &cgroup, pid, &mut dir, trampoline.is_some()))?;
    super::send_pidfd(pidfd_socket.as_ref(), pid)?;
    let pty_master = own_console.map(|s| console::recv_master(&s)).transpose()?;
    kill_guard.disarm();
    rdt_guard.disarm();
    host_mounts.disarm();
    guard.disarm();
    dir.commit();
    Ok(Created { pid, state: st, dir, pty_master })
}

/// Features the config asks for that this host cannot give: refuse them
/// up front rather than run the container without them.
fn check_host_support(spec: &Spec) -> Result<(), ContainerError> {
    let linux = spec.linux().as_ref();
    let process = spec.process().as_ref();
    if process.and_then(|p| p.apparmor_profile().as_ref()).is_some_and(|p| !p.is_empty()) {
        crate::lsm::check_apparmor()?;
    }
    if process.and_then(|p| p.selinux_label().as_ref()).is_some_and(|p| !p.is_empty()) {
        crate::lsm::check_selinux()?;
    }
    // A mount label only labels files: on a host without SELinux it grants
    // and denies nothing, so it is ignored there (as crun does), unlike a
    // process label, which asks for confinement the host cannot give.
    if linux.and_then(|l| l.mount_label().as_ref()).is_some_and(|p| !p.is_empty()) && !crate::lsm::selinux_enabled() {
        tracing::warn!("linux.mountLabel ignored: SELinux is not enabled on this host");
    }
    let has_time_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Time && n.path().is_none()));
    if linux.and_then(|l| l.time_offsets().as_ref()).is_some_and(|o| !o.is_empty()) && !has_time_ns {
        return Err(ContainerError::Usage("linux.timeOffsets need a new time namespace".into()));
    }
    let has_net_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
    if linux.and_then(|l| l.net_devices().as_ref()).is_some_and(|d| !d.is_empty()) && !has_net_ns {
        return Err(ContainerError::Usage("linux.netDevices need a network namespace".into()));
    }
    Ok(())
}

/// `--preserve-fds N`: fds 3..3+N, those open passed and the closed ones
/// skipped, as in runc (see `preserved_fds` for why husk's own files
/// cannot fall into those).
fn check_preserved_fds(n: i32) -> Result<(), ContainerError> {
    if !(0..=crate::preserved_fds::MAX).contains(&n) {
        return Err(ContainerError::Usage(format!("--preserve-fds {n}: out of range")));
    }
    Ok(())
}

/// The two fifos between the created process and `start`, both opened
/// O_RDWR: that never blocks, keeps each fifo alive while the process
/// lives, and lets `start` tell a dead process (no reader) from one that is
/// waiting. Waiting on a fifo takes only read(2) and write(2), which even a
/// strict seccomp profile loaded early (noNewPrivileges false) allows, as
/// runc's exec fifo does.
pub struct StartFifos {
    pub start_rx: OwnedFd,
    pub reply_tx: OwnedFd,
}

fn make_fifos(dir: &ContainerDir) -> Result<StartFifos, ContainerError> {
    let open = |path: PathBuf| -> Result<OwnedFd, ContainerError> {
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| ContainerError::Sys { what: format!("mkfifo {}", path.display()), err: e })?;
        nix::fcntl::open(&path, nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .map_err(|e| ContainerError::Sys { what: format!("open {}", path.display()), err: e })
    };
    Ok(StartFifos {
        start_rx: open(dir.exec_fifo())?,
        reply_tx: open(dir.reply_fifo())?,
    })
}

fn spawn(
    bundle: &Bundle,
    opts: &CreateOptions,
    ns: &Plan,
    cgroup: &CgroupRecord,
    placed: &dyn Fn(i32) -> Result<(), ContainerError>,
    start: StartFifos,
    console: Option<OwnedFd>,
    seccomp_listener: Option<OwnedFd>,
    trampoline: Option<std::os::fd::RawFd>,
) -> Result<(i32, sync::Channel), ContainerError> {
    let (parent_chan, child_chan) = sync::pair()?;
    let joiner = cgroup.joiner_for_init()?;
    // The cgroup namespace is unshared by the child once it is in its cgroup.
    let mut flags = ns.new.bits() as u64 & !(libc::CLONE_NEWCGROUP as u64);
    let offsets = bundle.spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref()).filter(|o| !o.is_empty());
    if offsets.is_some() {
        flags &= !(libc::CLONE_NEWTIME as u64);
    }
    // A user namespace joined by path is entered after the other joined
    // namespaces (the host's root may enter them all; from inside the user
    // namespace it may not) and before the clone, so that the namespaces
    // the clone makes belong to it (runc's nsexec joins, then unshares).
    let joins_user = ns.join_user.is_some();
    // An ordinary user's husk may only write the id maps (or have
    // newuidmap write them) of a dumpable child: the child is born
    // dumpable and becomes non-dumpable once mapped.
    let dumpable_until_mapped = ns.new_user() && !nix::unistd::geteuid().is_root();
    let forked = clone::spawn(flags, joiner.clone_into(), joins_user, || -> Result<_, ContainerError> {
        let entered = ns.enter()?;
        if let Some(fd) = &ns.join_user {
            crate::namespaces::join_user(fd)?;
        }
        // A new time namespace with offsets is made for our children,
        // because offsets can only be set before any process lives in it.
        let time = offsets.map(crate::namespaces::new_time_for_children).transpose()?;
        let dumpable = crate::rootless::Dumpable::until_mapped(dumpable_until_mapped);
        Ok((entered, time, dumpable))
    });
    match forked {
        Ok(Forked::Child) => {
            drop(parent_chan);
            init::run(InitArgs {
                dumpable_until_mapped,
                id: &opts.id,
                spec: &bundle.spec,
                bundle: &bundle.dir,
                rootfs: &bundle.rootfs,
                chan: child_chan,
                start,
                console,
                console_ours: opts.console_socket.is_none(),
                ns,
                cgroup: Some(cgroup),
                join: Some(&joiner),
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                seccomp_listener,
                stdio: opts.stdio,
                trampoline,
            })
        }
        Ok(Forked::Parent { pid, into_cgroup }) => {
            drop(child_chan);
            drop(start);
            let guard = ChildGuard(Some(pid));
            prepare_child(&bundle.spec, ns, pid)?;
            send_bind_sources(&parent_chan, bundle, ns, pid)?;
            let go = (|| -> Result<(), ContainerError> {
                if !into_cgroup {
                    joiner.add_unified(pid)?;
                }
                placed(pid)?;
                Ok(parent_chan.send(&Msg::Go)?)
            })();
            // The child joins its v1 cgroups first thing: if that failed, its
            // own error says why, not our broken pipe.
            go.map_err(|e| parent_chan.pending_error().map_or(e, ContainerError::Init))?;
            guard.disarm();
            Ok((pid, parent_chan))
        }
        Err(e) => Err(ContainerError::Init(e.to_string())),
    }
}

/// See `rootfs::mounts::open_bind_sources` (with a user namespace) and
/// `rootfs::idmap::open_trees` (made after the id maps are written). At
/// most 253 fds go in one message (SCM_MAX_FD); bind sources beyond that,
/// if a config had that many binds, are left to the child, id-mapped trees
/// go in further messages.
fn send_bind_sources(chan: &sync::Channel, bundle: &Bundle, ns: &Plan, pid: i32) -> Result<(), ContainerError> {
    let mounts = bundle.spec.mounts().as_deref().unwrap_or_default();
    let trees = crate::rootfs::idmap::open_trees(mounts, &bundle.dir, pid).map_err(crate::rootfs::RootfsError::from)?;
    let mut sources = match ns.enters_user_ns() {
        true => crate::rootfs::mounts::open_bind_sources(mounts, &bundle.dir, pid),
        false => Vec::new(),
    };
    sources.retain(|(i, _)| !trees.iter().any(|(t, _)| t == i));
    sources.truncate(253);
    let send = |msg: fn(Vec<usize>) -> Msg, batch: &[(usize, OwnedFd)]| -> Result<(), ContainerError> {
        let idx: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        let fds: Vec<std::os::fd::RawFd> = batch.iter().map(|(_, f)| std::os::fd::AsRawFd::as_raw_fd(f)).collect();
        Ok(chan.send_with_fds(&msg(idx), &fds)?)
    };
    if !sources.is_empty() {
        send(Msg::BindSources, &sources)?;
    }
    for batch in trees.chunks(253) {
        send(Msg::IdmappedTrees, batch)?;
    }
    Ok(())
}

/// What the parent does before the child may proceed: id maps, network
/// devices, oom_score_adj.
fn prepare_child(spec: &Spec, ns: &Plan, pid: i32) -> Result<(), ContainerError> {
    let linux = spec.linux().as_ref();
    // A user namespace joined by path has its maps already; mappings in the
    // config then describe it and are not written (as runc 1.1).
    let linux_maps = linux.filter(|_| ns.new_user());
    let maps = [
        ("uid_map", linux_maps.and_then(|l| l.uid_mappings().as_ref())),
        ("gid_map", linux_maps.and_then(|l| l.gid_mappings().as_ref())),
    ];
    for (host, dev) in linux.and_then(|l| l.net_devices().as_ref()).into_iter().flatten() {
        crate::netdev::move_device(host, pid, dev.name().as_deref())?;
    }
    let adj = spec.process().as_ref().and_then(|p| p.oom_score_adj());
    if adj.is_none() && maps.iter().all(|(_, m)| m.is_none_or(|m| m.is_empty())) {
        return Ok(());
    }
    let proc = crate::procfs::Proc::open()?;
    let [(_, uid), (_, gid)] = maps;
    crate::rootless::write_id_maps(&proc, pid, uid.map_or(&[], |m| m), gid.map_or(&[], |m| m))
        .map_err(|e| ContainerError::Init(e.to_string()))?;
    if let Some(adj) = adj {
        proc.write(&format!("{pid}/oom_score_adj"), adj.to_string().as_bytes())?;
    }
    Ok(())
}

fn handshake(
    bundle: &Bundle,
    opts: &CreateOptions,
    chan: &sync::Channel,
    cgroup: &CgroupRecord,
    pid: i32,
    dir: &mut ContainerDir,
    via_trampoline: bool,
) -> Result<ContainerState, ContainerError> {
    let spec = &bundle.spec;
    let mut st = ContainerState::new(&opts.id, spec, &bundle.dir, &bundle.rootfs, pid, Some(cgroup.clone()));
    st.owner = crate::rootless::owner();
    st.start_time = crate::procfs::proc_stat(pid)
        .map(|s| s.start_time)
        .ok_or(ContainerError::Usage("container process vanished during create".into()))?;
    // Written (and synced) while the container process sets itself up;
    // published once it is ready.
    let staged = tracing::debug_span!("state_stage").in_scope(|| dir.stage(&st))?;
    if init::wants_hook_sync(spec) {
        chan.expect(Msg::RunRuntimeHooks, "RunRuntimeHooks").map_err(child_error)?;
        let doc = st.spec_state(Status::Creating).to_string();
        let h = spec.hooks().as_ref();
        let res = hooks::run_all("prestart", h.and_then(|h| h.prestart().as_ref()), doc.as_bytes())
            .and_then(|_| hooks::run_all("createRuntime", h.and_then(|h| h.create_runtime().as_ref()), doc.as_bytes()));
        if let Err(e) = res {
            let _ = chan.send(&crate::sync::error(e.to_string()));
            return Err(e.into());
        }
        chan.send(&Msg::HooksDone(pid))?;
    }
    chan.expect(Msg::Ready, "Ready").map_err(child_error)?;
    tracing::debug_span!("state_publish").in_scope(|| dir.publish(staged))?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    chan.send(&Msg::Commit(pid))?;
    chan.expect(Msg::Committed, "Committed").map_err(child_error)?;
    if via_trampoline {
        // Not done before the process runs the trampoline: until then a
        // process exec'd into the created container would find husk's
        // image in it (see exec_trampoline). Its exec closes the channel.
        match chan.recv() {
            Err(sync::SyncError::Closed) => {}
            Ok(Msg::Error(e)) => return Err(ContainerError::Init(e)),
            Ok(got) => return Err(sync::SyncError::Unexpected { got, wanted: "EOF" }.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(st)
}

fn child_error(e: sync::ExpectError) -> ContainerError {
    match e {
        sync::ExpectError::Peer(msg) => ContainerError::Init(msg),
        sync::ExpectError::Sync(sync::SyncError::Closed) => {
            ContainerError::Init("container init exited during setup".into())
        }
        sync::ExpectError::Sync(s) => s.into(),
    }
}

/// Written like runc writes it: to a temp file renamed into place, so a
/// reader never sees an empty pid file.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| ContainerError::Io(".".into(), e))?.join(path)
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.husk-tmp"));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| ContainerError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ContainerError::Io(path.clone(), e))
}

/// Kills and reaps the child unless disarmed.
pub(super) struct ChildGuard(pub(super) Option<i32>);

impl ChildGuard {
    pub(super) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
    }
}

/// Without a mount namespace of its own the container's mounts are made on
/// the host, under one bind of the rootfs (see `rootfs::host_mountns`),
/// recorded right away for `delete`.
fn bind_in_host_mount_ns(rootfs: &Path, dir: &ContainerDir) -> Result<host_mountns::Record, ContainerError> {
    let rec = host_mountns::bind_rootfs(rootfs)?;
    if let Err(e) = dir.write_record(host_mountns::RECORD_FILE, &rec) {
        let _ = host_mountns::release(&rec);
        return Err(e.into());
    }
    Ok(rec)
}

/// Where the container's resctrl groups go, recorded before any is made.
fn plan_intel_rdt(c: &LinuxIntelRdt, id: &str, dir: &ContainerDir) -> Result<intel_rdt::Record, ContainerError> {
    let rec = intel_rdt::plan(&intel_rdt::mount_point()?, id, c)?;
    dir.write_record(intel_rdt::RECORD_FILE, &rec)?;
    Ok(rec)
}

/// `--systemd-cgroup`: the unit `linux.cgroupsPath` names.
fn systemd_unit(linux: &oci_spec::runtime::Linux, id: &str, rootless: bool) -> Result<cgroups::systemd::UnitSpec, ContainerError> {
    let path = linux.cgroups_path().as_deref().map(|p| p.to_string_lossy().into_owned());
    Ok(cgroups::systemd::UnitSpec::parse(path.as_deref(), id, rootless).map_err(cgroups::CgroupError::from)?)
}

/// The unit's cgroup in every hierarchy: the same path from each root, as
/// systemd lays it out (below its own cgroup, for a user's systemd:
/// rootless); the hierarchies systemd manages are marked so that husk
/// neither makes nor joins them. An ordinary user can make no v1
/// hierarchy's directories, so rootless needs pure cgroup v2.
fn systemd_placements(unit: &cgroups::systemd::UnitSpec, id: &str, rootless: bool) -> Result<Vec<cgroups::Placement>, ContainerError> {
    let mut path = unit.cgroup_path().map_err(cgroups::CgroupError::from)?;
    if rootless {
        let base = cgroups::systemd::Systemd::connect_user().and_then(|mut s| s.manager_cgroup()).map_err(cgroups::CgroupError::from)?;
        path = base.join(path.strip_prefix("/").unwrap_or(&path));
    }
    let mut placements = cgroups::plan(Some(&path), id)?;
    for p in &mut placements {
        p.systemd = cgroups::systemd::manages(p);
    }
    if rootless && placements.iter().any(|p| !p.systemd) {
        return Err(cgroups::CgroupError::from(cgroups::systemd::SystemdError::UserOnV1).into());
    }
    Ok(placements)
}

/// Start the container's unit with its init in it, then write the limits
/// to cgroupfs as well (what systemd does not manage, and the rest again,
/// so both drivers leave the same files).
fn start_systemd_unit(
    cgroup: &CgroupRecord,
    unit: &cgroups::systemd::UnitSpec,
    id: &str,
    pid: i32,
    resources: &cgroups::Resources,
) -> Result<(), ContainerError> {
    let props = cgroups::systemd::resource_properties(resources, cgroup.unified()).map_err(cgroups::CgroupError::from)?;
    let mut systemd = cgroups::systemd::Systemd::connect_for(cgroup.systemd_user).map_err(cgroups::CgroupError::from)?;
    systemd.start(unit, id, pid, props).map_err(cgroups::CgroupError::from)?;
    cgroup.place_after_unit(pid, unit.is_slice()).map_err(cgroups::CgroupError::from)?;
    cgroup.apply(resources).map_err(cgroups::CgroupError::from)?;
    Ok(())
}

/// Undoes one step of a create (with the closure) when dropped, unless
/// disarmed. Guards drop in reverse order of making, so what a failed
/// create made goes in reverse too, after the child (ChildGuard) is dead.
pub(super) struct Undo<F: FnOnce()>(pub(super) Option<F>);

impl<F: FnOnce()> Undo<F> {
    pub(super) fn new(f: F) -> Self {
        Undo(Some(f))
    }

    pub(super) fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for Undo<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

fn warn_on_error<E: std::fmt::Display>(r: Result<(), E>) {
    if let Err(e) = r {
        tracing::warn!("{e}");
    }
}
