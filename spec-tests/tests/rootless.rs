//! Rootless: an ordinary user runs the runtime (runc's `--rootless`, auto
//! for a non-root caller). Every runtime call here runs as the test user
//! through `setpriv --reuid --regid --init-groups` with a clean environment
//! (`XDG_RUNTIME_DIR` a per-test 0700 directory of the user, so the state
//! goes to its default place, `$XDG_RUNTIME_DIR/husk` or `.../runc`; `HOME`,
//! `USER`, `LOGNAME`, `PATH`), never with `--root`.
//!
//! The test user: `husk-rl-test`, uid and gid 2101, with the range
//! 300000:65536 in /etc/subuid and /etc/subgid (for newuidmap/newgidmap,
//! Debian's `uidmap`). It is made once per test binary if missing, under a
//! lock (/run/lock/husk-rl-test.create), and an /etc/sub[ug]id line is only
//! added when that exact line is not there. Each test binary holds a shared
//! lock (/run/lock/husk-rl-test.users) while it runs; at exit the last one
//! (the only one that gets the lock exclusively) removes the user, its group
//! and its subordinate ranges. A run that is killed leaves the user behind;
//! the next run takes it over (it is recognised by its uid and GECOS field;
//! a different user of that name or uid fails the tests with a reason).
//! The two empty lock files stay in /run/lock.
//!
//! Written for this cgroup v1 (hybrid) host, where an ordinary user owns no
//! cgroup: a rootless container has none. Where runc 1.1.5 behaves
//! differently from husk, the test asserts each runtime's own behaviour, in
//! a branch saying how runc differs; runc is recognised by `--version`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use spec_tests::*;

const USER: &str = "husk-rl-test";
const UID: u32 = 2101;
const GID: u32 = 2101;
const SUB_START: u32 = 300000;
const SUB_COUNT: u32 = 65536;
const GECOS: &str = "husk spec-tests rootless user";
const CREATE_LOCK: &str = "/run/lock/husk-rl-test.create";
const USERS_LOCK: &str = "/run/lock/husk-rl-test.users";
const PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ---------- the test user ----------

struct Setup {
    /// The runtime under test, a path the test user may execute.
    bin: PathBuf,
    runc: bool,
    /// Shared lock on USERS_LOCK for the life of this process.
    users_lock: File,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

fn lock_file(path: &str) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn flock(f: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on an fd we own.
    unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
}

fn must(prog: &str, args: &[&str]) -> Output {
    let o = host(prog, args);
    assert!(o.success(), "{o}");
    o
}

/// `getent DB KEY` fields, or None when there is no such entry.
fn getent(db: &str, key: &str) -> Option<Vec<String>> {
    let o = host("getent", &[db, key]);
    match o.status {
        Some(0) => Some(o.stdout.trim().split(':').map(str::to_string).collect()),
        Some(2) => None,
        _ => panic!("getent (libc-bin) failed: {o}"),
    }
}

fn sub_line() -> String {
    format!("{USER}:{SUB_START}:{SUB_COUNT}")
}

/// Make the test user (and group, and subordinate ranges) if missing.
/// Called with CREATE_LOCK held.
fn ensure_user() {
    match getent("passwd", USER) {
        Some(f) => assert!(
            f.get(2).map(String::as_str) == Some(&UID.to_string()) && f.get(3).map(String::as_str) == Some(&GID.to_string()) && f.get(4).map(String::as_str) == Some(GECOS),
            "a user {USER} exists that these tests did not make (want uid/gid {UID}/{GID}, GECOS {GECOS:?}): {f:?}"
        ),
        None => {
            if let Some(f) = getent("passwd", &UID.to_string()) {
                panic!("uid {UID} belongs to {:?}: the rootless tests need it for {USER}", f[0]);
            }
            match getent("group", USER) {
                Some(g) => assert_eq!(g.get(2).map(String::as_str), Some(GID.to_string().as_str()), "group {USER} has another gid: {g:?}"),
                None => {
                    if let Some(g) = getent("group", &GID.to_string()) {
                        panic!("gid {GID} belongs to group {:?}: the rootless tests need it for {USER}", g[0]);
                    }
                    must("groupadd", &["-g", &GID.to_string(), USER]);
                }
            }
            // No automatic subordinate range (login.defs): ours is added below.
            must(
                "useradd",
                &[
                    "-u", &UID.to_string(), "-g", &GID.to_string(), "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                    "-c", GECOS, "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", USER,
                ],
            );
        }
    }
    let range = format!("{SUB_START}-{}", SUB_START + SUB_COUNT - 1);
    for (file, flag) in [("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.trim() == sub_line()) {
            must("usermod", &[flag, &range, USER]);
        }
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(text.lines().filter(|l| l.trim() == sub_line()).count(), 1, "{file}:\n{text}");
    }
}

/// At exit: the last test binary using the user removes it.
extern "C" fn remove_user_at_exit() {
    let Some(s) = SETUP.get() else { return };
    let create = lock_file(CREATE_LOCK);
    flock(&create, libc::LOCK_EX);
    // Exclusive only when no other run holds its shared lock.
    if flock(&s.users_lock, libc::LOCK_EX | libc::LOCK_NB) && getent("passwd", USER).is_some() {
        // userdel removes the /etc/sub[ug]id lines too. It refuses while a
        // process of the user exists, zombies included, and this host's
        // init reaps orphans only every second or so: retry a while.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let o = host("userdel", &[USER]);
            if o.success() {
                break;
            }
            if Instant::now() > end {
                eprintln!("rootless tests: could not remove the test user {USER}: {o}");
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if getent("group", USER).is_some() {
            let _ = host("groupdel", &[USER]);
        }
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Path::new(prog).is_file().then(|| PathBuf::from(prog));
    }
    std::env::var("PATH").ok()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}

/// Run `prog args` as the test user with a clean environment.
fn user_command(prog: &Path, args: &[&str], xdg: &Path, home: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", &UID.to_string(), "--regid", &GID.to_string(), "--init-groups", "--"]);
    c.arg(prog).args(args);
    c.env_clear()
        .env("XDG_RUNTIME_DIR", xdg)
        .env("HOME", home)
        .env("USER", USER)
        .env("LOGNAME", USER)
        .env("PATH", PATH_ENV);
    c.current_dir(home);
    c
}

/// Resolve a runtime name to a binary the test user can execute (copied
/// into the suite's directory if the user cannot reach it), and whether it
/// is runc.
fn user_runnable(name: &str) -> (PathBuf, bool) {
    let bin = which(name).unwrap_or_else(|| panic!("runtime {name:?} not found"));
    let tmp = base_dir();
    let try_version = |b: &Path| exec(user_command(b, &["--version"], tmp, tmp), TIMEOUT);
    let mut o = try_version(&bin);
    let bin = if o.success() {
        bin
    } else {
        let dir = tmp.join("rootless-bin");
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join(bin.file_name().unwrap());
        if !copy.exists() {
            std::fs::copy(&bin, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", bin.display()));
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        o = try_version(&copy);
        copy
    };
    assert!(o.success(), "the test user cannot run {}: {o}", bin.display());
    (bin, o.stdout.starts_with("runc version"))
}

fn setup() -> &'static Setup {
    SETUP.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the rootless tests need root to make the test user");
        for tool in ["setpriv", "useradd", "usermod", "groupadd", "nsenter"] {
            assert!(which(tool).is_some(), "{tool} not found (util-linux / passwd)");
        }
        let create = lock_file(CREATE_LOCK);
        assert!(flock(&create, libc::LOCK_EX), "flock {CREATE_LOCK}");
        ensure_user();
        let users_lock = lock_file(USERS_LOCK);
        assert!(flock(&users_lock, libc::LOCK_SH), "flock {USERS_LOCK}");
        drop(create);
        // The user reads the shared rootfs and its bundles below base_dir.
        std::fs::set_permissions(base_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        shared_rootfs();
        let (bin, runc) = user_runnable(&runtime());
        let s = Setup { bin, runc, users_lock };
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(remove_user_at_exit) };
        s
    })
}

fn is_runc() -> bool {
    setup().runc
}

// ---------- a container of the test user ----------

fn chown_user(p: &Path) {
    std::os::unix::fs::chown(p, Some(UID), Some(GID)).unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

/// A config as `runc spec --rootless` makes it, non-terminal, running `args`
/// in the shared (read-only) busybox rootfs: a user namespace mapping the
/// user's uid and gid to 0, no network namespace, /sys a read-only bind of
/// the host's, no cgroup mount, no resources, devpts without gid=5.
fn rootless_spec(args: &[&str]) -> Spec {
    let mut s = Spec::new(args);
    s.remove_namespace("network");
    s.namespace("user", None);
    s.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": UID, "size": 1}]));
    s.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": GID, "size": 1}]));
    s.remove("/linux/resources");
    let mounts: Vec<serde_json::Value> = s
        .get("/mounts")
        .and_then(|m| m.as_array())
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/sys/fs/cgroup")
        .map(|m| match m["destination"].as_str() {
            Some("/sys") => json!({"destination": "/sys", "type": "none", "source": "/sys",
                                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
            Some("/dev/pts") => {
                let mut m = m.clone();
                m["options"] = json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
                m
            }
            _ => m.clone(),
        })
        .collect();
    s.set("/mounts", json!(mounts));
    s.set("/root/path", json!(shared_rootfs().to_str().unwrap()));
    s
}

struct Rl {
    id: String,
    /// Per-test directory (the user's HOME), owned by the user.
    dir: PathBuf,
    /// Bundle directory, owned by the user.
    bundle: PathBuf,
    /// XDG_RUNTIME_DIR, the user's, 0700.
    xdg: PathBuf,
    bin: PathBuf,
    spec: Spec,
    /// Files outside `dir` to remove on drop.
    extra_files: Vec<PathBuf>,
}

impl Rl {
    fn new(args: &[&str]) -> Rl {
        let s = setup();
        let n = next_n();
        let dir = base_dir().join(format!("rl-{n}"));
        let bundle = dir.join("bundle");
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bundle, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        for p in [&dir, &bundle, &xdg] {
            chown_user(p);
        }
        Rl {
            id: format!("rl-{}-{n}", std::process::id()),
            dir,
            bundle,
            xdg,
            bin: s.bin.clone(),
            spec: rootless_spec(args),
            extra_files: Vec::new(),
        }
    }

    fn sh(script: &str) -> Rl {
        Rl::new(&["sh", "-c", script])
    }

    /// A directory of the user's below the test's directory.
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_user(&p);
        p
    }

    /// The runtime's default state root for the user.
    fn state_root(&self) -> PathBuf {
        self.xdg.join(if is_runc() { "runc" } else { "husk" })
    }

    fn write_config(&self) {
        std::fs::write(self.bundle.join("config.json"), serde_json::to_string_pretty(&self.spec.0).unwrap()).unwrap();
    }

    fn command_of(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = user_command(bin, args, &self.xdg, &self.dir);
        c.current_dir(&self.bundle);
        c
    }

    /// The runtime as the test user, bounded by TIMEOUT.
    fn rt(&self, args: &[&str]) -> Output {
        exec(self.command_of(&self.bin, args), TIMEOUT)
    }

    fn run(&self) -> Output {
        self.write_config();
        self.rt(&["run", &self.id])
    }

    fn create_with(&self, extra: &[&str]) -> Output {
        self.write_config();
        let b = self.bundle.to_str().unwrap().to_string();
        let mut a = vec!["create", "--bundle", &b];
        a.extend_from_slice(extra);
        a.push(&self.id);
        self.rt(&a)
    }

    #[track_caller]
    fn create_ok(&self) {
        let o = self.create_with(&[]);
        assert!(o.success(), "create failed: {o}");
    }

    #[track_caller]
    fn running(&self) {
        self.create_ok();
        let o = self.rt(&["start", &self.id]);
        assert!(o.success(), "start failed: {o}");
        self.assert_status("running");
    }

    fn state(&self) -> Option<serde_json::Value> {
        let o = self.rt(&["state", &self.id]);
        o.success().then(|| serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state is not JSON ({e}): {o}")))
    }

    fn status(&self) -> Option<String> {
        self.state().and_then(|v| v["status"].as_str().map(str::to_string))
    }

    #[track_caller]
    fn pid(&self) -> i64 {
        let s = self.state().expect("state failed");
        s["pid"].as_i64().unwrap_or_else(|| panic!("no pid in state {s}"))
    }

    /// Poll until the status is `want` (10 s: this host's init reaps
    /// orphans, which a dying pid namespace waits for, only every second or so).
    #[track_caller]
    fn assert_status(&self, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.status().as_deref() != Some(want) {
            if Instant::now() > end {
                panic!("container never reached status {want:?}; last state: {:?}", self.state());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec_in(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec", &self.id];
        a.extend_from_slice(args);
        self.rt(&a)
    }

    /// Nothing of this container in the state root.
    #[track_caller]
    fn assert_no_state(&self) {
        let root = self.state_root();
        let left: Vec<String> = match std::fs::read_dir(&root) {
            Ok(rd) => rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        assert!(left.is_empty(), "{} still holds {left:?}", root.display());
        let o = self.rt(&["list", "-q"]);
        assert!(o.success(), "{o}");
        assert!(!o.stdout.lines().any(|l| l.trim() == self.id), "still listed: {o}");
    }

    /// A listening console socket at `<dir>/<name>` the user may connect to.
    fn console_socket(&self, name: &str) -> (std::os::unix::net::UnixListener, String) {
        let p = self.dir.join(name);
        let l = console::console_listener(&p);
        chown_user(&p);
        (l, p.to_str().unwrap().to_string())
    }
}

impl Drop for Rl {
    fn drop(&mut self) {
        let _ = self.rt(&["delete", "--force", &self.id]);
        safe_remove(&self.dir);
        for f in &self.extra_files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn owner(p: &Path) -> (u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (md.uid(), md.gid())
}

/// An id map's lines as [inside, outside, count] fields.
fn map_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[track_caller]
fn assert_gone(pid: i64) {
    let end = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < end, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------- ids ----------

/// Inside, the process is root; on the host, it is the test user, and the
/// namespace maps exactly the user's own uid and gid.
#[test]
fn ids_inside_are_root_and_the_user_outside() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    let pid = c.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let want_uid = format!("{UID}\t{UID}\t{UID}\t{UID}");
    let want_gid = format!("{GID}\t{GID}\t{GID}\t{GID}");
    assert_eq!(status_field(&status, "Uid"), Some(want_uid.as_str()), "{status}");
    assert_eq!(status_field(&status, "Gid"), Some(want_gid.as_str()), "{status}");
    let host_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(map_lines(&host_map), [["0", &UID.to_string(), "1"]], "{host_map}");

    let o = c.exec_in(&["sh", "-c", "id -u; id -g; echo ---; cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map"]);
    let out = o.ok();
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{o}");
    assert_eq!(parts[0].lines().collect::<Vec<_>>(), ["0", "0"], "{o}");
    assert_eq!(map_lines(parts[1]), [["0", &UID.to_string(), "1"]], "{o}");
    assert_eq!(map_lines(parts[2]), [["0", &GID.to_string(), "1"]], "{o}");
}

/// `id` in a foreground `run`, and setgroups denied (the kernel's rule for
/// an unprivileged gid map of the caller's own gid).
#[test]
fn run_in_the_foreground_shows_root_and_setgroups_denied() {
    let c = Rl::sh("id -u; id -g; cat /proc/self/setgroups");
    let o = c.run();
    assert_eq!(o.ok().lines().collect::<Vec<_>>(), ["0", "0", "deny"], "{o}");
    c.assert_no_state();
}

/// What root creates inside in a bind-mounted directory of the user's
/// belongs to the user on the host.
#[test]
fn files_made_inside_belong_to_the_user_on_the_host() {
    let mut c = Rl::sh("echo hi > /tmp/f && mkdir /tmp/d && stat -c '%u %g' /tmp/f /tmp/d");
    // On /tmp: the shared rootfs is read-only, and its root (the host's)
    // is no one the user namespace maps, so no new mount point can be made.
    let shared = c.scratch("shared");
    c.spec.bind(&shared, "/tmp", &[]);
    let o = c.run();
    assert_eq!(o.ok().lines().collect::<Vec<_>>(), ["0 0", "0 0"], "{o}");
    assert_eq!(owner(&shared.join("f")), (UID, GID));
    assert_eq!(owner(&shared.join("d")), (UID, GID));
    assert_eq!(std::fs::read_to_string(shared.join("f")).unwrap(), "hi\n");
}

// ---------- several ranges (newuidmap/newgidmap) ----------

const CHOWN_CAPS: &[&str] = &["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"];

fn two_ranges(c: &mut Rl) {
    for tool in ["newuidmap", "newgidmap"] {
        assert!(which(tool).is_some(), "{tool} not found: install Debian's uidmap package");
    }
    let maps = |own: u32| json!([{"containerID": 0, "hostID": own, "size": 1}, {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]);
    c.spec.set("/linux/uidMappings", maps(UID));
    c.spec.set("/linux/gidMappings", maps(GID));
    c.spec.all_caps(CHOWN_CAPS);
    c.spec.set("/process/capabilities/ambient", json!([]));
    c.spec.set("/process/capabilities/inheritable", json!([]));
}

/// Maps of two ranges go through newuidmap/newgidmap: both lines inside,
/// setgroups allowed, and ids of the subordinate range land on the host
/// shifted (1000 → 300999, 65535 → 365534).
#[test]
fn several_ranges_map_through_the_subordinate_ids() {
    let mut c = Rl::sh(
        "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; cat /proc/self/setgroups; echo ---; \
         touch /tmp/f && chown 1000:1000 /tmp/f && mkdir /tmp/d && chown 65535:65535 /tmp/d && \
         touch /tmp/mine && stat -c '%u %g' /tmp/f /tmp/d /tmp/mine",
    );
    two_ranges(&mut c);
    let shared = c.scratch("shared");
    c.spec.bind(&shared, "/tmp", &[]);
    let o = c.run();
    let out = o.ok();
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{o}");
    let want = |own: u32| vec![vec!["0".to_string(), own.to_string(), "1".into()], vec!["1".into(), SUB_START.to_string(), SUB_COUNT.to_string()]];
    assert_eq!(map_lines(parts[0]), want(UID), "{o}");
    assert_eq!(map_lines(parts[1]), want(GID), "{o}");
    assert_eq!(parts[2].trim(), "allow", "{o}");
    assert_eq!(parts[3].lines().collect::<Vec<_>>(), ["1000 1000", "65535 65535", "0 0"], "{o}");
    assert_eq!(owner(&shared.join("f")), (SUB_START + 999, SUB_START + 999));
    assert_eq!(owner(&shared.join("d")), (SUB_START + 65534, SUB_START + 65534));
    assert_eq!(owner(&shared.join("mine")), (UID, GID));
}

/// With setgroups allowed (two ranges), additionalGids are set.
#[test]
fn additional_gids_with_several_ranges() {
    let mut c = Rl::sh("grep '^Groups:' /proc/self/status; id -G");
    two_ranges(&mut c);
    c.spec.set("/process/user/additionalGids", json!([1234, 5678]));
    let o = c.run();
    if is_runc() {
        // runc 1.1.5 refuses any additionalGids in rootless mode, even
        // where the namespace allows setgroups(2).
        o.assert_failed_with_message();
        assert!(o.stderr.contains("cannot set any additional groups in a rootless container"), "{o}");
        return;
    }
    let lines = o.lines();
    assert_eq!(lines.len(), 2, "{o}");
    let groups: Vec<&str> = lines[0].trim_start_matches("Groups:").split_whitespace().collect();
    assert_eq!(groups, ["1234", "5678"], "{o}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "1234", "5678"], "{o}");
}

// ---------- cgroups ----------

/// The host's cgroup filesystems (seen through the /sys rbind of the
/// rootless config, no cgroup namespace) are not writable from the container.
#[test]
fn the_cgroup_filesystem_is_not_writable() {
    let c = Rl::sh(
        "touch /sys/fs/cgroup/x 2>/dev/null && echo WROTE /sys/fs/cgroup/x; \
         for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do \
           [ -e $f ] || continue; echo TRIED $f; echo $$ 2>/dev/null >> $f && echo WROTE $f; \
         done; echo ---; grep cgroup /proc/mounts",
    );
    let o = c.run();
    let out = o.ok();
    let (tries, mounts) = out.split_once("---\n").unwrap_or_else(|| panic!("{o}"));
    assert!(!tries.contains("WROTE"), "{o}");
    assert!(tries.lines().filter(|l| l.starts_with("TRIED")).count() >= 1, "no cgroup.procs seen: {o}");
    assert!(!Path::new("/sys/fs/cgroup/x").exists());
    let cgroup_mounts: Vec<&str> = mounts.lines().filter(|l| l.split_whitespace().nth(1).is_some_and(|m| m.starts_with("/sys/fs/cgroup"))).collect();
    assert!(!cgroup_mounts.is_empty(), "{o}");
    if is_runc() {
        // runc 1.1.5 makes only /sys itself read-only: the cgroup mounts
        // below the rbind stay rw, and the writes fail on permissions
        // (the files belong to the host's root, unmapped here).
        return;
    }
    for m in cgroup_mounts {
        let opts: Vec<&str> = m.split_whitespace().nth(3).unwrap_or("").split(',').collect();
        assert!(opts.contains(&"ro"), "not read-only: {m}\n{o}");
    }
}

// ---------- the host's files ----------

/// The container sees its rootfs only: host files outside the bundle
/// (in the test's directory and in /tmp) are not there, and the root is a
/// pivot_root: the mount namespace's own root is the rootfs (what setns
/// lands on), and /proc/PID/root reads "/" from the host.
#[test]
fn host_files_outside_the_rootfs_are_not_visible() {
    let mut c = Rl::new(&["sleep", "300"]);
    let in_dir = c.dir.join("host-marker");
    let in_tmp = std::env::temp_dir().join(format!("husk-rl-marker-{}", c.id));
    for m in [&in_dir, &in_tmp] {
        std::fs::write(m, "host secret\n").unwrap();
        std::fs::set_permissions(m, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    c.extra_files.push(in_tmp.clone());
    c.running();
    let pid = c.pid();

    let mut rootfs: Vec<String> =
        std::fs::read_dir(shared_rootfs()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    rootfs.sort();
    let script = format!(
        "cat {} {} 2>/dev/null && echo READ; ls -1 /; echo ---; readlink /proc/1/root; ls -1 /proc/1/root/",
        in_dir.display(),
        in_tmp.display()
    );
    let o = c.exec_in(&["sh", "-c", &script]);
    let out = o.ok();
    assert!(!out.contains("READ") && !out.contains("host secret"), "{o}");
    let (ls, proc_root) = out.split_once("---\n").unwrap_or_else(|| panic!("{o}"));
    assert_eq!(ls.lines().collect::<Vec<_>>(), rootfs, "{o}");
    let mut pr = proc_root.lines();
    assert_eq!(pr.next(), Some("/"), "{o}");
    assert_eq!(pr.collect::<Vec<_>>(), rootfs, "{o}");

    assert_eq!(std::fs::read_link(format!("/proc/{pid}/root")).unwrap(), Path::new("/"));
    let o = host("nsenter", &[&format!("--mount=/proc/{pid}/ns/mnt"), "ls", "-1", "/"]);
    assert_eq!(o.ok().lines().collect::<Vec<_>>(), rootfs, "{o}");
}

// ---------- lifecycle ----------

/// create (detached) → created → start → running; list shows the user as
/// OWNER; exec and ps; kill SIGTERM stops it; delete leaves no state.
#[test]
fn lifecycle_as_the_user() {
    let c = Rl::sh("trap 'exit 0' TERM; sleep 300 & wait");
    c.create_ok();
    assert_eq!(c.status().as_deref(), Some("created"));
    assert!(c.state_root().join(&c.id).is_dir(), "no state under {}", c.state_root().display());
    let pid = c.pid();
    assert!(pid > 0);
    let o = c.rt(&["start", &c.id]);
    assert!(o.success(), "{o}");
    c.assert_status("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid").and_then(|u| u.split_whitespace().next()), Some(UID.to_string().as_str()));

    let o = c.rt(&["list"]);
    let out = o.ok();
    let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header.last(), Some(&"OWNER"), "{o}");
    let row = out.lines().find(|l| l.split_whitespace().next() == Some(c.id.as_str())).unwrap_or_else(|| panic!("not listed: {o}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(f.get(1), Some(&pid.to_string().as_str()), "{o}");
    assert_eq!(f.get(2), Some(&"running"), "{o}");
    assert_eq!(f.last(), Some(&USER), "{o}");

    let o = c.exec_in(&["id", "-u"]);
    assert_eq!(o.ok().trim(), "0", "{o}");

    let o = c.rt(&["ps", &c.id]);
    if is_runc() {
        // runc 1.1.5 lists a container's processes from its cgroup, and a
        // rootless container on cgroup v1 has none.
        o.assert_failed_with_message();
        assert!(o.stderr.contains("unable to get all container pids"), "{o}");
    } else {
        let out = o.ok();
        assert!(out.lines().next().is_some_and(|h| h.contains("PID") && h.contains("CMD")), "{o}");
        let pids: Vec<(i64, String)> = out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.get(1)?.parse().ok()?, f[7..].join(" ")))
            })
            .collect();
        assert!(pids.iter().any(|(p, _)| *p == pid), "init {pid} not in ps: {o}");
        assert!(pids.iter().any(|(p, cmd)| *p != pid && cmd.starts_with("sleep 300")), "no sleep in ps: {o}");
    }

    let o = c.rt(&["kill", &c.id, "TERM"]);
    assert!(o.success(), "{o}");
    c.assert_status("stopped");
    let o = c.rt(&["delete", &c.id]);
    assert!(o.success(), "{o}");
    assert!(c.state().is_none());
    c.assert_no_state();
}

#[test]
fn kill_sigkill_stops_the_container() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    let pid = c.pid();
    let o = c.rt(&["kill", &c.id, "KILL"]);
    assert!(o.success(), "{o}");
    c.assert_status("stopped");
    assert_gone(pid);
    assert!(c.rt(&["delete", &c.id]).success());
    c.assert_no_state();
}

/// `kill --all` reaches an exec'd process too (husk: through the pid
/// namespace, there being no cgroup).
#[test]
fn kill_all_signals_every_process() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    let pid = c.pid();
    let pf = c.dir.join("exec.pid");
    let o = c.rt(&["exec", "-d", "--pid-file", pf.to_str().unwrap(), &c.id, "sleep", "200"]);
    assert!(o.success(), "{o}");
    let exec_pid: i64 = std::fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert!(alive(exec_pid));
    let o = c.rt(&["kill", "--all", &c.id, "KILL"]);
    if is_runc() {
        // runc 1.1.5's kill --all freezes and walks the container's
        // cgroup, which a rootless container on cgroup v1 has not.
        o.assert_failed_with_message();
        assert!(alive(exec_pid) && alive(pid));
        assert_eq!(c.status().as_deref(), Some("running"));
        assert!(c.rt(&["delete", "--force", &c.id]).success());
        assert_gone(pid);
        c.assert_no_state();
        return;
    }
    assert!(o.success(), "{o}");
    c.assert_status("stopped");
    assert_gone(pid);
    assert_gone(exec_pid);
    assert!(c.rt(&["delete", &c.id]).success());
    c.assert_no_state();
}

#[test]
fn delete_force_removes_a_running_container() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    let pid = c.pid();
    let o = c.rt(&["delete", &c.id]);
    assert!(!o.success(), "delete of a running container without --force: {o}");
    assert_eq!(c.status().as_deref(), Some("running"));
    let o = c.rt(&["delete", "--force", &c.id]);
    assert!(o.success(), "{o}");
    assert_gone(pid);
    assert!(c.state().is_none());
    c.assert_no_state();
}

/// pause, resume and update need a cgroup, which a rootless container on
/// cgroup v1 has not: each fails with a message, and the container keeps
/// running.
#[test]
fn pause_resume_update_fail_clearly_without_a_cgroup() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    for args in [vec!["pause", &c.id], vec!["resume", &c.id], vec!["update", "--memory", "100M", &c.id]] {
        let o = c.rt(&args);
        o.assert_failed_with_message();
        if is_runc() {
            // runc 1.1.5 words it "cannot toggle freezer: cgroups not
            // configured for container" (pause), "container not paused"
            // (resume), "container could not join or create cgroup" (update).
            continue;
        }
        assert!(o.stderr.contains("has no cgroup: a rootless container gets one only on cgroup v2"), "{o}");
    }
    assert_eq!(c.status().as_deref(), Some("running"));
    assert!(c.exec_in(&["true"]).success());
}

// ---------- terminal ----------

/// `process.terminal` with `run -d --console-socket`: the pty master
/// reaches the socket, and the process's stdio is the pty.
#[test]
fn terminal_through_the_console_socket() {
    let mut c = Rl::sh("sleep 1; tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys");
    c.spec.set("/process/terminal", json!(true));
    c.write_config();
    let (l, sock) = c.console_socket("console.sock");
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| console::recv_pty_master(&l, Duration::from_secs(15)));
        let o = c.rt(&["run", "-d", "--console-socket", &sock, &c.id]);
        assert!(o.success(), "{o}");
        let mut master = h.join().unwrap().expect("no pty master received");
        let out = console::read_pty(&mut master, Duration::from_secs(10));
        c.assert_status("stopped");
        out
    });
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["/dev/pts/0", "all-ttys"], "{out:?}");
}

/// `exec -d -t --console-socket` (runc accepts a console socket only with
/// --detach).
#[test]
fn exec_tty_through_the_console_socket() {
    let c = Rl::new(&["sleep", "300"]);
    c.running();
    let (l, sock) = c.console_socket("exec.sock");
    let (o, out) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            c.rt(&["exec", "-d", "-t", "--console-socket", &sock, &c.id, "sh", "-c", "tty; test -t 0 && test -t 1 && echo all-ttys"])
        });
        let mut master = match console::recv_pty_master(&l, Duration::from_secs(15)) {
            Ok(m) => m,
            Err(e) => panic!("no pty master received ({e}); exec: {}", h.join().unwrap()),
        };
        let out = console::read_pty(&mut master, Duration::from_secs(10));
        (h.join().unwrap(), out)
    });
    assert!(o.success(), "{o}\npty: {out:?}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(lines[1], "all-ttys", "{out:?}");
}

// ---------- resources ----------

/// linux.resources in a rootless config on cgroup v1: husk runs the
/// container without the limits and warns that they are ignored.
#[test]
fn resources_without_a_cgroup() {
    let mut c = Rl::sh("echo ran");
    c.spec.set("/linux/resources", json!({"memory": {"limit": 104857600}, "pids": {"limit": 100}}));
    let o = c.run();
    if is_runc() {
        // runc 1.1.5 refuses: it cannot make the cgroup the limits need.
        o.assert_failed_with_message();
        assert!(o.stderr.contains("could not join or create cgroup"), "{o}");
        c.assert_no_state();
        return;
    }
    assert_eq!(o.ok().trim(), "ran", "{o}");
    assert!(o.stderr.contains("linux.resources are ignored"), "no warning: {o}");
    c.assert_no_state();
}

// ---------- --rootless ----------

/// `--rootless false` as an ordinary user: the runtime tries to make the
/// container's cgroups as root would and fails on permissions; nothing is
/// left behind.
#[test]
fn rootless_false_as_an_ordinary_user_fails() {
    let c = Rl::sh("echo ran");
    c.write_config();
    let o = c.rt(&["--rootless", "false", "run", &c.id]);
    o.assert_failed_with_message();
    assert!(!o.stdout.contains("ran"), "{o}");
    assert!(o.stderr.contains("ermission denied"), "{o}");
    assert!(c.state().is_none());
    c.assert_no_state();
}

#[test]
fn rootless_bogus_is_refused() {
    let c = Rl::sh("echo ran");
    c.write_config();
    let o = c.rt(&["--rootless", "bogus", "run", &c.id]);
    o.assert_failed_with_message();
    assert!(o.stderr.contains("bogus"), "{o}");
    assert!(!o.stdout.contains("ran"), "{o}");
    c.assert_no_state();
}

// ---------- `spec --rootless` ----------

/// The other runtime of the pair, for the cross check: husk (`$HUSK`, else
/// the workspace's release build) when testing runc, runc (`$RUNC`, else
/// `runc` on PATH) when testing husk.
fn other_runtime() -> PathBuf {
    let name = if is_runc() {
        std::env::var("HUSK").unwrap_or_else(|_| {
            format!("{}/../target/{}-unknown-linux-musl/release/husk", env!("CARGO_MANIFEST_DIR"), std::env::consts::ARCH)
        })
    } else {
        std::env::var("RUNC").unwrap_or_else(|_| "runc".to_string())
    };
    assert!(which(&name).is_some(), "{name} not found: the cross check needs both husk (make build, or HUSK=) and runc (RUNC=)");
    user_runnable(&name).0
}

/// `GEN spec --rootless` run by the user in an empty bundle, then run by
/// the runtime under test with only `process.args` changed (the generated
/// config asks for a terminal: the pty comes through a console socket).
fn run_generated_spec(generator: &Path) {
    let c = Rl::new(&["true"]);
    let o = exec(c.command_of(generator, &["spec", "--rootless"]), TIMEOUT);
    assert!(o.success(), "{o}");
    let text = std::fs::read_to_string(c.bundle.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": UID, "size": 1}]), "{text}");
    assert_eq!(v["linux"]["gidMappings"], json!([{"containerID": 0, "hostID": GID, "size": 1}]), "{text}");
    let ns: Vec<&str> = v["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|n| n["type"].as_str()).collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{text}");
    assert_eq!(v["process"]["terminal"], json!(true), "{text}");
    assert_eq!(v["root"]["path"], json!("rootfs"), "{text}");
    make_rootfs(&c.bundle.join("rootfs"));
    v["process"]["args"] = json!(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; tty"]);
    std::fs::write(c.bundle.join("config.json"), serde_json::to_string_pretty(&v).unwrap()).unwrap();

    let (l, sock) = c.console_socket("console.sock");
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| console::recv_pty_master(&l, Duration::from_secs(15)));
        let b = c.bundle.to_str().unwrap();
        let o = c.rt(&["create", "--bundle", b, "--console-socket", &sock, &c.id]);
        assert!(o.success(), "config from {}: {o}", generator.display());
        let mut master = h.join().unwrap().expect("no pty master received");
        assert!(c.rt(&["start", &c.id]).success());
        let out = console::read_pty(&mut master, Duration::from_secs(10));
        c.assert_status("stopped");
        out
    });
    let lines: Vec<String> = out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["0", "0", &format!("0 {UID} 1"), "/dev/pts/0"], "config from {}: {out:?}", generator.display());
    assert!(c.rt(&["delete", &c.id]).success());
    c.assert_no_state();
}

#[test]
fn spec_rootless_of_this_runtime_runs_unchanged() {
    run_generated_spec(&setup().bin);
}

/// husk's `spec --rootless` under runc, and runc's under husk.
#[test]
fn spec_rootless_of_the_other_runtime_runs_unchanged() {
    run_generated_spec(&other_runtime());
}
