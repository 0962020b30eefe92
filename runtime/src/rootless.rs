//! Running without root (runc's `--rootless`): deciding whether husk is
//! rootless, where its state goes, and writing a user namespace's id maps
//! as an ordinary user.
//!
//! An ordinary user may map only its own uid and gid into a user namespace
//! it creates, and its own gid only after denying setgroups(2) there. Any
//! other mapping (several ranges from /etc/subuid and /etc/subgid) goes
//! through the setuid helpers newuidmap and newgidmap, as runc, crun and
//! Podman do. A caller that holds CAP_SETUID/CAP_SETGID in its own user
//! namespace (root, or root inside Podman's rootless namespace) writes any
//! mapping within its namespace itself.

use std::path::PathBuf;
use std::process::Command;

use oci_spec::runtime::LinuxIdMapping;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("invalid --rootless value {0:?}: use true, false or auto")]
    Flag(String),
    #[error("{file}: {err}")]
    Write { file: String, err: String },
    #[error("{tool}: {msg}")]
    Helper { tool: &'static str, msg: String },
}

/// `--rootless`: true, false, or auto (and no flag means auto), as runc
/// decides it: rootless when the effective uid is not 0, or when running as
/// root of a user namespace that does not map the whole id range (root
/// inside Podman's rootless namespace, `unshare -r`).
pub fn decide(flag: Option<&str>) -> Result<bool, RootlessError> {
    match flag.unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root() || in_partial_userns()),
        other => Err(RootlessError::Flag(other.to_string())),
    }
}

/// Inside a user namespace that does not map every id: the initial
/// namespace's uid_map is exactly "0 0 4294967295".
/// Read once per process (`run` asks in the CLI and again in the
/// container's init, which is forked in the same user namespace).
pub fn in_partial_userns() -> bool {
    static PARTIAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PARTIAL.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    })
}

/// Our effective uid as the initial user namespace sees it (root of
/// Podman's rootless namespace is the user who runs Podman): from the
/// line of /proc/self/uid_map that maps it, one namespace up.
pub fn host_euid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.lines()
        .find_map(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let [inside, outside, len] = f[..] else { return None };
            (u64::from(euid) >= inside && u64::from(euid) < inside + len).then(|| (outside + u64::from(euid) - inside) as u32)
        })
        .unwrap_or(euid)
}

/// The default state root, as runc picks its own: `$XDG_RUNTIME_DIR/husk`
/// for an ordinary user (and for root of a partial user namespace whose
/// `$USER` is not root), else /run/husk.
pub fn default_state_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    let honour = match &xdg {
        None => false,
        Some(_) if !nix::unistd::geteuid().is_root() => true,
        Some(_) => in_partial_userns() && std::env::var("USER").map_or(true, |u| u != "root"),
    };
    match xdg {
        Some(x) if honour => PathBuf::from(x).join("husk"),
        _ => PathBuf::from("/run/husk"),
    }
}

/// The state's owner, as `list` shows it: the caller's user name for an
/// ordinary user ("#UID" when /etc/passwd has none, as runc), empty for
/// root, which `list` shows as root.
pub fn owner() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return String::new();
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Write the uid and gid maps of the new user namespace of `pid`: itself
/// where it may, else through newuidmap/newgidmap. setgroups is denied only
/// where the kernel demands it (an unprivileged gid map of the caller's own
/// gid), so that a namespace mapped by the helpers keeps setgroups(2).
pub fn write_id_maps(proc: &crate::procfs::Proc, pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<(), RootlessError> {
    if !uid.is_empty() {
        write_map(proc, pid, "uid_map", uid, "newuidmap")?;
    }
    if !gid.is_empty() {
        if !has_cap(caps::Capability::CAP_SETGID) && only_own(gid, nix::unistd::getegid().as_raw()) {
            proc.write(&format!("{pid}/setgroups"), b"deny").map_err(|e| RootlessError::Write {
                file: "setgroups".into(),
                err: e.to_string(),
            })?;
        }
        write_map(proc, pid, "gid_map", gid, "newgidmap")?;
    }
    Ok(())
}

fn write_map(proc: &crate::procfs::Proc, pid: i32, file: &str, maps: &[LinuxIdMapping], tool: &'static str) -> Result<(), RootlessError> {
    let own = match file {
        "uid_map" => nix::unistd::geteuid().as_raw(),
        _ => nix::unistd::getegid().as_raw(),
    };
    let cap = match file {
        "uid_map" => caps::Capability::CAP_SETUID,
        _ => caps::Capability::CAP_SETGID,
    };
    // Without the capability the kernel accepts only one line, of the
    // caller's own id: anything else needs the helper.
    if has_cap(cap) || only_own(maps, own) {
        return proc.write(&format!("{pid}/{file}"), map_text(maps).as_bytes()).map_err(|e| RootlessError::Write {
            file: file.into(),
            err: e.to_string(),
        });
    }
    run_helper(tool, pid, maps)
}

/// Just the caller's own id, once.
fn only_own(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id() == own && m.size() == 1)
}

fn has_cap(cap: caps::Capability) -> bool {
    caps::has_cap(None, caps::CapSet::Effective, cap).unwrap_or(false)
}

pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// `newuidmap PID ID LOWER COUNT ...`: the setuid helper checks the ranges
/// against /etc/subuid (/etc/subgid) for the calling user.
fn run_helper(tool: &'static str, pid: i32, maps: &[LinuxIdMapping]) -> Result<(), RootlessError> {
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
    }
    let out = cmd.output().map_err(|e| RootlessError::Helper {
        tool,
        msg: match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "not found: mapping more than the caller's own id as an ordinary user needs {tool} (Debian's uidmap package) and ranges in /etc/sub{}id",
                if tool == "newuidmap" { "u" } else { "g" }
            ),
            _ => e.to_string(),
        },
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(RootlessError::Helper {
            tool,
            msg: format!("{} ({})", err.trim(), out.status),
        });
    }
    Ok(())
}

/// Keeps this process dumpable while it forks a child whose id maps an
/// ordinary user writes: the kernel lets that user open the /proc files
/// of its own processes only while they are dumpable (newuidmap checks
/// the same). Dropped in the parent right after the fork, which makes it
/// non-dumpable again; the child keeps it until it is mapped.
pub struct Dumpable(bool);

impl Dumpable {
    pub fn until_mapped(needed: bool) -> Dumpable {
        if needed {
            let _ = nix::sys::prctl::set_dumpable(true);
        }
        Dumpable(needed)
    }
}

impl Drop for Dumpable {
    fn drop(&mut self) {
        if self.0 {
            let _ = nix::sys::prctl::set_dumpable(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": s})).unwrap()
    }

    #[test]
    fn flag_values() {
        assert!(decide(Some("true")).unwrap());
        assert!(!decide(Some("false")).unwrap());
        assert!(decide(Some("yes")).is_err());
    }

    #[test]
    fn own_id_alone_needs_no_helper() {
        assert!(only_own(&[m(0, 1000, 1)], 1000));
        assert!(!only_own(&[m(0, 1000, 2)], 1000));
        assert!(!only_own(&[m(0, 1000, 1), m(1, 100000, 65536)], 1000));
        assert!(!only_own(&[m(0, 1001, 1)], 1000));
    }

    #[test]
    fn map_lines() {
        assert_eq!(map_text(&[m(0, 1000, 1), m(1, 100000, 65536)]), "0 1000 1\n1 100000 65536\n");
    }
}
