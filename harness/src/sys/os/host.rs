//! The machine the harness runs on: the kernel's version (rows and settle
//! strategies depend on it, e.g. POLLHUP on a reaped pidfd since 6.9) and
//! the caller's user id, and the limits on how much of the machine a case
//! may take (descriptors, processes, memory).

/// `uname -r`, or `None` if it cannot be read.
fn release() -> Option<String> {
    // SAFETY: utsname is plain data filled by uname().
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } < 0 {
        return None;
    }
    // SAFETY: uname() NUL-terminates `release`.
    Some(unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned())
}

/// The running kernel's `(major, minor)`, from `uname -r`; `(0, 0)` if it
/// cannot be read.
pub fn kernel_version() -> (u32, u32) {
    release().map_or((0, 0), |r| parse_release(&r))
}

/// `"6.18.44-fc-v669"` -> `(6, 18)`.
pub fn parse_release(release: &str) -> (u32, u32) {
    let mut it = release.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The full `uname -r` string.
pub fn kernel_release() -> String {
    release().unwrap_or_else(|| "unknown".into())
}

/// The effective uid.
pub fn uid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    uid() == 0
}

/// The real uid and gid, for the sandbox's id maps.
pub fn real_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// The type of `getrlimit`'s resource argument: glibc has an enum of its
/// own, musl (the static build `reparent vm` packs) a plain `int`.
#[cfg(target_env = "gnu")]
pub type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub type RlimitResource = libc::c_int;

/// `getrlimit(resource)`: (soft, hard); `u64::MAX` for unlimited.
pub fn rlimit(resource: RlimitResource) -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointer to an rlimit on this stack.
    if unsafe { libc::getrlimit(resource, &mut r) } < 0 {
        return (u64::MAX, u64::MAX);
    }
    let v = |x: libc::rlim_t| if x == libc::RLIM_INFINITY { u64::MAX } else { x };
    (v(r.rlim_cur), v(r.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (which needs no
/// privilege) and returns the limit now in force.
pub fn raise_nofile() -> u64 {
    let (soft, hard) = rlimit(libc::RLIMIT_NOFILE);
    if soft < hard {
        let r = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: valid pointer to an rlimit on this stack.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
            return hard;
        }
    }
    soft
}

/// A number from a `/proc/sys` file, if it can be read.
pub fn sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

/// How many threads (each holds a pid) the machine runs now: the total of
/// `/proc/loadavg`'s fourth field.
pub fn threads_in_use() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

fn shown(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The limit a failure with `errno` ran into, named with its value, for a
/// [`crate::sys::SysError::Resource`]; `None` when `errno` is no resource
/// failure. `creates_task`: the failed call makes a process or thread
/// (fork, clone, pthread_create, spawn), where EAGAIN means a task limit
/// rather than "try again".
pub fn exhausted_limit(errno: i32, creates_task: bool) -> Option<String> {
    Some(match errno {
        libc::EMFILE => format!("RLIMIT_NOFILE {}", shown(rlimit(libc::RLIMIT_NOFILE).0)),
        libc::ENFILE => format!(
            "the system's open files, fs.file-max {}",
            sysctl("/proc/sys/fs/file-max").map_or("?".into(), shown)
        ),
        libc::ETOOMANYREFS => {
            format!("descriptors in flight on sockets, at most RLIMIT_NOFILE {}", shown(rlimit(libc::RLIMIT_NOFILE).0))
        }
        libc::ENOMEM | libc::ENOBUFS => "memory".into(),
        libc::EAGAIN if creates_task => format!(
            "RLIMIT_NPROC {}, kernel.pid_max {}, kernel.threads-max {}",
            shown(rlimit(libc::RLIMIT_NPROC).0),
            sysctl("/proc/sys/kernel/pid_max").map_or("?".into(), shown),
            sysctl("/proc/sys/kernel/threads-max").map_or("?".into(), shown)
        ),
        _ => return None,
    })
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), in
/// number order; empty if they cannot be read.
pub fn thread_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the kernel fills in at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } < 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Keeps the calling thread — and every process it creates from now on,
/// which inherits its CPU affinity — on `cpu` (`sched_setaffinity`).
pub fn bind_thread_to_cpu(cpu: usize) -> Result<(), crate::sys::SysError> {
    set_thread_cpus(&[cpu])
}

/// Lets the calling thread run on `cpus` only (`sched_setaffinity`).
pub fn set_thread_cpus(cpus: &[usize]) -> Result<(), crate::sys::SysError> {
    // SAFETY: cpu_set_t is plain data.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(crate::sys::SysError::Setup(format!("CPU {cpu} is past CPU_SETSIZE")));
        }
        // SAFETY: `cpu` is within the set (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: valid pointer to a cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } < 0 {
        return Err(super::last(format!("sched_setaffinity({cpus:?})")));
    }
    Ok(())
}
