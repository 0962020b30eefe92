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

/// Remove from every set of `p` the capabilities husk's own bounding set
/// lacks (here CAP_SYS_RESOURCE on a host that withholds it): no process of
/// ours can grant them, and runtime-spec 1.2 says a runtime SHOULD NOT
/// fail on capabilities it cannot grant, but warn. Runs in the parent,
/// where the warning reaches the log; the forked child inherits the same
/// bounding set. Returns the names dropped.
pub fn drop_ungrantable(p: &mut oci_spec::runtime::Process) -> Vec<String> {
    let Some(mut c) = p.capabilities().clone() else { return Vec::new() };
    let Ok(bounding) = caps::read(None, CapSet::Bounding) else { return Vec::new() };
    let grantable = |cap: &oci_spec::runtime::Capability| {
        // Names unknown to `caps` are left for `resolve` to judge.
        Capability::from_str(&format!("CAP_{cap}")).map_or(true, |k| bounding.contains(&k))
    };
    let mut dropped: Vec<String> = Vec::new();
    let mut filter = |set: Option<SpecCaps>| {
        set.map(|s| {
            s.into_iter()
                .filter(|cap| {
                    let ok = grantable(cap);
                    let name = format!("CAP_{cap}");
                    if !ok && !dropped.contains(&name) {
                        dropped.push(name);
                    }
                    ok
                })
                .collect::<SpecCaps>()
        })
    };
    c.set_bounding(filter(c.bounding().clone()));
    c.set_effective(filter(c.effective().clone()));
    c.set_permitted(filter(c.permitted().clone()));
    c.set_inheritable(filter(c.inheritable().clone()));
    c.set_ambient(filter(c.ambient().clone()));
    if !dropped.is_empty() {
        dropped.sort();
        tracing::warn!("not granting {}: not in the runtime's own bounding set", dropped.join(", "));
        p.set_capabilities(Some(c));
    }
    dropped
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

/// Make one permitted capability effective again, for a step between the
/// uid change and [`apply`].
pub fn raise_effective(cap: Capability) -> Result<(), CapError> {
    caps::raise(None, CapSet::Effective, cap).map_err(|err| CapError::Set { set: "effective", err })
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
    fn ungrantable_capabilities_are_dropped_from_every_set() {
        let bounding = caps::read(None, CapSet::Bounding).unwrap();
        let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        let mut p: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
            "cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": all, "effective": all, "permitted": all, "inheritable": all, "ambient": ["CAP_KILL"]}
        }))
        .unwrap();
        let dropped = drop_ungrantable(&mut p);
        let missing: Vec<String> = caps::all().difference(&bounding).map(|c| c.to_string()).collect();
        assert_eq!(dropped.len(), missing.len(), "{dropped:?} vs {missing:?}");
        let c = p.capabilities().clone().unwrap();
        let in_bounding = |set: &Option<SpecCaps>| set.iter().flatten().all(|cap| bounding.contains(&Capability::from_str(&format!("CAP_{cap}")).unwrap()));
        for set in [c.bounding(), c.effective(), c.permitted(), c.inheritable(), c.ambient()] {
            assert!(in_bounding(set));
        }
        assert_eq!(c.bounding().as_ref().unwrap().len(), bounding.intersection(&caps::all()).count());
    }

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
