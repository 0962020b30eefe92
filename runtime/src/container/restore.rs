//! `restore`: a container from a checkpoint image (runc's flags). husk
//! makes the state directory and the cgroups as `create` does, puts CRIU
//! in those cgroups, and CRIU recreates the processes and their
//! namespaces and mounts under a bind of the bundle's rootfs; at
//! `post-restore` the container is recorded, running. Whatever fails
//! undoes all of it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::checkpoint::{cgroups_mode, empty_ns_flags, open_dir};
use super::ContainerError;
use crate::cgroups;
use crate::criu::swrk::{rpc, Swrk};
use crate::state::{self, ContainerState, Status, Store};

#[derive(Debug, Default, Clone)]
pub struct RestoreOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub criu: Option<String>,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub lazy_pages: bool,
    pub auto_dedup: bool,
    pub empty_ns: Vec<String>,
    pub rootless: bool,
    /// Explicit stdio for the restored process (the shim's), standing in
    /// for the pipes it had; otherwise husk's own fds 0-2.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

pub struct Restored {
    pub pid: i32,
    /// The pty master, for a foreground restore with a terminal and no
    /// console socket (the caller proxies it).
    pub pty_master: Option<OwnedFd>,
}

/// The rootfs bound onto a directory of the state dir: CRIU wants the
/// container's root to be a mount point. Unmounted (never removed with its
/// contents) when dropped.
struct RootBind(PathBuf);

impl RootBind {
    fn new(rootfs: &std::path::Path, at: PathBuf) -> Result<RootBind, ContainerError> {
        std::fs::create_dir(&at).map_err(|e| ContainerError::Io(at.clone(), e))?;
        let shown = at.display().to_string();
        let sys = |what: &str| {
            let what = format!("{what} {shown}");
            move |err| ContainerError::Sys { what, err }
        };
        if let Err(e) = mount(Some(rootfs), &at, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(sys("binding the rootfs on")) {
            let _ = std::fs::remove_dir(&at);
            return Err(e);
        }
        // Left with the host's propagation, as runc leaves it: CRIU's own
        // mount namespace work below it needs that (made private, CRIU
        // 3.17 on a systemd host could not remove its mntns yard: EBUSY).
        Ok(RootBind(at))
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub fn restore(store: &Store, opts: &RestoreOptions) -> Result<Restored, ContainerError> {
    let bundle = crate::spec::load_bundle(&opts.bundle)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().ok_or(ContainerError::Usage("linux section is required".into()))?;
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(ContainerError::Usage("process.terminal is true: --console-socket is required".into()));
    }
    // Checked before anything is made: a missing image is the common mistake.
    let desc_path = opts.image_path.join(crate::criu::DESCRIPTORS);
    let desc: Vec<String> = match std::fs::read(&desc_path) {
        Ok(raw) => serde_json::from_slice(&raw).map_err(|e| ContainerError::Usage(format!("{}: {e}", desc_path.display())))?,
        Err(e) => return Err(ContainerError::Usage(format!("no checkpoint image at {}: {e}", opts.image_path.display()))),
    };
    let mut dir = store.create(&opts.id)?;
    dir.write_file(state::CONFIG_FILE, &bundle.raw)?;

    let placements = cgroups::plan(linux.cgroups_path().as_deref(), &opts.id)?;
    let cgroup = match opts.rootless {
        true => cgroups::create_rootless(placements, linux.resources().is_some()),
        false => cgroups::create(placements)?,
    };
    let cg_guard = super::create::Undo::new(|| {
        let _ = cgroup.destroy();
    });
    dir.write_cgroup(&cgroup)?;
    let mut resources = cgroups::Resources::for_container(linux, &bundle.raw).map_err(cgroups::CgroupError::from)?;
    if opts.rootless {
        resources.devices.clear();
    }
    cgroup.apply(&resources).map_err(cgroups::CgroupError::from)?;

    let images = open_dir(&opts.image_path, "image path")?;
    let work_path = opts.work_path.clone().unwrap_or_else(|| opts.image_path.clone());
    let work = open_dir(&work_path, "work path")?;
    let log = work_path.join("restore.log");
    crate::criu::make_mount_points(spec, &bundle.dir, &bundle.rootfs).map_err(ContainerError::Usage)?;
    let root = RootBind::new(&bundle.rootfs, dir.path().join("criu-root"))?;

    let mut o = rpc::Opts {
        images_dir_fd: Some(images.as_raw_fd()),
        work_dir_fd: Some(work.as_raw_fd()),
        log_level: Some(4),
        log_file: Some("restore.log".into()),
        evasive_devices: Some(true),
        rst_sibling: Some(true),
        root: Some(root.0.display().to_string()),
        manage_cgroups: Some(true),
        manage_cgroups_mode: Some(cgroups_mode(opts.manage_cgroups_mode.as_deref())?),
        notify_scripts: Some(true),
        shell_job: Some(opts.shell_job),
        ext_unix_sk: Some(opts.ext_unix_sk),
        tcp_established: Some(opts.tcp_established),
        file_locks: Some(opts.file_locks),
        auto_dedup: Some(opts.auto_dedup),
        lazy_pages: Some(opts.lazy_pages),
        orphan_pts_master: Some(terminal),
        ..Default::default()
    };
    let flags = empty_ns_flags(&opts.empty_ns)?;
    if flags != 0 {
        o.empty_ns = Some(flags);
    }
    let in_userns = crate::criu::devices_are_binds(spec);
    // Keyed by the names checkpoint gave them: the mount point, or
    // /dev/null for every masked file.
    let mut names = std::collections::BTreeMap::new();
    for e in crate::criu::external_mounts(spec, &bundle.dir, Some(&cgroup), in_userns, None) {
        names.entry(e.name().to_string()).or_insert(e.source);
    }
    for (name, source) in names {
        o.ext_mnt.push(rpc::ExtMount { key: name, val: source.display().to_string() });
    }
    for (ctrl, path) in crate::criu::cgroup_roots(&cgroup) {
        let ctrl = (!ctrl.is_empty()).then_some(ctrl);
        o.cg_root.push(rpc::CgroupRoot { ctrl, path });
    }
    // The container's pipes were its caller's (containerd's fifos, a
    // shell's pipe): ours stand in for them, as in runc.
    let mut extra = vec![images.as_raw_fd(), work.as_raw_fd()];
    for (fd, what) in desc.iter().enumerate().take(3) {
        if crate::criu::inherited(what) {
            let ours = opts.stdio.map_or(fd as i32, |s| s[fd]);
            o.inherit_fd.push(rpc::InheritFd { key: what.clone(), fd: ours });
            extra.push(ours);
        }
    }
    let (console, own_console) = match (&opts.console_socket, terminal) {
        (Some(p), true) => (Some(crate::console::connect(p)?), None),
        (None, true) => {
            let (ours, theirs) = crate::console::pair()?;
            (Some(theirs), Some(ours))
        }
        _ => (None, None),
    };

    let req = rpc::Req { ty: rpc::ReqType::Restore, opts: Some(o), notify_success: None };
    let criu = opts.criu.as_deref().unwrap_or(crate::criu::DEFAULT_CRIU);
    let swrk = Swrk::start(criu, &extra).map_err(|e| ContainerError::Init(e.to_string()))?;
    // CRIU restores the processes into its own cgroups (then moves them to
    // the images' paths under the roots above): charge it to the
    // container's from the start, as runc does.
    if let Err(e) = cgroup.add_everywhere(swrk.pid()) {
        if !opts.rootless {
            return Err(e.into());
        }
    }
    let mut restored = 0;
    let mut recorded = None;
    let hooks = spec.hooks().as_ref();
    let res = swrk.call(req, |script, pid, fd| {
        match script {
            "setup-namespaces" => {
                let mut st = ContainerState::new(&opts.id, spec, &bundle.dir, &bundle.rootfs, pid, Some(cgroup.clone()));
                st.owner = crate::rootless::owner();
                let doc = st.spec_state(Status::Creating).to_string();
                crate::hooks::run_all("prestart", hooks.and_then(|h| h.prestart().as_ref()), doc.as_bytes())
                    .and_then(|_| crate::hooks::run_all("createRuntime", hooks.and_then(|h| h.create_runtime().as_ref()), doc.as_bytes()))
                    .map_err(|e| e.to_string())?;
            }
            "post-restore" => {
                restored = pid;
                let mut st = ContainerState::new(&opts.id, spec, &bundle.dir, &bundle.rootfs, pid, Some(cgroup.clone()));
                st.owner = crate::rootless::owner();
                st.start_time = crate::procfs::proc_stat(pid).map(|s| s.start_time).ok_or("the restored process vanished")?;
                dir.write(&st).map_err(|e| e.to_string())?;
                if let Some(pf) = &opts.pid_file {
                    super::create::write_pid_file(pf, pid).map_err(|e| e.to_string())?;
                }
                recorded = Some(st);
            }
            "orphan-pts-master" => {
                let (Some(sock), Some(master)) = (&console, fd) else {
                    return Err("criu sent no pty master".into());
                };
                crate::console::send_master(sock, &master).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        Ok(())
    });
    drop(root);
    if let Err(e) = res {
        if restored > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(restored), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(restored), None);
        }
        return Err(ContainerError::Init(crate::criu::failure(e, &log)));
    }
    let Some(st) = recorded else {
        return Err(ContainerError::Init(format!("criu restored nothing (log: {})", log.display())));
    };
    if let Some(h) = hooks.and_then(|h| h.poststart().as_ref()) {
        let doc = st.spec_state(Status::Running).to_string();
        crate::hooks::run_all_warning("poststart", Some(h), doc.as_bytes());
    }
    let pty_master = own_console.map(|s| crate::console::recv_master(&s)).transpose()?;
    cg_guard.disarm();
    dir.commit();
    Ok(Restored { pid: st.pid, pty_master })
}
