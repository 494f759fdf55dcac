//! The syscall seam: every raw call the system layer makes, each wrapped so
//! that a failure names the call, its arguments and, where one helps, a hint.
//!
//! Keeping them here (as youki keeps `libcontainer/src/syscall/`) means the
//! rest of the system layer reads as a description of what happens to the
//! processes, and every `unsafe` block sits next to its justification.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::SysError;

fn last(call: impl Into<String>) -> SysError {
    SysError::Syscall { call: call.into(), source: io::Error::last_os_error(), hint: None }
}

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

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: the only way the harness
/// signals a process.
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

/// `poll()` on one descriptor; returns its revents (0 on timeout).
pub fn poll_one(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> Result<i16, SysError> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    loop {
        // SAFETY: one valid pollfd on the stack, count 1.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(last("poll"));
        }
        return Ok(if r == 0 { 0 } else { pfd.revents });
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED)`: reaps a child we hold a pidfd for.
pub fn reap_pidfd(pidfd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: zeroed siginfo is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to `info`; P_PIDFD takes the descriptor as id.
    let r = unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED) };
    if r < 0 {
        return Err(last("waitid(P_PIDFD, WEXITED)"));
    }
    Ok(())
}

/// Reaps every exited child of the caller without blocking; returns how many.
pub fn reap_all_exited() -> usize {
    let mut n = 0;
    loop {
        // SAFETY: waitpid with a null status pointer is allowed.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            return n;
        }
        n += 1;
    }
}

/// `prctl(option, arg2, 0, 0, 0)`.
pub fn prctl(option: i32, arg2: libc::c_ulong, what: &str) -> Result<i32, SysError> {
    // SAFETY: the prctl options used here take an integer or a pointer we
    // own as arg2.
    let r = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        return Err(last(format!("prctl({what})")));
    }
    Ok(r)
}

/// `PR_SET_CHILD_SUBREAPER(on)` then `PR_GET_CHILD_SUBREAPER`: returns the
/// value the kernel reads back.
pub fn set_child_subreaper(on: bool) -> Result<bool, SysError> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, on as libc::c_ulong, &format!("PR_SET_CHILD_SUBREAPER, {}", on as u8))?;
    get_child_subreaper()
}

/// `PR_GET_CHILD_SUBREAPER`: the caller's subreaper flag as the kernel has it.
pub fn get_child_subreaper() -> Result<bool, SysError> {
    let mut v: libc::c_int = -1;
    prctl(libc::PR_GET_CHILD_SUBREAPER, &mut v as *mut libc::c_int as libc::c_ulong, "PR_GET_CHILD_SUBREAPER")?;
    Ok(v != 0)
}

/// Sets SIGCHLD's disposition to `SIG_IGN` (children are reaped by the
/// kernel, R3.3) or back to `SIG_DFL` (a fork inherits its parent's).
pub fn set_sigchld_ignored(ignore: bool) -> Result<(), SysError> {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: installing SIG_IGN or SIG_DFL runs no code of ours in signal
    // context.
    let r = unsafe { libc::signal(libc::SIGCHLD, handler) };
    if r == libc::SIG_ERR {
        return Err(last(format!("signal(SIGCHLD, {})", if ignore { "SIG_IGN" } else { "SIG_DFL" })));
    }
    Ok(())
}

/// Sets SIGHUP to `SIG_IGN` (for the sandbox helper).
pub fn ignore_sighup() -> Result<(), SysError> {
    // SAFETY: installing SIG_IGN runs no code of ours in signal context.
    let r = unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    if r == libc::SIG_ERR {
        return Err(last("signal(SIGHUP, SIG_IGN)".to_string()));
    }
    Ok(())
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
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(last(format!("signal({sig}, SIG_DFL)")));
        }
    }
    Ok(())
}

/// Puts one signal back to `SIG_DFL`.
pub fn default_signal(sig: i32) -> Result<(), SysError> {
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(last(format!("signal({sig}, SIG_DFL)")));
    }
    Ok(())
}

/// Blocks SIGCHLD and returns a signalfd for it, so that a node learns of
/// exited children through `poll()` instead of a handler.
pub fn sigchld_fd() -> Result<OwnedFd, SysError> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
            return Err(last("sigprocmask(SIG_BLOCK, {SIGCHLD})"));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(last("signalfd({SIGCHLD})"));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads and discards everything queued on a non-blocking descriptor.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 1024];
    // SAFETY: reading into a stack buffer of the given length.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// `fork()`. Only called from single-threaded processes (the sandbox helper
/// and the nodes), where the child may go on running ordinary Rust code.
///
/// # Safety
/// The caller must be single-threaded.
pub unsafe fn fork() -> Result<i32, SysError> {
    // SAFETY: the caller guarantees a single thread, so the child inherits
    // no lock held by another thread.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last("fork"));
    }
    Ok(pid)
}

/// `_exit(code)`: ends a node at once, without running destructors that
/// belong to its parent's copy of the address space.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// `getpid()`.
pub fn getpid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// `getppid()`.
pub fn getppid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getppid() }
}

/// `unshare(flags)`, with a hint for the usual reasons it is refused.
pub fn unshare(flags: i32, what: &str) -> Result<(), SysError> {
    // SAFETY: integer flags only.
    if unsafe { libc::unshare(flags) } < 0 {
        let source = io::Error::last_os_error();
        let hint = match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) if flags & libc::CLONE_NEWUSER != 0 => Some(
                "unprivileged user namespaces are disabled here: enable them \
                 (sysctl kernel.unprivileged_userns_clone=1, or \
                 kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), \
                 or run as root"
                    .to_string(),
            ),
            Some(libc::ENOSPC) => Some(
                "the namespace limit is reached: raise user.max_user_namespaces / user.max_pid_namespaces".to_string(),
            ),
            Some(libc::EINVAL) => Some(
                "is the caller multi-threaded? only a single-threaded process may unshare(CLONE_NEWUSER)".to_string(),
            ),
            _ => None,
        };
        return Err(SysError::Syscall { call: format!("unshare({what})"), source, hint });
    }
    Ok(())
}

/// `mount(src, target, fstype, flags, NULL)`.
pub fn mount(src: &str, target: &str, fstype: Option<&str>, flags: libc::c_ulong) -> Result<(), SysError> {
    let c = |s: &str| CString::new(s).map_err(|_| SysError::Protocol(format!("NUL in mount argument {s:?}")));
    let (csrc, ctarget) = (c(src)?, c(target)?);
    let cfs = fstype.map(c).transpose()?;
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            csrc.as_ptr(),
            ctarget.as_ptr(),
            cfs.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    if r < 0 {
        let source = io::Error::last_os_error();
        let hint = (fstype == Some("proc") && source.raw_os_error() == Some(libc::EPERM)).then(|| {
            "the kernel refuses a new proc mount when the visible /proc is partly masked \
             (as in many containers): run on a host or VM, or in a container with an unmasked /proc"
                .to_string()
        });
        return Err(SysError::Syscall {
            call: format!("mount({src:?}, {target:?}, {fstype:?}, {flags:#x})"),
            source,
            hint,
        });
    }
    Ok(())
}

/// Writes a whole file such as `/proc/self/uid_map`.
pub fn write_file(path: &str, contents: &str) -> Result<(), SysError> {
    std::fs::write(path, contents).map_err(|source| SysError::Syscall {
        call: format!("write({path}, {contents:?})"),
        source,
        hint: None,
    })
}

fn set_cloexec_flag(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    // SAFETY: F_GETFD/F_SETFD on a descriptor we borrow.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        let flags = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) < 0 {
            return Err(last(format!("fcntl({}, F_SETFD)", fd.as_raw_fd())));
        }
    }
    Ok(())
}

/// Lets `fd` survive an exec.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    set_cloexec_flag(fd, false)
}

/// Closes `fd` on exec again.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    set_cloexec_flag(fd, true)
}

/// `setsid()`.
pub fn setsid() -> Result<(), SysError> {
    // SAFETY: no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(last("setsid"));
    }
    Ok(())
}

/// The running kernel's `(major, minor)`, from `uname -r`; `(0, 0)` if it
/// cannot be read.
pub fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is plain data filled by uname().
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } < 0 {
        return (0, 0);
    }
    // SAFETY: uname() NUL-terminates `release`.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned();
    parse_release(&release)
}

/// `"6.18.44-fc-v669"` -> `(6, 18)`.
pub fn parse_release(release: &str) -> (u32, u32) {
    let mut it = release.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The full `uname -r` string.
pub fn kernel_release() -> String {
    // SAFETY: as in kernel_version().
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } < 0 {
        return "unknown".into();
    }
    // SAFETY: uname() NUL-terminates `release`.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// The effective uid.
pub fn uid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() == 0 }
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

/// `gettid()`: the calling thread's id in its own PID namespace.
pub fn gettid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() }
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

/// Blocks every signal in the calling thread (SIGKILL and SIGSTOP cannot
/// be blocked; glibc keeps its own two unblocked).
pub fn block_all_signals() {
    let set = sigset([], true);
    // SAFETY: valid sigset; pthread_sigmask only fails for a bad `how`.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
}

/// Sets the calling thread's signal mask to exactly `blocked`.
pub fn set_signal_mask(blocked: &[i32]) {
    let set = sigset(blocked.iter().copied(), false);
    // SAFETY: valid sigset; pthread_sigmask only fails for a bad `how`.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
}

/// Installs `handler` for `sig` with `SA_RESTART` and an empty `sa_mask`.
/// The handler runs in signal context: it must be async-signal-safe.
pub fn catch_signal(sig: i32, handler: extern "C" fn(libc::c_int)) -> Result<(), SysError> {
    // SAFETY: sigaction is plain data; the handler is an `extern "C"` fn
    // that lives as long as the program, and the caller promises it is
    // async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
            return Err(last(format!("sigaction({sig}, handler, SA_RESTART)")));
        }
    }
    Ok(())
}

/// `PR_SET_PDEATHSIG(sig)` for the calling thread.
pub fn set_pdeathsig(sig: i32) -> Result<(), SysError> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, &format!("PR_SET_PDEATHSIG, {sig}")).map(|_| ())
}

/// `PR_GET_PDEATHSIG`: the calling thread's parent-death signal (0: none).
pub fn get_pdeathsig() -> Result<i32, SysError> {
    let mut v: libc::c_int = 0;
    prctl(libc::PR_GET_PDEATHSIG, &mut v as *mut libc::c_int as libc::c_ulong, "PR_GET_PDEATHSIG")?;
    Ok(v)
}

/// `setpgid(0, 0)`: the caller leads a new process group.
pub fn setpgid_self() -> Result<(), SysError> {
    // SAFETY: integer arguments only.
    if unsafe { libc::setpgid(0, 0) } < 0 {
        return Err(last("setpgid(0, 0)"));
    }
    Ok(())
}

/// Ends the calling **thread** with the raw `exit` syscall — not
/// `exit_group`, and without running anything of libc's or Rust's: the
/// other threads of the process live on (R1.7, R8.3).
pub fn exit_thread() -> ! {
    // SAFETY: SYS_exit ends only the calling thread and never returns. The
    // caller holds no lock another thread could wait for, and nothing runs
    // on this stack again.
    unsafe {
        libc::syscall(libc::SYS_exit, 0);
    }
    // SYS_exit does not return; should it, end the process rather than go on.
    exit_now(111)
}

/// Opens the calling thread's active PID namespace (`/proc/thread-self/ns/pid`),
/// to return to it with [`setns_pid`] after a fork into another one.
pub fn open_own_pidns() -> Result<OwnedFd, SysError> {
    // SAFETY: a valid NUL-terminated path; the descriptor is new and ours.
    let fd = unsafe { libc::open(c"/proc/thread-self/ns/pid".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last("open(/proc/thread-self/ns/pid)"));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setns(fd, CLONE_NEWPID)`: the calling thread's next children are born
/// in the PID namespace that `fd` names (a namespace file, or a pidfd: the
/// target's active namespace). The caller itself stays where it is (R6.1).
pub fn setns_pid(fd: BorrowedFd<'_>, what: &str) -> Result<(), SysError> {
    // SAFETY: a borrowed descriptor and an integer flag.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
        return Err(last(format!("setns({what}, CLONE_NEWPID)")));
    }
    Ok(())
}

/// `clone(flags | SIGCHLD)` used like `fork()`: the child goes on from the
/// same point with a copy of the address space. With no flags this is
/// glibc's `fork()` (which runs its atfork handlers); with `CLONE_PARENT`
/// or `CLONE_NEWPID` it is the raw syscall, since no libc wrapper forks
/// with flags. `after_setns`: the caller has joined another PID namespace
/// for its children (only for the error's hint).
///
/// # Safety
/// No other thread of the caller may hold a lock (malloc's included) that
/// the child will need: the other threads must be parked in a blocking
/// call that holds none.
pub unsafe fn fork_with(flags: i32, what: &str, after_setns: bool) -> Result<i32, SysError> {
    let pid = if flags == 0 {
        // SAFETY: per the caller's guarantee.
        unsafe { libc::fork() }
    } else {
        // SAFETY: without CLONE_VM the child gets its own copy of the
        // address space and, with a null stack, continues on (its copy of)
        // the caller's stack, exactly as after fork(); per the caller's
        // guarantee no lock is held by a thread the child lacks.
        unsafe {
            libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
                as i32
        }
    };
    if pid < 0 {
        let source = io::Error::last_os_error();
        let hint = match source.raw_os_error() {
            // copy_pid_ns(): a new namespace only below the caller's active
            // one, and setns() has pointed pid_for_children elsewhere.
            Some(libc::EINVAL) if flags & libc::CLONE_NEWPID != 0 && after_setns => Some(
                "EINVAL: CLONE_NEWPID is refused once setns() has moved the caller's pid_for_children \
                 away from its own namespace (copy_pid_ns())"
                    .to_string(),
            ),
            Some(libc::EINVAL) if flags & libc::CLONE_PARENT != 0 => {
                Some("EINVAL: a namespace init may not clone(CLONE_PARENT) (R6.7)".to_string())
            }
            Some(libc::ENOMEM) => {
                Some("ENOMEM: the target PID namespace is dying or dead, its init has exited (R6.3)".to_string())
            }
            _ => None,
        };
        return Err(SysError::Syscall { call: format!("clone({what})"), source, hint });
    }
    Ok(pid)
}

/// Closes every descriptor from 3 up except `keep`: a new node starts with
/// its channel and the standard streams only.
pub fn close_all_but(keep: RawFd) {
    let ranges = [(3u32, keep as u32 - 1), (keep as u32 + 1, u32::MAX)];
    for (lo, hi) in ranges {
        if lo > hi {
            continue;
        }
        // SAFETY: closing descriptors the caller no longer uses; their
        // owners live in frames of the parent's copy that this process
        // never returns to.
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) };
        if r < 0 {
            // close_range() is 5.9+: close one by one up to the limit.
            for fd in lo..hi.min(65536) {
                // SAFETY: as above.
                unsafe { libc::close(fd as RawFd) };
            }
        }
    }
}

/// Re-executes the binary the caller runs (`/proc/self/exe`, opened and
/// executed with `execveat(AT_EMPTY_PATH)`, so it works for a copy under
/// /tmp or a deleted file) with `args` and `env`. Returns only on failure.
pub fn exec_self(args: &[CString], env: &[CString]) -> SysError {
    // SAFETY: a valid NUL-terminated path; the descriptor is new and ours
    // (close-on-exec: an ELF binary does not need it after the exec).
    let fd = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return last("open(/proc/self/exe, O_PATH)");
    }
    let argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to
    // NUL-terminated strings that outlive the call.
    unsafe {
        libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH);
    }
    let e = last("execveat(/proc/self/exe, AT_EMPTY_PATH)");
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(fd) };
    e
}

/// The namespaces every sandbox (a case's, or a kernel probe's) lives in:
/// a session of its own, then user + PID + mount namespaces — PID + mount
/// only, for root on a kernel that refuses the user namespace — with root
/// inside mapped to the caller's ids, and every mount private. Only the
/// caller's *next* child is in the new PID namespace, as its PID 1. Returns
/// whether there is a user namespace. The caller must be single-threaded.
pub fn enter_sandbox_namespaces() -> Result<bool, SysError> {
    setsid()?;
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let userns = match unshare(
        libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS,
        "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS",
    ) {
        Ok(()) => true,
        Err(e) if uid == 0 => {
            // Root can do without a user namespace.
            unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS, "CLONE_NEWPID|CLONE_NEWNS").map_err(|_| e)?;
            false
        }
        Err(e) => return Err(e),
    };
    if userns {
        write_file("/proc/self/setgroups", "deny")?;
        write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    mount("none", "/", None, libc::MS_REC | libc::MS_PRIVATE)?;
    Ok(userns)
}

/// Makes the child that `cmd` spawns die (SIGKILL) with the thread that
/// spawns it: the first link of the chain that ends every sandbox with its
/// runner. If the runner is already gone when the child sets it up, the
/// child exits at once (status 112).
pub fn die_with_spawner(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let me = getpid();
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) < 0 || libc::getppid() != me
            {
                libc::_exit(112);
            }
            Ok(())
        });
    }
}
