//! The few operating-system calls the suites need that std does not wrap. They are the only
//! `unsafe` code of the project: the workspace forbids it everywhere else (testkit keeps its own
//! lint table for that reason, and denies it outside this module).
#![allow(unsafe_code, reason = "libc calls that std does not wrap")]

/// Raises this process's soft limit on open files to `wanted` (or the hard limit): the service
/// and thousands of client sockets share one test process (tests/api/connections.rs).
pub fn raise_fd_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// Gives the heap's free memory back to the system, so that the next allocations show in the
/// RSS instead of reusing what earlier work freed (the memory tests of tests/api/watch.rs).
pub fn trim_the_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of glibc's heap; it touches nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether this process runs as root (a throwaway cluster must then run as `postgres`).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
