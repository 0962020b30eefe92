//! config.json parsing and validation never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = husk::spec::parse(std::path::Path::new("config.json"), data) {
        let _ = husk::spec::validate(&spec);
        if let Some(linux) = spec.linux() {
            let _ = husk::namespaces::Plan::from_spec(linux);
            if let Some(s) = linux.seccomp() {
                let _ = husk::seccomp::build(s);
            }
        }
        if let Some(p) = spec.process() {
            let _ = husk::capabilities::resolve(p.capabilities().as_ref());
        }
    }
});
