//! The `start` action for containerd before 2.3.
//!
//! Those containerd versions (1.6 and 1.7, what Debian and most hosts ship)
//! read the shim's answer as a bare socket address; the containerd-shim
//! crate answers in the newer JSON or protobuf forms, which 1.6 cannot
//! dial. When what containerd piped to us is the legacy input (nothing, or
//! the runtime options as a protobuf `Any`), we do the start ourselves and
//! print the bare address, which every version accepts. Anything else (the
//! bootstrap protocol of containerd 2.3+) is left to the crate, by running
//! ourselves again with the same input.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message};
use containerd_shim::StartOpts;

const DELEGATE_ENV: &str = "HUSK_SHIM_CRATE_START";
const MAX_INPUT: u64 = 1 << 20;

/// `Some(exit code)` when this was a `start` we handled.
pub fn legacy_start(args: &[OsString]) -> Option<i32> {
    if std::env::var_os(DELEGATE_ENV).is_some() {
        return None;
    }
    let flags = containerd_shim::parse(args.get(1..).unwrap_or_default()).ok()?;
    if flags.action != "start" {
        return None;
    }
    let mut input = Vec::new();
    let _ = std::io::stdin().lock().take(MAX_INPUT).read_to_end(&mut input);
    let legacy = input.is_empty()
        || Any::parse_from_bytes(&input).is_ok_and(|a| a.type_url.contains('.') && a.value.len() + a.type_url.len() + 4 >= input.len());
    let res = if legacy { start(&flags, input) } else { delegate(args, &input) };
    match res {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("{}: start: {e}", crate::service::RUNTIME_ID);
            Some(1)
        }
    }
}

fn start(flags: &containerd_shim::Flags, input: Vec<u8>) -> Result<(), String> {
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        extensions: Any::parse_from_bytes(&input).ok().into_iter().filter(|a| !a.type_url.is_empty()).collect(),
        ..Default::default()
    };
    let grouping = crate::service::group_of(std::path::Path::new("config.json")).unwrap_or_else(|| opts.id.clone());
    let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new()).map_err(|e| e.to_string())?;
    containerd_shim::util::write_address(&address).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    out.write_all(address.as_bytes()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

fn delegate(args: &[OsString], input: &[u8]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(args.get(1..).unwrap_or_default())
        .env(DELEGATE_ENV, "1")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("start exited with {status}"))
    }
}
