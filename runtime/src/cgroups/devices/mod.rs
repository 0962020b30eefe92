//! Device access rules (`linux.resources.devices`).
//!
//! The config's rule list is "last match wins". Both kernel interfaces want
//! something else: v1's devices.allow/deny is a default policy plus a list
//! of exceptions, and the v2 BPF program is easiest to generate from the
//! same normal form. So the rules are first reduced to a default plus
//! exceptions exactly as the v1 kernel would, then written out.

pub mod bpf;

use serde::{Deserialize, Serialize};

use super::resources::ResourceError;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const RWM: u8 = MKNOD | READ | WRITE;

/// 'a' (all), 'c' or 'b'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    All,
    Char,
    Block,
}

/// One exception in normal form; None is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Exception {
    /// The v1 devices.allow/deny line.
    pub fn v1_line(&self) -> String {
        let t = match self.typ {
            DevType::All => 'a',
            DevType::Char => 'c',
            DevType::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!("{t} {}:{} {}", num(self.major), num(self.minor), access_str(self.access))
    }
}

pub fn access_str(a: u8) -> String {
    let mut s = String::new();
    if a & READ != 0 {
        s.push('r');
    }
    if a & WRITE != 0 {
        s.push('w');
    }
    if a & MKNOD != 0 {
        s.push('m');
    }
    s
}

/// Default policy plus exceptions (which all have the opposite verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl Normalized {
    pub fn allow_all() -> Normalized {
        Normalized { default_allow: true, exceptions: Vec::new() }
    }
}

fn parse_rule(r: &Rule) -> Result<Exception, ResourceError> {
    let bad = |why: String| ResourceError::Invalid { what: "linux.resources.devices".into(), why };
    let typ = match r.typ.as_deref().unwrap_or("a") {
        "a" | "" => DevType::All,
        "c" | "u" => DevType::Char,
        "b" => DevType::Block,
        t => return Err(bad(format!("device type {t:?}"))),
    };
    let num = |n: Option<i64>| -> Result<Option<u32>, ResourceError> {
        match n {
            None | Some(-1) => Ok(None),
            Some(v) => u32::try_from(v).map(Some).map_err(|_| bad(format!("device number {v}"))),
        }
    };
    let mut access = 0;
    for ch in r.access.as_deref().unwrap_or("rwm").chars() {
        access |= match ch {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            c => return Err(bad(format!("access {c:?}"))),
        };
    }
    if r.access.as_deref() == Some("") {
        access = RWM;
    }
    Ok(Exception { typ, major: num(r.major)?, minor: num(r.minor)?, access })
}

/// Reduce a rule list the way the v1 kernel applies it in order, starting
/// from the parent's allow-all: a rule for everything ("a *:* rwm") resets
/// the default; a rule agreeing with the default removes access from a
/// matching exception; any other rule adds an exception.
pub fn normalize(rules: &[Rule]) -> Result<Normalized, ResourceError> {
    let mut n = Normalized { default_allow: true, exceptions: Vec::new() };
    for r in rules {
        let e = parse_rule(r)?;
        let everything = e.typ == DevType::All && e.major.is_none() && e.minor.is_none();
        if everything && e.access == RWM {
            n.default_allow = r.allow;
            n.exceptions.clear();
            continue;
        }
        // v1 cannot express "a" with numbers or partial access: expand to c and b.
        let expanded: Vec<Exception> = if e.typ == DevType::All {
            vec![Exception { typ: DevType::Char, ..e }, Exception { typ: DevType::Block, ..e }]
        } else {
            vec![e]
        };
        for e in expanded {
            if r.allow == n.default_allow {
                for x in n.exceptions.iter_mut() {
                    if x.typ == e.typ && x.major == e.major && x.minor == e.minor {
                        x.access &= !e.access;
                    }
                }
                n.exceptions.retain(|x| x.access != 0);
            } else if let Some(x) = n
                .exceptions
                .iter_mut()
                .find(|x| x.typ == e.typ && x.major == e.major && x.minor == e.minor)
            {
                x.access |= e.access;
            } else {
                n.exceptions.push(e);
            }
        }
    }
    Ok(n)
}

/// runc's AllowedDevices: what every container may use whatever the
/// config says (mknod of anything, the standard character devices, ptys,
/// tun). They are appended after the config's rules.
pub fn default_rules() -> Vec<Rule> {
    let r = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| Rule {
        allow: true,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    };
    vec![
        r("c", None, None, "m"),
        r("b", None, None, "m"),
        r("c", Some(1), Some(3), "rwm"),
        r("c", Some(1), Some(8), "rwm"),
        r("c", Some(1), Some(7), "rwm"),
        r("c", Some(5), Some(0), "rwm"),
        r("c", Some(1), Some(5), "rwm"),
        r("c", Some(1), Some(9), "rwm"),
        r("c", Some(136), None, "rwm"),
        r("c", Some(5), Some(2), "rwm"),
        r("c", Some(10), Some(200), "rwm"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule { allow, typ: Some(typ.into()), major, minor, access: Some(access.into()) }
    }

    #[test]
    fn deny_all_then_allow_list() {
        let mut rules = vec![rule(false, "a", None, None, "rwm")];
        rules.extend(default_rules());
        let n = normalize(&rules).unwrap();
        assert!(!n.default_allow);
        assert_eq!(n.exceptions.len(), default_rules().len());
        assert_eq!(n.exceptions[2].v1_line(), "c 1:3 rwm");
        assert_eq!(n.exceptions[0].v1_line(), "c *:* m");
    }

    #[test]
    fn later_rules_win() {
        let rules = vec![
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(11), "rw"),
            rule(false, "c", Some(1), Some(11), "w"),
        ];
        let n = normalize(&rules).unwrap();
        assert_eq!(n.exceptions, vec![Exception { typ: DevType::Char, major: Some(1), minor: Some(11), access: READ }]);
        // Allow everything again: no exceptions left.
        let mut more = rules.clone();
        more.push(rule(true, "a", None, None, "rwm"));
        let n = normalize(&more).unwrap();
        assert!(n.default_allow && n.exceptions.is_empty());
    }

    #[test]
    fn deny_on_allow_default_is_an_exception() {
        let n = normalize(&[rule(false, "c", Some(1), Some(11), "rwm")]).unwrap();
        assert!(n.default_allow);
        assert_eq!(n.exceptions.len(), 1);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(normalize(&[rule(true, "x", None, None, "r")]).is_err());
        assert!(normalize(&[rule(true, "c", None, None, "rq")]).is_err());
        assert!(normalize(&[rule(true, "c", Some(1 << 40), None, "r")]).is_err());
    }
}
