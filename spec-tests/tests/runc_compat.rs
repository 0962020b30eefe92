//! Observable behaviour that scripts written against runc rely on: exit
//! codes, version output, JSON key order, defaults runc fills in.

use spec_tests::*;
use std::time::Duration;

fn running() -> Container {
    let c = Container::new(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    c
}

#[test]
fn kill_with_signal_0_checks_that_the_process_exists() {
    let c = running();
    let o = c.kill("0");
    assert!(o.success(), "{o}");
    c.assert_status("running");
    assert!(c.kill("KILL").success());
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    assert!(!c.kill("0").success(), "signal 0 to a stopped container must fail");
}

/// runc's exec exits 255 when it fails itself; the process's own exit
/// status passes through unchanged.
#[test]
fn exec_failures_exit_255_and_the_process_status_passes_through() {
    let c = running();
    let cases: [(&str, Vec<&str>); 3] = [
        ("no such container", vec!["exec", "no-such-container-here", "true"]),
        ("command not found", vec!["exec", &c.id, "/no/such/binary"]),
        ("bad user", vec!["exec", "--user", "no-such-user-here", &c.id, "true"]),
    ];
    for (what, args) in cases {
        let o = c.rt(&args);
        assert_eq!(o.status, Some(255), "{what}: {o}");
        assert!(!o.stderr.trim().is_empty(), "{what}: no error message: {o}");
    }
    let o = c.rt(&["exec", &c.id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status, Some(7), "{o}");
}

#[test]
fn version_has_runcs_layout() {
    let mut cmd = std::process::Command::new(runtime());
    cmd.arg("--version");
    let o = exec(cmd, TIMEOUT);
    let lines: Vec<&str> = o.ok().lines().collect();
    assert!(lines.first().is_some_and(|l| l.contains(" version ")), "{o}");
    // One line each, in this order (runc has a "go:" line in between).
    let at = |key: &str| lines.iter().position(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key:?} line: {o}"));
    assert!(at("commit: ") < at("spec: ") && at("spec: ") < at("libseccomp: "), "{o}");
}

/// `state` and `list --format json` print the keys in runc's order.
#[test]
fn state_and_list_json_keys_are_in_runcs_order() {
    let c = running();
    let order = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"];
    let positions = |text: &str| -> Vec<usize> {
        order.iter().map(|k| text.find(&format!("\"{k}\"")).unwrap_or_else(|| panic!("no {k} in {text}"))).collect()
    };
    for text in [c.state_out().ok().to_string(), c.rt(&["list", "--format", "json"]).ok().to_string()] {
        let p = positions(&text);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "keys out of runc's order: {text}");
    }
}

/// A process.json without `user` runs as uid 0 / gid 0.
#[test]
fn exec_process_file_without_user_runs_as_root() {
    let c = running();
    let p = c.dir.join("process.json");
    std::fs::write(&p, r#"{"args": ["/bin/id", "-u"], "cwd": "/"}"#).unwrap();
    let o = c.rt(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    assert_eq!(o.ok().trim(), "0", "{o}");
}
