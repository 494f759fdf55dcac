//! Pidfds: the harness's only handle on a process it signals or waits for.
//!
//! A pidfd names one process for good (no pid reuse race), a signal sent
//! through it reaches exactly that process, and its readiness is the
//! kernel's own "done" event: readable once `exit_notify()` has moved the
//! children and generated every signal of the death (kernel-rules.md R9.2),
//! hung up once reaped (R9.1, 6.9+).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::{last, poll_one};
use crate::sys::SysError;

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, SysError> {
    // SAFETY: plain syscall with integer arguments; the returned descriptor
    // is new and owned by nobody else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(last(format!("pidfd_open({pid}, 0)")));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_open(tid, PIDFD_THREAD)` (6.9+): a pidfd for one thread, readable
/// once that thread has passed `exit_notify()`. `None` where the kernel
/// does not know the flag (EINVAL).
pub fn pidfd_open_thread(tid: i32) -> Result<Option<OwnedFd>, SysError> {
    // PIDFD_THREAD is O_EXCL (include/uapi/linux/pidfd.h).
    // SAFETY: plain syscall with integer arguments; the returned descriptor
    // is new and owned by nobody else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::O_EXCL) };
    if fd < 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            return Ok(None);
        }
        return Err(last(format!("pidfd_open({tid}, PIDFD_THREAD)")));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: the only way the harness
/// signals a process it created.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed for the call; a null siginfo asks
    // the kernel to fill in a SI_USER one.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<u8>(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What a pidfd's readiness says (kernel-rules.md R9.1, 6.9+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidfdState {
    /// Still running (or stopped): not readable.
    Alive,
    /// Exited: `exit_notify()` is done, its children have their new parent.
    Exited,
    /// Exited and reaped (EPOLLHUP).
    Reaped,
}

/// Polls a pidfd without blocking.
pub fn pidfd_state(pidfd: BorrowedFd<'_>) -> Result<PidfdState, SysError> {
    Ok(match poll_one(pidfd, libc::POLLIN, 0)? {
        0 => PidfdState::Alive,
        ev if ev & libc::POLLHUP != 0 => PidfdState::Reaped,
        _ => PidfdState::Exited,
    })
}

/// A descriptor's readiness as plain flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    pub readable: bool,
    pub hung_up: bool,
}

/// Polls a descriptor for POLLIN without blocking; POLLHUP is always
/// reported.
pub fn readiness(fd: BorrowedFd<'_>) -> Result<Readiness, SysError> {
    let ev = poll_one(fd, libc::POLLIN, 0)?;
    Ok(Readiness { readable: ev & libc::POLLIN != 0, hung_up: ev & libc::POLLHUP != 0 })
}

/// Blocks until the pidfd reaches at least `want` or the deadline passes.
/// Returns whether it got there.
pub fn pidfd_wait(pidfd: BorrowedFd<'_>, want: PidfdState, deadline: Instant) -> Result<bool, SysError> {
    loop {
        let state = pidfd_state(pidfd)?;
        let reached = match want {
            PidfdState::Alive => true,
            PidfdState::Exited => state != PidfdState::Alive,
            PidfdState::Reaped => state == PidfdState::Reaped,
        };
        if reached {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        // Block on the kernel's own event, bounded by the deadline: an exit
        // makes the pidfd readable (POLLIN); a reap hangs it up (POLLHUP,
        // 6.9+). poll() always reports POLLHUP, so asking for no event at
        // all waits for the reap alone, although a zombie's pidfd is
        // already readable.
        let events = if want == PidfdState::Reaped { 0 } else { libc::POLLIN };
        poll_one(pidfd, events, left.as_millis().clamp(1, i32::MAX as u128) as i32)?;
    }
}

/// How a child ended, as `waitid()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal (with or without a core dump).
    Killed(i32),
}

/// `waitid(P_PIDFD, pidfd, WEXITED | flags)`: reaps a child we hold a
/// pidfd for, and says how it ended.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, flags: i32) -> Result<Exit, SysError> {
    loop {
        // SAFETY: a zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to `info`; P_PIDFD takes the descriptor as
        // its id.
        let r =
            unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | flags) };
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(last(format!("waitid(P_PIDFD, WEXITED|{flags:#x})")));
        }
        // SAFETY: waitid() filled in a SIGCHLD siginfo, whose si_status is
        // valid.
        let status = unsafe { info.si_status() };
        return match info.si_code {
            libc::CLD_EXITED => Ok(Exit::Exited(status)),
            libc::CLD_KILLED | libc::CLD_DUMPED => Ok(Exit::Killed(status)),
            code => Err(SysError::Protocol(format!("waitid(P_PIDFD) gave si_code {code}"))),
        };
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED)`: reaps a child we hold a pidfd for.
pub fn reap_pidfd(pidfd: BorrowedFd<'_>) -> Result<(), SysError> {
    waitid_pidfd(pidfd, 0).map(|_| ())
}

/// `waitid(P_PIDFD, pidfd, WSTOPPED | WNOWAIT)`: blocks until the child's
/// group stop is complete (the kernel's event for it), leaving the state
/// to be reported again.
pub fn wait_stopped(pidfd: BorrowedFd<'_>) -> Result<(), SysError> {
    loop {
        // SAFETY: a zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to `info`; P_PIDFD takes the descriptor as
        // its id.
        let r = unsafe {
            libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WSTOPPED | libc::WNOWAIT)
        };
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(last("waitid(P_PIDFD, WSTOPPED|WNOWAIT)"));
        }
        return Ok(());
    }
}

/// The 6.13 `struct pidfd_info` up to `exit_code`: `PIDFD_INFO_SIZE_VER0`
/// (64 bytes), which every kernel with `PIDFD_GET_INFO` accepts.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

/// `_IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)` for the 64-byte
/// structure above.
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;
const PIDFD_INFO_PID: u64 = 1;

/// `ioctl(pidfd, PIDFD_GET_INFO)` (6.13+): the ppid as the caller's
/// namespace sees it. Older kernels fail with ENOTTY or EINVAL.
pub fn pidfd_ppid(pidfd: BorrowedFd<'_>) -> Result<u32, SysError> {
    let mut info = PidfdInfo { mask: PIDFD_INFO_PID, ..PidfdInfo::default() };
    const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);
    // SAFETY: the request's encoded size matches `info`, which the kernel
    // fills in; the descriptor is borrowed for the call.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info as *mut PidfdInfo) };
    if r < 0 {
        return Err(last("ioctl(pidfd, PIDFD_GET_INFO)"));
    }
    Ok(info.ppid)
}

const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `ioctl(pidfd, PIDFD_GET_INFO)` asking for `PIDFD_INFO_EXIT` (6.15+):
/// how the process ended, kept by the kernel when it is reaped — by
/// whoever reaps it — for as long as a pidfd of it is open. `Ok(None)`:
/// not reaped yet. Older kernels fail (ENOTTY, EINVAL: no
/// `PIDFD_GET_INFO`), or give no exit information once it is reaped
/// (ESRCH: `PIDFD_INFO_EXIT` unknown).
pub fn pidfd_exit_info(pidfd: BorrowedFd<'_>) -> Result<Option<Exit>, SysError> {
    let mut info = PidfdInfo { mask: PIDFD_INFO_EXIT, ..PidfdInfo::default() };
    // SAFETY: the request's encoded size matches `info`, which the kernel
    // fills in; the descriptor is borrowed for the call.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info as *mut PidfdInfo) };
    if r < 0 {
        return Err(last("ioctl(pidfd, PIDFD_GET_INFO, PIDFD_INFO_EXIT)"));
    }
    if info.mask & PIDFD_INFO_EXIT == 0 {
        return Ok(None);
    }
    // A wait status: the signal in the low 7 bits, else the code above.
    let st = info.exit_code;
    Ok(Some(if st & 0x7f != 0 { Exit::Killed(st & 0x7f) } else { Exit::Exited((st >> 8) & 0xff) }))
}
