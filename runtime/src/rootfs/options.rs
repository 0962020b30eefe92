//! Mount option strings (as in config.json and fstab) to mount(2) flags.

use nix::mount::MsFlags;

#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, ...): matter for remounts.
    pub cleared: MsFlags,
    /// Propagation changes, applied with separate mount(2) calls.
    pub propagation: Vec<MsFlags>,
    /// Everything the kernel takes as filesystem data (`mode=755`, ...).
    pub data: Vec<String>,
    pub bind: bool,
    pub tmpcopyup: bool,
    /// Recursive options (`rro`, `rnosuid`, ...): mount_setattr(2) attributes
    /// set and cleared on the mount and every mount below it.
    pub rec_set: u64,
    pub rec_clr: u64,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            tmpcopyup: false,
            rec_set: 0,
            rec_clr: 0,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(opts: &[S]) -> MountOptions {
        let mut o = MountOptions::default();
        for opt in opts {
            let opt = opt.as_ref();
            if let Some((set, flag)) = flag(opt) {
                if set {
                    o.flags |= flag;
                    o.cleared &= !flag;
                } else {
                    o.flags &= !flag;
                    o.cleared |= flag;
                }
                continue;
            }
            if let Some(p) = propagation(opt) {
                o.propagation.push(p);
                continue;
            }
            if let Some((_, clear, attr)) = RECURSIVE_OPTIONS.iter().find(|(n, _, _)| *n == opt) {
                if *clear {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                } else {
                    o.rec_set |= attr;
                    o.rec_clr &= !attr;
                    // The access-time setting is a field, not a bit: it is
                    // only changed with the whole field cleared too.
                    if attr & MOUNT_ATTR_ATIME_MASK == *attr {
                        o.rec_clr |= MOUNT_ATTR_ATIME_MASK;
                    }
                }
                continue;
            }
            match opt {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.flags |= MsFlags::MS_REC;
                }
                "tmpcopyup" => o.tmpcopyup = true,
                // Id-mapped mounts: see rootfs::idmap, which reads them.
                "idmap" | "ridmap" => {}
                "" => {}
                other => o.data.push(other.to_string()),
            }
        }
        if o.bind {
            o.flags |= MsFlags::MS_BIND;
        }
        o
    }

    pub fn data(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }

    /// Flags that a bind mount needs a second, remounting call for.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags
            & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Every flag option: (name, sets the flag?, flag).
pub const FLAG_OPTIONS: &[(&str, bool, MsFlags)] = &[
    ("defaults", true, MsFlags::empty()),
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("suid", false, MsFlags::MS_NOSUID),
    ("nodev", true, MsFlags::MS_NODEV),
    ("dev", false, MsFlags::MS_NODEV),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("atime", false, MsFlags::MS_NOATIME),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("lazytime", true, MsFlags::MS_LAZYTIME),
    ("nolazytime", false, MsFlags::MS_LAZYTIME),
    ("silent", true, MsFlags::MS_SILENT),
    ("loud", false, MsFlags::MS_SILENT),
];

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// Recursive options, as runc names them: (name, clears the attribute?,
/// mount_setattr attribute).
pub const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, MOUNT_ATTR_RELATIME),
    ("rnoatime", false, MOUNT_ATTR_NOATIME),
    ("ratime", true, MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

pub const PROPAGATION_OPTIONS: &[&str] =
    &["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

/// Options with special meaning beyond flags and propagation.
pub const OTHER_OPTIONS: &[&str] = &["bind", "rbind", "tmpcopyup", "idmap", "ridmap"];

fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    FLAG_OPTIONS.iter().find(|(n, _, _)| *n == opt).map(|(_, set, f)| (*set, *f))
}

pub fn propagation(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = MountOptions::parse(&["nosuid", "noexec", "mode=755", "size=65536k", "rslave", "ro"]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY));
        assert_eq!(o.data().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn recursive_options_become_mount_attributes_not_data() {
        let o = MountOptions::parse(&["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]);
        assert!(o.data.is_empty(), "{:?}", o.data);
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME_MASK);
        let o = MountOptions::parse(&["rro", "rrw"]);
        assert_eq!((o.rec_set, o.rec_clr), (0, MOUNT_ATTR_RDONLY));
    }

    #[test]
    fn later_options_win_and_rbind_is_recursive() {
        let o = MountOptions::parse(&["ro", "rw", "rbind"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert!(o.bind);
        assert!(!o.remount_flags().contains(MsFlags::MS_BIND));
    }

    #[test]
    fn idmap_options_are_not_filesystem_data() {
        let o = MountOptions::parse(&["rbind", "ridmap", "idmap", "ro"]);
        assert!(o.data.is_empty(), "{:?}", o.data);
        assert!(o.flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC));
    }
}
