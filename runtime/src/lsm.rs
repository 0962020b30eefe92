//! Linux security modules: AppArmor profiles and SELinux process labels are
//! applied only where the host runs that LSM; asking for one elsewhere is an
//! error (as in runc), never a silent no-op. (A mount label, which confines
//! nothing by itself, is ignored with a warning there: see `create`.)

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("apparmor profile requested but AppArmor is not enabled on this host")]
    NoAppArmor,
    #[error("SELinux label requested but SELinux is not enabled on this host")]
    NoSelinux,
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

pub fn check_apparmor() -> Result<(), LsmError> {
    if apparmor_enabled() {
        Ok(())
    } else {
        Err(LsmError::NoAppArmor)
    }
}

pub fn check_selinux() -> Result<(), LsmError> {
    if selinux_enabled() {
        Ok(())
    } else {
        Err(LsmError::NoSelinux)
    }
}

/// Set the label the next execve runs under: AppArmor's `exec <profile>`
/// or an SELinux context, written to /proc/PID/task/TID/attr/exec through
/// husk's own verified procfs (never a path the container could have
/// mounted over: CVE-2019-16884).
pub fn set_exec_label(kind: LabelKind, label: &str) -> Result<(), crate::procfs::ProcError> {
    let proc = crate::procfs::Proc::open()?;
    let (pid, tid) = (nix::unistd::getpid(), nix::unistd::gettid());
    let value = match kind {
        LabelKind::AppArmor => format!("exec {label}"),
        LabelKind::Selinux => label.to_string(),
    };
    proc.write(&format!("{pid}/task/{tid}/attr/exec"), value.as_bytes())
}

#[derive(Clone, Copy, Debug)]
pub enum LabelKind {
    AppArmor,
    Selinux,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_matches_the_host() {
        assert_eq!(check_apparmor().is_ok(), apparmor_enabled());
        assert_eq!(check_selinux().is_ok(), selinux_enabled());
    }

    #[test]
    fn label_write_reaches_the_kernel_through_verified_procfs() {
        // Without an LSM to accept it the kernel refuses the value itself
        // (EINVAL/EOPNOTSUPP): the write got past path resolution and the
        // procfs check, which is what this exercises.
        match set_exec_label(LabelKind::Selinux, "system_u:system_r:container_t:s0") {
            Ok(()) => assert!(selinux_enabled()),
            Err(crate::procfs::ProcError::Write { err, .. }) => {
                assert!(matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::ENOENT)), "{err}")
            }
            Err(e) => panic!("{e}"),
        }
    }
}
