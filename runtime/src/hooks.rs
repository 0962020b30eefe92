//! Running lifecycle hooks: the state JSON on stdin, the hook's own args and
//! env, and an optional timeout enforced without polling (pidfd + poll).

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

/// Worded as runc's ("error running prestart hook #0: exit status 1,
/// stderr: ..."), which scripts match on, with the hook's path added.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index} ({path}): {err}")]
    Spawn {
        kind: &'static str,
        index: usize,
        path: String,
        err: std::io::Error,
    },
    #[error("error running {kind} hook #{index} ({path}): {status}{stderr}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        status: String,
        stderr: String,
    },
    #[error("error running {kind} hook #{index} ({path}): hook ran past specified timeout of {secs}s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: String,
        secs: i64,
    },
}

/// Run each hook in order; the first failure stops the rest (prestart,
/// createRuntime, createContainer, startContainer: the operation fails).
pub fn run_all(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &[u8]) -> Result<(), HookError> {
    for (index, h) in hooks.into_iter().flatten().enumerate() {
        run_nth(kind, index, h, state)?;
    }
    Ok(())
}

/// Run every hook in order, warning about each one that fails: poststop
/// comes after the fact, and the runtime-spec says the remaining hooks and
/// the lifecycle MUST go on. Returns the failures.
pub fn run_all_warning(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &[u8]) -> Vec<HookError> {
    let mut failed = Vec::new();
    for (index, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run_nth(kind, index, h, state) {
            tracing::warn!("{e}");
            failed.push(e);
        }
    }
    failed
}

/// Run one hook (the first of its list).
pub fn run(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    run_nth(kind, 0, hook, state)
}

fn run_nth(kind: &'static str, index: usize, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let spawn_err = |err| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        err,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Made before the spawn: the hook may exit before its pid is known.
    let watch = crate::reaper::watch();
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores its stdin may exit before reading: EPIPE is fine.
        let _ = stdin.write_all(state);
    }
    let pid = child.id() as i32;
    let limit = hook.timeout().filter(|s| *s > 0);
    let timed_out = || HookError::Timeout { kind, index, path: path.clone(), secs: limit.unwrap_or(0) };
    let (status, stderr) = match watch {
        None => {
            if limit.is_some_and(|secs| !wait_exit(pid, secs)) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timed_out());
            }
            let out = child.wait_with_output().map_err(spawn_err)?;
            if out.status.success() {
                return Ok(());
            }
            let status = match (out.status.code(), out.status.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (_, Some(s)) => format!("killed by signal {s}"),
                _ => "unknown status".into(),
            };
            (status, out.stderr)
        }
        Some(mut watch) => {
            // Someone else reaps the hook: read its stderr meanwhile, as
            // wait_with_output does, so a chatty hook cannot block on a
            // full pipe.
            let mut err_pipe = child.stderr.take();
            let reader = std::thread::spawn(move || {
                let mut b = Vec::new();
                if let Some(s) = err_pipe.as_mut() {
                    let _ = std::io::Read::read_to_end(s, &mut b);
                }
                b
            });
            let Some(code) = watch.wait(pid, limit.map(|s| std::time::Duration::from_secs(s as u64))) else {
                let _ = child.kill();
                return Err(timed_out());
            };
            if code == 0 {
                return Ok(());
            }
            (format!("exit status {code}"), reader.join().unwrap_or_default())
        }
    };
    let text = String::from_utf8_lossy(&stderr);
    let text = text.trim();
    let stderr = if text.is_empty() {
        String::new()
    } else {
        format!(", stderr: {}", text.chars().take(512).collect::<String>().replace('\n', " "))
    };
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        stderr,
    })
}

/// Wait up to `secs` for a child to exit (it is left unreaped).
/// Returns false on timeout.
fn wait_exit(pid: i32, secs: i64) -> bool {
    // No pidfd support: fall back to the caller's unbounded wait.
    let Some(fd) = crate::pidfd::open(pid) else { return true };
    let timeout = std::time::Duration::from_secs(secs.max(0) as u64);
    crate::pidfd::wait_exit(&fd, timeout).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$0 $1 $FOO\" >> {}", out.display(), out.display()), "zero", "one"],
            "env": ["FOO=bar"]
        }));
        run("prestart", &h, b"{\"id\":\"x\"}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, "{\"id\":\"x\"}zero one bar\n");
    }

    #[test]
    fn failing_hook_reports_status_and_stderr() {
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}));
        let e = run("poststart", &h, b"{}").unwrap_err().to_string();
        assert_eq!(e, "error running poststart hook #0 (/bin/sh): exit status 3, stderr: oops");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}));
        let t = std::time::Instant::now();
        let e = run("createRuntime", &h, b"{}").unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_failing_poststop_hook_does_not_stop_the_next_ones() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hooks: Vec<Hook> = vec![
            hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]})),
            hook(serde_json::json!({"path": "/nonexistent/hook"})),
            hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo ran > {}", out.display())]})),
        ];
        let failed = run_all_warning("poststop", Some(&hooks), b"{}");
        assert_eq!(failed.len(), 2);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran\n");
        assert!(run_all("prestart", Some(&hooks), b"{}").is_err());
    }

    #[test]
    fn missing_hook_binary_is_an_error() {
        let h = hook(serde_json::json!({"path": "/nonexistent/hook"}));
        assert!(matches!(run("prestart", &h, b"{}"), Err(HookError::Spawn { .. })));
    }
}
