//! containerd-shim-husk-v2: the containerd runtime v2 shim for husk
//! (runtime type `io.containerd.husk.v2`).
//!
//! One shim serves every container of a group (by default one container;
//! pods group on the `io.kubernetes.cri.sandbox-id` annotation). It drives
//! husk as a library: the containers' init processes and exec'd processes
//! are the shim's own children, reaped by it (it is a child subreaper), and
//! their exits are reported to containerd once each.

mod error;
mod events;
mod exits;
mod husk_cli;
mod metrics;
mod mounts;
mod serve;
mod service;
mod start;
mod stdio;
mod task;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = start::legacy_start(&args) {
        std::process::exit(code);
    }
    // The serving shim (no action) is ours; `start`, `delete`, `-info` and
    // `-version` are the crate's.
    if let Ok(flags) = containerd_shim::parse(args.get(1..).unwrap_or_default()) {
        if !matches!(flags.action.as_str(), "" | "start" | "delete") {
            eprintln!("{}: unknown action {:?}: want start or delete", service::RUNTIME_ID, flags.action);
            std::process::exit(1);
        }
        if flags.action.is_empty() && !flags.info && !flags.version {
            if let Err(e) = serve::serve(&flags) {
                eprintln!("{}: {e}", service::RUNTIME_ID);
                std::process::exit(1);
            }
            return;
        }
    }
    let config = containerd_shim::Config::default();
    containerd_shim::run::<service::Service>(service::RUNTIME_ID, Some(config));
}
