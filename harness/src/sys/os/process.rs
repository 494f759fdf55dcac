//! Processes: creating them (fork, or clone with flags, running a closure;
//! a helper binary tied to its runner), ending them (exit, thread exit,
//! exec), waiting for them without a pidfd, and the per-process knobs the
//! rules are about (`prctl` subreaper and parent-death signal, session and
//! process group, `reboot()` in a PID namespace).
//!
//! Forking from Rust is safe here only because of how the harness uses it:
//! every caller of [`fork_run`] and [`clone_run`] is single-threaded, or
//! (the nodes) has its other threads parked in a blocking call that holds
//! no lock the child needs. [`fork_blocker`] is the one fork for a process
//! whose threads run freely: its child calls only async-signal-safe
//! functions.

use std::ffi::CString;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::process::{Child, Command};

use super::{last, pidfd_open};
use crate::sys::SysError;

/// Forks a child that runs `f` and exits with what it returns (101 if it
/// panics: it never unwinds into the parent's frames, whose values — the
/// pidfds of siblings — this copy must not drop). Returns the child's pid.
/// Whatever `f` captured is dropped in the parent when this returns.
///
/// For single-threaded callers (see the module doc): glibc's `_Fork()`.
pub fn fork_run(f: impl FnOnce() -> i32) -> Result<i32, SysError> {
    clone_run(0, libc::SIGCHLD, "SIGCHLD", false, f)
}

#[cfg(target_env = "gnu")]
extern "C" {
    /// glibc 2.34+: `fork()` without the atfork handlers and without
    /// taking malloc's arena locks and stdio's list lock around the fork
    /// (and reinitialising them in the child). It still sets the child's
    /// thread id in its thread control block and its robust-futex list.
    fn _Fork() -> libc::pid_t;
}

/// A fork for [`clone_run`]'s callers, which fork with no other thread
/// holding a lock (the contract above): glibc's `_Fork()`, which skips the
/// locking that contract makes useless — every arena's lock taken in the
/// parent and reset in the child, each a write to a page the fork has just
/// made copy-on-write, so a page fault and a page copy in both processes.
/// Elsewhere, `fork()`.
///
/// # Safety
/// As [`clone_run`]: no other thread may hold a lock the child needs.
unsafe fn plain_fork() -> libc::pid_t {
    #[cfg(target_env = "gnu")]
    // SAFETY: per this function's contract.
    unsafe {
        _Fork()
    }
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: per this function's contract.
    unsafe {
        libc::fork()
    }
}

/// [`fork_run`] for a child that must die with this process: before `f`,
/// the child arms SIGKILL as its parent-death signal and then checks that
/// this process still lives ([`set_pdeathsig_linked`]) — should it have
/// died between the fork and the `prctl()`, no signal would ever come, and
/// the child exits at once (status 112) instead of running orphaned. For
/// the PID 1s of the sandbox, the probes and the gate's trials, each the
/// lifeline of a whole namespace.
pub fn fork_run_linked(f: impl FnOnce() -> i32) -> Result<i32, SysError> {
    use std::os::fd::AsFd;
    let me = pidfd_open(getpid())?;
    fork_run(move || {
        if set_pdeathsig_linked(libc::SIGKILL, me.as_fd()).is_err() {
            exit_now(112);
        }
        drop(me);
        f()
    })
}

/// `clone(flags | exit_signal)` used like `fork()`, the child running `f`
/// as in [`fork_run`]. With no flags and SIGCHLD this is glibc's `_Fork()`
/// ([`plain_fork`]); otherwise it is the raw syscall, since no libc wrapper
/// forks with flags. `what` names the flags for the error;
/// `after_setns`: the caller has joined another PID namespace for its
/// children (only for the error's hint).
///
/// The caller must be single-threaded, or its other threads parked holding
/// no lock (malloc's included) that the child needs.
pub fn clone_run(
    flags: i32,
    exit_signal: i32,
    what: &str,
    after_setns: bool,
    f: impl FnOnce() -> i32,
) -> Result<i32, SysError> {
    let pid = if flags == 0 && exit_signal == libc::SIGCHLD {
        // SAFETY: per this function's contract no other thread holds a lock
        // the child needs; the child goes on in its own address space.
        unsafe { plain_fork() }
    } else {
        // SAFETY: without CLONE_VM the child gets its own copy of the
        // address space and, with a null stack, continues on (its copy of)
        // the caller's stack, exactly as after fork(); parent_tid,
        // child_tid and tls are read only with flags not passed here; per
        // the contract no lock is held by a thread the child lacks.
        unsafe {
            libc::syscall(libc::SYS_clone, (flags | exit_signal) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
                as i32
        }
    };
    if pid == 0 {
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        exit_now(code);
    }
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
            Some(libc::EAGAIN) => return Err(super::syscall_error(format!("clone({what})"), source, true)),
            _ => None,
        };
        return Err(SysError::Syscall { call: format!("clone({what})"), source, hint });
    }
    Ok(pid)
}

/// Forks a child that reports its `getppid()` on `report` (4 bytes, native
/// order), then waits for a byte or EOF on `release` and exits 0. Safe from
/// a multi-threaded process: the child calls only async-signal-safe
/// functions.
pub fn fork_blocker(report: Option<RawFd>, release: RawFd) -> Result<i32, SysError> {
    // SAFETY: fork() itself is always allowed; the child below touches no
    // lock or allocator another thread may have held at fork time.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(super::syscall_error("fork", io::Error::last_os_error(), true));
    }
    if pid == 0 {
        // SAFETY: getppid, write, read and _exit are async-signal-safe; the
        // buffers are on this stack.
        unsafe {
            if let Some(fd) = report {
                let ppid = libc::getppid().to_ne_bytes();
                libc::write(fd, ppid.as_ptr().cast(), ppid.len());
            }
            let mut b = 0u8;
            while libc::read(release, (&mut b as *mut u8).cast(), 1) < 0 {}
            libc::_exit(0)
        }
    }
    Ok(pid)
}

/// Waits forever for a signal that never comes: a process parked until it
/// is killed (anything it gets takes its action).
pub fn park() -> ! {
    loop {
        // SAFETY: pause() takes no arguments and only returns after a
        // handled signal.
        unsafe { libc::pause() };
    }
}

/// `_exit(code)`: ends a process at once, without running destructors that
/// belong to its parent's copy of the address space.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
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

/// `gettid()`: the calling thread's id in its own PID namespace.
pub fn gettid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() }
}

/// `setsid()`.
pub fn setsid() -> Result<(), SysError> {
    // SAFETY: no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(last("setsid"));
    }
    Ok(())
}

/// `setpgid(0, 0)`: the caller leads a new process group.
pub fn setpgid_self() -> Result<(), SysError> {
    // SAFETY: integer arguments only.
    if unsafe { libc::setpgid(0, 0) } < 0 {
        return Err(last("setpgid(0, 0)"));
    }
    Ok(())
}

/// `prctl(option, arg2, 0, 0, 0)` for the options that take an integer.
pub fn prctl(option: i32, arg2: libc::c_ulong, what: &str) -> Result<i32, SysError> {
    // SAFETY: the options used with this wrapper take an integer as arg2
    // (the pointer-taking ones go through `prctl_get`).
    let r = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        return Err(last(format!("prctl({what})")));
    }
    Ok(r)
}

/// `prctl(option, &int)`: a flag the kernel stores through a pointer
/// (`PR_GET_CHILD_SUBREAPER`, `PR_GET_PDEATHSIG`).
pub fn prctl_get(option: i32, what: &str) -> Result<i32, SysError> {
    let mut v: libc::c_int = -1;
    // SAFETY: arg2 points to a c_int on this stack that outlives the call.
    let r = unsafe { libc::prctl(option, &mut v as *mut libc::c_int, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    if r < 0 {
        return Err(last(format!("prctl({what})")));
    }
    Ok(v)
}

/// `PR_SET_CHILD_SUBREAPER(arg)`: the call's return value.
pub fn prctl_set_subreaper(arg: libc::c_ulong) -> Result<i32, SysError> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, arg, &format!("PR_SET_CHILD_SUBREAPER, {arg}"))
}

/// `PR_SET_CHILD_SUBREAPER(on)` then `PR_GET_CHILD_SUBREAPER`: returns the
/// value the kernel reads back.
pub fn set_child_subreaper(on: bool) -> Result<bool, SysError> {
    prctl_set_subreaper(on as libc::c_ulong)?;
    get_child_subreaper()
}

/// `PR_GET_CHILD_SUBREAPER`: the caller's subreaper flag as the kernel has
/// it, as the raw integer.
pub fn child_subreaper_value() -> Result<i32, SysError> {
    prctl_get(libc::PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER")
}

/// `PR_GET_CHILD_SUBREAPER`: the caller's subreaper flag as the kernel has it.
pub fn get_child_subreaper() -> Result<bool, SysError> {
    Ok(child_subreaper_value()? != 0)
}

/// `PR_SET_PDEATHSIG(sig)` for the calling thread.
pub fn set_pdeathsig(sig: i32) -> Result<(), SysError> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, &format!("PR_SET_PDEATHSIG, {sig}")).map(|_| ())
}

/// [`set_pdeathsig`] in a child whose parent may already be gone: the
/// signal comes only for a death *after* the call, so this then checks,
/// through `parent` — a pidfd of the parent taken before the fork — that
/// the parent still lives, and fails if not. (`getppid()` cannot tell in a
/// new PID namespace, where it is 0 whoever the parent is.)
fn set_pdeathsig_linked(sig: i32, parent: std::os::fd::BorrowedFd<'_>) -> Result<(), SysError> {
    set_pdeathsig(sig)?;
    if super::pidfd_state(parent)? != super::PidfdState::Alive {
        return Err(SysError::Protocol(
            "the parent died before this process armed its parent-death signal: nothing would end it".into(),
        ));
    }
    Ok(())
}

/// `PR_GET_PDEATHSIG`: the calling thread's parent-death signal (0: none).
pub fn get_pdeathsig() -> Result<i32, SysError> {
    prctl_get(libc::PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG")
}

/// `PR_SET_DUMPABLE(0)`: no core dumps from the core-dump signals that
/// scenarios send.
pub fn no_core_dumps() -> Result<(), SysError> {
    prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE, 0").map(|_| ())
}

/// `kill(pid, sig)`: the errno on failure. Only for the rules that are
/// about signals by pid (`kill(1, …)`, `kill(-1, …)`), sent from inside a
/// probe's own namespace; everything else goes through a pidfd.
pub fn kill(pid: i32, sig: i32) -> Result<(), i32> {
    // SAFETY: integer arguments only.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

/// `waitpid(pid or -1, WNOHANG [| __WALL])`: `Ok(None)` while the child
/// lives, how it ended once reaped, or the errno (ECHILD: no such child
/// for this wait).
pub fn waitpid_nohang(pid: Option<i32>, wall: bool) -> Result<Option<super::Exit>, i32> {
    let mut status = 0;
    let flags = libc::WNOHANG | if wall { libc::__WALL } else { 0 };
    loop {
        // SAFETY: valid pointer to an int on this stack.
        let r = unsafe { libc::waitpid(pid.unwrap_or(-1), &mut status, flags) };
        if r < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some(if libc::WIFSIGNALED(status) {
            super::Exit::Killed(libc::WTERMSIG(status))
        } else {
            super::Exit::Exited(libc::WEXITSTATUS(status))
        }));
    }
}

/// Reaps every exited child of the caller without blocking; returns how many.
pub fn reap_all_exited() -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = waitpid_nohang(None, true) {
        n += 1;
    }
    n
}

/// This process's pids, outermost visible namespace first
/// (`/proc/self/status` `NSpid`).
pub fn nspid() -> Result<Vec<i32>, SysError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|source| SysError::Syscall {
        call: "read(/proc/self/status)".into(),
        source,
        hint: None,
    })?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap_or("");
    Ok(line.split_whitespace().filter_map(|s| s.parse().ok()).collect())
}

/// Calls `reboot(cmd)` only from a nested PID namespace — two `NSpid`
/// levels in the caller's /proc, whose own namespace is itself fresh —
/// where the kernel ends that namespace's init instead of the machine
/// (`reboot_pid_ns()`). Returns only on failure, or when the check refuses.
pub fn reboot_in_nested_ns(cmd: i32, name: &str) -> SysError {
    match nspid() {
        Ok(levels) if levels.len() >= 2 => {}
        Ok(levels) => {
            return SysError::Protocol(format!(
                "refusing to call reboot({name}): NSpid {levels:?} does not show a nested PID namespace"
            ))
        }
        Err(e) => return e,
    }
    // SAFETY: the caller is in a nested PID namespace (checked above), so
    // the kernel runs reboot_pid_ns(): it kills that namespace's init and
    // ends the caller; it does not return on success.
    unsafe { libc::reboot(cmd) };
    last(format!("reboot({name})"))
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

/// Makes the child that `cmd` spawns die (SIGKILL) with the thread that
/// spawns it: the first link of the chain that ends every sandbox with its
/// runner. If the runner is already gone when the child sets it up, the
/// child exits at once (status 112).
pub fn die_with_spawner(cmd: &mut Command) {
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

/// The environment variable through which [`spawn_linked_self`] names the
/// spawner's pid to the child ([`link_to_spawner`]).
pub const SPAWNER_ENV: &str = "REPARENT_SPAWNER";

/// [`spawn_linked`] for this binary in a helper role that calls
/// [`link_to_spawner`] first thing: the child sets its own parent-death
/// signal, so `cmd` needs no `pre_exec` closure and the standard library
/// spawns it with `posix_spawn()` (`clone(CLONE_VM | CLONE_VFORK)`), which
/// does not copy the spawner's page tables only for `execve()` to drop
/// them — with a large runner, the copy cost more than the exec.
pub fn spawn_linked_self(cmd: &mut Command, what: &str) -> Result<(Child, OwnedFd), SysError> {
    cmd.env(SPAWNER_ENV, getpid().to_string());
    spawn_with_pidfd(cmd, what)
}

/// The other half of [`spawn_linked_self`], called by the child before
/// anything else: SIGKILL when the thread that spawned it dies, and exit
/// at once (status 112) if that spawner is already gone — its parent is no
/// longer the pid it was given. (Should the spawning thread alone have
/// exited in the moment before, the kernel has handed the child to another
/// thread of the spawner, and the link is to that thread; the sandbox's
/// spawning threads outlive their helpers, see `client::finish_thread`.)
/// Without [`SPAWNER_ENV`] (started by hand) nothing is linked.
pub fn link_to_spawner() {
    let Some(spawner) = std::env::var_os(SPAWNER_ENV) else { return };
    std::env::remove_var(SPAWNER_ENV);
    let spawner: i32 = spawner.to_str().and_then(|s| s.parse().ok()).unwrap_or(-1);
    // SAFETY: prctl with integer arguments; getppid cannot fail.
    let linked = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } == 0;
    // SAFETY: as above.
    if !linked || unsafe { libc::getppid() } != spawner {
        exit_now(112);
    }
}

/// Spawns a helper binary (`cmd`: the sandbox helper or a probe's) that
/// dies with the calling thread ([`die_with_spawner`]), and opens a pidfd
/// of it: our own unreaped child, so the pid names exactly it. `what` names
/// it in errors. If no pidfd can be had, the helper's stdin is closed (it
/// exits by itself on EOF or at its own deadlines) and it is waited for.
pub fn spawn_linked(cmd: &mut Command, what: &str) -> Result<(Child, OwnedFd), SysError> {
    die_with_spawner(cmd);
    spawn_with_pidfd(cmd, what)
}

/// Spawns `cmd` and opens a pidfd of the child; without one, the child's
/// stdin is closed and it is waited for.
fn spawn_with_pidfd(cmd: &mut Command, what: &str) -> Result<(Child, OwnedFd), SysError> {
    let mut child = cmd.spawn().map_err(|e| super::syscall_error(format!("spawn {what}"), e, true))?;
    match pidfd_open(child.id() as i32) {
        Ok(fd) => Ok((child, fd)),
        Err(e) => {
            drop(child.stdin.take());
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Closes every descriptor from 3 up except `keep`: a new node starts with
/// its channel and the standard streams only.
pub fn close_all_but(keep: RawFd) {
    close_ranges(&[(3u32, keep as u32 - 1), (keep as u32 + 1, u32::MAX)]);
}

/// Closes every descriptor from `first` up (in a forked child, whose
/// copies of the parent's descriptors belong to frames it never returns
/// to).
pub fn close_all_from(first: RawFd) {
    close_ranges(&[(first as u32, u32::MAX)]);
}

fn close_ranges(ranges: &[(u32, u32)]) {
    for &(lo, hi) in ranges {
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

/// In a forked child: closes its copy of a descriptor that an owner in the
/// parent's frames holds (frames this copy never returns to), so that the
/// copy does not keep a pipe open.
pub fn close_inherited(fd: RawFd) {
    // SAFETY: the caller is a forked child that never returns to the frame
    // owning `fd`, so nothing uses or closes this copy again.
    unsafe { libc::close(fd) };
}

/// `getpgrp()`.
pub fn getpgrp() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpgrp() }
}

/// `getsid(0)`.
pub fn getsid() -> i32 {
    // SAFETY: integer argument only.
    unsafe { libc::getsid(0) }
}

/// `setrlimit(resource, {n, n})`.
pub fn set_rlimit(resource: super::host::RlimitResource, n: u64, what: &str) -> Result<(), SysError> {
    let r = libc::rlimit { rlim_cur: n, rlim_max: n };
    // SAFETY: valid pointer to an rlimit on this stack.
    if unsafe { libc::setrlimit(resource, &r) } < 0 {
        return Err(last(format!("setrlimit({what}, {n})")));
    }
    Ok(())
}

/// `waitpid(pid, 0)`: blocks until that child has ended and reaps it.
/// The errno on failure (ECHILD: not our child, or reaped already).
pub fn waitpid_blocking(pid: i32) -> Result<super::Exit, i32> {
    let mut status = 0;
    loop {
        // SAFETY: valid pointer to an int on this stack.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(if libc::WIFSIGNALED(status) {
            super::Exit::Killed(libc::WTERMSIG(status))
        } else {
            super::Exit::Exited(libc::WEXITSTATUS(status))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The check that closes the race between a fork and the child's
    /// `PR_SET_PDEATHSIG`: a parent already gone is an error, a living one
    /// is not. (Signal 0 leaves this test thread without a death signal.)
    #[test]
    fn a_death_signal_armed_after_the_parent_died_is_refused() {
        use std::process::{Command, Stdio};
        let mut cat = Command::new("cat").stdin(Stdio::piped()).spawn().expect("cat");
        // Our own unreaped child: the pid names exactly it.
        let pidfd = pidfd_open(cat.id() as i32).expect("pidfd of cat");
        assert!(set_pdeathsig_linked(0, pidfd.as_fd()).is_ok(), "cat lives");
        drop(cat.stdin.take());
        cat.wait().expect("cat exits at EOF");
        let err = set_pdeathsig_linked(0, pidfd.as_fd()).expect_err("cat is gone");
        assert!(err.to_string().contains("parent died"), "{err}");
        assert_eq!(get_pdeathsig().ok(), Some(0));
    }
}
