//! `exec --cgroup`: run an exec'd process in an existing sub-cgroup of the
//! container's, as runc does. Each argument is `[CONTROLLERS:]PATH`:
//! `sub` for every hierarchy, `cpu,memory:sub` for those controllers' v1
//! hierarchies; a controller-specific one wins over the plain one. On
//! cgroup v2 only the plain form applies. The path stays inside the
//! container's cgroup: no `..`, and a leading `/` means its top.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupRecord, Kind};

/// Parse the `--cgroup` arguments into controller → path ("" for all).
pub fn parse(args: &[String]) -> Result<HashMap<String, PathBuf>, CgroupError> {
    let bad = |a: &str, why: &'static str| CgroupError::InvalidPath(a.to_string(), why);
    let mut out = HashMap::new();
    for a in args {
        let (ctrls, path) = match a.split_once(':') {
            Some((c, p)) => (c.split(',').map(str::to_string).collect::<Vec<_>>(), p),
            None => (vec![String::new()], a.as_str()),
        };
        let rel: PathBuf = Path::new(path).components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(a, "--cgroup must stay inside the container's cgroup (no ..)"));
        }
        if rel.as_os_str().is_empty() {
            return Err(bad(a, "--cgroup needs a sub-cgroup path"));
        }
        for c in ctrls {
            if c.is_empty() && a.contains(':') {
                return Err(bad(a, "empty controller before ':'"));
            }
            if out.insert(c.clone(), rel.clone()).is_some() {
                return Err(bad(a, "the same controller (or the plain path) is given twice"));
            }
        }
    }
    Ok(out)
}

impl CgroupRecord {
    /// The placements of a process started in the sub-cgroups `subs`
    /// names (see `parse`). Each must exist.
    pub fn with_sub_cgroups(&self, subs: &HashMap<String, PathBuf>) -> Result<CgroupRecord, CgroupError> {
        let mut rec = self.clone();
        for p in &mut rec.placements {
            let sub = match p.kind {
                Kind::V2 => subs.get(""),
                Kind::V1 => p.controllers.iter().find_map(|c| subs.get(c)).or_else(|| subs.get("")),
            };
            if let Some(sub) = sub {
                let dir = p.path.join(sub);
                if !dir.is_dir() {
                    return Err(CgroupError::Io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such sub-cgroup of the container (exec --cgroup)")));
                }
                p.path = dir;
            }
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Placement;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_parse_like_runcs() {
        let m = parse(&args(&["sub/a", "cpu,memory:other"])).unwrap();
        assert_eq!(m[""], PathBuf::from("sub/a"));
        assert_eq!(m["cpu"], PathBuf::from("other"));
        assert_eq!(m["memory"], PathBuf::from("other"));
        assert_eq!(parse(&args(&["/top"])).unwrap()[""], PathBuf::from("top"));
        for bad in [&["../escape"][..], &["a/../../b"], &["a", "b"], &[":x"], &["cpu:a", "cpu:b"], &["/"]] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_matching_placements_move_down() {
        let t = tempfile::tempdir().unwrap();
        let (cpu, mem, uni) = (t.path().join("cpu/c"), t.path().join("memory/c"), t.path().join("unified/c"));
        for d in [&cpu, &mem, &uni] {
            std::fs::create_dir_all(d.join("s")).unwrap();
        }
        std::fs::create_dir_all(cpu.join("only-cpu")).unwrap();
        let rec = CgroupRecord {
            placements: vec![
                Placement { kind: Kind::V1, controllers: vec!["cpu".into(), "cpuacct".into()], path: cpu.clone(), systemd: false },
                Placement { kind: Kind::V1, controllers: vec!["memory".into()], path: mem.clone(), systemd: false },
                Placement { kind: Kind::V2, controllers: vec![], path: uni.clone(), systemd: false },
            ],
            created: vec![],
            systemd_unit: None,
            systemd_user: false,
        };
        let got = rec.with_sub_cgroups(&parse(&args(&["s", "cpuacct:only-cpu"])).unwrap()).unwrap();
        let paths: Vec<_> = got.placements.iter().map(|p| p.path.clone()).collect();
        assert_eq!(paths, [cpu.join("only-cpu"), mem.join("s"), uni.join("s")]);
        assert!(rec.with_sub_cgroups(&parse(&args(&["missing"])).unwrap()).is_err());
    }
}
