//! Putting a freshly forked process into the container's cgroups.
//!
//! Writing a pid to `cgroup.procs` write-locks the kernel's global
//! `cgroup_threadgroup_rwsem`, and the first writer after a quiet spell
//! waits for a whole RCU grace period: 6-16 ms on the cgroup v1 hosts we
//! measured, most of a container's start. A thread that moves *itself*, by
//! writing "0" to a v1 `tasks` file, does not take that lock on current
//! kernels (and costs what `cgroup.procs` costs on older ones). The forked
//! child is single-threaded, so moving its one thread moves the process.
//!
//! So the parent opens the `tasks` files before the fork, the child writes
//! "0" to each as its first act and then closes them, and the v2 directory
//! (pure v2 or hybrid) is entered at birth with clone3's CLONE_INTO_CGROUP.
//! Only where the kernel refuses that does the parent write the v2
//! `cgroup.procs`. The files are opened by the runtime, as root on the
//! host, which is what the kernel checks for an inherited cgroup fd.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use super::{io, CgroupError, CgroupRecord, Kind};

pub struct Joiner {
    /// The v2 directory, for CLONE_INTO_CGROUP.
    unified: Option<(PathBuf, File)>,
    tasks: Vec<(PathBuf, File)>,
}

impl CgroupRecord {
    /// Open what a child needs to join every placement (see the module doc).
    pub fn joiner(&self) -> Result<Joiner, CgroupError> {
        self.joiner_of(|_| true)
    }

    /// For a container's init: with `--systemd-cgroup` it joins nothing
    /// itself: systemd places it in the unit, then the parent in the rest
    /// ([`CgroupRecord::place_after_unit`]).
    pub fn joiner_for_init(&self) -> Result<Joiner, CgroupError> {
        match self.systemd_unit {
            Some(_) => self.joiner_of(|_| false),
            None => self.joiner(),
        }
    }

    /// With `--systemd-cgroup`, once the unit has `pid`: put it in the
    /// placements systemd does not make (the v1 controllers), and, for a
    /// slice unit (which takes no PIDs property), in systemd's. systemd may
    /// have removed such a directory (and its slice's) meanwhile, when it
    /// realized the unit's cgroups without that controller: they are made
    /// again, at systemd's own paths (cpuset, whose directories need their
    /// parent's cpus and mems, is never systemd's).
    pub fn place_after_unit(&self, pid: i32, slice: bool) -> Result<(), CgroupError> {
        for p in self.placements.iter().filter(|p| slice || !p.systemd) {
            if !p.systemd {
                std::fs::create_dir_all(&p.path).map_err(io(&p.path))?;
            }
            let procs = p.path.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(io(&procs))?;
        }
        Ok(())
    }

    fn joiner_of(&self, which: impl Fn(&super::Placement) -> bool) -> Result<Joiner, CgroupError> {
        let mut j = Joiner { unified: None, tasks: Vec::with_capacity(self.placements.len()) };
        for p in self.placements.iter().filter(|p| which(p)) {
            match p.kind {
                Kind::V1 => {
                    let f = p.path.join("tasks");
                    let file = std::fs::OpenOptions::new().write(true).open(&f).map_err(io(&f))?;
                    j.tasks.push((f, file));
                }
                Kind::V2 => {
                    let dir = File::open(&p.path).map_err(io(&p.path))?;
                    j.unified = Some((p.path.clone(), dir));
                }
            }
        }
        Ok(j)
    }
}

impl Joiner {
    /// The v2 directory to clone the child into.
    pub fn clone_into(&self) -> Option<RawFd> {
        self.unified.as_ref().map(|(_, d)| d.as_raw_fd())
    }

    /// In the forked child, while it is still single-threaded: move itself
    /// into every v1 placement.
    pub fn join_self(&self) -> Result<(), CgroupError> {
        for (path, file) in &self.tasks {
            (&*file).write_all(b"0").map_err(io(path))?;
        }
        Ok(())
    }

    /// In the parent, for a child that could not be born in its v2 cgroup.
    pub fn add_unified(&self, pid: i32) -> Result<(), CgroupError> {
        if let Some((dir, _)) = &self.unified {
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, pid.to_string()).map_err(io(&f))?;
        }
        Ok(())
    }
}
