//! cgroup v1 specifics: cpuset inheritance and the freezer.

use std::path::Path;

use super::{io, CgroupError};

/// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks
/// until they are set: copy the parent's.
pub fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let f = dir.join(name);
        let cur = std::fs::read_to_string(&f).map_err(io(&f))?;
        if !cur.trim().is_empty() {
            continue;
        }
        let pf = parent.join(name);
        let val = std::fs::read_to_string(&pf).map_err(io(&pf))?;
        std::fs::write(&f, val.trim()).map_err(io(&f))?;
    }
    Ok(())
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let f = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    std::fs::write(&f, want).map_err(io(&f))?;
    // FREEZING is transient: wait for the kernel to settle, bounded.
    for _ in 0..1000 {
        let cur = std::fs::read_to_string(&f).map_err(io(&f))?;
        if cur.trim() == want {
            return Ok(());
        }
        if frozen {
            // Re-writing FROZEN nudges tasks that were mid-fork.
            std::fs::write(&f, want).map_err(io(&f))?;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(CgroupError::Busy(dir.to_path_buf()))
}

pub fn is_frozen(dir: &Path) -> bool {
    crate::procfs::read_small(&dir.join("freezer.state")).is_ok_and(|s| s.trim_ascii() == b"FROZEN")
}
