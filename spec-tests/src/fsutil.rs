//! Temporary directories that never cross mount points when removed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static BASE: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_base_at_exit() {
    if let Some(b) = BASE.get() {
        safe_remove(b);
    }
}

/// `/tmp/husk-st-<pid>`: parent of every temp dir of this test process.
/// Removed at process exit; stale ones of dead processes are removed on creation.
pub fn base_dir() -> &'static Path {
    BASE.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("husk-st-").and_then(|p| p.parse::<u32>().ok()) {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        safe_remove(&e.path());
                    }
                }
            }
        }
        let b = tmp.join(format!("husk-st-{}", std::process::id()));
        std::fs::create_dir_all(&b).unwrap();
        unsafe { libc::atexit(remove_base_at_exit) };
        b
    })
}

/// Recursively remove `p` without descending into other file systems
/// (a leaked mount below it is left alone rather than emptied).
pub fn safe_remove(p: &Path) {
    let Ok(md) = std::fs::symlink_metadata(p) else { return };
    if md.is_dir() {
        rm_dir(p, md.dev());
    } else {
        let _ = std::fs::remove_file(p);
    }
}

fn rm_dir(p: &Path, dev: u64) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else { continue };
            if md.is_dir() {
                if md.dev() == dev {
                    rm_dir(&path, dev);
                }
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let _ = std::fs::remove_dir(p);
}

/// A tmpfs mounted at `dir` with `opts` for one test, lazily unmounted on
/// drop (also when the test panics).
pub struct TmpfsMount(pub PathBuf);

impl TmpfsMount {
    pub fn new(dir: &Path, opts: &str) -> TmpfsMount {
        let o = crate::host("mount", &["-t", "tmpfs", "-o", opts, "husk-st-tmpfs", dir.to_str().unwrap()]);
        assert!(o.success(), "{o}");
        TmpfsMount(dir.to_path_buf())
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = crate::host("umount", &["-l", self.0.to_str().unwrap()]);
    }
}
