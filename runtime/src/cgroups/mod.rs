//! Cgroup placement for containers, on v1 (legacy), hybrid and v2 hosts.
//!
//! `plan` turns `linux.cgroupsPath` into one directory per mounted hierarchy
//! (runc's rules: absolute paths hang from each hierarchy's root, relative
//! ones from husk's own cgroup, and no path means the container id relative
//! to husk's own cgroup). `create` makes the directories and remembers which
//! ones it made, so `destroy` removes exactly those and never a cgroup husk
//! did not create.

pub mod devices;
mod join;
mod mountinfo;
pub mod resources;
mod resources_v1;
mod resources_v2;
pub mod stats;
pub mod sub;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use join::Joiner;
pub use mountinfo::{hierarchies, Hierarchy};
pub use resources::{ResourceError, Resources};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    #[error("cgroup {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("invalid cgroupsPath {0:?}: {1}")]
    InvalidPath(String, &'static str),
    #[error("cgroup {0} is not empty: another container or process uses it")]
    NotEmpty(PathBuf),
    #[error("cgroup {0} still has processes after kill")]
    Busy(PathBuf),
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
    #[error("no freezer: neither a v1 freezer hierarchy nor cgroup.freeze in {0}")]
    NoFreezer(PathBuf),
    #[error(transparent)]
    Resources(#[from] ResourceError),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |e| CgroupError::Io(path.to_path_buf(), e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    V1,
    V2,
}

/// One directory the container's processes are placed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placement {
    pub kind: Kind,
    /// Controllers of this hierarchy (v1), empty for v2 and named hierarchies.
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// Made, filled and removed by systemd with the container's unit
    /// (`--systemd-cgroup`): husk does not make it, and systemd puts the
    /// container's init in it (exec'd processes join it as any other).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd: bool,
}

/// What `create` made: kept in the container state for later commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupRecord {
    pub placements: Vec<Placement>,
    /// Directories husk created, parents before children.
    pub created: Vec<PathBuf>,
    /// The systemd unit the container's cgroup is (`--systemd-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The unit is the user's own systemd's (rootless), not the system's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd_user: bool,
}

/// Compute where a container's cgroups go. Nothing is touched on disk.
pub fn plan(cgroups_path: Option<&Path>, id: &str) -> Result<Vec<Placement>, CgroupError> {
    let inner: PathBuf = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(id),
    };
    if inner
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(CgroupError::InvalidPath(
            inner.display().to_string(),
            "'..' is not allowed",
        ));
    }
    let hs = hierarchies()?;
    if hs.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    let mut out = Vec::with_capacity(hs.len());
    for h in hs {
        let base = if inner.is_absolute() {
            h.mount_point.clone()
        } else {
            h.mount_point.join(h.own_path.strip_prefix("/").unwrap_or(&h.own_path))
        };
        let rel = inner.strip_prefix("/").unwrap_or(&inner);
        out.push(Placement {
            kind: h.kind,
            controllers: h.controllers.clone(),
            path: base.join(rel),
            systemd: false,
        });
    }
    Ok(out)
}

/// A placement's path from the root of its hierarchy's mount (what CRIU's
/// cgroup roots are), or None if no mounted hierarchy holds it.
pub fn path_in_hierarchy(p: &Placement) -> Option<PathBuf> {
    hierarchies().ok()?.into_iter().find_map(|h| {
        let same = h.kind == p.kind && (p.kind == Kind::V2 || h.controllers == p.controllers);
        let rel = p.path.strip_prefix(&h.mount_point).ok().filter(|_| same)?;
        Some(Path::new("/").join(rel))
    })
}

/// Make the planned directories. A directory that already holds processes is
/// refused (two containers must not share a cgroup unawares).
pub fn create(placements: Vec<Placement>) -> Result<CgroupRecord, CgroupError> {
    create_with(placements, None)
}

/// [`create`] for a rootless container (as runc's rootless cgroup
/// manager): on a v1 or hybrid host an ordinary user cannot own cgroups,
/// so there are none; on a pure v2 host the cgroup is made where the user
/// may write (a delegated subtree, as systemd's user@.service gives), and
/// skipped where it may not. Skipping warns when the config sets limits,
/// which then do not apply.
pub fn create_rootless(placements: Vec<Placement>, has_limits: bool) -> CgroupRecord {
    let none = || CgroupRecord { placements: Vec::new(), created: Vec::new(), systemd_unit: None, systemd_user: false };
    let unified = !placements.is_empty() && placements.iter().all(|p| p.kind == Kind::V2);
    if !unified {
        if has_limits {
            tracing::warn!("rootless container on a cgroup v1 host: no cgroups, linux.resources are ignored");
        }
        return none();
    }
    match create(placements) {
        Ok(rec) => rec,
        Err(e) => {
            if has_limits {
                tracing::warn!("rootless container without a cgroup ({e}): linux.resources are ignored");
            } else {
                tracing::debug!("rootless container without a cgroup: {e}");
            }
            none()
        }
    }
}

/// [`create`] for a systemd unit's cgroups: directories of a unit of the
/// same name left over from an earlier container may still hold its
/// processes; the unit is stopped (and they with it) before the new one
/// starts, as runc does.
pub fn create_for_unit(placements: Vec<Placement>, unit: &str, user: bool) -> Result<CgroupRecord, CgroupError> {
    let mut rec = create_with(placements, Some(unit))?;
    rec.systemd_user = user;
    Ok(rec)
}

fn create_with(placements: Vec<Placement>, unit: Option<&str>) -> Result<CgroupRecord, CgroupError> {
    let refuse_busy = unit.is_none();
    let mut rec = CgroupRecord {
        placements: Vec::new(),
        created: Vec::new(),
        systemd_unit: unit.map(String::from),
        systemd_user: false,
    };
    for p in placements {
        if p.systemd {
            rec.placements.push(p);
            continue;
        }
        let phase = crate::logging::Phase::start();
        if let Err(e) = create_one(&p, &mut rec.created, refuse_busy) {
            let _ = rec.destroy();
            return Err(e);
        }
        if let Some(phase) = phase {
            phase.done(format_args!("cgroup_mkdir:{}", p.controllers.join(",")));
        }
        rec.placements.push(p);
    }
    Ok(rec)
}

fn create_one(p: &Placement, created: &mut Vec<PathBuf>, refuse_busy: bool) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut cur = p.path.as_path();
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        cur = match cur.parent() {
            Some(c) => c,
            None => break,
        };
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => created.push(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::Io(dir.clone(), e)),
        }
        if p.kind == Kind::V1 && p.controllers.iter().any(|c| c == "cpuset") {
            v1::inherit_cpuset(dir)?;
        }
        // A v2 child only gets the controllers its parent delegates: do so
        // for the intermediate directories husk made (never for others).
        if p.kind == Kind::V2 && dir != &p.path {
            v2::delegate_all(dir)?;
        }
    }
    if refuse_busy && missing.is_empty() && !read_pids(&p.path)?.is_empty() {
        return Err(CgroupError::NotEmpty(p.path.clone()));
    }
    Ok(())
}

impl CgroupRecord {
    fn freezer(&self) -> Option<&Placement> {
        self.placements.iter().find(|p| {
            p.kind == Kind::V1 && p.controllers.iter().any(|c| c == "freezer")
        })
    }

    /// What freezes the container: the v1 freezer directory, else the v2
    /// one (CRIU's freeze_cgroup).
    pub fn freezer_dir(&self) -> Option<&Path> {
        self.freezer().map(|p| p.path.as_path()).or_else(|| self.placements.iter().find(|p| p.kind == Kind::V2).map(|p| p.path.as_path()))
    }

    /// Put `pid` in every placement (CRIU, before it restores the
    /// container's processes into them).
    pub fn add_everywhere(&self, pid: i32) -> Result<(), CgroupError> {
        for p in &self.placements {
            let procs = p.path.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(io(&procs))?;
        }
        Ok(())
    }

    /// Where the container's processes are listed: prefer a hierarchy whose
    /// membership is complete (every hierarchy has every process, so any will do).
    fn primary(&self) -> Option<&Placement> {
        self.freezer().or_else(|| self.placements.first())
    }

    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self.primary() {
            Some(p) => read_pids(&p.path),
            None => Ok(Vec::new()),
        }
    }

    /// Every process of the container, also those in sub-cgroups the
    /// container made itself (what `ps` lists).
    pub fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(p) = self.primary() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut stack = vec![p.path.clone()];
        while let Some(dir) = stack.pop() {
            out.extend(read_pids(&dir)?);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut subs: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect();
                subs.sort();
                stack.extend(subs.into_iter().rev());
            }
        }
        Ok(out)
    }

    /// Freeze (pause) or thaw (resume) every process of the container.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        if let Some(f) = self.freezer() {
            return v1::freeze(&f.path, frozen);
        }
        match self.v2_dir() {
            Some(d) if d.join("cgroup.freeze").exists() => v2::freeze(d, frozen),
            Some(d) => Err(CgroupError::NoFreezer(d.to_path_buf())),
            None => Err(CgroupError::NoFreezer(
                self.placements.first().map(|p| p.path.clone()).unwrap_or_default(),
            )),
        }
    }

    /// A pure cgroup v2 host (no v1 hierarchy)?
    pub fn unified(&self) -> bool {
        self.placements.iter().all(|p| p.kind == Kind::V2)
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(f) = self.freezer() {
            return v1::is_frozen(&f.path);
        }
        match self.placements.iter().find(|p| p.kind == Kind::V2) {
            Some(p) if self.placements.len() == 1 => v2::is_frozen(&p.path),
            _ => false,
        }
    }

    /// Send `sig` to every process of the container, without letting a
    /// forking process slip out between listing and signalling.
    pub fn signal_all(&self, sig: i32) -> Result<(), CgroupError> {
        let freezer = self.freezer();
        if sig == libc::SIGKILL {
            if let Some(p) = self.placements.iter().find(|p| p.kind == Kind::V2) {
                if v2::kill(&p.path)? {
                    // A v1-frozen (paused) task only dies once thawed.
                    if let Some(f) = freezer.filter(|f| v1::is_frozen(&f.path)) {
                        v1::freeze(&f.path, false)?;
                    }
                    return Ok(());
                }
            }
        }
        // Freezing stops forks racing the kill; a container that was
        // paused stays paused, unless it is being killed.
        let was_frozen = freezer.is_some_and(|f| v1::is_frozen(&f.path));
        if let Some(f) = freezer {
            v1::freeze(&f.path, true)?;
        }
        let res = self.all_pids().map(|pids| {
            for pid in pids {
                // SAFETY: kill(2) with a pid read from the container's cgroup.
                unsafe { libc::kill(pid, sig) };
            }
        });
        if let Some(f) = freezer {
            if !was_frozen || sig == libc::SIGKILL {
                v1::freeze(&f.path, false)?;
            }
        }
        res
    }

    /// Kill what is left and remove the directories husk created.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        // Usually the container is gone already (run, delete of a stopped
        // container): then there is nothing to freeze and kill.
        if self.all_pids().is_ok_and(|p| !p.is_empty()) {
            let _ = self.signal_all(libc::SIGKILL);
        }
        if let Some(unit) = &self.systemd_unit {
            // An empty scope goes by itself, so a systemd that cannot be
            // reached does not keep `delete --force` from finishing.
            if let Err(e) = systemd::Systemd::connect_for(self.systemd_user).and_then(|mut s| s.stop(unit)) {
                tracing::warn!("{e}");
            }
        }
        // Leaves first. A container's own directory still busy right after
        // SIGKILL is retried briefly while the kernel finishes tearing the
        // processes down. A parent husk made is shared with whatever other
        // container was put under it since (`/ns/a`, `/ns/b`): it is removed
        // only if it is empty now, and left quietly otherwise.
        for dir in self.created.iter().rev() {
            let own = self.placements.iter().any(|p| &p.path == dir);
            let res = if own {
                // With the sub-cgroups the container made itself, leaves
                // first (rmdir of a non-empty cgroup is EBUSY/ENOTEMPTY).
                remove_tree_when_free(dir, std::time::Duration::from_secs(1))
            } else {
                match std::fs::remove_dir(dir) {
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)) => Ok(()),
                    other => other,
                }
            };
            res.map_err(|e| CgroupError::Io(dir.clone(), e))?;
        }
        Ok(())
    }
}

/// rmdir a cgroup directory, retrying for up to `patience` while it is
/// EBUSY: processes just killed may still be being torn down. A directory
/// that is gone already is fine.
pub fn remove_dir_when_free(dir: &Path, patience: std::time::Duration) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// `remove_dir_when_free` for a cgroup and every cgroup below it,
/// deepest first. The usual cgroup has none: one rmdir, no listing of its
/// many files.
pub fn remove_tree_when_free(dir: &Path, patience: std::time::Duration) -> std::io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(()) => return Ok(()),
        Err(_) => {}
    }
    let subs: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for sub in subs {
        remove_tree_when_free(&sub, patience)?;
    }
    remove_dir_when_free(dir, patience)
}

pub fn read_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let f = dir.join("cgroup.procs");
    let raw = match std::fs::read_to_string(&f) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::Io(f, e)),
    };
    Ok(raw.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Controller files in a temporary directory, for the format tests.
#[cfg(test)]
pub(crate) mod testutil {
    pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(t.path().join(f), v).unwrap();
        }
        t
    }

    pub fn get(t: &tempfile::TempDir, f: &str) -> String {
        std::fs::read_to_string(t.path().join(f)).unwrap()
    }
}
