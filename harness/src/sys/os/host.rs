//! The machine the harness runs on: the kernel's version (rows and settle
//! strategies depend on it, e.g. POLLHUP on a reaped pidfd since 6.9) and
//! the caller's user id.

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
