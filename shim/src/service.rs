//! The shim's life outside the Task service: `start` (spawn the long-lived
//! shim for a group of containers, or reuse the one running), `delete`
//! (clean up after a shim that died), and the wait for Shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::{
    self as shim, protos::protobuf::well_known_types::timestamp::Timestamp, publisher::RemotePublisher, Config,
    DeleteResponse, ExitSignal, Flags, StartOpts,
};

use crate::task::TaskService;

pub const RUNTIME_ID: &str = "io.containerd.husk.v2";

/// Annotations that put several containers under one shim, first match wins.
const GROUP_LABELS: &[&str] = &["io.containerd.husk.v2.group", "io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"];

/// husk's state root for a containerd namespace.
pub fn state_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/husk").join(namespace)
}

pub struct Service {
    namespace: String,
    id: String,
    exit: Arc<ExitSignal>,
}

impl shim::Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service { namespace: args.namespace.clone(), id: args.id.clone(), exit: Arc::new(ExitSignal::default()) }
    }

    fn start_shim(&mut self, opts: StartOpts) -> Result<String, shim::Error> {
        let grouping = group_of(Path::new("config.json")).unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = shim::spawn(opts, &grouping, Vec::new())?;
        shim::util::write_address(&address)?;
        Ok(address)
    }

    /// containerd calls `delete` when the shim is gone: kill and remove what
    /// is left of the container, and unmount its rootfs.
    fn delete_shim(&mut self) -> Result<DeleteResponse, shim::Error> {
        let store = husk::state::Store::new(&state_root(&self.namespace));
        if let Err(e) = husk::container::ops::delete(&store, &self.id, true) {
            log::warn!("deleting {}: {e}", self.id);
        }
        if let Ok(cwd) = std::env::current_dir() {
            if let Err(e) = crate::mounts::unmount(&cwd.join("rootfs")) {
                log::warn!("{e}");
            }
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: shim::protos::protobuf::MessageField::some(Timestamp::now()),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    /// Never called: main.rs serves with `serve::serve` and hands the crate
    /// only `start`, `delete`, `-info` and `-version`, which need no task
    /// service (the crate would otherwise serve for any other action).
    fn create_task_service(&self, _publisher: RemotePublisher) -> TaskService {
        eprintln!("{RUNTIME_ID}: the crate's serving path is not used by this shim");
        std::process::exit(1)
    }
}

/// The group annotation of the bundle's config, if any.
pub fn group_of(config: &Path) -> Option<String> {
    let text = std::fs::read(config).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let ann = v.get("annotations")?;
    GROUP_LABELS
        .iter()
        .find_map(|k| ann.get(*k).and_then(|x| x.as_str()).filter(|s| !s.is_empty()).map(String::from))
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_from_annotations() {
        let d = std::env::temp_dir().join(format!("husk-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("config.json");
        std::fs::write(&p, r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#).unwrap();
        assert_eq!(super::group_of(&p).as_deref(), Some("pod1"));
        std::fs::write(&p, r#"{"annotations":{}}"#).unwrap();
        assert_eq!(super::group_of(&p), None);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
