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
            // The server forks into containers: it runs from a sealed binary
            // (husk::sealed_exe), and so does everything it forks.
            let root = service::state_root(&flags.namespace);
            let sealed = husk::state::Store::new(&root).ensure_root().map_err(|e| e.to_string());
            if let Err(e) = sealed.and_then(|()| husk::sealed_exe::ensure(&root).map_err(|e| e.to_string())) {
                eprintln!("{}: {e}", service::RUNTIME_ID);
                std::process::exit(1);
            }
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
