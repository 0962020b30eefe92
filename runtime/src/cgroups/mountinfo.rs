//! Which cgroup hierarchies the host mounts, and where husk itself sits in each.

use std::path::PathBuf;

use super::{CgroupError, Kind};

#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub kind: Kind,
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// husk's own cgroup in this hierarchy, relative to the mount's root.
    pub own_path: PathBuf,
}

pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| CgroupError::Io("/proc/self/mountinfo".into(), e))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| CgroupError::Io("/proc/self/cgroup".into(), e))?;
    Ok(parse(&mountinfo, &own))
}

pub(crate) fn parse(mountinfo: &str, own_cgroup: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mount_point) = (pre[3], unescape(pre[4]));
        let kind = match post[0] {
            "cgroup" => Kind::V1,
            "cgroup2" => Kind::V2,
            _ => continue,
        };
        let controllers: Vec<String> = if kind == Kind::V1 {
            post[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                .filter(|o| !o.contains('=') || o.starts_with("name="))
                .filter(|o| !matches!(*o, "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"))
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        // The same hierarchy mounted twice (bind mounts): keep the first.
        if out
            .iter()
            .any(|h| h.kind == kind && h.controllers == controllers)
        {
            continue;
        }
        let Some(own_path) = own_path(own_cgroup, kind, &controllers) else {
            continue;
        };
        let own_path = match own_path.strip_prefix(root) {
            Ok(p) => PathBuf::from("/").join(p),
            Err(_) => own_path,
        };
        out.push(Hierarchy {
            kind,
            controllers,
            mount_point: mount_point.into(),
            own_path,
        });
    }
    out
}

fn own_path(own_cgroup: &str, kind: Kind, controllers: &[String]) -> Option<PathBuf> {
    for line in own_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match kind {
            Kind::V2 => ctrls.is_empty(),
            Kind::V1 => {
                let mut a: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
                let mut b: Vec<&str> = controllers.iter().map(String::as_str).collect();
                a.sort_unstable();
                b.sort_unstable();
                !a.is_empty() && a == b
            }
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "\
4:memory:/sandbox/abc
3:cpu,cpuacct:/
2:name=systemd:/
0::/
";

    #[test]
    fn hybrid_host_yields_every_hierarchy_with_own_paths() {
        let hs = parse(MOUNTINFO, OWN);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].controllers, vec!["memory"]);
        assert_eq!(hs[0].own_path, PathBuf::from("/sandbox/abc"));
        assert_eq!(hs[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[2].controllers, vec!["name=systemd"]);
        assert_eq!(hs[3].kind, Kind::V2);
        assert_eq!(hs[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn pure_v2_host() {
        let hs = parse(
            "25 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice\n",
        );
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].kind, Kind::V2);
        assert_eq!(hs[0].own_path, PathBuf::from("/user.slice"));
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
