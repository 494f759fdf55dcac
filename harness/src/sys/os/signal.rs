//! Signals: dispositions (a node or probe process must show the kernel's
//! default actions, not the Rust runtime's), handlers that only record or
//! acknowledge a delivery, per-thread masks (R6.6g: a signal blocked in one
//! thread only), and a signalfd for SIGCHLD so that a process learns of its
//! children's exits through `poll()` instead of a handler.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::last;
use crate::sys::SysError;

/// The first real-time signal a program may use (glibc keeps the first
/// two for itself).
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// `signal(sig, handler)` for `SIG_DFL` or `SIG_IGN`.
fn set_plain(sig: i32, handler: libc::sighandler_t, what: &str) -> Result<(), SysError> {
    // SAFETY: installing SIG_IGN or SIG_DFL runs no code of ours in signal
    // context.
    if unsafe { libc::signal(sig, handler) } == libc::SIG_ERR {
        return Err(last(format!("signal({sig}, {what})")));
    }
    Ok(())
}

/// Sets SIGCHLD's disposition to `SIG_IGN` (children are reaped by the
/// kernel, R3.3) or back to `SIG_DFL` (a fork inherits its parent's).
pub fn set_sigchld_ignored(ignore: bool) -> Result<(), SysError> {
    if ignore {
        set_plain(libc::SIGCHLD, libc::SIG_IGN, "SIG_IGN")
    } else {
        set_plain(libc::SIGCHLD, libc::SIG_DFL, "SIG_DFL")
    }
}

/// Sets `sig` to `SIG_IGN`.
pub fn ignore_signal(sig: i32) -> Result<(), SysError> {
    set_plain(sig, libc::SIG_IGN, "SIG_IGN")
}

/// Sets SIGHUP to `SIG_IGN` (for the sandbox helper).
pub fn ignore_sighup() -> Result<(), SysError> {
    ignore_signal(libc::SIGHUP)
}

/// Puts one signal back to `SIG_DFL`.
pub fn default_signal(sig: i32) -> Result<(), SysError> {
    set_plain(sig, libc::SIG_DFL, "SIG_DFL")
}

/// Puts every catchable signal back to `SIG_DFL`. A node is a fork of a
/// Rust program, and the Rust runtime installs a SIGSEGV/SIGBUS handler (stack
/// overflow detection) and ignores SIGPIPE; a node must show the kernel's
/// default actions. glibc's own signals (32, 33) are left alone.
pub fn default_all_signals() -> Result<(), SysError> {
    for sig in (1..32).chain(libc::SIGRTMIN()..=libc::SIGRTMAX()) {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        default_signal(sig)?;
    }
    Ok(())
}

/// Puts glibc's own signals (32 and 33, below `SIGRTMIN()`, which glibc's
/// `sigaction()` refuses) back to `SIG_DFL` with the raw system call, so
/// that a program about to exec starts with no signal ignored that its
/// parent happened to ignore. Only for a single-threaded process that
/// execs next: glibc's threads need these signals' handlers.
pub fn default_glibc_signals() -> Result<(), SysError> {
    for sig in 32..libc::SIGRTMIN() {
        // The kernel's `struct sigaction` all zero is SIG_DFL, no flags,
        // empty mask, whatever the architecture's field order.
        let act = [0u64; 4];
        // SAFETY: rt_sigaction reads `act` (32 bytes, at least the
        // kernel's struct sigaction here) and writes nothing (old = NULL);
        // the set size is the kernel's (8 bytes).
        let rc =
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, act.as_ptr(), std::ptr::null_mut::<u64>(), 8usize) };
        if rc < 0 {
            return Err(last(format!("rt_sigaction({sig}, SIG_DFL)")));
        }
    }
    Ok(())
}

/// `sigaction(sig, {handler, flags, empty mask})`.
fn sigaction(sig: i32, handler: libc::sighandler_t, flags: i32) -> Result<(), SysError> {
    // SAFETY: `sa` is plain data, fully initialised below; the handler is
    // SIG_DFL, or an `extern "C"` fn of this crate that lives as long as
    // the program and is async-signal-safe (see its callers).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
            return Err(last(format!("sigaction({sig}, flags {flags:#x})")));
        }
    }
    Ok(())
}

/// SIGCHLD at `SIG_DFL` with `SA_NOCLDWAIT`: exited children are reaped by
/// the kernel, but SIGCHLD is still sent (R3.3).
pub fn set_sigchld_nocldwait() -> Result<(), SysError> {
    sigaction(libc::SIGCHLD, libc::SIG_DFL, libc::SA_NOCLDWAIT)
}

/// Installs `handler` for `sig` with `SA_RESTART` and an empty `sa_mask`.
/// The handler runs in signal context: it must be async-signal-safe.
pub fn catch_signal(sig: i32, handler: extern "C" fn(libc::c_int)) -> Result<(), SysError> {
    sigaction(sig, handler as usize, libc::SA_RESTART)
}

/// The descriptor [`on_signal_ack`] writes to.
static ACK_FD: AtomicI32 = AtomicI32::new(-1);

/// Writes the signal's number, as one byte, to `ACK_FD`.
extern "C" fn on_signal_ack(sig: libc::c_int) {
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; a one-byte buffer on this
    // stack.
    unsafe {
        libc::write(ACK_FD.load(Ordering::Relaxed), (&b as *const u8).cast(), 1);
    }
}

/// Handles `sig` by writing its number, one byte, to `fd`: a byte on the
/// pipe proves the signal was delivered to a handler. One such descriptor
/// per process (the last call's).
pub fn ack_signal(sig: i32, fd: RawFd) -> Result<(), SysError> {
    ACK_FD.store(fd, Ordering::Relaxed);
    catch_signal(sig, on_signal_ack)
}

fn sigset(signals: impl IntoIterator<Item = i32>, full: bool) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset/sigfillset
    // before any use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if full {
            libc::sigfillset(&mut set);
        } else {
            libc::sigemptyset(&mut set);
        }
        for s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// `pthread_sigmask(how, sigs)`: the calling thread only.
fn thread_mask(how: i32, set: &libc::sigset_t) -> Result<(), SysError> {
    // SAFETY: a valid sigset; the call changes only the calling thread's
    // mask.
    let r = unsafe { libc::pthread_sigmask(how, set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(SysError::Syscall {
            call: "pthread_sigmask".into(),
            source: std::io::Error::from_raw_os_error(r),
            hint: None,
        });
    }
    Ok(())
}

/// Blocks every signal in the calling thread (SIGKILL and SIGSTOP cannot
/// be blocked; glibc keeps its own two unblocked).
pub fn block_all_signals() {
    let _ = thread_mask(libc::SIG_SETMASK, &sigset([], true));
}

/// Sets the calling thread's signal mask to exactly `blocked`.
pub fn set_signal_mask(blocked: &[i32]) {
    let _ = thread_mask(libc::SIG_SETMASK, &sigset(blocked.iter().copied(), false));
}

/// Blocks `sigs` in the calling thread, besides what it blocks already.
pub fn block_signals(sigs: &[i32]) -> Result<(), SysError> {
    thread_mask(libc::SIG_BLOCK, &sigset(sigs.iter().copied(), false))
}

/// Unblocks `sigs` in the calling thread.
pub fn unblock_signals(sigs: &[i32]) -> Result<(), SysError> {
    thread_mask(libc::SIG_UNBLOCK, &sigset(sigs.iter().copied(), false))
}

/// Blocks SIGCHLD and returns a signalfd for it, so that a node learns of
/// exited children through `poll()` instead of a handler.
pub fn sigchld_fd() -> Result<OwnedFd, SysError> {
    let set = sigset([libc::SIGCHLD], false);
    // SAFETY: a valid sigset; sigprocmask only changes this thread's mask.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } < 0 {
        return Err(last("sigprocmask(SIG_BLOCK, {SIGCHLD})"));
    }
    // SAFETY: a valid sigset; the descriptor returned is new.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(last("signalfd({SIGCHLD})"));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One signal read from a signalfd: the fields the probes report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub pid: i32,
    pub code: i32,
    pub status: i32,
}

/// Every signal queued on a non-blocking signalfd, in order.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> Vec<SignalInfo> {
    let mut got = Vec::new();
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    loop {
        // SAFETY: reading into a stack buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < buf.len() as isize {
            return got;
        }
        // SAFETY: the kernel wrote a whole signalfd_siginfo, which is plain
        // data.
        let si: libc::signalfd_siginfo = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        got.push(SignalInfo {
            signo: si.ssi_signo as i32,
            pid: si.ssi_pid as i32,
            code: si.ssi_code,
            status: si.ssi_status,
        });
    }
}

/// Blocks `sigs` and returns a non-blocking signalfd for them: a process
/// that reads who sent it which signal (`ssi_pid`) instead of handling it.
pub fn signals_fd(sigs: &[i32]) -> Result<OwnedFd, SysError> {
    let set = sigset(sigs.iter().copied(), false);
    // SAFETY: a valid sigset; sigprocmask only changes this thread's mask.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } < 0 {
        return Err(last("sigprocmask(SIG_BLOCK, signals)"));
    }
    // SAFETY: a valid sigset; the descriptor returned is new.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(last("signalfd(signals)"));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Puts `sig` back to `SIG_DFL`, unblocks it and sends it to the calling
/// process: the process dies of it (for a signal whose default action is
/// to terminate). Returns only if it did not.
pub fn die_of(sig: i32) -> Result<(), SysError> {
    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
        default_signal(sig)?;
    }
    thread_mask(libc::SIG_SETMASK, &sigset([], false))?;
    // SAFETY: raise() takes an integer; the default action ends us.
    if unsafe { libc::raise(sig) } != 0 {
        return Err(last(format!("raise({sig})")));
    }
    Ok(())
}
