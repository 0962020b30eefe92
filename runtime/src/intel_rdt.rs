//! `linux.intelRdt` (runtime-spec 1.3): the container's processes in a
//! resctrl control group (CLOS), its schemata, and a monitoring group.
//!
//! Which directory: `closID` names a group (`/` is the default group, the
//! resctrl root); without it the group is the container id, made for the
//! container and removed with it. A named group with schemata is made when
//! missing (and then left, as the spec says), and when present must already
//! hold the schemata. `enableMonitoring` makes `mon_groups/<id>` in the
//! group, removed with the container.
//!
//! Everything takes the resctrl mount point as a path, so the rules are unit
//! tested against a plain directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;

/// The state directory's record of what was made, for delete and exec.
pub const RECORD_FILE: &str = "intel-rdt.json";

#[derive(Debug, thiserror::Error)]
pub enum RdtError {
    #[error("linux.intelRdt: no resctrl file system is mounted on this host")]
    NotMounted,
    #[error("linux.intelRdt: {0}")]
    Invalid(String),
    #[error("linux.intelRdt: closID {clos:?} exists with other schemata: {line:?} is not in {file}")]
    Mismatch { clos: String, line: String, file: PathBuf },
    #[error("linux.intelRdt: {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The control group the container's processes join.
    pub group: PathBuf,
    /// Made for this container (no closID): removed with it.
    pub remove_group: bool,
    /// The container's monitoring group, if any.
    pub mon_group: Option<PathBuf>,
}

impl Record {
    /// Where the container's processes are put: the monitoring group
    /// (whose parent control group then applies) or the control group.
    fn tasks(&self) -> PathBuf {
        self.mon_group.as_deref().unwrap_or(&self.group).join("tasks")
    }
}

/// The resctrl mount point, from /proc/self/mountinfo.
pub fn mount_point() -> Result<PathBuf, RdtError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| RdtError::Io("/proc/self/mountinfo".into(), e))?;
    info.lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let point = pre.split(' ').nth(4)?;
            (post.split(' ').next()? == "resctrl").then(|| PathBuf::from(point))
        })
        .ok_or(RdtError::NotMounted)
}

/// The schemata lines to write, in the spec's order: L3, MB, then
/// `schemata`. Each must be one line.
fn schemata_lines(c: &LinuxIntelRdt) -> Result<Vec<String>, RdtError> {
    let mut lines: Vec<String> = Vec::new();
    lines.extend(c.l3_cache_schema().clone());
    if let Some(mb) = c.mem_bw_schema() {
        if !mb.starts_with("MB:") {
            return Err(RdtError::Invalid(format!("memBwSchema {mb:?} must start with \"MB:\"")));
        }
        lines.push(mb.clone());
    }
    lines.extend(c.schemata().iter().flatten().cloned());
    if let Some(bad) = lines.iter().find(|l| l.contains('\n')) {
        return Err(RdtError::Invalid(format!("schema {bad:?} must be a single line")));
    }
    Ok(lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
}

#[allow(deprecated)] // enableCMT/enableMBM: runtime-spec 1.1-1.2's names for monitoring
fn wants_monitoring(c: &LinuxIntelRdt) -> bool {
    [*c.enable_monitoring(), *c.enable_cmt(), *c.enable_mbm()].contains(&Some(true))
}

/// What [`apply`] will make, decided before anything is made so that the
/// record can be written first (a create killed half-way is cleaned up
/// from it).
pub fn plan(root: &Path, id: &str, c: &LinuxIntelRdt) -> Result<Record, RdtError> {
    let clos = c.clos_id().as_deref().filter(|s| !s.is_empty());
    let check_name = |what: &str, name: &str| {
        if name.contains('/') || name == "." || name == ".." || name.contains('\n') {
            return Err(RdtError::Invalid(format!("{what} {name:?} is not a valid resctrl group name")));
        }
        Ok(())
    };
    let (group, remove_group) = match clos {
        Some("/") => (root.to_path_buf(), false),
        Some(name) => {
            check_name("closID", name)?;
            (root.join(name), false)
        }
        None => {
            check_name("container id", id)?;
            (root.join(id), true)
        }
    };
    let mon_group = wants_monitoring(c).then(|| group.join("mon_groups").join(id));
    Ok(Record { group, remove_group, mon_group })
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> RdtError + '_ {
    move |e| RdtError::Io(p.to_path_buf(), e)
}

/// Make the groups of `rec`, write the schemata and put `pid` in.
pub fn apply(rec: &Record, c: &LinuxIntelRdt, pid: i32) -> Result<(), RdtError> {
    let lines = schemata_lines(c)?;
    let named = !rec.remove_group;
    let schemata = rec.group.join("schemata");
    // A named group without schemata is a pre-configured one: joined,
    // never made.
    let made = match named && lines.is_empty() {
        true => false,
        false => match std::fs::create_dir(&rec.group) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io(&rec.group)(e)),
        },
    };
    if named && !made && lines.is_empty() {
        if !rec.group.join("tasks").exists() {
            return Err(RdtError::Invalid(format!(
                "closID {:?}: no such resctrl group in {}",
                c.clos_id().clone().unwrap_or_default(),
                rec.group.parent().unwrap_or(&rec.group).display()
            )));
        }
    } else if named && !made {
        // A group that exists is someone's: it must already say what the
        // config asks, and is not rewritten.
        let have = std::fs::read_to_string(&schemata).map_err(io(&schemata))?;
        if let Some(line) = lines.iter().find(|l| !schemata_contains(&have, l)) {
            return Err(RdtError::Mismatch {
                clos: c.clos_id().clone().unwrap_or_default(),
                line: line.clone(),
                file: schemata.clone(),
            });
        }
    } else {
        write_schemata(&schemata, &lines)?;
    }
    if let Some(mon) = &rec.mon_group {
        // mon_groups is there wherever the kernel can monitor; elsewhere
        // the kernel refuses to make it, which is the error to report.
        std::fs::create_dir_all(mon).map_err(|e| {
            RdtError::Io(mon.clone(), std::io::Error::new(e.kind(), format!("making the monitoring group: {e}")))
        })?;
    }
    join(rec, pid)
}

/// Put `pid` (the container's init, or an exec'd process) in the group.
pub fn join(rec: &Record, pid: i32) -> Result<(), RdtError> {
    let tasks = rec.tasks();
    std::fs::write(&tasks, pid.to_string()).map_err(io(&tasks))
}

/// Remove what the container made: its monitoring group, and its control
/// group when it was made for it. Missing directories are fine (a create
/// that died before making them).
pub fn release(rec: &Record) -> Result<(), RdtError> {
    let rm = |p: &Path| match std::fs::remove_dir(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(p)(e)),
        _ => Ok(()),
    };
    if let Some(mon) = &rec.mon_group {
        rm(mon)?;
    }
    if rec.remove_group {
        rm(&rec.group)?;
    }
    Ok(())
}

/// One write per line, in order: resctrl parses one resource per write
/// and reports a bad one as that write's error.
fn write_schemata(schemata: &Path, lines: &[String]) -> Result<(), RdtError> {
    let mut f = std::fs::OpenOptions::new().write(true).create(true).open(schemata).map_err(io(schemata))?;
    for line in lines {
        f.write_all(format!("{line}\n").as_bytes()).map_err(|e| {
            RdtError::Io(schemata.to_path_buf(), std::io::Error::new(e.kind(), format!("writing {line:?}: {e}")))
        })?;
    }
    Ok(())
}

/// `update --l3-cache-schema/--mem-bw-schema`: new lines for the group.
pub fn update(rec: &Record, lines: &[String]) -> Result<(), RdtError> {
    write_schemata(&rec.group.join("schemata"), lines)
}

/// Does the kernel's schemata text hold `line`? The kernel prints every
/// domain of a resource (`L3:0=7ff;1=7ff`) with its own spacing, so each
/// `domain=value` of the line is looked up in that resource's line.
fn schemata_contains(have: &str, line: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    let Some((res, want)) = line.split_once(':') else { return false };
    let res = norm(res);
    have.lines().any(|h| {
        let Some((hres, hval)) = h.split_once(':') else { return false };
        if norm(hres) != res {
            return false;
        }
        let got: Vec<String> = hval.split(';').map(norm).collect();
        want.split(';').map(norm).filter(|d| !d.is_empty()).all(|d| {
            got.iter().any(|g| {
                g == &d || {
                    // Hex bitmasks may be printed without leading zeros.
                    let (gd, gv) = g.split_once('=').unwrap_or((g, ""));
                    let (dd, dv) = d.split_once('=').unwrap_or((&d, ""));
                    gd == dd && u64::from_str_radix(gv, 16).ok().is_some_and(|g| u64::from_str_radix(dv, 16).ok() == Some(g))
                }
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    /// A directory laid out as resctrl is: a group is a directory with
    /// `tasks` and `schemata` (the kernel makes them on mkdir; here the test
    /// does, for the groups that "exist").
    fn fake_group(dir: &Path, schemata: &str) {
        std::fs::create_dir_all(dir.join("mon_groups")).unwrap();
        std::fs::write(dir.join("tasks"), "").unwrap();
        std::fs::write(dir.join("schemata"), schemata).unwrap();
    }

    #[test]
    fn group_by_closid_or_container_id() {
        let root = Path::new("/sys/fs/resctrl");
        let r = plan(root, "c1", &rdt(serde_json::json!({}))).unwrap();
        assert_eq!((r.group.as_path(), r.remove_group, r.mon_group), (Path::new("/sys/fs/resctrl/c1"), true, None));
        let r = plan(root, "c1", &rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true}))).unwrap();
        assert_eq!(r.group, root.join("gold"));
        assert!(!r.remove_group);
        assert_eq!(r.mon_group.as_deref(), Some(Path::new("/sys/fs/resctrl/gold/mon_groups/c1")));
        let r = plan(root, "c1", &rdt(serde_json::json!({"closID": "/"}))).unwrap();
        assert_eq!((r.group.as_path(), r.remove_group), (root, false));
        assert!(plan(root, "c1", &rdt(serde_json::json!({"closID": "../x"}))).is_err());
    }

    #[test]
    fn schemata_are_written_in_the_spec_order() {
        let c = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20", "schemata": ["L2:0=f", "L3:0=ff"]
        }));
        assert_eq!(schemata_lines(&c).unwrap(), ["L3:0=7f0", "MB:0=20", "L2:0=f", "L3:0=ff"]);
        assert!(schemata_lines(&rdt(serde_json::json!({"memBwSchema": "L3:0=1"}))).is_err());
        assert!(schemata_lines(&rdt(serde_json::json!({"schemata": ["L3:0=1\nMB:0=2"]}))).is_err());
    }

    #[test]
    fn an_own_group_is_made_written_joined_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let c = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f", "schemata": ["MB:0=50"], "enableMonitoring": true}));
        let rec = plan(t.path(), "c1", &c).unwrap();
        apply(&rec, &c, 42).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("c1/schemata")).unwrap(), "L3:0=f\nMB:0=50\n");
        assert_eq!(std::fs::read_to_string(t.path().join("c1/mon_groups/c1/tasks")).unwrap(), "42");
        // The kernel's files go with their directories; plain ones do not,
        // so the test takes them away as each directory is removed.
        for f in ["c1/mon_groups/c1/tasks", "c1/schemata"] {
            std::fs::remove_file(t.path().join(f)).unwrap();
        }
        release(&Record { remove_group: false, ..rec.clone() }).unwrap();
        assert!(!t.path().join("c1/mon_groups/c1").exists());
        std::fs::remove_dir(t.path().join("c1/mon_groups")).unwrap();
        release(&rec).unwrap();
        assert!(!t.path().join("c1").exists());
        // Twice is fine: delete --force after a failed create.
        release(&rec).unwrap();
    }

    #[test]
    fn an_existing_named_group_must_hold_the_schemata() {
        let t = tempfile::tempdir().unwrap();
        fake_group(&t.path().join("gold"), "    L3:0=00ff;1=7ff\n    MB:0=100;1=100\n");
        let ok = rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:1=7ff", "memBwSchema": "MB:0=100"}));
        let rec = plan(t.path(), "c1", &ok).unwrap();
        apply(&rec, &ok, 7).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("gold/tasks")).unwrap(), "7");
        // Not rewritten.
        assert!(std::fs::read_to_string(t.path().join("gold/schemata")).unwrap().contains("L3:0=00ff"));
        let bad = rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=f"}));
        let e = apply(&plan(t.path(), "c1", &bad).unwrap(), &bad, 7).unwrap_err();
        assert!(matches!(e, RdtError::Mismatch { .. }), "{e}");
        // Named groups are never removed by the container.
        release(&rec).unwrap();
        assert!(t.path().join("gold").exists());
    }

    #[test]
    fn a_named_group_without_schemata_must_be_a_group() {
        let t = tempfile::tempdir().unwrap();
        let c = rdt(serde_json::json!({"closID": "missing"}));
        let rec = plan(t.path(), "c1", &c).unwrap();
        // mkdir succeeds on a plain directory where resctrl would make the
        // group: without tasks it is not a group, so nothing joins it.
        assert!(apply(&rec, &c, 7).is_err());
    }

    #[test]
    fn schemata_comparison_follows_the_kernels_format() {
        let have = "    L3:0=7ff;1=0ff\n    MB:0=100;1= 50\n";
        assert!(schemata_contains(have, "L3:0=7ff"));
        assert!(schemata_contains(have, "L3:1=ff"));
        assert!(schemata_contains(have, "MB:1=50"));
        assert!(!schemata_contains(have, "MB:1=60"));
        assert!(!schemata_contains(have, "L2:0=f"));
    }
}
