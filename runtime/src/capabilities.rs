//! The five capability sets of `process.capabilities`.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities as SpecCaps, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("capability {0}: unknown to this kernel or to husk")]
    Unknown(String),
    #[error("setting {set} capabilities: {err}")]
    Set { set: &'static str, err: caps::errors::CapsError },
}

/// The capabilities this kernel knows (read once per process setup).
fn known() -> CapsHashSet {
    caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all())
}

/// A spec capability set as `caps` capabilities. Capabilities the running
/// kernel does not know are dropped, as runc does, so a config written for a
/// newer kernel still runs.
fn to_known_caps(set: Option<&SpecCaps>, known: &CapsHashSet) -> Result<CapsHashSet, CapError> {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name).map_err(|_| CapError::Unknown(name.clone()))?;
        if known.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

pub struct Resolved {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

pub fn resolve(c: Option<&LinuxCapabilities>) -> Result<Resolved, CapError> {
    let Some(c) = c else {
        let empty = CapsHashSet::new();
        return Ok(Resolved {
            bounding: empty.clone(),
            effective: empty.clone(),
            permitted: empty.clone(),
            inheritable: empty.clone(),
            ambient: empty,
        });
    };
    let k = known();
    Ok(Resolved {
        bounding: to_known_caps(c.bounding().as_ref(), &k)?,
        effective: to_known_caps(c.effective().as_ref(), &k)?,
        permitted: to_known_caps(c.permitted().as_ref(), &k)?,
        inheritable: to_known_caps(c.inheritable().as_ref(), &k)?,
        ambient: to_known_caps(c.ambient().as_ref(), &k)?,
    })
}

fn set(which: CapSet, name: &'static str, v: &CapsHashSet) -> Result<(), CapError> {
    caps::set(None, which, v).map_err(|err| CapError::Set { set: name, err })
}

/// Drop the bounding set; must run while still privileged, before the uid
/// changes.
pub fn drop_bounding(r: &Resolved) -> Result<(), CapError> {
    for cap in caps::read(None, CapSet::Bounding).unwrap_or_default() {
        if !r.bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|err| CapError::Set { set: "bounding", err })?;
        }
    }
    Ok(())
}

/// Set inheritable, effective, permitted, then ambient. The order keeps each
/// step legal: inheritable may only grow within the old permitted set, and
/// effective must stay within permitted.
pub fn apply(r: &Resolved) -> Result<(), CapError> {
    set(CapSet::Inheritable, "inheritable", &r.inheritable)?;
    let eff: CapsHashSet = r.effective.intersection(&r.permitted).copied().collect();
    set(CapSet::Effective, "effective", &eff)?;
    set(CapSet::Permitted, "permitted", &r.permitted)?;
    // The kernel only allows ambient capabilities that are both permitted
    // and inheritable; others are skipped, as runc does.
    for cap in &r.ambient {
        if r.permitted.contains(cap) && r.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|err| CapError::Set { set: "ambient", err })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_spec_names() {
        let spec: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL"]
        }))
        .unwrap();
        let r = resolve(Some(&spec)).unwrap();
        assert!(r.bounding.contains(&Capability::CAP_KILL));
        assert!(r.bounding.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(r.effective.len(), 1);
        assert!(r.ambient.is_empty());
    }
}
