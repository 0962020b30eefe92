//! husk: an OCI container runtime, runc-compatible.
//!
//! One module per concern: `spec` reads the bundle, `namespaces`, `rootfs`,
//! `cgroups`, `capabilities`, `process`, `console` and `hooks` each turn one
//! part of the config into system calls, `container` sequences them, `state`
//! remembers containers between commands, and `cli` is the command line.

pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod criu;
pub mod exec_trampoline;
pub mod fdpass;
pub mod features;
pub mod hooks;
pub mod intel_rdt;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod netdev;
pub mod pidfd;
pub mod preserved_fds;
pub mod process;
pub mod process_attrs;
pub mod procfs;
pub mod reaper;
pub mod rootfs;
pub mod rootless;
pub mod sealed_exe;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
