//! `husk features`: what this build of husk supports, in the runtime-spec's
//! features.md format. Every entry is derived from the code that implements
//! it, so the document cannot claim more than husk does.

use serde_json::{json, Value};

use crate::rootfs::options::{FLAG_OPTIONS, OTHER_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS};

pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.3.0";

/// `criu`: the CRIU binary `checkpoint`/`restore` would use; checkpoint
/// support is reported (runc's annotation) only if it works here.
pub fn features(criu: &str) -> Value {
    let mut mount_options: Vec<&str> = FLAG_OPTIONS.iter().map(|(n, _, _)| *n).collect();
    mount_options.extend(PROPAGATION_OPTIONS);
    mount_options.extend(RECURSIVE_OPTIONS.iter().map(|(n, _, _)| *n));
    mount_options.extend(OTHER_OPTIONS);
    let caps: Vec<String> = {
        let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true},
            "seccomp": {
                "enabled": true,
                "actions": crate::seccomp::SUPPORTED_ACTIONS,
                "operators": crate::seccomp::SUPPORTED_OPERATORS,
                "archs": crate::seccomp::SUPPORTED_ARCHS,
                "knownFlags": crate::seccomp::KNOWN_FLAGS,
                "supportedFlags": crate::seccomp::supported_flags(),
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": {
                "modes": crate::process_attrs::MEMORY_POLICY_MODES,
                "flags": crate::process_attrs::MEMORY_POLICY_FLAGS
            },
            "mountExtensions": {"idmap": {"enabled": crate::rootfs::idmap::kernel_supports()}}
        },
        "annotations": annotations(criu)
    })
}

fn annotations(criu: &str) -> Value {
    let mut a = json!({
        "io.github.husk.version": env!("CARGO_PKG_VERSION"),
        "io.github.seccomp.libseccomp.version": crate::seccomp::library_version()
    });
    if let Some(v) = crate::criu::works(criu) {
        a["org.opencontainers.runc.checkpoint.enabled"] = json!("true");
        a["io.github.husk.criu.version"] = json!(v);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_mount_option_is_understood() {
        let f = features("/nonexistent/criu");
        for o in f["mountOptions"].as_array().unwrap() {
            let o = o.as_str().unwrap();
            let parsed = crate::rootfs::options::MountOptions::parse(&[o]);
            assert!(parsed.data.is_empty(), "{o} would be passed as fs data");
        }
    }

    #[test]
    fn every_advertised_seccomp_action_builds() {
        for a in features("/nonexistent/criu")["linux"]["seccomp"]["actions"].as_array().unwrap() {
            // NOTIFY needs a listener; building does not contact it.
            let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/listener.sock",
                "syscalls": [{"names": ["mkdir"], "action": a}]
            }))
            .unwrap();
            crate::seccomp::build(&spec).unwrap();
        }
    }

    #[test]
    fn no_checkpoint_without_a_working_criu() {
        let f = features("/nonexistent/criu");
        assert!(f["annotations"].get("org.opencontainers.runc.checkpoint.enabled").is_none());
        let f = features("false");
        assert!(f["annotations"].get("org.opencontainers.runc.checkpoint.enabled").is_none());
    }

    #[test]
    fn version_range_accepts_what_spec_validation_accepts() {
        assert!(OCI_VERSION_MIN.starts_with("1.") && OCI_VERSION_MAX.starts_with("1."));
    }
}
