//! Who collects the exit status of a process husk spawns and waits for
//! (hooks). By default husk waits for it itself. A program that reaps every
//! child as soon as it exits (containerd-shim-husk-v2, a subreaper with a
//! SIGCHLD loop) would take that status first, and husk's own wait would
//! fail with ECHILD; such a program installs a [`Reaper`] here that hands the
//! status over instead.

use std::sync::OnceLock;
use std::time::Duration;

pub trait Reaper: Send + Sync {
    /// Called before a spawn: get ready to report the exit of the process
    /// about to be made, which may exit before its pid is known.
    fn watch(&self) -> Box<dyn ExitWatch>;
}

pub trait ExitWatch {
    /// The exit of `pid`: its exit code, or 128 + the signal that killed it.
    /// None if it did not exit within `timeout`.
    fn wait(&mut self, pid: i32, timeout: Option<Duration>) -> Option<i32>;
}

static REAPER: OnceLock<Box<dyn Reaper>> = OnceLock::new();

/// Install the process-wide reaper; false if one was installed already.
pub fn install(r: Box<dyn Reaper>) -> bool {
    REAPER.set(r).is_ok()
}

/// A watch from the installed reaper, if there is one.
pub fn watch() -> Option<Box<dyn ExitWatch>> {
    REAPER.get().map(|r| r.watch())
}
