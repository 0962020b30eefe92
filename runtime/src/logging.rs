//! runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`.
//!
//! Callers such as containerd's go-runc read the last `"level":"error"` line
//! of the log file to explain a failure, so the JSON shape is runc's
//! (logrus's): `{"level":"error","msg":"...","time":"..."}`. Spans (the
//! phases of `create`, ...) are logged with their duration at debug level,
//! as `phase NAME took DURATION start=SECONDS`: SECONDS is CLOCK_MONOTONIC
//! at the phase's start, shared by every process on the host, so a profile
//! (`make bench-profile`) can put the parent's and the container process's
//! phases, and its own clock, on one time line.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
    max: Level,
    to_file: bool,
    next_id: AtomicU64,
    spans: Mutex<Vec<(u64, &'static str, Instant, f64)>>,
}

impl Logger {
    pub fn new(file: Option<File>, format: Format, debug: bool) -> Logger {
        let to_file = file.is_some();
        let out: Box<dyn Write + Send> = match file {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stderr()),
        };
        Logger {
            out: Mutex::new(out),
            format,
            max: if debug { Level::DEBUG } else { Level::WARN },
            to_file,
            next_id: AtomicU64::new(1),
            spans: Mutex::new(Vec::new()),
        }
    }

    pub fn logs_to_file(&self) -> bool {
        self.to_file
    }

    pub fn write(&self, level: Level, msg: &str) {
        let line = format_line(self.format, level, msg, &crate::state::now_rfc3339());
        if let Ok(mut o) = self.out.lock() {
            let _ = o.write_all(line.as_bytes());
        }
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

pub fn format_line(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => {
            let quoted = serde_json::to_string(msg).unwrap_or_default();
            format!("time=\"{time}\" level={} msg={quoted}\n", level_name(level))
        }
    }
}

/// CLOCK_MONOTONIC now, in seconds.
pub fn monotonic() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into t.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn phase_line(name: impl std::fmt::Display, took: std::time::Duration, start: f64) -> String {
    format!("phase {name} took {took:?} start={start:.6}")
}

/// A phase whose name is only known at run time (one mount, one cgroup
/// hierarchy), where a tracing span needs a static one. Costs nothing unless
/// `--debug` is on: `Phase::start` then returns None.
pub struct Phase {
    start: Instant,
    mono: f64,
}

impl Phase {
    pub fn start() -> Option<Phase> {
        tracing::enabled!(Level::DEBUG).then(|| Phase { start: Instant::now(), mono: monotonic() })
    }

    pub fn done(self, name: impl std::fmt::Display) {
        tracing::debug!("{}", phase_line(name, self.start.elapsed(), self.mono));
    }
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.spans.lock() {
            s.push((id, attrs.metadata().name(), Instant::now(), monotonic()));
        }
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, e: &Event<'_>) {
        let mut v = MessageVisitor(String::new());
        e.record(&mut v);
        self.write(*e.metadata().level(), &v.0);
    }

    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}

    fn try_close(&self, id: Id) -> bool {
        let found = self.spans.lock().ok().and_then(|mut s| {
            let i = s.iter().position(|(sid, ..)| *sid == id.into_u64())?;
            Some(s.remove(i))
        });
        if let Some((_, name, start, mono)) = found {
            self.write(Level::DEBUG, &phase_line(name, start.elapsed(), mono));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runc_fields() {
        let l = format_line(Format::Json, Level::ERROR, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
    }

    #[test]
    fn phase_lines_carry_the_monotonic_start() {
        let start = monotonic();
        assert!(start > 0.0);
        let l = phase_line("mount:/proc", std::time::Duration::from_micros(1500), 12.5);
        assert_eq!(l, "phase mount:/proc took 1.5ms start=12.500000");
        assert!(monotonic() >= start);
    }

    #[test]
    fn text_lines_are_logrus_like() {
        let l = format_line(Format::Text, Level::WARN, "a b", "T");
        assert_eq!(l, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
