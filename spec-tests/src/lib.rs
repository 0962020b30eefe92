//! Support code for the runtime-spec conformance tests.
//!
//! Every test builds a [`Container`] (its own bundle directory and its own
//! runtime state root, passed with `--root` on every runtime invocation),
//! tweaks the baseline [`Spec`] and drives the runtime given by `$RUNTIME`
//! (default `runc`).  The container's [`Drop`] always runs `delete --force`
//! and removes the temporary directories.

pub mod caps;
pub mod fsutil;
pub mod output;
pub mod rootfs;
pub mod spec;
pub mod console;

pub use caps::*;
pub use fsutil::*;
pub use output::*;
pub use rootfs::*;
pub use spec::*;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use serde_json::json;

/// Timeout for every single runtime invocation.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Poll `f` every 20 ms until it holds or `t` has passed; its last answer.
pub fn wait_for(mut f: impl FnMut() -> bool, t: Duration) -> bool {
    let end = Instant::now() + t;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The runtime binary under test (`$RUNTIME`, default `runc`).
pub fn runtime() -> String {
    match std::env::var("RUNTIME") {
        Ok(s) if !s.is_empty() => s,
        _ => "runc".to_string(),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique within this test process.
pub fn next_n() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A container id unique on this host (`st-<pid>-<n>`).
pub fn unique_id() -> String {
    format!("st-{}-{}", std::process::id(), next_n())
}

/// A test's container: bundle dir + state root + spec, cleaned up on drop.
pub struct Container {
    pub id: String,
    /// Per-test directory holding everything below.
    pub dir: PathBuf,
    /// Bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// State root passed as `--root`.
    pub root: PathBuf,
    /// The runtime binary this container's commands run ([`runtime`] unless
    /// a test points it at a copy).
    pub runtime: String,
    pub spec: Spec,
    /// `linux.cgroupsPath` set in the baseline spec.
    pub cgroups_path: String,
    /// When false, `create`/`run` do not (re)write config.json.
    autowrite: AtomicBool,
    private_rootfs: bool,
}

impl Container {
    /// A container using the shared (read-only by config) busybox rootfs.
    pub fn new(args: &[&str]) -> Container {
        Self::build(Spec::new(args), false)
    }

    /// A container running `sh -c script`.
    pub fn sh(script: &str) -> Container {
        Self::build(Spec::new(&["sh", "-c", script]), false)
    }

    /// A container with its own copy of the rootfs in `<bundle>/rootfs`
    /// (use when the runtime or the test mutates the rootfs).
    pub fn private(args: &[&str]) -> Container {
        Self::build(Spec::new(args), true)
    }

    pub fn private_sh(script: &str) -> Container {
        Self::private(&["sh", "-c", script])
    }

    fn build(mut spec: Spec, private: bool) -> Container {
        let n = next_n();
        let id = format!("st-{}-{}", std::process::id(), n);
        let dir = base_dir().join(format!("t-{n}"));
        let bundle = dir.join("bundle");
        let root = dir.join("state");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let cgroups_path = format!("/husk-st-{}-{}", std::process::id(), n);
        spec.set("/linux/cgroupsPath", json!(cgroups_path));
        if private {
            make_rootfs(&bundle.join("rootfs"));
            spec.set("/root/path", json!("rootfs"));
        } else {
            spec.set("/root/path", json!(shared_rootfs().to_str().unwrap()));
        }
        Container {
            id,
            dir,
            bundle,
            root,
            runtime: runtime(),
            spec,
            cgroups_path,
            autowrite: AtomicBool::new(true),
            private_rootfs: private,
        }
    }

    /// The rootfs directory on the host.
    pub fn rootfs(&self) -> PathBuf {
        if self.private_rootfs {
            self.bundle.join("rootfs")
        } else {
            shared_rootfs().to_path_buf()
        }
    }

    /// A fresh host directory belonging to this test (removed on drop).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Write the spec to `<bundle>/config.json`.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.spec.0).unwrap();
        std::fs::write(self.bundle.join("config.json"), text).unwrap();
    }

    /// Write arbitrary text as config.json and stop auto-writing the spec.
    pub fn write_raw_config(&self, text: &str) {
        self.autowrite.store(false, Ordering::SeqCst);
        std::fs::write(self.bundle.join("config.json"), text).unwrap();
    }

    /// Stop `create`/`run` from writing config.json (e.g. to test a missing one).
    pub fn no_autowrite(&self) {
        self.autowrite.store(false, Ordering::SeqCst);
    }

    fn maybe_write(&self) {
        if self.autowrite.load(Ordering::SeqCst) {
            self.write_config();
        }
    }

    /// A `Command` for the runtime with `--root <state root>` and `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root);
        c.args(args);
        c
    }

    /// Run the runtime with `--root` and `args`, bounded by [`TIMEOUT`].
    pub fn rt(&self, args: &[&str]) -> Output {
        exec(self.command(args), TIMEOUT)
    }

    /// Like [`Container::rt`], with fd 3 of the runtime open on a file
    /// holding `content` (for --preserve-fds tests).
    pub fn rt_with_fd3(&self, args: &[&str], content: &str) -> Output {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let p = self.dir.join("fd3.txt");
        std::fs::write(&p, content).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let raw = f.as_raw_fd();
        let mut cmd = self.command(args);
        // SAFETY: only fcntl/dup2 between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // dup2(3, 3) would keep FD_CLOEXEC: clear it explicitly then.
                let r = if raw == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(raw, 3) };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = exec(cmd, TIMEOUT);
        drop(f);
        o
    }

    /// `run --bundle B [extra] ID` in the foreground.
    pub fn run_with(&self, extra: &[&str]) -> Output {
        self.maybe_write();
        let b = self.bundle.to_str().unwrap().to_string();
        let mut args = vec!["run", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rt(&args)
    }

    /// `run --bundle B ID` in the foreground (stdin is /dev/null).
    pub fn run(&self) -> Output {
        self.run_with(&[])
    }

    /// `create --bundle B [extra] ID`.
    pub fn create_with(&self, extra: &[&str]) -> Output {
        self.maybe_write();
        let b = self.bundle.to_str().unwrap().to_string();
        let mut args = vec!["create", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rt(&args)
    }

    pub fn create(&self) -> Output {
        self.create_with(&[])
    }

    /// create, asserting success.
    #[track_caller]
    pub fn create_ok(&self) {
        let o = self.create();
        assert!(o.success(), "create failed: {o}");
    }

    pub fn start(&self) -> Output {
        self.rt(&["start", &self.id])
    }

    #[track_caller]
    pub fn start_ok(&self) {
        let o = self.start();
        assert!(o.success(), "start failed: {o}");
    }

    pub fn kill(&self, sig: &str) -> Output {
        self.rt(&["kill", &self.id, sig])
    }

    pub fn delete(&self) -> Output {
        self.rt(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> Output {
        self.rt(&["delete", "--force", &self.id])
    }

    /// Raw `state ID` output.
    pub fn state_out(&self) -> Output {
        self.rt(&["state", &self.id])
    }

    /// Parsed state, or None when `state` fails.
    pub fn state(&self) -> Option<Value> {
        let o = self.state_out();
        if !o.success() {
            return None;
        }
        Some(serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state is not JSON ({e}): {o}")))
    }

    pub fn status(&self) -> Option<String> {
        self.state().and_then(|v| v["status"].as_str().map(str::to_string))
    }

    /// The container process pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i64 {
        let s = self.state().expect("state failed");
        s["pid"].as_i64().unwrap_or_else(|| panic!("no pid in state {s}"))
    }

    /// Poll `state` until the status is `want` (bounded).
    pub fn wait_status(&self, want: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.status().as_deref() == Some(want) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    pub fn assert_status(&self, want: &str) {
        if !self.wait_status(want, Duration::from_secs(10)) {
            panic!("container never reached status {want:?}; last state: {:?}", self.state());
        }
    }

    /// Is the id listed by `list -q`?
    pub fn listed(&self) -> bool {
        let o = self.rt(&["list", "-q"]);
        o.stdout.lines().any(|l| l.trim() == self.id)
    }

    /// Existing cgroup dirs for this container's cgroupsPath on the host.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.cgroups_path)
    }
}

/// Existing `/sys/fs/cgroup[/<controller>]/<path>` dirs.
pub fn cgroup_dirs(cg: &str) -> Vec<PathBuf> {
    let rel = cg.trim_start_matches('/');
    let mut v = Vec::new();
    let top = Path::new("/sys/fs/cgroup");
    if top.join(rel).is_dir() {
        v.push(top.join(rel));
    }
    if let Ok(rd) = std::fs::read_dir(top) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.is_dir() {
                v.push(p);
            }
        }
    }
    v
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.delete_force();
        // Best-effort hygiene; the delete tests check the runtime removes these itself.
        for _ in 0..50 {
            let dirs = self.cgroup_dirs();
            if dirs.is_empty() {
                break;
            }
            for d in dirs {
                let _ = std::fs::remove_dir(&d);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        safe_remove(&self.dir);
    }
}

/// Read a namespace link of the test process (host side), e.g. `host_ns("uts")`.
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Value of a `Key:\tvalue` line of a /proc/PID/status style text.
pub fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// One parsed line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    pub options: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: Vec<String>,
    pub major_minor: String,
    /// Optional fields (e.g. `shared:N`, `master:N`).
    pub optional: Vec<String>,
}

impl MountInfo {
    pub fn has_opt(&self, o: &str) -> bool {
        self.options.iter().any(|x| x == o)
    }
    pub fn has_super_opt(&self, o: &str) -> bool {
        self.super_options.iter().any(|x| x == o)
    }
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else { continue };
        if f.len() < dash + 3 || dash < 6 {
            continue;
        }
        v.push(MountInfo {
            major_minor: f[2].to_string(),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            root: unescape_mi(f[3]),
            mount_point: unescape_mi(f[4]),
            options: f[5].split(',').map(str::to_string).collect(),
            fstype: f[dash + 1].to_string(),
            source: f[dash + 2].to_string(),
            super_options: f.get(dash + 3).map(|s| s.split(',').map(str::to_string).collect()).unwrap_or_default(),
        });
    }
    v
}

fn unescape_mi(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// The last (top-most) mount at `mount_point` in a mountinfo text.
pub fn mount_at(text: &str, mount_point: &str) -> Option<MountInfo> {
    parse_mountinfo(text).into_iter().filter(|m| m.mount_point == mount_point).last()
}

/// Host mounts (in the test's mount namespace) at or below `p`, as
/// "MOUNTPOINT FSTYPE SOURCE".
pub fn host_mounts_under(p: &Path) -> Vec<String> {
    let p = p.to_str().unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    parse_mountinfo(&mi)
        .into_iter()
        .filter(|m| m.mount_point == p || m.mount_point.starts_with(&format!("{p}/")))
        .map(|m| format!("{} {} {}", m.mount_point, m.fstype, m.source))
        .collect()
}

/// Detach leaked mounts at or below `p` (so a failing test still cleans up).
pub fn umount_under(p: &Path) {
    for _ in 0..10 {
        let m = host_mounts_under(p);
        if m.is_empty() {
            return;
        }
        for line in m {
            let mp = std::ffi::CString::new(line.split(' ').next().unwrap()).unwrap();
            // SAFETY: umount2 reads the C string; a mount already gone fails harmlessly.
            unsafe { libc::umount2(mp.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
