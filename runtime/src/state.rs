//! The per-container state directory under `--root`.
//!
//! Layout of `<root>/<id>/`:
//! - `state.json`: what `state`, `list`, `kill` and `delete` need, written
//!   atomically (temp file + rename) so a reader never sees half a file;
//! - `config.json`: the exact config the container was created from,
//!   written before anything else is made;
//! - `cgroup.json`: the cgroups `create` made, written right after making
//!   them and before any process exists, so that `delete --force` can clean
//!   up a create that was killed, or a container whose state.json was torn;
//! - `exec.fifo`: the created container's process blocks reading it until
//!   `start` writes a byte; it exists from `create` until `start`, and its
//!   presence is what makes a live container "created" rather than
//!   "running";
//! - `exec.reply`: the way back: the process writes why it could not start
//!   (a startContainer hook, the exec), or closes it by exec'ing.
//!
//! Every command that changes a container holds an exclusive `flock` on the
//! directory, so two commands on one id never interleave.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupRecord;

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const CGROUP_FILE: &str = "cgroup.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const REPLY_FIFO: &str = "exec.reply";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    /// runc's words, without the id.
    #[error("container with given ID already exists")]
    Exists(String),
    #[error("container does not exist")]
    NotFound,
    #[error("state root {0}: {1}")]
    Root(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: corrupt state: {1}")]
    Corrupt(PathBuf, serde_json::Error),
    #[error("container {id} is busy: {holder} has held its lock for more than {secs} s")]
    Busy { id: String, holder: String, secs: u64 },
}

/// The longest a command waits for another husk's lock on a container.
/// Commands hold it only for a state transition, never while waiting on a
/// container process, so a longer wait means a stuck or frozen holder.
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What husk records about a container. The runtime-spec state is derived
/// from it (see [`ContainerState::spec_state`]); the rest is husk's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: tells our process from a reused pid.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    #[serde(default)]
    pub cgroup: Option<CgroupRecord>,
    /// The config's hooks, kept for poststop at delete time.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    #[serde(default)]
    pub oci_version: String,
}

impl ContainerState {
    pub fn new(
        id: &str,
        spec: &oci_spec::runtime::Spec,
        bundle: &Path,
        rootfs: &Path,
        pid: i32,
        cgroup: Option<CgroupRecord>,
    ) -> ContainerState {
        ContainerState {
            id: id.to_string(),
            pid,
            start_time: 0,
            bundle: bundle.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            created: now_rfc3339(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            owner: String::new(),
            cgroup,
            hooks: spec.hooks().clone(),
            oci_version: spec.version().clone(),
        }
    }

    /// The runtime-spec state document (`state`, `list --format json`,
    /// hooks, the seccomp listener).
    pub fn spec_state(&self, status: Status) -> SpecState<'_> {
        SpecState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: self.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            owner: &self.owner,
        }
    }
}

/// The runtime-spec state, its fields in the order runc prints them
/// (scripts and tests compare `state` and `list --format json` output as
/// text), annotations sorted by key.
#[derive(Debug, Serialize)]
pub struct SpecState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<&'a str, &'a str>,
    pub owner: &'a str,
}

impl SpecState<'_> {
    pub fn value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl std::fmt::Display for SpecState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the state root if it does not exist yet.
    pub fn ensure_root(&self) -> Result<(), StateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| StateError::Root(self.root.clone(), e))
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make a new container directory, locked. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        self.ensure_root()?;
        let path = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(StateError::Io(path, e)),
        }
        // A directory nobody else can know yet: no wait.
        let lock = lock_dir(&path, None)?;
        Ok(ContainerDir {
            durable: persistent(&lock),
            path,
            lock,
            remove_on_drop: true,
        })
    }

    /// Open and lock an existing container directory, waiting at most
    /// [`LOCK_TIMEOUT`] for another command holding it.
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        self.open_with(id, false)
    }

    /// [`Store::open`] for `delete --force`, which must always get through:
    /// when the lock is still held after [`LOCK_TIMEOUT`] (a holder stuck,
    /// say, on a frozen process), it goes ahead without it.
    pub fn open_forced(&self, id: &str) -> Result<ContainerDir, StateError> {
        self.open_with(id, true)
    }

    fn open_with(&self, id: &str, force: bool) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = self.dir(id);
        let lock = match lock_dir(&path, Some(LOCK_TIMEOUT)) {
            Err(StateError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound)
            }
            Err(StateError::Busy { holder, .. }) if force => {
                tracing::warn!("container {id}: {holder} holds its lock: going ahead without it");
                open_dir(&path)?
            }
            Err(StateError::Busy { holder, secs, .. }) => {
                return Err(StateError::Busy { id: id.to_string(), holder, secs })
            }
            other => other?,
        };
        // The directory may have been removed by a delete we waited for.
        if !path.exists() {
            return Err(StateError::NotFound);
        }
        Ok(ContainerDir {
            durable: persistent(&lock),
            path,
            lock,
            remove_on_drop: false,
        })
    }

    /// Ids of every container in the root, sorted; a missing root is empty.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::Root(self.root.clone(), e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Read a container's state without taking its lock (for list/state).
    pub fn read(&self, id: &str) -> Result<ContainerState, StateError> {
        validate_id(id)?;
        read_state(&self.dir(id))
    }
}

fn open_dir(path: &Path) -> Result<File, StateError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| StateError::Io(path.to_path_buf(), e))
}

/// flock the directory, waiting at most `timeout` (forever with None)
/// before failing with [`StateError::Busy`], which names the holder.
fn lock_dir(path: &Path, timeout: Option<std::time::Duration>) -> Result<File, StateError> {
    let f = open_dir(path)?;
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        let op = if timeout.is_some() { libc::LOCK_EX | libc::LOCK_NB } else { libc::LOCK_EX };
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        match (e.raw_os_error(), timeout) {
            (Some(libc::EINTR), _) => {}
            (Some(libc::EWOULDBLOCK), Some(t)) if start.elapsed() < t => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            (Some(libc::EWOULDBLOCK), Some(t)) => {
                return Err(StateError::Busy { id: String::new(), holder: lock_holder(&f), secs: t.as_secs() })
            }
            _ => return Err(StateError::Io(path.to_path_buf(), e)),
        }
    }
}

/// Who holds the flock on `dir`, from /proc/locks ("husk pid N" when it is
/// a husk, otherwise the process's name).
fn lock_holder(dir: &File) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = dir.metadata() else { return "another process".into() };
    let suffix = format!(":{} ", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let pid = locks
        .lines()
        .filter(|l| l.contains("FLOCK") && format!("{l} ").contains(&suffix))
        .find_map(|l| l.split_whitespace().nth(4).and_then(|p| p.parse::<i32>().ok()));
    match pid {
        Some(pid) => {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("{} pid {pid}", if comm.trim().is_empty() { "process" } else { comm.trim() })
        }
        None => "another process".into(),
    }
}

fn read_state(dir: &Path) -> Result<ContainerState, StateError> {
    let path = dir.join(STATE_FILE);
    let raw = crate::procfs::read_small(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StateError::NotFound,
        _ => StateError::Io(path.clone(), e),
    })?;
    serde_json::from_slice(&raw).map_err(|e| StateError::Corrupt(path, e))
}

/// A locked container directory. Dropping a freshly created one that was
/// never committed removes it, so a failed `create` leaves nothing behind.
pub struct ContainerDir {
    path: PathBuf,
    /// The directory, open and flock'ed (and synced after state.json).
    lock: File,
    /// Whether the directory outlives a power loss (not tmpfs): then
    /// state.json is synced.
    durable: bool,
    remove_on_drop: bool,
}

/// Is the filesystem of `dir` one whose files survive a power loss? On
/// tmpfs or ramfs (the usual /run) nothing does, so syncing buys nothing.
fn persistent(dir: &File) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    nix::sys::statfs::fstatfs(dir).map_or(true, |s| {
        let t = s.filesystem_type().0 as i64;
        t != TMPFS_MAGIC && t != RAMFS_MAGIC
    })
}

impl ContainerDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exec_fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn reply_fifo(&self) -> PathBuf {
        self.path.join(REPLY_FIFO)
    }

    pub fn read(&self) -> Result<ContainerState, StateError> {
        read_state(&self.path)
    }

    /// The cgroups `create` recorded ([`CGROUP_FILE`]).
    pub fn read_cgroup(&self) -> Result<CgroupRecord, StateError> {
        self.read_record(CGROUP_FILE)
    }

    pub fn write_cgroup(&self, rec: &CgroupRecord) -> Result<(), StateError> {
        self.write_record(CGROUP_FILE, rec)
    }

    /// A small JSON record `create` left for cleaning up (NotFound when it
    /// was never written).
    pub fn read_record<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StateError> {
        let path = self.path.join(name);
        let raw = crate::procfs::read_small(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StateError::NotFound,
            _ => StateError::Io(path.clone(), e),
        })?;
        serde_json::from_slice(&raw).map_err(|e| StateError::Corrupt(path, e))
    }

    pub fn write_record<T: serde::Serialize>(&self, name: &str, rec: &T) -> Result<(), StateError> {
        let data = serde_json::to_vec(rec).map_err(|e| StateError::Corrupt(self.path.clone(), e))?;
        self.write_file(name, &data)
    }

    /// Write a file in the directory atomically: readers, and a `husk`
    /// killed half-way, see the old or the new content, never a mix.
    pub fn write_file(&self, name: &str, data: &[u8]) -> Result<(), StateError> {
        self.write_atomic(name, data)
    }

    /// Write state.json; on a persistent filesystem its data reaches the
    /// disk before the rename does, and the rename before we return, so not
    /// even a power loss leaves it torn or stale.
    pub fn write(&self, state: &ContainerState) -> Result<(), StateError> {
        let staged = self.stage(state)?;
        self.publish(staged)
    }

    /// The first half of [`Self::write`]: state.json under its temporary
    /// name, its data synced. `create` stages it while the container
    /// process sets itself up (the sync then costs no time on a machine
    /// with a second CPU) and publishes it once that process is ready.
    pub fn stage(&self, state: &ContainerState) -> Result<StagedState, StateError> {
        let data = serde_json::to_vec(state).map_err(|e| StateError::Corrupt(self.path.clone(), e))?;
        Ok(StagedState(self.write_temp(STATE_FILE, &data, self.durable)?))
    }

    /// The second half: the rename, and on a persistent filesystem the
    /// directory's sync, before which the rename may not survive a crash.
    pub fn publish(&self, staged: StagedState) -> Result<(), StateError> {
        let dst = self.path.join(STATE_FILE);
        std::fs::rename(&staged.0, &dst).map_err(|e| StateError::Io(dst, e))?;
        if self.durable {
            self.lock.sync_all().map_err(|e| StateError::Io(self.path.clone(), e))?;
        }
        Ok(())
    }

    /// A temp file renamed into place, not synced. Only state.json is
    /// synced (its data and its directory, by [`Self::write`]):
    /// the cgroup record and the config serve to clean up after a crashed
    /// husk, a power loss takes the cgroups and processes with it, and
    /// `delete --force` copes with torn files anyway. Each sync costs
    /// ~0.5 ms on this project's ext4 test machine, nothing on tmpfs.
    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), StateError> {
        let tmp = self.write_temp(name, data, false)?;
        let dst = self.path.join(name);
        std::fs::rename(&tmp, &dst).map_err(|e| StateError::Io(dst, e))
    }

    /// `name`'s content under a temporary name in the same directory.
    fn write_temp(&self, name: &str, data: &[u8], sync: bool) -> Result<PathBuf, StateError> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let dst = self.path.join(name);
        let io = |e| StateError::Io(dst.clone(), e);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(data).map_err(io)?;
        if sync {
            f.sync_data().map_err(io)?;
        }
        Ok(tmp)
    }

    /// The container now exists for good: keep the directory.
    pub fn commit(&mut self) {
        self.remove_on_drop = false;
    }

    pub fn remove(mut self) -> Result<(), StateError> {
        self.remove_on_drop = false;
        remove_tree(&self.path).map_err(|e| StateError::Io(self.path.clone(), e))
    }
}

/// state.json staged by [`ContainerDir::stage`]: its temporary file.
pub struct StagedState(PathBuf);

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = remove_tree(&self.path);
        }
    }
}

/// remove_dir_all, never through a mount: a mount left below a state
/// directory (`restore` binds the rootfs at `criu-root` there while CRIU
/// works; a restore killed meanwhile leaves it) is detached first, deepest
/// first, and if one cannot be, nothing is removed. Otherwise removing the
/// directory would delete the container's rootfs through the bind.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    let prefix = format!("{}/", path.display());
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut below: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m.starts_with(&prefix))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in below {
        match nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
            Err(e) => return Err(std::io::Error::other(format!("{m} is mounted and cannot be detached ({e}): not removing {}", path.display()))),
        }
    }
    std::fs::remove_dir_all(path)
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|o| std::str::from_utf8(o).ok()).and_then(|o| u8::from_str_radix(o, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status of a recorded container, read from the live system.
pub fn status_of(state: &ContainerState, dir: &Path) -> Status {
    if state.pid <= 0 {
        return Status::Stopped;
    }
    match crate::procfs::proc_stat(state.pid) {
        Some(st) if st.start_time == state.start_time && st.state != 'Z' && st.state != 'X' => {}
        _ => return Status::Stopped,
    }
    if let Some(cg) = &state.cgroup {
        if cg.is_frozen() {
            return Status::Paused;
        }
    }
    if dir.join(EXEC_FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/run/a\\040b"), "/run/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    /// A bind mount left inside a state directory is detached, not
    /// emptied: what it shows survives the directory's removal.
    #[test]
    fn removing_a_state_dir_never_deletes_through_a_mount() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let precious = tempfile::tempdir().unwrap();
        std::fs::write(precious.path().join("keep"), "x").unwrap();
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("c1");
        std::fs::create_dir_all(dir.join("criu-root")).unwrap();
        nix::mount::mount(Some(precious.path()), &dir.join("criu-root"), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert!(precious.path().join("keep").exists(), "the bind's source was emptied");
    }

    #[test]
    fn ids_are_validated() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "A-b_c.d+e", "0123"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn create_refuses_duplicates_and_uncommitted_dirs_vanish() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(&tmp.path().join("root"));
        let mut d = store.create("c1").unwrap();
        d.commit();
        drop(d);
        assert!(matches!(store.create("c1"), Err(StateError::Exists(_))));
        let d2 = store.create("c2").unwrap();
        assert!(store.dir("c2").exists());
        drop(d2);
        assert!(!store.dir("c2").exists());
        assert_eq!(store.ids().unwrap(), vec!["c1".to_string()]);
    }

    #[test]
    fn tmpfs_is_not_persistent_and_writes_leave_no_temp_file() {
        assert!(!persistent(&File::open("/dev/shm").unwrap()), "/dev/shm is tmpfs");
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let d = store.create("c").unwrap();
        d.write_file("x.json", b"{}").unwrap();
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn state_round_trips_and_dead_pid_is_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let mut d = store.create("c").unwrap();
        let st = ContainerState {
            id: "c".into(),
            pid: i32::MAX,
            start_time: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: HashMap::new(),
            owner: String::new(),
            cgroup: None,
            hooks: None,
            oci_version: "1.0.2".into(),
        };
        d.write(&st).unwrap();
        d.commit();
        let back = store.read("c").unwrap();
        assert_eq!(back.pid, i32::MAX);
        assert_eq!(status_of(&back, &store.dir("c")), Status::Stopped);
    }
}
