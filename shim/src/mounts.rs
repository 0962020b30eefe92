//! The rootfs mounts of a Create request (an overlay from the snapshotter,
//! a bind mount, ...), mounted onto `<bundle>/rootfs` and unmounted again.

use std::path::{Path, PathBuf};

use containerd_shim::protos::types::mount::Mount;

use crate::error::{io, Result, ShimError};

/// Unmounts on drop unless disarmed: a failed Create leaves nothing mounted.
pub struct Mounted {
    target: Option<PathBuf>,
}

impl Mounted {
    pub fn disarm(mut self) -> Option<PathBuf> {
        self.target.take()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(t) = &self.target {
            let _ = unmount(t);
        }
    }
}

pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<Mounted> {
    if mounts.is_empty() {
        return Ok(Mounted { target: None });
    }
    std::fs::create_dir_all(target).map_err(io(format!("creating {}", target.display())))?;
    let mut guard = Mounted { target: None };
    for m in mounts {
        let typ = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let src = (!m.source.is_empty()).then_some(m.source.as_str());
        containerd_shim::mount::mount_rootfs(typ, src, &m.options, target)
            .map_err(|e| ShimError::Mount(format!("{} {} on {}: {e}", m.type_, m.source, target.display())))?;
        guard.target = Some(target.to_path_buf());
    }
    Ok(guard)
}

/// Unmount everything at `target` (stacked mounts too).
pub fn unmount(target: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    for _ in 0..64 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(nix::Error::EBUSY) => {
                umount2(target, MntFlags::MNT_DETACH)
                    .map_err(|e| ShimError::Sys(format!("unmounting {}", target.display()), e))?;
            }
            Err(e) => return Err(ShimError::Sys(format!("unmounting {}", target.display()), e)),
        }
    }
    Ok(())
}
