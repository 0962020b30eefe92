//! containerd shim v2 for husk. Not implemented yet: the shim lands with issue 5.
fn main() {
    eprintln!("containerd-shim-husk-v2: not implemented yet");
    std::process::exit(1);
}
