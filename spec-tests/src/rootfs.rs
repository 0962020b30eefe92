//! The busybox root file system.

use std::path::Path;
use std::sync::OnceLock;

pub const BUSYBOX: &str = "/bin/busybox";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
tester:x:1000:1000:tester:/tmp:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\ntester:x:1000:\nnogroup:x:65534:\n";

static SHARED: OnceLock<std::path::PathBuf> = OnceLock::new();

/// The rootfs shared by all tests of this process (built once).
pub fn shared_rootfs() -> &'static Path {
    SHARED.get_or_init(|| {
        let p = crate::base_dir().join("rootfs");
        make_rootfs(&p);
        p
    })
}

fn applets() -> &'static Vec<String> {
    static A: OnceLock<Vec<String>> = OnceLock::new();
    A.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("running /bin/busybox --list (install busybox-static)");
        assert!(out.status.success(), "busybox --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s != "busybox" && !s.contains('/'))
            .collect()
    })
}

/// Build a busybox rootfs at `dir`.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = dir.join("bin/busybox");
    // Hard-link from the shared rootfs when it exists (cheap), else copy.
    let linked = match SHARED.get() {
        Some(s) if s != dir => std::fs::hard_link(s.join("bin/busybox"), &bb).is_ok(),
        _ => false,
    };
    if !linked {
        std::fs::copy(BUSYBOX, &bb).expect("copy /bin/busybox (install busybox-static)");
    }
    for a in applets() {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(a));
    }
    std::fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(dir.join("etc/group"), GROUP).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}
