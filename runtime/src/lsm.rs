//! Linux security modules: AppArmor profiles and SELinux labels are applied
//! only where the host runs that LSM; asking for one elsewhere is an error
//! (as in runc), never a silent no-op.

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
