// musl's malloc (the release build's libc) maps and unmaps memory eagerly and
// serialises threads on one lock: `list` gained nothing from its threads,
// and every call paid extra mmap/munmap. dlmalloc keeps what it maps for the
// process's short life: run, create, start, delete and exec 6-19% faster,
// `list` parallel again, for ~0.2 MiB more peak RSS. Only this binary: the
// long-lived shim keeps musl's frugal allocator.
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    // A caller with threads forks through libc's fork (container/clone.rs);
    // the atfork handlers keep dlmalloc's lock consistent in the child.
    // SAFETY: called once, before any thread exists.
    unsafe { dlmalloc::enable_alloc_after_fork() };
    std::process::exit(husk::cli::main());
}
