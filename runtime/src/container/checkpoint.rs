//! `checkpoint`: CRIU dumps the running container into an image directory
//! (runc's flags and defaults). Unless `--leave-running` (or `--pre-dump`),
//! the container is gone afterwards: CRIU kills it and husk deletes it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::ContainerError;
use crate::criu::swrk::{rpc, Swrk};
use crate::state::{self, Status, Store};

#[derive(Debug, Default, Clone)]
pub struct CheckpointOptions {
    pub id: String,
    pub criu: Option<String>,
    pub image_path: PathBuf,
    /// Logs and CRIU's work files (default: the image path).
    pub work_path: Option<PathBuf>,
    /// A pre-dump's image directory, relative to the image path or absolute.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces (`network`, ...) CRIU leaves empty instead of dumping.
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    /// `--page-server ADDRESS:PORT`: the memory goes to (with
    /// --lazy-pages: is served from) a CRIU page server.
    pub page_server: Option<String>,
}

/// `--manage-cgroups-mode` as CRIU's enum.
pub fn cgroups_mode(mode: Option<&str>) -> Result<rpc::CgMode, ContainerError> {
    Ok(match mode.unwrap_or("soft") {
        "soft" => rpc::CgMode::Soft,
        "full" => rpc::CgMode::Full,
        "strict" => rpc::CgMode::Strict,
        "ignore" => rpc::CgMode::Ignore,
        other => return Err(ContainerError::Usage(format!("invalid --manage-cgroups-mode {other:?}: use soft, full, strict or ignore"))),
    })
}

/// `--empty-ns network` (and the other names) as clone flags.
pub fn empty_ns_flags(names: &[String]) -> Result<u32, ContainerError> {
    let mut flags = 0u32;
    for n in names {
        let t = match n.as_str() {
            "network" | "net" => libc::CLONE_NEWNET,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "mount" | "mnt" => libc::CLONE_NEWNS,
            "pid" => libc::CLONE_NEWPID,
            "user" => libc::CLONE_NEWUSER,
            "cgroup" => libc::CLONE_NEWCGROUP,
            other => return Err(ContainerError::Usage(format!("invalid --empty-ns {other:?}"))),
        };
        flags |= t as u32;
    }
    Ok(flags)
}

/// An image or work directory, made if missing (0700, as runc), opened.
pub fn open_dir(path: &Path, what: &str) -> Result<OwnedFd, ContainerError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) => return Err(ContainerError::Usage(format!("{what} {}: {e}", path.display()))),
    }
    nix::fcntl::open(path, nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|err| ContainerError::Sys { what: format!("{what} {}", path.display()), err })
}

pub fn checkpoint(store: &Store, opts: &CheckpointOptions) -> Result<(), ContainerError> {
    let dir = store.open(&opts.id)?;
    let st = dir.read()?;
    let status = state::status_of(&st, dir.path());
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(ContainerError::BadStatus { id: opts.id.clone(), status, what: "container is not running".into() });
    }
    let spec = crate::spec::parse(&dir.path().join(state::CONFIG_FILE), &crate::spec::read_limited(&dir.path().join(state::CONFIG_FILE))?)?;
    let images = open_dir(&opts.image_path, "image path")?;
    let work_path = opts.work_path.clone().unwrap_or_else(|| opts.image_path.clone());
    let work = open_dir(&work_path, "work path")?;
    let log = work_path.join(if opts.pre_dump { "pre-dump.log" } else { "dump.log" });

    let mut o = rpc::Opts {
        images_dir_fd: Some(images.as_raw_fd()),
        work_dir_fd: Some(work.as_raw_fd()),
        log_level: Some(4),
        log_file: Some(log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        root: Some(st.rootfs.display().to_string()),
        pid: Some(st.pid),
        manage_cgroups: Some(true),
        manage_cgroups_mode: Some(cgroups_mode(opts.manage_cgroups_mode.as_deref())?),
        notify_scripts: Some(true),
        shell_job: Some(opts.shell_job),
        leave_running: Some(opts.leave_running),
        tcp_established: Some(opts.tcp_established),
        ext_unix_sk: Some(opts.ext_unix_sk),
        file_locks: Some(opts.file_locks),
        auto_dedup: Some(opts.auto_dedup),
        orphan_pts_master: Some(true),
        ..Default::default()
    };
    // The status fd is husk's, as in runc (CRIU 3.15+): written and closed
    // at CRIU's `status-ready` (its page server listens), so a reader also
    // sees EOF then; CRIU is not given it.
    let mut status_fd = None;
    if opts.lazy_pages {
        o.lazy_pages = Some(true);
        if let Some(fd) = opts.status_fd {
            // SAFETY: F_GETFL only reads the fd's flags.
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            if fl < 0 || fl & libc::O_ACCMODE == libc::O_RDONLY {
                let why = if fl < 0 { std::io::Error::last_os_error().to_string() } else { "not writable".into() };
                return Err(ContainerError::Usage(format!("invalid --status-fd {fd}: {why}")));
            }
            // Not inherited by CRIU, which would hold it open.
            // SAFETY: sets the close-on-exec flag of a valid fd.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            status_fd = Some(fd);
        }
    }
    let lazy_hint = opts.lazy_pages.then(lazy_server_limit).flatten();
    if let Some(h) = &lazy_hint {
        tracing::warn!("{h}");
    }
    if let Some(ps) = &opts.page_server {
        let (addr, port) = ps
            .rsplit_once(':')
            .and_then(|(a, p)| Some((a, p.parse::<i32>().ok()?)))
            .ok_or_else(|| ContainerError::Usage(format!("invalid --page-server {ps:?}: use ADDRESS:PORT")))?;
        o.ps = Some(rpc::PageServerInfo { address: Some(addr.to_string()), port: Some(port) });
    }
    let flags = empty_ns_flags(&opts.empty_ns)?;
    if flags != 0 {
        o.empty_ns = Some(flags);
    }
    if let Some(parent) = &opts.parent_path {
        o.parent_img = Some(parent.display().to_string());
    }
    if opts.pre_dump {
        o.track_mem = Some(true);
    }
    // CRIU freezes the container through its freezer (v1) or cgroup.freeze.
    if let Some(f) = st.cgroup.as_ref().and_then(|c| c.freezer_dir()) {
        o.freeze_cgroup = Some(f.display().to_string());
    }
    let in_userns = crate::criu::devices_are_binds(&spec);
    for e in crate::criu::external_mounts(&spec, &st.bundle, st.cgroup.as_ref(), in_userns, Some(st.pid)) {
        o.ext_mnt.push(rpc::ExtMount { val: e.name().to_string(), key: e.key });
    }
    // Which stdio the container had, for restore to hand in new pipes.
    let descriptors = crate::criu::descriptors(st.pid);
    o.external.extend(descriptors.iter().filter(|d| d.starts_with("file[")).cloned());
    let fds = serde_json::to_vec(&descriptors).unwrap_or_default();
    let desc = opts.image_path.join(crate::criu::DESCRIPTORS);
    std::fs::write(&desc, fds).map_err(|e| ContainerError::Io(desc.clone(), e))?;

    let ty = if opts.pre_dump { rpc::ReqType::PreDump } else { rpc::ReqType::Dump };
    let req = rpc::Req { ty, opts: Some(o), notify_success: None };
    let criu = opts.criu.as_deref().unwrap_or(crate::criu::DEFAULT_CRIU);
    let extra = vec![images.as_raw_fd(), work.as_raw_fd()];
    let swrk = Swrk::start(criu, &extra).map_err(|e| ContainerError::Init(e.to_string()))?;
    drop(dir);
    swrk.call(req, |script, _, _| {
        if let (Some(fd), "status-ready") = (status_fd, script) {
            status_fd = None;
            // SAFETY: one byte from a local to the fd the caller gave us,
            // which is ours to close, as runc closes it.
            unsafe {
                if libc::write(fd, [0u8].as_ptr().cast(), 1) != 1 {
                    tracing::warn!("writing to --status-fd {fd}: {}", std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
        }
        Ok(())
    })
    .map_err(|e| {
        let msg = crate::criu::failure(e, &log);
        ContainerError::Init(match &lazy_hint {
            Some(h) => format!("{msg}; {h}"),
            None => msg,
        })
    })?;
    if !opts.leave_running && !opts.pre_dump {
        super::ops::delete(store, &opts.id, true)?;
    }
    Ok(())
}

/// Why CRIU's lazy page server will fail here, if it will: it sizes its
/// pipe to 4 MiB (F_SETPIPE_SZ, return unchecked in CRIU 4.1), which above
/// fs.pipe-max-size needs CAP_SYS_RESOURCE; without it the first page
/// request fails ("page-pipe: splice: -1: Bad file descriptor"), the dump
/// fails and the restoring CRIU hangs.
fn lazy_server_limit() -> Option<String> {
    const WANT: u64 = 4 << 20;
    if caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(true) {
        return None;
    }
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size").ok()?.trim().parse().ok()?;
    (max < WANT).then(|| {
        format!(
            "without CAP_SYS_RESOURCE, CRIU's lazy page server needs fs.pipe-max-size >= {WANT} (it is {max}): \
             the restore's page requests will fail (sysctl -w fs.pipe-max-size={WANT})"
        )
    })
}
