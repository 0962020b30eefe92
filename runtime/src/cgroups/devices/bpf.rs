//! cgroup v2 device filtering: a BPF_PROG_TYPE_CGROUP_DEVICE program built
//! from the normalized rules, loaded with bpf(2) and attached to the
//! container's cgroup (with BPF_F_ALLOW_MULTI, as runc does, so programs of
//! enclosing cgroups keep applying too).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }` where access_type is `access << 16 | type`, and
//! returns 1 to allow, 0 to deny.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{DevType, Normalized, RWM};

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("opening {0}: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("loading the program: {err}{log}")]
    Load { err: std::io::Error, log: String },
    #[error("attaching the program to {0}: {1}")]
    Attach(PathBuf, std::io::Error),
}

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_LDX_MEM_W: u8 = 0x61;
const BPF_ALU64_AND_K: u8 = 0x57;
const BPF_ALU64_RSH_K: u8 = 0x77;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_ALU64_MOV_X: u8 = 0xbf;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_JMP_JNE_X: u8 = 0x5d;
const BPF_EXIT: u8 = 0x95;

const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0xf), off, imm }
}

/// Build the filter. Registers: r2 = device type, r3 = requested access,
/// r4 = major, r5 = minor. Each exception is a block that jumps to the next
/// block on any mismatch and otherwise returns the exception's verdict; the
/// fall-through returns the default.
pub fn program(n: &Normalized) -> Vec<Insn> {
    let mut p = vec![
        ins(BPF_LDX_MEM_W, 2, 1, 0, 0),
        ins(BPF_ALU64_AND_K, 2, 0, 0, 0xffff),
        ins(BPF_LDX_MEM_W, 3, 1, 0, 0),
        ins(BPF_ALU64_RSH_K, 3, 0, 0, 16),
        ins(BPF_LDX_MEM_W, 4, 1, 4, 0),
        ins(BPF_LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict = i32::from(!n.default_allow);
    for e in &n.exceptions {
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match e.typ {
            DevType::All => {}
            DevType::Char => block.push((ins(BPF_JMP_JNE_K, 2, 0, 0, DEVCG_DEV_CHAR), true)),
            DevType::Block => block.push((ins(BPF_JMP_JNE_K, 2, 0, 0, DEVCG_DEV_BLOCK), true)),
        }
        if e.access != RWM {
            block.push((ins(BPF_ALU64_MOV_X, 1, 3, 0, 0), false));
            block.push((ins(BPF_ALU64_AND_K, 1, 0, 0, i32::from(e.access)), false));
            if n.default_allow {
                // A deny exception applies when any requested access is in it.
                block.push((ins(BPF_JMP_JEQ_K, 1, 0, 0, 0), true));
            } else {
                // An allow exception must cover every requested access.
                block.push((ins(BPF_JMP_JNE_X, 1, 3, 0, 0), true));
            }
        }
        if let Some(m) = e.major {
            block.push((ins(BPF_JMP_JNE_K, 4, 0, 0, m as i32), true));
        }
        if let Some(m) = e.minor {
            block.push((ins(BPF_JMP_JNE_K, 5, 0, 0, m as i32), true));
        }
        block.push((ins(BPF_ALU64_MOV_K, 0, 0, 0, verdict), false));
        block.push((ins(BPF_EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut insn, jumps_out)) in block.into_iter().enumerate() {
            if jumps_out {
                // Offsets count from the next instruction: land right after this block.
                insn.off = (len - i - 1) as i16;
            }
            p.push(insn);
        }
    }
    p.push(ins(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(n.default_allow)));
    p.push(ins(BPF_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of union bpf_attr, padded to a size every kernel
/// since 4.15 accepts (unused trailing fields must be zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    pad: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: u32,
}

pub fn load(insns: &[Insn]) -> Result<OwnedFd, BpfError> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: attr points to live memory of the stated size; insns and
    // license outlive the call; the kernel only reads them.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, std::mem::size_of::<ProgLoadAttr>()) };
    if fd >= 0 {
        // SAFETY: the kernel returned a new fd that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let err = std::io::Error::last_os_error();
    // Load again with the verifier log on, only to explain the failure.
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above; log is writable memory of log_size bytes.
    unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, std::mem::size_of::<ProgLoadAttr>()) };
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
    Err(BpfError::Load { err, log: if text.is_empty() { String::new() } else { format!(": {text}") } })
}

/// Load the program for `n` and attach it to the cgroup directory `dir`.
pub fn apply(dir: &Path, n: &Normalized) -> Result<(), BpfError> {
    let prog = load(&program(n))?;
    let cg = std::fs::File::open(dir).map_err(|e| BpfError::Open(dir.to_path_buf(), e))?;
    let attr = ProgAttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: attr is a live, fully initialized struct of the given size.
    let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, &attr as *const ProgAttachAttr, std::mem::size_of::<ProgAttachAttr>()) };
    if r != 0 {
        return Err(BpfError::Attach(dir.to_path_buf(), std::io::Error::last_os_error()));
    }
    // The cgroup now holds the program; our fd can go.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{normalize, Rule};
    use super::*;

    fn deny_all_but_null() -> Normalized {
        normalize(&[
            Rule { allow: false, access: Some("rwm".into()), ..Default::default() },
            Rule { allow: true, typ: Some("c".into()), major: Some(1), minor: Some(3), access: Some("rw".into()) },
        ])
        .unwrap()
    }

    #[test]
    fn jumps_land_on_block_boundaries() {
        let p = program(&deny_all_but_null());
        // prologue 6 + block (type, mov, and, jne, major, minor, mov, exit) 8 + tail 2
        assert_eq!(p.len(), 16);
        assert_eq!(p[6], ins(BPF_JMP_JNE_K, 2, 0, 7, DEVCG_DEV_CHAR));
        assert_eq!(p[9].off, 4);
        assert_eq!(p[12], ins(BPF_ALU64_MOV_K, 0, 0, 0, 1));
        assert_eq!(p[14], ins(BPF_ALU64_MOV_K, 0, 0, 0, 0));
        for (i, insn) in p.iter().enumerate() {
            if matches!(insn.code, BPF_JMP_JNE_K | BPF_JMP_JEQ_K | BPF_JMP_JNE_X) {
                let target = i as i64 + 1 + i64::from(insn.off);
                assert!(target == 14, "insn {i} jumps to {target}");
            }
        }
    }

    /// Load and attach for real on the host's cgroup2 mount (needs root
    /// and a cgroup2 mount; skipped otherwise), then check a process in
    /// the cgroup can open /dev/null but not /dev/zero.
    #[test]
    fn filter_denies_in_a_real_cgroup() {
        let Some(mount) = crate::cgroups::hierarchies()
            .ok()
            .and_then(|hs| hs.into_iter().find(|h| h.kind == crate::cgroups::Kind::V2))
            .map(|h| h.mount_point)
        else {
            eprintln!("no cgroup2 mount: skipped");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: skipped");
            return;
        }
        let dir = mount.join(format!("husk-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let res = apply(&dir, &deny_all_but_null());
        let probe = |dev: &str| {
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.args(["-c", &format!("echo $$ > {}/cgroup.procs && exec 3<>{dev}", dir.display())]);
            cmd.status().map(|s| s.success()).unwrap_or(false)
        };
        let (null_ok, zero_ok) = if res.is_ok() { (probe("/dev/null"), probe("/dev/zero")) } else { (false, false) };
        for _ in 0..200 {
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        res.unwrap();
        assert!(null_ok, "/dev/null should be allowed");
        assert!(!zero_ok, "/dev/zero should be denied");
    }
}
