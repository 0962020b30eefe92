//! Operations that act on a running container through its cgroups:
//! pause, resume, update, the process list, stats and events.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::ContainerError;
use crate::cgroups::{CgroupError, CgroupRecord, Kind, Resources};
use crate::state::{self, ContainerState, Status, Store};

fn live(store: &Store, id: &str, what: &'static str) -> Result<(ContainerState, Status, CgroupRecord), ContainerError> {
    let dir = store.open(id)?;
    let st = dir.read()?;
    let status = state::status_of(&st, dir.path());
    if status == Status::Stopped {
        return Err(ContainerError::BadStatus { id: id.into(), status, what: what.into() });
    }
    let cg = st
        .cgroup
        .clone()
        .filter(|c| !c.placements.is_empty())
        .ok_or_else(|| match st.cgroup.is_some() {
            // create_rootless made none.
            true => ContainerError::Usage(format!(
                "container {id} has no cgroup: a rootless container gets one only on cgroup v2, where the user may write"
            )),
            false => ContainerError::Usage(format!("container {id} has no cgroup")),
        })?;
    Ok((st, status, cg))
}

/// Freeze every process (runc allows pausing a created container too).
pub fn pause(store: &Store, id: &str) -> Result<(), ContainerError> {
    let (_, status, cg) = live(store, id, "container not running")?;
    if !matches!(status, Status::Running | Status::Created) {
        return Err(ContainerError::BadStatus { id: id.into(), status, what: "container not running".into() });
    }
    Ok(cg.set_frozen(true)?)
}

pub fn resume(store: &Store, id: &str) -> Result<(), ContainerError> {
    let (_, status, cg) = live(store, id, "container not paused")?;
    if status != Status::Paused {
        return Err(ContainerError::BadStatus { id: id.into(), status, what: "container not paused".into() });
    }
    Ok(cg.set_frozen(false)?)
}

/// Apply new limits. Device rules are not updatable (as in runc).
pub fn update(store: &Store, id: &str, mut r: Resources) -> Result<(), ContainerError> {
    let (_, _, cg) = live(store, id, "container not running")?;
    r.devices.clear();
    if let Some(unit) = &cg.systemd_unit {
        // The unit's properties too, or systemd's next reload of it would
        // put the old limits back.
        use crate::cgroups::systemd::{resource_properties, Systemd};
        let props = resource_properties(&r, cg.unified()).map_err(CgroupError::from)?;
        Systemd::connect_for(cg.systemd_user).and_then(|mut s| s.set_properties(unit, props)).map_err(CgroupError::from)?;
    }
    cg.apply(&r).map_err(CgroupError::from)?;
    Ok(())
}

/// `update --l3-cache-schema/--mem-bw-schema`: the schemata of the
/// container's resctrl group.
pub fn update_intel_rdt(store: &Store, id: &str, lines: &[String]) -> Result<(), ContainerError> {
    let dir = store.open(id)?;
    let st = dir.read()?;
    if state::status_of(&st, dir.path()) == Status::Stopped {
        return Err(ContainerError::BadStatus { id: id.into(), status: Status::Stopped, what: "container not running".into() });
    }
    let rec = match dir.read_record::<crate::intel_rdt::Record>(crate::intel_rdt::RECORD_FILE) {
        Err(state::StateError::NotFound) => {
            return Err(ContainerError::Usage(format!("container {id} has no linux.intelRdt: its schemata cannot be updated")))
        }
        other => other?,
    };
    Ok(crate::intel_rdt::update(&rec, lines)?)
}

/// The pids of every process in the container's cgroups. A stopped
/// container is no error (as in runc): its list is empty, or holds what
/// outlived the init there (no pid namespace). A container without
/// cgroups (rootless on cgroup v1) lists the processes of its pid
/// namespace while it runs.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>, ContainerError> {
    let dir = store.open(id)?;
    let st = dir.read()?;
    match st.cgroup {
        Some(cg) if !cg.placements.is_empty() => Ok(cg.all_pids()?),
        _ if state::status_of(&st, dir.path()) != Status::Stopped => Ok(crate::procfs::pid_ns_members(st.pid)),
        _ => Ok(Vec::new()),
    }
}

/// runc's event document; a struct so the keys keep runc's order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub typ: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::cgroups::stats::Stats>,
}

pub fn stats_event(id: &str, cg: &CgroupRecord) -> Event {
    Event { typ: "stats", id: id.into(), data: Some(cg.stats()) }
}

/// One stats event (`events --stats`).
pub fn stats(store: &Store, id: &str) -> Result<Event, ContainerError> {
    let (_, _, cg) = live(store, id, "container not running")?;
    Ok(stats_event(id, &cg))
}

/// Stream events until the container stops: stats every `interval`, and an
/// "oom" event as soon as the kernel reports an OOM in the container.
pub fn events(store: &Store, id: &str, interval: Duration, mut emit: impl FnMut(&Event) -> bool) -> Result<(), ContainerError> {
    let (_, _, cg) = live(store, id, "container not running")?;
    let mut oom = OomWatch::new(&cg);
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            match store.read(id) {
                Ok(st) if state::status_of(&st, &store.dir(id)) != Status::Stopped => {}
                _ => return Ok(()),
            }
            if !emit(&stats_event(id, &cg)) {
                return Ok(());
            }
            next = now + interval;
            continue;
        }
        let wait = next - now;
        match oom.as_mut() {
            Some(w) => {
                if w.wait(wait) && !emit(&Event { typ: "oom", id: id.into(), data: None }) {
                    return Ok(());
                }
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// How the kernel tells about OOMs: an eventfd registered on v1's
/// memory.oom_control, or POLLPRI on v2's memory.events (whose counters
/// tell a real OOM kill from any other change).
enum OomWatch {
    V1 { efd: OwnedFd, _ctl: std::fs::File, dir: std::path::PathBuf, dead: bool },
    V2 { events: std::fs::File, kills: u64 },
}

impl OomWatch {
    fn new(cg: &CgroupRecord) -> Option<OomWatch> {
        let p = cg.placements.iter().find(|p| {
            (p.kind == Kind::V1 && p.controllers.iter().any(|c| c == "memory"))
                || (p.kind == Kind::V2 && p.path.join("memory.events").exists())
        })?;
        match p.kind {
            Kind::V1 => Self::v1(&p.path),
            Kind::V2 => {
                let mut events = std::fs::File::open(p.path.join("memory.events")).ok()?;
                let kills = oom_kills(&mut events);
                Some(OomWatch::V2 { events, kills })
            }
        }
    }

    fn v1(dir: &Path) -> Option<OomWatch> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ctl = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
        let line = format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
        Some(OomWatch::V1 { efd, _ctl: ctl, dir: dir.to_path_buf(), dead: false })
    }

    /// Wait up to `t`; true if an OOM happened.
    fn wait(&mut self, t: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = PollTimeout::try_from(t.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        match self {
            OomWatch::V1 { efd, dir, dead, .. } => {
                if *dead {
                    std::thread::sleep(t);
                    return false;
                }
                let mut fds = [PollFd::new(efd.as_fd(), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
                    return false;
                }
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into a local buffer from our eventfd.
                let n = unsafe { libc::read(efd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                // The eventfd also fires when the cgroup is removed: that
                // is no OOM, and nothing more will come.
                if n != 8 || !dir.exists() {
                    *dead = true;
                    return false;
                }
                true
            }
            OomWatch::V2 { events, kills } => {
                let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
                if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
                    return false;
                }
                let now = oom_kills(events);
                let hit = now > *kills;
                *kills = now;
                hit
            }
        }
    }
}

fn oom_kills(f: &mut std::fs::File) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let mut s = String::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.read_to_string(&mut s);
    let m = crate::cgroups::stats::flat_keyed(&s);
    m.get("oom_kill").copied().unwrap_or(0).max(m.get("oom").copied().unwrap_or(0))
}
