//! Exit statuses of the shim's children. The shim reaps every child as it
//! exits (serve.rs, on SIGCHLD), so code that waits for a child it spawned
//! (husk's hooks, the husk binary) subscribes to those exits before the
//! spawn and takes the status from there.

use std::time::{Duration, Instant};

use containerd_shim::monitor::{ExitEvent, Subject, Topic};
use containerd_shim::synchronous::monitor::{monitor_subscribe, Subscription};
use husk::reaper::{ExitWatch, Reaper};

pub struct ShimReaper;

impl Reaper for ShimReaper {
    fn watch(&self) -> Box<dyn ExitWatch> {
        Box::new(Watch(monitor_subscribe(Topic::Pid).ok()))
    }
}

/// None only if subscribing failed (the monitor's lock was poisoned): then
/// every wait times out rather than hang.
struct Watch(Option<Subscription>);

impl ExitWatch for Watch {
    fn wait(&mut self, pid: i32, timeout: Option<Duration>) -> Option<i32> {
        let sub = self.0.as_ref()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ev = match deadline {
                Some(d) => sub.rx.recv_timeout(d.saturating_duration_since(Instant::now())).ok()?,
                None => sub.rx.recv().ok()?,
            };
            if let ExitEvent { subject: Subject::Pid(p), exit_code } = ev {
                if p == pid {
                    return Some(exit_code);
                }
            }
        }
    }
}
