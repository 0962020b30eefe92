//! cgroup v2 specifics: cgroup.kill and cgroup.freeze.

use std::path::Path;

use super::{io, CgroupError};

/// Kill every process with `cgroup.kill` (Linux 5.14+). Returns false where
/// the kernel lacks it, so the caller falls back to signalling each pid.
pub fn kill(dir: &Path) -> Result<bool, CgroupError> {
    let f = dir.join("cgroup.kill");
    match std::fs::write(&f, "1") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CgroupError::Io(f, e)),
    }
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let f = dir.join("cgroup.freeze");
    std::fs::write(&f, if frozen { "1" } else { "0" }).map_err(io(&f))?;
    let events = dir.join("cgroup.events");
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    for _ in 0..1000 {
        let cur = std::fs::read_to_string(&events).map_err(io(&events))?;
        if cur.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(CgroupError::Busy(dir.to_path_buf()))
}

pub fn is_frozen(dir: &Path) -> bool {
    crate::procfs::read_small(&dir.join("cgroup.freeze")).is_ok_and(|s| s.trim_ascii() == b"1")
}

/// Enable in `dir`'s subtree_control every controller `dir` has.
pub fn delegate_all(dir: &Path) -> Result<(), CgroupError> {
    let f = dir.join("cgroup.controllers");
    let ctrls = std::fs::read_to_string(&f).map_err(io(&f))?;
    let sc = dir.join("cgroup.subtree_control");
    for c in ctrls.split_whitespace() {
        std::fs::write(&sc, format!("+{c}")).map_err(io(&sc))?;
    }
    Ok(())
}
