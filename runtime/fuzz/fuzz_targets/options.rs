//! Mount options, signal names and cgroup paths from untrusted text never
//! panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts: Vec<&str> = text.split(',').collect();
    let parsed = husk::rootfs::options::MountOptions::parse(&opts);
    let _ = parsed.data();
    let _ = husk::signal::parse(text);
    let _ = husk::state::validate_id(text);
    let _ = husk::process_attrs::parse_list("list", text);
});
