//! `--preserve-fds N` passes fds 3..3+N to the container process. As in
//! runc, the ones of those that are open are passed and the closed ones
//! are skipped. A closed one is a hole husk's own files would fall into
//! (the state lock, the log, a fifo) and then be passed on: so before husk
//! opens anything, each hole is filled with a close-on-exec placeholder,
//! and the container process closes the placeholders just before it marks
//! the range to survive exec.

use std::os::fd::RawFd;
use std::sync::OnceLock;

static HOLES: OnceLock<Vec<RawFd>> = OnceLock::new();

/// Fill the closed fds of 3..3+n with placeholders. Call first thing, and
/// once; returns the holes.
pub fn reserve(n: i32) -> &'static [RawFd] {
    HOLES.get_or_init(|| fill(3..3 + n.clamp(0, MAX)))
}

fn fill(range: std::ops::Range<RawFd>) -> Vec<RawFd> {
    let mut holes = Vec::new();
    for fd in range {
        // SAFETY: F_GETFD only reads the fd's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        // SAFETY: opens a new fd on /dev/null; a failure is checked.
        let p = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if p < 0 {
            continue;
        }
        if p != fd {
            // SAFETY: `fd` is closed (checked above; husk has no other
            // thread yet), `p` is ours.
            unsafe {
                libc::dup3(p, fd, libc::O_CLOEXEC);
                libc::close(p);
            }
        }
        holes.push(fd);
    }
    holes
}

/// The largest N accepted (the CLI refuses more).
pub const MAX: i32 = 65536;

/// In the container process, before the range is sealed for exec: close
/// the placeholders, so the holes stay holes.
pub fn close_placeholders() {
    close_all(HOLES.get().map_or(&[], |v| v.as_slice()));
}

fn close_all(fds: &[RawFd]) {
    for fd in fds {
        // SAFETY: a placeholder `fill` opened; nothing else uses it.
        unsafe { libc::close(*fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_filled_then_closed() {
        // High numbers, away from the fds of the harness's other threads.
        let (a, b) = (900, 902);
        // SAFETY: test-owned fd numbers, made and closed here.
        unsafe {
            libc::dup2(0, a);
            libc::dup2(0, b);
            libc::close(a + 1);
        }
        let holes = fill(a..b + 1);
        assert_eq!(holes, [a + 1]);
        // SAFETY: F_GETFD only reads flags.
        let flags = unsafe { libc::fcntl(a + 1, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "placeholder is open and close-on-exec");
        close_all(&holes);
        // SAFETY: as above.
        assert!(unsafe { libc::fcntl(a + 1, libc::F_GETFD) } < 0);
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    }
}
