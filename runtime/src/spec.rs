//! Loading and validating a bundle's `config.json`.
//!
//! Translation from the spec to what the runtime does lives next to each
//! concern; this module only answers "is this a config we can run?".

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A config larger than this is refused before parsing: no sane config is
/// anywhere near it, and parsing a huge one would only burn memory.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {0}: {1}")]
    Bundle(PathBuf, std::io::Error),
    // runc's words, which scripts match on, then the path.
    #[error("JSON specification file {} not found ({})", .0.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(), .0.display())]
    Missing(PathBuf),
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{path}: config is {size} bytes, more than the {max} allowed")]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{path}: invalid config at line {line} column {column}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("unsupported ociVersion {0:?}: husk runs runtime-spec 1.x configs")]
    Version(String),
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("rootfs {0}: {1}")]
    Rootfs(PathBuf, std::io::Error),
}

/// A parsed config together with the absolute paths derived from it.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// The raw config, kept so the state directory can hold an exact copy.
    pub raw: Vec<u8>,
}

pub fn load_bundle(dir: &Path) -> Result<Bundle, SpecError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| SpecError::Bundle(dir.to_path_buf(), e))?;
    let path = dir.join("config.json");
    let raw = read_limited(&path)?;
    let spec = parse(&path, &raw)?;
    validate(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root is required".into()))?;
    let rootfs = dir.join(root.path());
    let rootfs = rootfs
        .canonicalize()
        .map_err(|e| SpecError::Rootfs(rootfs.clone(), e))?;
    if !rootfs.is_dir() {
        return Err(SpecError::Rootfs(
            rootfs,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    Ok(Bundle {
        dir,
        spec,
        rootfs,
        raw,
    })
}

pub fn read_limited(path: &Path) -> Result<Vec<u8>, SpecError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing(path.to_path_buf()),
        _ => SpecError::Read(path.to_path_buf(), e),
    })?;
    let size = file
        .metadata()
        .map_err(|e| SpecError::Read(path.to_path_buf(), e))?
        .len();
    if size > MAX_CONFIG_BYTES {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_CONFIG_BYTES,
        });
    }
    let mut raw = Vec::with_capacity(size as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| SpecError::Read(path.to_path_buf(), e))?;
    Ok(raw)
}

pub fn parse(path: &Path, raw: &[u8]) -> Result<Spec, SpecError> {
    parse_or_repair(path, raw, |doc| drop_unknown_caps(doc.pointer_mut("/process/capabilities")))
}

/// An exec's process.json, as [`parse`] does config.json; one without
/// `user` runs as uid 0, gid 0, as in runc (the spec type requires it).
pub fn parse_process(path: &Path, raw: &[u8]) -> Result<oci_spec::runtime::Process, SpecError> {
    parse_or_repair(path, raw, |doc| {
        let no_user = doc.as_object_mut().is_some_and(|m| {
            let missing = !m.contains_key("user");
            if missing {
                m.insert("user".into(), serde_json::json!({"uid": 0, "gid": 0}));
            }
            missing
        });
        drop_unknown_caps(doc.get_mut("capabilities")) | no_user
    })
}

/// Parse; a document that fails gets a second look: `repair` fills in what
/// runc tolerates and says whether it changed anything, and the result is
/// parsed again. Only documents that fail pay for it.
fn parse_or_repair<T: serde::de::DeserializeOwned>(
    path: &Path,
    raw: &[u8],
    repair: impl FnOnce(&mut serde_json::Value) -> bool,
) -> Result<T, SpecError> {
    let err = match parse_json(path, raw) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(raw) else { return Err(err) };
    if !repair(&mut doc) {
        return Err(err);
    }
    let fixed = serde_json::to_vec(&doc).map_err(|_| err)?;
    parse_json(path, &fixed)
}

/// Capability names this build does not know (a newer spec on an older
/// runtime) are dropped with a warning, as runc does, rather than failing
/// the whole document. True if any was dropped.
fn drop_unknown_caps(caps: Option<&mut serde_json::Value>) -> bool {
    let Some(caps) = caps.and_then(|c| c.as_object_mut()) else { return false };
    let mut dropped = std::collections::BTreeSet::new();
    for list in caps.values_mut().filter_map(|l| l.as_array_mut()) {
        list.retain(|c| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known {
                dropped.insert(c.to_string());
            }
            known
        });
    }
    if dropped.is_empty() {
        return false;
    }
    tracing::warn!("ignoring unknown or unavailable capabilities: {}", dropped.into_iter().collect::<Vec<_>>().join(" "));
    true
}

/// Any JSON document of ours (config.json, exec's process.json), with a
/// parse error that says where.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, raw: &[u8]) -> Result<T, SpecError> {
    serde_json::from_slice(raw).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line L column C" itself; we print the position
/// once, in our own words.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(SpecError::Version(version.clone()));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("process is required".into()))?;
    validate_process(process)?;
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            if seen.contains(&ns.typ()) {
                return Err(SpecError::Invalid(format!(
                    "namespace {} is listed twice",
                    ns.typ()
                )));
            }
            seen.push(ns.typ());
        }
        let has_userns = seen.contains(&LinuxNamespaceType::User);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if maps && !has_userns {
            return Err(SpecError::Invalid(
                "uidMappings/gidMappings need a user namespace".into(),
            ));
        }
        for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
            if key.is_empty() || key.starts_with(['/', '.']) || key.contains("..") {
                return Err(SpecError::Invalid(format!("invalid sysctl name {key:?}")));
            }
        }
    } else {
        return Err(SpecError::Invalid("linux section is required".into()));
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(SpecError::Invalid(format!(
                "mount destination {} is not absolute",
                m.destination().display()
            )));
        }
    }
    crate::rootfs::idmap::validate(spec).map_err(|e| SpecError::Invalid(e.to_string()))?;
    Ok(())
}

pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<(), SpecError> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(SpecError::Invalid("process.args must not be empty".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::Invalid(format!(
            "process.cwd {} is not an absolute path",
            process.cwd().display()
        )));
    }
    for e in process.env().iter().flatten() {
        if !e.contains('=') {
            return Err(SpecError::Invalid(format!(
                "process.env entry {e:?} has no '='"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_line_and_column() {
        let err = parse(Path::new("c.json"), b"{\n  \"ociVersion\": 1.0.2,\n}").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("column"), "{text}");
        assert_eq!(text.matches("line").count(), 1, "{text}");
    }

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<(), SpecError> {
        let spec = parse(Path::new("c"), v.to_string().as_bytes())?;
        validate(&spec)
    }

    #[test]
    fn minimal_config_is_valid() {
        check(minimal()).unwrap();
    }

    #[test]
    fn rejects_major_version_2() {
        let mut v = minimal();
        v["ociVersion"] = "2.0.0".into();
        assert!(matches!(check(v), Err(SpecError::Version(_))));
    }

    #[test]
    fn rejects_empty_args_relative_cwd_and_env_without_equals() {
        let mut v = minimal();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).is_err());
        let mut v = minimal();
        v["process"]["cwd"] = "tmp".into();
        assert!(check(v).is_err());
        let mut v = minimal();
        v["process"]["env"] = serde_json::json!(["NOEQUALS"]);
        assert!(check(v).is_err());
    }

    #[test]
    fn rejects_duplicate_namespace_and_maps_without_userns() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]);
        assert!(check(v).is_err());
        let mut v = minimal();
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert!(check(v).is_err());
    }

    #[test]
    fn rejects_relative_mount_destination() {
        let mut v = minimal();
        v["mounts"] = serde_json::json!([{"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}]);
        assert!(check(v).is_err());
    }
}
