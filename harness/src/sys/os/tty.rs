//! Pseudo-terminals, for the gate's P2 (is the main child of an init the
//! foreground process group of its terminal?): a pty pair, making its
//! slave the controlling terminal of a new session (`TIOCSCTTY`), the
//! standard streams on it, and `tcgetpgrp()`.
//!
//! The kernel gives a session at most one controlling terminal, set by
//! its leader with `TIOCSCTTY` on a terminal no other session holds; only
//! a process of that session sees the terminal's foreground group
//! (`tcgetpgrp()` fails with ENOTTY elsewhere).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::last;
use crate::sys::SysError;

/// `openpty()`: a new pseudo-terminal, (master, slave), both close-on-exec
/// so that only a process that is handed the slave keeps it.
pub fn openpty() -> Result<(OwnedFd, OwnedFd), SysError> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: the out-pointers are valid; name, termios and winsize may be
    // null (no name wanted, default settings).
    let r = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    if r < 0 {
        return Err(last("openpty"));
    }
    // SAFETY: openpty() returned two fresh descriptors we own.
    let pair = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    super::set_cloexec(pair.0.as_fd())?;
    super::set_cloexec(pair.1.as_fd())?;
    Ok(pair)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: the terminal becomes the controlling
/// terminal of the caller's session (the caller must lead it, after
/// `setsid()`).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY as _, 0) } < 0 {
        return Err(last(format!("ioctl({}, TIOCSCTTY, 0)", fd.as_raw_fd())));
    }
    Ok(())
}

/// The terminal `fd` as standard input, output and error.
pub fn stdio_to_terminal(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    for to in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; no Rust object holds them.
        if unsafe { libc::dup2(fd.as_raw_fd(), to) } < 0 {
            return Err(last(format!("dup2({}, {to})", fd.as_raw_fd())));
        }
    }
    Ok(())
}

/// `tcgetpgrp(fd)`: the foreground process group of the terminal, if it
/// is the caller's controlling terminal; else the errno (ENOTTY).
pub fn tcgetpgrp(fd: BorrowedFd<'_>) -> Result<i32, i32> {
    // SAFETY: integer argument only.
    let r = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(r)
}
