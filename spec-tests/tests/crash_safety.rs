//! Crash safety: a state file torn by a crash, or a `create` killed at any
//! moment, must never leave a process or a cgroup that `delete --force`
//! cannot find and remove.

use spec_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn alive(pid: i64) -> bool {
    // A zombie is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Live processes whose /proc/PID/cgroup names `cgroups_path`.
fn processes_in(cgroups_path: &str) -> Vec<i64> {
    let want = format!("{}\n", cgroups_path.trim_end_matches('/'));
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else { continue };
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.lines().any(|l| format!("{}\n", l.splitn(3, ':').nth(2).unwrap_or("")).ends_with(&want)) && alive(pid) {
            v.push(pid);
        }
    }
    v
}

/// Wait (bounded) until nothing of the container is left: no process in
/// its cgroups, no cgroup directory, no state directory.
#[track_caller]
fn assert_nothing_left(c: &Container, ctx: &str) {
    let state_dir = c.root.join(&c.id);
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = processes_in(&c.cgroups_path);
        let dirs = c.cgroup_dirs();
        let st = state_dir.exists();
        if procs.is_empty() && dirs.is_empty() && !st {
            return;
        }
        if Instant::now() > end {
            panic!("{ctx}: left behind: processes {procs:?}, cgroup dirs {dirs:?}, state dir {}", if st { "present" } else { "gone" });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills whatever is left in a container's cgroups (declared after the
/// container, it runs before the container's own cleanup): a runtime that
/// lost track of its container must not leave the test's process behind.
struct KillLeftovers<'a>(&'a Container);

impl Drop for KillLeftovers<'_> {
    fn drop(&mut self) {
        for pid in processes_in(&self.0.cgroups_path) {
            // SAFETY: kill(2) of a pid found in this test's own cgroup.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

fn torn_state(tear: impl Fn(&Path)) {
    let c = Container::new(&["sleep", "60"]);
    let _kill = KillLeftovers(&c);
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    assert!(alive(pid) && !c.cgroup_dirs().is_empty());
    tear(&c.root.join(&c.id).join("state.json"));
    let o = c.state_out();
    assert!(!o.success() && !o.stderr.trim().is_empty(), "state of a torn state file must fail clearly: {o}");
    let o = c.delete_force();
    assert!(o.success(), "{o}");
    assert!(!alive(pid) || { std::thread::sleep(Duration::from_millis(500)); !alive(pid) }, "delete --force exited 0 but the container process {pid} lives on");
    assert_nothing_left(&c, "delete --force of a torn state");
}

#[test]
#[ignore = "runc 1.1.5: delete --force of an unreadable state.json leaves the container running"]
fn delete_force_with_an_empty_state_file_kills_and_removes_everything() {
    torn_state(|p| std::fs::write(p, "").unwrap());
}

#[test]
#[ignore = "runc 1.1.5: delete --force of an unreadable state.json leaves the container running"]
fn delete_force_with_a_half_written_state_file_kills_and_removes_everything() {
    torn_state(|p| {
        let s = std::fs::read(p).unwrap();
        std::fs::write(p, &s[..s.len() / 2]).unwrap();
    });
}

/// SIGKILL `create` at delays spread over its whole run (before the state
/// directory exists, while cgroups are made, while the process is set up,
/// after it is recorded): `delete --force` must always leave nothing.
#[test]
#[ignore = "runc 1.1.5: a killed create leaves cgroups behind that delete --force cannot find"]
fn create_killed_at_any_moment_is_cleaned_up_by_delete_force() {
    use std::os::unix::process::CommandExt;
    // How long one whole create takes here, to spread the kills over it.
    let probe = Container::new(&["sleep", "60"]);
    let t = Instant::now();
    probe.create_ok();
    let full = t.elapsed();
    drop(probe);
    let tries = 40u32;
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..tries {
        let c = Container::new(&["sleep", "60"]);
        let _kill = KillLeftovers(&c);
        c.write_config();
        let mut cmd = c.command(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        // Its own process group: the kill reaches husk, not the test.
        cmd.process_group(0);
        let mut child = cmd.spawn().unwrap();
        // The probe's time includes spawning and the test's own waiting.
        std::thread::sleep(full * i / (tries * 2));
        let _ = child.kill();
        let st = child.wait().unwrap();
        *outcomes.entry(if st.success() { "finished" } else { "killed" }).or_insert(0) += 1;
        let o = c.delete_force();
        assert!(o.success(), "try {i}: delete --force after a killed create: {o}");
        assert_nothing_left(&c, &format!("try {i} (kill after {:?})", full * i / (tries * 2)));
    }
    eprintln!("{tries} creates ({full:?} each): {outcomes:?}");
    assert!(outcomes.get("killed").copied().unwrap_or(0) > tries / 2, "most creates must really be killed: {outcomes:?}");
}
