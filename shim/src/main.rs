//! containerd-shim-husk-v2: the containerd runtime v2 shim for husk
//! (runtime type `io.containerd.husk.v2`).
//!
//! One shim serves every container of a group (by default one container;
//! pods group on the `io.kubernetes.cri.sandbox-id` annotation). It drives
//! husk as a library: the containers' init processes and exec'd processes
//! are the shim's own children, reaped by it (it is a child subreaper), and
//! their exits are reported to containerd once each.

mod error;
mod metrics;
mod mounts;
mod service;
mod stdio;
mod task;

fn main() {
    let config = containerd_shim::Config::default();
    containerd_shim::run::<service::Service>(service::RUNTIME_ID, Some(config));
}
