//! Signal names and numbers as `kill` accepts them: KILL, SIGKILL, 9.

use nix::sys::signal::Signal;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal {0:?}")]
    Invalid(String),
}

pub fn parse(s: &str) -> Result<i32, SignalError> {
    let bad = || SignalError::Invalid(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        // 0 checks that the process exists, as kill(1) and runc allow.
        return if (0..=libc::SIGRTMAX()).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        return rt_offset(rt, libc::SIGRTMIN(), 1).ok_or_else(bad);
    }
    if let Some(rt) = name.strip_prefix("SIGRTMAX") {
        return rt_offset(rt, libc::SIGRTMAX(), -1).ok_or_else(bad);
    }
    name.parse::<Signal>().map(|s| s as i32).map_err(|_| bad())
}

fn rt_offset(rest: &str, base: i32, dir: i32) -> Option<i32> {
    if rest.is_empty() {
        return Some(base);
    }
    let n: i32 = rest.strip_prefix(if dir > 0 { '+' } else { '-' })?.parse().ok()?;
    let v = base + dir * n;
    (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_with_and_without_sig_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("0").unwrap(), 0, "signal 0: does the process exist");
        assert_eq!(parse("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["", "-1", "999", "SIGNOPE", "RTMIN+99"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
