//! What CRIU must be told about a container, from its config and state:
//! which of its mounts come from outside (CRIU cannot make those itself
//! and needs them named on dump and given a source on restore), where its
//! cgroups are, and which of its stdio were pipes (runc's
//! descriptors.json, so that a restore can hand in new ones).

pub mod rpc;
pub mod swrk;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::cgroups::{CgroupRecord, Kind};

/// The file in the image directory naming the container's stdio (as runc's).
pub const DESCRIPTORS: &str = "descriptors.json";

/// CRIU's default binary; `--criu PATH` overrides it.
pub const DEFAULT_CRIU: &str = "criu";

/// Does `criu` work on this host (`criu check` passes within 10 s)? Its
/// version if so (`husk features` reports checkpoint support from this).
pub fn works(criu: &str) -> Option<String> {
    let run = |args: &[&str]| -> Option<std::process::Output> {
        let mut child = std::process::Command::new(criu)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return child.wait_with_output().ok(),
                Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    };
    run(&["check"]).filter(|o| o.status.success())?;
    let out = run(&["--version"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().find_map(|l| l.strip_prefix("Version: ")).unwrap_or("unknown").trim().to_string())
}

/// A failed CRIU action's error for the user: the last error line of its
/// log (CRIU's own message is its first, often the harmless complaint
/// about RLIMIT_NOFILE without CAP_SYS_RESOURCE), and where the log is.
pub fn failure(e: impl std::fmt::Display, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    // What failed is said before CRIU gives up ("Dumping FAILED."); what
    // it logs while cleaning up afterwards only follows from it.
    let end = lines.iter().rposition(|l| l.contains("FAILED.")).unwrap_or(lines.len());
    let last = lines[..end].iter().rev().find(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"));
    match last {
        Some(l) => format!("criu failed: {} (log: {})", l.trim(), log.display()),
        None => format!("{e} (log: {})", log.display()),
    }
}

/// Make the mount points the config's mounts need in the rootfs, before
/// CRIU mounts there (as runc's prepareCriuRestoreMounts): restoring into a
/// fresh copy of an image, Podman's `/etc/hosts` and the like do not exist
/// yet. A bind of a file gets a file, anything else a directory.
pub fn make_mount_points(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<(), String> {
    use std::os::fd::AsFd;
    let root = nix::fcntl::open(rootfs, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        let file = crate::rootfs::mounts::is_bind(m)
            && m.source().as_ref().is_some_and(|s| {
                let s = if s.is_absolute() { s.clone() } else { bundle.join(s) };
                std::fs::metadata(s).is_ok_and(|md| !md.is_dir())
            });
        let made = match file {
            true => crate::rootfs::secure::ensure_file(root.as_fd(), dest).map(drop),
            false => crate::rootfs::secure::mkdir_all(root.as_fd(), dest, 0o755).map(drop),
        };
        made.map_err(|e| format!("mount point {}: {e}", dest.display()))?;
    }
    Ok(())
}

/// One external mount: `key` is where it is in the container, `source`
/// what to mount there on restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub key: String,
    pub source: PathBuf,
}

impl External {
    /// The mount's name in the image: its mount point, as runc names them,
    /// but /dev/null for the masked files (runc's name too), which a
    /// restore then gives one source.
    pub fn name(&self) -> &str {
        match self.source == Path::new("/dev/null") {
            true => "/dev/null",
            false => &self.key,
        }
    }
}

/// Are the container's device nodes binds of the host's (see
/// [`external_mounts`])? In a user namespace, its own or the one husk runs
/// in, as init decides.
pub fn devices_are_binds(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User))
        || crate::rootless::in_partial_userns()
}

/// Every mount of the container that is a bind of something outside its
/// own mount tree, as runc declares them: the config's bind mounts; the
/// host's cgroup directories bound under a `cgroup` mount when there is no
/// cgroup namespace; the host's device nodes, which stand in for mknod in
/// a user namespace.
pub fn external_mounts(spec: &Spec, bundle: &Path, cgroup: Option<&CgroupRecord>, in_userns: bool, pid: Option<i32>) -> Vec<External> {
    let mut out = Vec::new();
    let linux = spec.linux().as_ref();
    let cgroupns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup));
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().display().to_string();
        let typ = m.typ().as_deref().unwrap_or("");
        if crate::rootfs::mounts::is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_absolute() { src } else { bundle.join(src) };
            out.push(External { key: dest, source: src });
        } else if (typ == "cgroup" || typ == "cgroup2") && !cgroupns {
            let placements = cgroup.map(|c| c.placements.as_slice()).unwrap_or(&[]);
            if placements.len() == 1 && placements[0].kind == Kind::V2 {
                out.push(External { key: dest, source: placements[0].path.clone() });
                continue;
            }
            for p in placements {
                let name = crate::rootfs::mounts::hierarchy_dir_name(p.kind, &p.controllers);
                out.push(External { key: format!("{}/{name}", dest.trim_end_matches('/')), source: p.path.clone() });
            }
        }
    }
    // Masked files are binds of /dev/null, which CRIU takes as external
    // (runc names them so too); a masked directory is a tmpfs of its own.
    // On dump only the files are named (`pid` given: their type is seen
    // through its root); a restore offers every path, and CRIU takes the
    // ones its image has.
    for p in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        let is_file = match pid {
            Some(pid) => std::fs::metadata(format!("/proc/{pid}/root{p}")).is_ok_and(|m| !m.is_dir()),
            None => true,
        };
        if is_file && !out.iter().any(|e| &e.key == p) {
            out.push(External { key: p.clone(), source: PathBuf::from("/dev/null") });
        }
    }
    if in_userns {
        let configured = linux.and_then(|l| l.devices().as_ref()).into_iter().flatten().map(|d| d.path().clone());
        for p in crate::rootfs::devices::DEFAULT_DEVICES.iter().map(|d| PathBuf::from(d.path)).chain(configured) {
            if !out.iter().any(|e| Path::new(&e.key) == p) {
                out.push(External { key: p.display().to_string(), source: p });
            }
        }
    }
    out
}

/// The cgroup root of each hierarchy for a restore: CRIU puts the restored
/// tasks there (relative to the hierarchy's mount, `ctrl` as CRIU names
/// the controllers; empty for cgroup v2).
pub fn cgroup_roots(cgroup: &CgroupRecord) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in &cgroup.placements {
        let Some(rel) = crate::cgroups::path_in_hierarchy(p) else { continue };
        let ctrl = match p.kind {
            Kind::V2 => String::new(),
            Kind::V1 => p.controllers.join(","),
        };
        out.push((ctrl, rel.display().to_string()));
    }
    out
}

/// What fds 0-2 of `pid` are (`/dev/null`, `pipe:[123]`, `/dev/pts/0`).
/// A fifo is named as CRIU names an external file, `file[MNT_ID:INODE]`
/// (hex): containerd's fifos, which husk's shim gives the container as
/// its stdout and stderr, are host paths CRIU cannot reach from the
/// container's mounts, so checkpoint declares them external and restore
/// hands in the new task's fifos under that name (inherit_fd).
pub fn descriptors(pid: i32) -> Vec<String> {
    (0..3)
        .map(|fd| {
            let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).map(|p| p.display().to_string()).unwrap_or_default();
            if link.starts_with("pipe:") {
                return link;
            }
            external_fifo(pid, fd).unwrap_or(link)
        })
        .collect()
}

/// `file[MNT_ID:INODE]` for an fd that is a fifo, as CRIU's dump names it.
fn external_fifo(pid: i32, fd: i32) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = format!("/proc/{pid}/fd/{fd}");
    let md = std::fs::metadata(&path).ok()?;
    if !md.file_type().is_fifo() || std::fs::read_link(&path).ok()?.to_string_lossy().starts_with("pipe:") {
        return None;
    }
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mnt: u64 = info.lines().find_map(|l| l.strip_prefix("mnt_id:"))?.trim().parse().ok()?;
    Some(format!("file[{mnt:x}:{:x}]", md.ino()))
}

/// Is this descriptors.json entry one a restore hands in (inherit_fd)?
pub fn inherited(desc: &str) -> bool {
    desc.starts_with("pipe:") || (desc.starts_with("file[") && desc.ends_with(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_named_as_criu_names_an_external_file() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("f");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let name = external_fifo(std::process::id() as i32, f.as_raw_fd()).unwrap();
        assert!(name.starts_with("file[") && name.ends_with(&format!(":{:x}]", std::fs::metadata(&fifo).unwrap().ino())), "{name}");
        assert!(inherited(&name));
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert_eq!(external_fifo(std::process::id() as i32, r.as_raw_fd()), None);
        assert!(inherited("pipe:[12]") && !inherited("/dev/null") && !inherited("/dev/pts/0"));
    }

    #[test]
    fn binds_and_devices_are_external() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]},
                {"destination": "/etc/hosts", "source": "/etc/hosts", "options": ["bind", "ro"]}
            ],
            "linux": {"namespaces": [{"type": "user"}]}
        }))
        .unwrap();
        let ext = external_mounts(&spec, Path::new("/b"), None, false, None);
        assert_eq!(
            ext,
            vec![
                External { key: "/data".into(), source: "/b/data".into() },
                External { key: "/etc/hosts".into(), source: "/etc/hosts".into() }
            ]
        );
        let ext = external_mounts(&spec, Path::new("/b"), None, true, None);
        assert!(ext.iter().any(|e| e.key == "/dev/null" && e.source == Path::new("/dev/null")), "{ext:?}");
    }
}
