//! process.json (for `exec --process`) parsing and validation never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<oci_spec::runtime::Process>(data) {
        let _ = husk::spec::validate_process(&p);
        let _ = husk::process::environment(&p);
        if let Some(a) = p.exec_cpu_affinity() {
            if let Some(i) = a.initial() {
                let _ = husk::process_attrs::parse_list("initial", i);
            }
        }
    }
});
