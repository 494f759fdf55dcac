//! Probes: one question each to the running kernel, for `reparent kernel`.
//!
//! Scenarios check trees — who ends up whose parent. Some rules of
//! kernel-rules.md are about what no tree shows: what a `prctl()` reads
//! back, the errno of a `clone()`, the wait status of an init that
//! `reboot()` ended, whether a signal reaches an init, when a pidfd becomes
//! readable. A probe asks one such question, as the C probes of
//! kernel-rules.md section 11 did on 6.18.44.
//!
//! Each probe runs in a sandbox of its own, built as the scenario sandbox
//! is (see [`super::sandbox`]): the runner re-executes this binary as
//! `reparent __probe NAME DEADLINE_MS`, a single-threaded helper that calls
//! `setsid()`, unshares user + PID + mount namespaces (root falls back to
//! PID + mount where a user namespace is refused), maps itself to root
//! inside and forks PID 1 of the new namespace. PID 1 mounts a private
//! `/proc`, runs the probe — forking, and nesting PID namespaces, as the
//! probe needs — and writes its verdict on a pipe.
//!
//! Lifetime: the runner gives the helper `PR_SET_PDEATHSIG(SIGKILL)`, PID 1
//! gets the same from the helper, and when PID 1 ends the kernel kills and
//! reaps every other process of its namespace before PID 1's pidfd becomes
//! readable (R6.3, `zap_pid_ns_processes()`). The helper waits for exactly
//! that, so no process of a probe outlives it.
//!
//! Synchronisation uses only what the kernel orders: pipes (a child writes
//! once it has done its part), pidfd readiness (a dead process's children
//! already have their new parent, R9.2), `waitid()`, and signal handlers
//! that write to a pipe (a handled signal was delivered). No probe sleeps;
//! every wait has a deadline (`REPARENT_DEADLINE_MS`) whose expiry is a
//! failure that names what was awaited.
//!
//! Signals go through pidfds of processes the probe created, with two
//! exceptions that are themselves the rules under test: `kill(-1, SIGKILL)`
//! (R6.8) and `kill(1, …)` (R6.6). Both are called by a child of the
//! probe's own PID 1, inside the probe's fresh namespace. `kill(-1)`
//! reaches only tasks with a pid greater than 1 *in the caller's
//! namespace* (`kill_something_info()` tests `task_pid_vnr(p) > 1`), and no
//! process outside that namespace — the helper, the runner, the host — has
//! a pid there; `kill(1)` names the probe's own PID 1. PID 1 checks that it
//! is pid 1 before any probe runs, and the caller that its parent is that
//! PID 1. Likewise `reboot()` (R6.5) is only called by a process that
//! `/proc/self/status` shows two namespace levels deep, where the kernel
//! turns it into `reboot_pid_ns()`: that namespace's init is killed,
//! nothing else.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::{observe, os, SandboxOptions, SysError};
use crate::scenario::Signal;

/// The argument that makes the binary run a probe's helper:
/// `reparent __probe NAME DEADLINE_MS`.
pub const PROBE_ARG: &str = "__probe";

/// The argument a probe re-executes the binary with, to read a flag after
/// `execve()`: `reparent __probe-exec subreaper|pdeathsig FD`.
pub const PROBE_EXEC_ARG: &str = "__probe-exec";

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The kernel did what the rule says; the text says what was seen.
    Pass(String),
    /// It did not: what was seen against what was expected, or why the
    /// probe could not finish (a deadline, a failed call).
    Fail(String),
    /// The probe could not run here (a feature this kernel lacks); why.
    Skipped(String),
    /// No sandbox could be created, so nothing can be probed: why, and how
    /// to fix it.
    Unavailable(String),
}

/// A probe's report, as its helper prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeReport {
    pub outcome: ProbeOutcome,
    /// Whether the sandbox had a user namespace (`None` if none was made).
    pub userns: Option<bool>,
}

/// What every probe may use: where the binary is, how long a wait may
/// take, and which kernel this is.
struct Ctx {
    exe: PathBuf,
    deadline: Duration,
    kernel: (u32, u32),
}

impl Ctx {
    fn by(&self) -> Instant {
        Instant::now() + self.deadline
    }
}

type Body = fn(&Ctx) -> Result<ProbeOutcome, SysError>;

/// Every probe, by name.
const PROBES: &[(&str, Body)] = &[
    ("ppid-is-tgid", ppid_is_tgid),
    ("pidfd-info-ppid", pidfd_info_ppid),
    ("subreaper-readback", subreaper_readback),
    ("subreaper-not-inherited", subreaper_not_inherited),
    ("subreaper-kept-across-exec", subreaper_kept_across_exec),
    ("init-may-be-subreaper", init_may_be_subreaper),
    ("exit-signal-reset", exit_signal_reset),
    ("sigign-autoreap", |c| autoreap(c, false)),
    ("nocldwait-autoreap", |c| autoreap(c, true)),
    ("pdeathsig-range", pdeathsig_range),
    ("pdeathsig-cleared-on-fork", pdeathsig_cleared_on_fork),
    ("pdeathsig-kept-across-exec", pdeathsig_kept_across_exec),
    ("ns-empty-at-init-readiness", ns_empty_at_init_readiness),
    ("fork-into-dead-ns", fork_into_dead_ns),
    ("reboot-restart", |c| reboot(c, Reboot::Restart)),
    ("reboot-power-off", |c| reboot(c, Reboot::PowerOff)),
    ("init-shield-inside", init_shield_inside),
    ("init-shield-outside", init_shield_outside),
    ("mt-init-survives", mt_init_survives),
    ("init-clone-parent", init_clone_parent),
    ("kill-all-spares-init", kill_all_spares_init),
    ("pidfd-hup-after-reap", pidfd_hup_after_reap),
    ("pidfd-readiness", pidfd_readiness),
];

/// The names of every probe.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROBES.iter().map(|(n, _)| *n)
}

// ---------------------------------------------------------------------------
// The runner's side.

/// Runs probe `name` in a fresh sandbox and returns its report. Never
/// panics; whatever goes wrong is in the outcome.
pub fn run(opts: &SandboxOptions, name: &str) -> ProbeReport {
    run_helper(opts, name).unwrap_or_else(|e| ProbeReport { outcome: ProbeOutcome::Fail(e.to_string()), userns: None })
}

fn run_helper(opts: &SandboxOptions, name: &str) -> Result<ProbeReport, SysError> {
    if !names().any(|n| n == name) {
        return Err(SysError::Protocol(format!("no probe named `{name}`")));
    }
    let mut cmd = Command::new(&opts.exe);
    cmd.arg(PROBE_ARG)
        .arg(name)
        .arg(opts.deadline.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    os::die_with_spawner(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| SysError::Syscall {
        call: format!("spawn {} {PROBE_ARG} {name}", opts.exe.display()),
        source: e,
        hint: None,
    })?;
    let mut out = child.stdout.take().ok_or_else(|| SysError::Protocol("no stdout".into()))?;
    // Our own unreaped child: the pid names exactly it. Without a pidfd
    // there is no way to signal it, but its own deadlines end it.
    let pidfd = match os::pidfd_open(child.id() as i32) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.wait();
            return Err(e);
        }
    };
    // The helper bounds every wait of its probe; this only catches a
    // helper that hangs outside them.
    let budget = opts.deadline * 12;
    if !os::pidfd_wait(pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + budget)? {
        let _ = os::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = child.wait();
        return Err(SysError::Timeout(format!("the helper of probe `{name}` to finish ({} ms)", budget.as_millis())));
    }
    let mut text = String::new();
    let _ = out.read_to_string(&mut text);
    let status =
        child.wait().map_err(|e| SysError::Syscall { call: "wait(probe helper)".into(), source: e, hint: None })?;
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|_| {
        SysError::Protocol(format!(
            "the helper of probe `{name}` ended ({status}) with no report: {text:?} (see stderr)"
        ))
    })
}

// ---------------------------------------------------------------------------
// The helper: `reparent __probe NAME DEADLINE_MS`.

/// Entry point of `reparent __probe`. Prints one JSON [`ProbeReport`] line
/// and exits. Never returns.
pub fn main(args: &[String]) -> ! {
    let report = helper(args);
    let text = serde_json::to_string(&report).unwrap_or_else(|e| format!("{{\"bad report\": \"{e}\"}}"));
    println!("{text}");
    os::exit_now(0)
}

fn helper(args: &[String]) -> ProbeReport {
    let fail = |m: String| ProbeReport { outcome: ProbeOutcome::Fail(m), userns: None };
    let (Some(name), Some(ms)) = (args.get(2), args.get(3).and_then(|s| s.parse::<u64>().ok())) else {
        return fail(format!("usage: reparent {PROBE_ARG} NAME DEADLINE_MS (started by `reparent kernel`)"));
    };
    let Some(&(_, body)) = PROBES.iter().find(|(n, _)| n == name) else {
        return fail(format!("no probe named `{name}`"));
    };
    // This binary, found before /proc is replaced by the namespace's.
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("readlink(/proc/self/exe) failed: {e}")),
    };
    let userns = match os::enter_sandbox_namespaces() {
        Ok(u) => u,
        Err(e) => return ProbeReport { outcome: ProbeOutcome::Unavailable(e.to_string()), userns: None },
    };
    let ctx = Ctx { exe, deadline: Duration::from_millis(ms), kernel: os::kernel_version() };
    let outcome = match run_pid1(&ctx, name, body) {
        Ok(o) => o,
        Err(e) => ProbeOutcome::Fail(e.to_string()),
    };
    ProbeReport { outcome, userns: Some(userns) }
}

/// Forks PID 1, lets it run the probe, and waits until its namespace is
/// gone. PID 1 reports on a pipe; its exit status must be 0, or something
/// killed it (which for an init is itself a finding).
fn run_pid1(ctx: &Ctx, name: &str, body: Body) -> Result<ProbeOutcome, SysError> {
    let (r, w) = pipe()?;
    // SAFETY: the helper is single-threaded: it was just exec'd and has
    // started no thread.
    let pid = unsafe { os::fork()? };
    if pid == 0 {
        drop(r);
        pid1(ctx, body, w);
    }
    drop(w);
    let mut init = Proc::adopt(pid, ctx)?;
    // Every wait inside a probe has its own deadline; this one catches a
    // probe that hangs between them.
    let budget = ctx.deadline * 10;
    let finished = os::pidfd_wait(init.pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + budget)?;
    if !finished {
        init.signal(libc::SIGKILL)?;
        init.wait_exit("the probe's PID 1 to die after SIGKILL")?;
    }
    // PID 1 is readable only once its namespace is empty (R6.3): nobody
    // else holds the pipe any more.
    let text = Lines::new(r).line(Instant::now() + ctx.deadline, "the probe's PID 1 to report");
    let status = init.reap(0)?;
    if !finished {
        return Ok(ProbeOutcome::Fail(format!(
            "timed out: probe `{name}` did not finish within {} ms; its namespace was killed",
            budget.as_millis()
        )));
    }
    let outcome = text.ok().and_then(|t| serde_json::from_str::<ProbeOutcome>(&t).ok());
    Ok(match (outcome, status) {
        (Some(o), Status::Exited(0)) => o,
        (Some(o), s) => ProbeOutcome::Fail(format!("the probe's PID 1 {s} after it reported {o:?}")),
        (None, s) => ProbeOutcome::Fail(format!("the probe's PID 1 {s} without reporting (see stderr)")),
    })
}

/// PID 1 of the probe's namespace. Never returns.
fn pid1(ctx: &Ctx, body: Body, report: OwnedFd) -> ! {
    let run = || -> Result<ProbeOutcome, SysError> {
        prepare_pid1()?;
        body(ctx)
    };
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => ProbeOutcome::Fail(e.to_string()),
        Err(_) => ProbeOutcome::Fail("the probe panicked (see stderr)".into()),
    };
    let text = serde_json::to_string(&outcome).unwrap_or_else(|_| "\"unreportable\"".into());
    let _ = say(report.as_fd(), &text);
    os::exit_now(0)
}

/// What PID 1 does before it runs a probe: dies with the helper, puts every
/// signal back to its default action (the Rust runtime installed some),
/// leaves the helper's stdout alone, mounts the namespace's /proc, and
/// checks that it is pid 1 — the guarantee behind the `kill(-1)` and
/// `kill(1)` probes.
fn prepare_pid1() -> Result<(), SysError> {
    os::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, "PR_SET_PDEATHSIG, SIGKILL")?;
    os::default_all_signals()?;
    redirect_stdio()?;
    os::mount("proc", "/proc", Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)?;
    if os::getpid() != 1 {
        return Err(SysError::Protocol(format!(
            "the probe's first process is pid {}, not 1: no new PID namespace, refusing to probe",
            os::getpid()
        )));
    }
    Ok(())
}

/// Stdin from /dev/null, stdout to stderr: only the helper writes the
/// report on stdout.
fn redirect_stdio() -> Result<(), SysError> {
    let null = std::fs::File::open("/dev/null").map_err(|e| SysError::Syscall {
        call: "open(/dev/null)".into(),
        source: e,
        hint: None,
    })?;
    for (from, to) in [(null.as_raw_fd(), 0), (2, 1)] {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; no Rust object holds them.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(last(format!("dup2({from}, {to})")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The exec'd side: `reparent __probe-exec WHAT FD`.

/// Entry point of `reparent __probe-exec`: a probe's process after its own
/// `execve()` reads back the flag the probe asked for and reports it on
/// descriptor FD (inherited across the exec). Never returns.
pub fn exec_main(args: &[String]) -> ! {
    let fd = args.get(3).and_then(|s| s.parse::<RawFd>().ok()).filter(|&fd| fd > 2);
    let Some(fd) = fd else {
        eprintln!("reparent {PROBE_EXEC_ARG}: started by a probe of `reparent kernel`, not by hand");
        os::exit_now(2)
    };
    let value = match args.get(2).map(String::as_str) {
        Some("subreaper") => prctl_get(libc::PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER"),
        Some("pdeathsig") => prctl_get(libc::PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG"),
        other => Err(SysError::Protocol(format!("{PROBE_EXEC_ARG}: unknown flag {other:?}"))),
    };
    let msg: Result<String, String> = value.map(|v| v.to_string()).map_err(|e| e.to_string());
    // SAFETY: the descriptor was passed to this process for its report.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = say(fd, &serde_json::to_string(&msg).unwrap_or_default());
    os::exit_now(0)
}

// ---------------------------------------------------------------------------
// Processes, pipes and signals for the probes.

fn last(call: impl Into<String>) -> SysError {
    SysError::Syscall { call: call.into(), source: std::io::Error::last_os_error(), hint: None }
}

fn nix_err(call: impl Into<String>, e: Errno) -> SysError {
    SysError::Syscall { call: call.into(), source: e.into(), hint: None }
}

/// The errno of a failed syscall, if that is what the error is.
fn errno_of(e: &SysError) -> Option<Errno> {
    match e {
        SysError::Syscall { source, .. } => source.raw_os_error().map(Errno::from_raw),
        _ => None,
    }
}

fn signame(sig: i32) -> String {
    Signal(sig).name()
}

/// A wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Exited(i32),
    Killed(i32),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exited with {c}"),
            Status::Killed(s) => write!(f, "was killed by {}", signame(*s)),
        }
    }
}

/// A process the probe holds a pidfd for — its own child, or a process
/// whose pid cannot have been reused (nothing reaps it while the probe
/// looks). Dropping it kills it through the pidfd and reaps it if it is
/// ours, so an early return leaves nothing behind.
struct Proc {
    pid: i32,
    pidfd: OwnedFd,
    done: bool,
    deadline: Duration,
}

impl Proc {
    fn adopt(pid: i32, ctx: &Ctx) -> Result<Proc, SysError> {
        Ok(Proc { pid, pidfd: os::pidfd_open(pid)?, done: false, deadline: ctx.deadline })
    }

    fn signal(&self, sig: i32) -> Result<(), SysError> {
        os::pidfd_send_signal(self.pidfd.as_fd(), sig).map_err(|source| SysError::Syscall {
            call: format!("pidfd_send_signal(pid {}, {})", self.pid, signame(sig)),
            source,
            hint: None,
        })
    }

    fn exited(&self) -> Result<bool, SysError> {
        Ok(os::pidfd_state(self.pidfd.as_fd())? != os::PidfdState::Alive)
    }

    /// Blocks until the pidfd is readable: the process has exited and its
    /// children have their new parent (R9.2).
    fn wait_exit(&self, what: &str) -> Result<(), SysError> {
        if os::pidfd_wait(self.pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + self.deadline)? {
            Ok(())
        } else {
            Err(SysError::Timeout(format!("{what} (pid {})", self.pid)))
        }
    }

    /// `waitid(P_PIDFD, WEXITED | flags)`.
    fn reap(&mut self, flags: i32) -> Result<Status, SysError> {
        let s = waitid_pidfd(self.pidfd.as_fd(), flags);
        if s.is_ok() {
            self.done = true;
        }
        s
    }

    fn finish(&mut self, what: &str) -> Result<Status, SysError> {
        self.wait_exit(what)?;
        self.reap(libc::__WALL)
    }

    /// Leaves the process to someone else (its parent, or the kernel's
    /// auto-reap): dropping it no longer kills it.
    fn leave(mut self) -> i32 {
        self.done = true;
        self.pid
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = os::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = os::pidfd_wait(self.pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + self.deadline);
        let _ = waitid_pidfd(self.pidfd.as_fd(), libc::__WALL);
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED | flags)`, with the status.
fn waitid_pidfd(pidfd: BorrowedFd<'_>, flags: i32) -> Result<Status, SysError> {
    loop {
        // SAFETY: a zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to `info`; P_PIDFD takes the descriptor as
        // its id.
        let r =
            unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | flags) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(last(format!("waitid(P_PIDFD, WEXITED|{flags:#x})")));
        }
        // SAFETY: waitid() filled in a SIGCHLD siginfo, whose si_status is
        // valid.
        let status = unsafe { info.si_status() };
        return match info.si_code {
            libc::CLD_EXITED => Ok(Status::Exited(status)),
            libc::CLD_KILLED | libc::CLD_DUMPED => Ok(Status::Killed(status)),
            code => Err(SysError::Protocol(format!("waitid(P_PIDFD) gave si_code {code}"))),
        };
    }
}

/// Forks a child that runs `f` and exits with its result. For
/// single-threaded callers only: every probe process forks before it starts
/// a thread, and uses [`fork_blocker`] after.
fn spawn(ctx: &Ctx, f: impl FnOnce() -> i32) -> Result<Proc, SysError> {
    // SAFETY: the caller is single-threaded (see above).
    let pid = unsafe { os::fork()? };
    if pid == 0 {
        // Never unwind into the parent's frames, whose values (pidfds of
        // siblings) this copy must not drop.
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        os::exit_now(code);
    }
    Proc::adopt(pid, ctx)
}

/// Runs `f` in a child and returns what it reported: its text, or its
/// error. `f` gets the report descriptor, for a child that hands it on
/// across an `execve()`. The report is one line, so that descendants that
/// inherit the pipe cannot hold up the answer.
fn in_child(
    ctx: &Ctx,
    what: &str,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<String, SysError>,
) -> Result<String, SysError> {
    let (r, w) = pipe()?;
    let mut kid = spawn(ctx, move || {
        let msg: Result<String, String> = f(w.as_fd()).map_err(|e| e.to_string());
        let _ = say(w.as_fd(), &serde_json::to_string(&msg).unwrap_or_default());
        0
    })?;
    let line = Lines::new(r).line(ctx.by(), &format!("{what} to report"))?;
    let status = kid.finish(&format!("{what} to exit"))?;
    let msg: Result<String, String> =
        serde_json::from_str(&line).map_err(|e| SysError::Protocol(format!("{what} reported {line:?}: {e}")))?;
    match (msg, status) {
        (Ok(text), Status::Exited(0)) => Ok(text),
        (Ok(_), s) => Err(SysError::Node { name: what.into(), message: format!("{s}") }),
        (Err(e), _) => Err(SysError::Node { name: what.into(), message: e }),
    }
}

/// A child that never returns: it waits for signals that never come
/// (anything it gets takes its default action).
fn park() -> ! {
    loop {
        nix::unistd::pause();
    }
}

/// Forks a child that reports its `getppid()` on `report` (4 bytes), then
/// waits for a byte or EOF on `release` and exits. Safe from a
/// multi-threaded process: the child calls only async-signal-safe functions.
fn fork_blocker(report: Option<RawFd>, release: RawFd) -> Result<i32, SysError> {
    // SAFETY: fork() itself is always allowed; the child below touches no
    // lock or allocator another thread may have held at fork time.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last("fork"));
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

/// `clone(flags)` with no new stack: a fork with chosen flags and exit
/// signal. Returns 0 in the child.
///
/// # Safety
/// As for `fork()`: the caller must be single-threaded.
unsafe fn clone_fork(flags: u64) -> Result<i32, SysError> {
    // SAFETY: without CLONE_VM the child gets a copy of the address space
    // and, with a null stack pointer, goes on on its copy of this stack,
    // exactly as after fork(); parent_tid, child_tid and tls are read only
    // with flags not used here.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if r < 0 {
        return Err(last(format!("clone({flags:#x})")));
    }
    Ok(r as i32)
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| nix_err("pipe2(O_CLOEXEC)", e))
}

/// Writes one line (short enough to be atomic on a pipe).
fn say(fd: BorrowedFd<'_>, text: &str) -> Result<(), SysError> {
    write_all(fd, format!("{text}\n").as_bytes())
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), SysError> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(nix_err("write(pipe)", e)),
        }
    }
    Ok(())
}

/// The read end of a pipe, read line by line with deadlines.
struct Lines {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Lines {
    fn new(fd: OwnedFd) -> Lines {
        Lines { fd, buf: Vec::new() }
    }

    /// The next line; a timeout names `what`, and so does EOF before it.
    fn line(&mut self, deadline: Instant, what: &str) -> Result<String, SysError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            self.fill(deadline, what)?;
        }
    }

    /// Exactly `n` bytes.
    fn bytes(&mut self, n: usize, deadline: Instant, what: &str) -> Result<Vec<u8>, SysError> {
        while self.buf.len() < n {
            self.fill(deadline, what)?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), SysError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if os::poll_one(self.fd.as_fd(), libc::POLLIN, left.as_millis().clamp(1, i32::MAX as u128) as i32)? == 0 {
            return Err(SysError::Timeout(what.into()));
        }
        let mut chunk = [0u8; 512];
        match nix::unistd::read(self.fd.as_fd(), &mut chunk) {
            Ok(0) => Err(SysError::Protocol(format!("gave up waiting for {what}: the pipe was closed"))),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(nix_err("read(pipe)", e)),
        }
    }
}

/// `prctl(option, &int)`: a flag the kernel stores through a pointer.
fn prctl_get(option: i32, what: &str) -> Result<i32, SysError> {
    let mut v: libc::c_int = -1;
    os::prctl(option, &mut v as *mut libc::c_int as libc::c_ulong, what)?;
    Ok(v)
}

/// The descriptor the last signal handler writes to (see [`on_signal`]).
static ACK_FD: AtomicI32 = AtomicI32::new(-1);

/// Writes the signal's number, as one byte, to `ACK_FD`.
extern "C" fn on_signal(sig: libc::c_int) {
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; a one-byte buffer on this
    // stack.
    unsafe {
        libc::write(ACK_FD.load(Ordering::Relaxed), (&b as *const u8).cast(), 1);
    }
}

/// Handles `sig` by writing its number to `fd`: a byte on the pipe proves
/// the signal was delivered to a handler.
fn handle_signal(sig: i32, fd: RawFd) -> Result<(), SysError> {
    ACK_FD.store(fd, Ordering::Relaxed);
    sigaction(sig, on_signal as *const () as usize, libc::SA_RESTART)
}

/// `sigaction(sig, {handler, flags, empty mask})`.
fn sigaction(sig: i32, handler: libc::sighandler_t, flags: i32) -> Result<(), SysError> {
    // SAFETY: `sa` is plain data, fully initialised below; the handler is
    // SIG_DFL, SIG_IGN or `on_signal`, which only calls write(2).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
            return Err(last(format!("sigaction({}, flags {flags:#x})", signame(sig))));
        }
    }
    Ok(())
}

/// Blocks (`SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) signals in the calling
/// thread only.
fn thread_sigmask(how: i32, sigs: &[i32]) -> Result<(), SysError> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the call
    // changes only the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        let r = libc::pthread_sigmask(how, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(SysError::Syscall {
                call: "pthread_sigmask".into(),
                source: std::io::Error::from_raw_os_error(r),
                hint: None,
            });
        }
    }
    Ok(())
}

/// A namespace file of the caller, e.g. `pid_for_children`.
fn open_ns(which: &str) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/self/ns/{which}");
    std::fs::File::open(&path).map(OwnedFd::from).map_err(|source| SysError::Syscall {
        call: format!("open({path})"),
        source,
        hint: None,
    })
}

fn setns_pid(ns: BorrowedFd<'_>, what: &str) -> Result<(), SysError> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWPID).map_err(|e| nix_err(format!("setns({what})"), e))
}

/// Forks `body` as PID 1 of a new PID namespace nested in the caller's, and
/// returns it with a descriptor of that namespace. The caller's next
/// children are forked where they were before: it `setns()`es back to its
/// own namespace, as it may (`pidns_install()` accepts the active one).
fn spawn_ns_init(ctx: &Ctx, body: impl FnOnce() -> i32) -> Result<(Proc, OwnedFd), SysError> {
    let own = open_ns("pid")?;
    os::unshare(libc::CLONE_NEWPID, "CLONE_NEWPID")?;
    let init = spawn(ctx, body);
    let ns = open_ns("pid_for_children");
    setns_pid(own.as_fd(), "back to the caller's own PID namespace")?;
    Ok((init?, ns?))
}

/// This process's pids, outermost visible namespace first
/// (`/proc/self/status` `NSpid`).
fn nspid() -> Result<Vec<i32>, SysError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|source| SysError::Syscall {
        call: "read(/proc/self/status)".into(),
        source,
        hint: None,
    })?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap_or("");
    Ok(line.split_whitespace().filter_map(|s| s.parse().ok()).collect())
}

/// `PPid:` of `/proc/<pid>/status`.
fn status_ppid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok())
}

fn verdict(ok: bool, seen: String, expected: &str) -> ProbeOutcome {
    if ok {
        ProbeOutcome::Pass(seen)
    } else {
        ProbeOutcome::Fail(format!("saw {seen}; expected {expected}"))
    }
}

fn errno_text(r: &Result<impl std::fmt::Debug, SysError>) -> String {
    match r {
        Ok(v) => format!("success ({v:?})"),
        Err(e) => errno_of(e).map_or_else(|| e.to_string(), |n| format!("{n:?}")),
    }
}

// ---------------------------------------------------------------------------
// The probes. Each runs as (or below) PID 1 of its own namespace.

/// R1.10 [N2]: a child forked by a non-leader thread shows the process's
/// tgid as its parent, in `getppid()` and in `/proc/<pid>/status`.
fn ppid_is_tgid(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "P, whose second thread forks C", |_| {
        let me = os::getpid();
        let (rep_r, rep_w) = pipe()?;
        let (rel_r, rel_w) = pipe()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let tid = nix::unistd::gettid().as_raw();
            let _ = tx.send((tid, fork_blocker(Some(rep_w.as_raw_fd()), rel_r.as_raw_fd())));
            drop(rep_w);
            // Stay alive, a live non-leader parent, until C is released.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(rel_r.as_fd(), &mut b);
        });
        let (tid, c) = rx.recv_timeout(ctx.deadline).map_err(|_| SysError::Timeout("P's thread to fork C".into()))?;
        let c = c?;
        let mut reports = Lines::new(rep_r);
        let getppid = reports.bytes(4, ctx.by(), "C to report its getppid()")?;
        let getppid = i32::from_ne_bytes([getppid[0], getppid[1], getppid[2], getppid[3]]);
        let proc_ppid = status_ppid(c).unwrap_or(-1);
        let mut child = Proc::adopt(c, ctx)?;
        // Two bytes: one for C, one for the thread.
        write_all(rel_w.as_fd(), b"xx")?;
        child.finish("C to exit once released")?;
        let _ = thread.join();
        Ok(format!("{me} {tid} {getppid} {proc_ppid}"))
    })?;
    let v: Vec<i32> = seen.split(' ').filter_map(|s| s.parse().ok()).collect();
    let [tgid, tid, getppid, proc_ppid] = v[..] else {
        return Err(SysError::Protocol(format!("bad report {seen:?}")));
    };
    Ok(verdict(
        tid != tgid && getppid == tgid && proc_ppid == tgid,
        format!("thread {tid} of process {tgid} forked C; C's getppid() = {getppid}, PPid = {proc_ppid}"),
        &format!("both {tgid}, the tgid, not the thread id {tid}"),
    ))
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

/// `ioctl(pidfd, PIDFD_GET_INFO)`: the ppid as the caller's namespace sees it.
fn pidfd_ppid(pidfd: BorrowedFd<'_>) -> Result<u32, SysError> {
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

/// R1.10 (6.13+): `PIDFD_GET_INFO` reports the parent, and after the parent
/// dies, the subreaper that adopted the child.
fn pidfd_info_ppid(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    if ctx.kernel < (6, 13) {
        return Ok(ProbeOutcome::Skipped(format!(
            "PIDFD_GET_INFO arrived in Linux 6.13; this is {}.{}",
            ctx.kernel.0, ctx.kernel.1
        )));
    }
    let seen = in_child(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        let (rep_r, rep_w) = pipe()?;
        let mut m = spawn(ctx, move || {
            let Ok(c) = spawn(ctx, || park()) else { return 1 };
            let _ = say(rep_w.as_fd(), &c.leave().to_string());
            park()
        })?;
        let c: i32 = Lines::new(rep_r)
            .line(ctx.by(), "M to fork C")?
            .parse()
            .map_err(|_| SysError::Protocol("M's report".into()))?;
        let c = Proc::adopt(c, ctx)?;
        let before = match pidfd_ppid(c.pidfd.as_fd()) {
            Err(e) if matches!(errno_of(&e), Some(Errno::ENOTTY | Errno::EINVAL)) => {
                return Ok(format!("unsupported {}", errno_text(&Err::<(), _>(e))));
            }
            r => r?,
        };
        m.signal(libc::SIGKILL)?;
        m.finish("M to die after SIGKILL")?;
        let after = pidfd_ppid(c.pidfd.as_fd())?;
        Ok(format!("{} {before} {} {after}", m.pid, os::getpid()))
    })?;
    if let Some(why) = seen.strip_prefix("unsupported ") {
        return Ok(ProbeOutcome::Skipped(format!("PIDFD_GET_INFO is not supported here ({why})")));
    }
    let v: Vec<u32> = seen.split(' ').filter_map(|s| s.parse().ok()).collect();
    let [m, before, s, after] = v[..] else {
        return Err(SysError::Protocol(format!("bad report {seen:?}")));
    };
    Ok(verdict(
        before == m && after == s,
        format!("PIDFD_GET_INFO ppid {before} while parent {m} lived, {after} after it died"),
        &format!("{m}, then the subreaper {s}"),
    ))
}

/// R2.1/R2.2: `PR_SET_CHILD_SUBREAPER(42)` returns 0 and the flag reads
/// back as 1 (`!!arg2`).
fn subreaper_readback(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "S, calling PR_SET_CHILD_SUBREAPER(42)", |_| {
        let r = os::prctl(libc::PR_SET_CHILD_SUBREAPER, 42, "PR_SET_CHILD_SUBREAPER, 42")?;
        let v = prctl_get(libc::PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER")?;
        Ok(format!("{r} {v}"))
    })?;
    let (r, v) = seen.split_once(' ').unwrap_or((&seen, "?"));
    Ok(verdict(seen == "0 1", format!("prctl returned {r}, PR_GET_CHILD_SUBREAPER read {v}"), "0 and 1"))
}

/// R2.4 [T3]: a fork child of a subreaper reads `PR_GET_CHILD_SUBREAPER` 0.
fn subreaper_not_inherited(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        in_child(ctx, "S's child C", |_| {
            Ok(prctl_get(libc::PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER")?.to_string())
        })
    })?;
    Ok(verdict(seen == "0", format!("the child of a subreaper reads {seen}"), "0"))
}

/// R2.5 [T3]: a subreaper still reads 1 after its own `execve()`.
fn subreaper_kept_across_exec(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "subreaper S, re-executed", |report| {
        if !os::set_child_subreaper(true)? {
            return Err(SysError::Protocol("PR_SET_CHILD_SUBREAPER(1) did not read back as 1".into()));
        }
        exec_self(ctx, "subreaper", report)
    })?;
    Ok(verdict(seen == "1", format!("after execve() the subreaper reads {seen}"), "1"))
}

/// R2.8 [T6]: a namespace init may set the flag: the call returns 0.
fn init_may_be_subreaper(_ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let r = os::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER, 1");
    let v = prctl_get(libc::PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER")?;
    Ok(verdict(
        matches!(r, Ok(0)) && v == 1,
        format!("in pid {}, the namespace's init: prctl {}, reads {v}", os::getpid(), errno_text(&r)),
        "success (0) and 1",
    ))
}

/// Re-executes this binary as `__probe-exec WHAT FD`, which reports the
/// flag on `report`. Returns only if the exec failed.
fn exec_self(ctx: &Ctx, what: &str, report: BorrowedFd<'_>) -> Result<String, SysError> {
    os::clear_cloexec(report)?;
    let err = Command::new(&ctx.exe).arg(PROBE_EXEC_ARG).arg(what).arg(report.as_raw_fd().to_string()).exec();
    Err(SysError::Syscall { call: format!("execve({})", ctx.exe.display()), source: err, hint: None })
}

/// R3.1 [Z1]: a clone child with `exit_signal = SIGUSR1` is invisible to a
/// plain `waitpid()` (ECHILD) until its parent dies and a subreaper in
/// another process adopts it: `reparent_leader()` resets `exit_signal` to
/// SIGCHLD, and a plain wait finds and reaps it.
fn exit_signal_reset(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        let (rel_r, rel_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        let mut m = spawn(ctx, move || {
            // SAFETY: M is single-threaded.
            match unsafe { clone_fork(libc::SIGUSR1 as u64) } {
                Ok(0) => {
                    let mut b = [0u8; 1];
                    let _ = nix::unistd::read(rel_r.as_fd(), &mut b);
                    os::exit_now(0)
                }
                Ok(c) => {
                    let plain = waitpid(Pid::from_raw(c), Some(WaitPidFlag::WNOHANG));
                    let wall = waitpid(Pid::from_raw(c), Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL));
                    let _ = say(rep_w.as_fd(), &format!("{c} {} {}", wait_text(plain), wait_text(wall)));
                    0
                }
                Err(e) => {
                    let _ = say(rep_w.as_fd(), &format!("0 {e}"));
                    1
                }
            }
        })?;
        let line = Lines::new(rep_r).line(ctx.by(), "M to clone C with exit_signal SIGUSR1")?;
        let mut parts = line.splitn(3, ' ');
        let c: i32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if c == 0 {
            return Err(SysError::Node { name: "M".into(), message: line });
        }
        let before = parts.collect::<Vec<_>>().join(" ");
        m.finish("M to exit")?;
        let mut child = Proc::adopt(c, ctx)?;
        let after = wait_text(waitpid(Pid::from_raw(c), Some(WaitPidFlag::WNOHANG)));
        write_all(rel_w.as_fd(), b"x")?;
        child.wait_exit("C to exit once released")?;
        // A plain wait (no __WALL) reaps only a SIGCHLD child.
        let reaped = child.reap(0).map(|s| s.to_string()).unwrap_or_else(|e| errno_text(&Err::<(), _>(e)));
        Ok(format!("{before} {after} {reaped}"))
    })?;
    let expected = "ECHILD alive alive exited with 0";
    Ok(verdict(
        seen == expected,
        format!("{seen} (before the reparent: plain waitpid, __WALL waitpid; after: plain waitpid, plain waitid reap)"),
        expected,
    ))
}

fn wait_text(r: nix::Result<WaitStatus>) -> String {
    match r {
        Ok(WaitStatus::StillAlive) => "alive".into(),
        Ok(s) => format!("{s:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// R3.3 [Z3, Z3b]: a subreaper R whose SIGCHLD is `SIG_IGN` (or has
/// `SA_NOCLDWAIT`) adopts a zombie: the kernel reaps it at once; with
/// `SIG_IGN` no SIGCHLD is sent, with `SA_NOCLDWAIT` SIGCHLD is sent, with
/// the zombie's pid and status.
fn autoreap(ctx: &Ctx, nocldwait: bool) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "subreaper R", |_| {
        os::set_child_subreaper(true)?;
        let (rep_r, rep_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        // M keeps the default SIGCHLD it inherits now; R changes its own
        // afterwards.
        let m = spawn(ctx, move || {
            let Ok(z) = spawn(ctx, || 7) else { return 1 };
            if z.wait_exit("Z to exit").is_err() {
                return 1;
            }
            let _ = say(rep_w.as_fd(), &z.leave().to_string());
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(go_r.as_fd(), &mut b);
            0
        })?;
        let z: i32 = Lines::new(rep_r)
            .line(ctx.by(), "M to leave a zombie Z")?
            .parse()
            .map_err(|_| SysError::Protocol("M's report".into()))?;
        if nocldwait {
            sigaction(libc::SIGCHLD, libc::SIG_DFL, libc::SA_NOCLDWAIT)?;
        } else {
            os::set_sigchld_ignored(true)?;
        }
        let sigfd = os::sigchld_fd()?;
        write_all(go_w.as_fd(), b"x")?;
        m.wait_exit("M to exit")?;
        let _ = m.leave(); // auto-reaped, like Z
        let mut got = Vec::new();
        let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        while let Ok(n) = nix::unistd::read(sigfd.as_fd(), &mut buf) {
            if n < buf.len() {
                break;
            }
            // SAFETY: the kernel wrote a whole signalfd_siginfo, which is
            // plain data.
            let si: libc::signalfd_siginfo = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
            let who = if si.ssi_pid as i32 == z { "Z".to_string() } else { format!("pid {}", si.ssi_pid) };
            got.push(format!(
                "{}(from {who}, code {}, status {})",
                signame(si.ssi_signo as i32),
                si.ssi_code,
                si.ssi_status
            ));
        }
        let left = wait_text(waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)));
        Ok(format!("signals [{}], then waitpid(-1): {left}", got.join(", ")))
    })?;
    let (expected, rule) = if nocldwait {
        (
            format!("signals [SIGCHLD(from Z, code {}, status 7)], then waitpid(-1): ECHILD", libc::CLD_EXITED),
            "SA_NOCLDWAIT",
        )
    } else {
        ("signals [], then waitpid(-1): ECHILD".to_string(), "SIG_IGN")
    };
    Ok(verdict(seen == expected, format!("{rule} subreaper adopting zombie Z: {seen}"), &expected))
}

/// R4.1: `PR_SET_PDEATHSIG` takes 0..=64 and rejects 65 with EINVAL.
fn pdeathsig_range(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "X, setting pdeath signals", |_| {
        let r65 = os::prctl(libc::PR_SET_PDEATHSIG, 65, "PR_SET_PDEATHSIG, 65");
        os::prctl(libc::PR_SET_PDEATHSIG, 64, "PR_SET_PDEATHSIG, 64")?;
        let v64 = prctl_get(libc::PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG")?;
        os::prctl(libc::PR_SET_PDEATHSIG, 0, "PR_SET_PDEATHSIG, 0")?;
        let v0 = prctl_get(libc::PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG")?;
        Ok(format!("65: {}, 64 reads {v64}, 0 reads {v0}", errno_text(&r65)))
    })?;
    Ok(verdict(seen == "65: EINVAL, 64 reads 64, 0 reads 0", seen, "65: EINVAL, 64 reads 64, 0 reads 0"))
}

/// R4.7 [P3]: a fork child reads `PR_GET_PDEATHSIG` 0.
fn pdeathsig_cleared_on_fork(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "X, with pdeathsig SIGUSR2", |_| {
        os::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2 as libc::c_ulong, "PR_SET_PDEATHSIG, SIGUSR2")?;
        in_child(ctx, "X's child", |_| Ok(prctl_get(libc::PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG")?.to_string()))
    })?;
    Ok(verdict(seen == "0", format!("a child of a process with pdeathsig SIGUSR2 reads {seen}"), "0"))
}

/// R4.7 [P4]: `pdeath_signal` is kept across a plain `execve()`.
fn pdeathsig_kept_across_exec(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let seen = in_child(ctx, "X, with pdeathsig SIGUSR2, re-executed", |report| {
        os::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2 as libc::c_ulong, "PR_SET_PDEATHSIG, SIGUSR2")?;
        exec_self(ctx, "pdeathsig", report)
    })?;
    let want = libc::SIGUSR2.to_string();
    Ok(verdict(seen == want, format!("after execve() PR_GET_PDEATHSIG reads {seen}"), &format!("{want} (SIGUSR2)")))
}

/// R6.3 [N1]: when a killed namespace init's pidfd is readable, no other
/// process of its namespace exists: one that ignores SIGTERM, a stopped
/// one, one with a grandchild, and that grandchild are all reaped.
fn ns_empty_at_init_readiness(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let (rep_r, rep_w) = pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let run = || -> Result<(), SysError> {
            let deaf = spawn(ctx, || match sigaction(libc::SIGTERM, libc::SIG_IGN, 0) {
                Ok(()) => park(),
                Err(_) => 1,
            })?;
            let stopped = spawn(ctx, || park())?;
            stopped.signal(libc::SIGSTOP)?;
            // Blocks until the stop is complete: the kernel's event for it.
            nix::sys::wait::waitid(
                nix::sys::wait::Id::PIDFd(stopped.pidfd.as_fd()),
                WaitPidFlag::WSTOPPED | WaitPidFlag::WNOWAIT,
            )
            .map_err(|e| nix_err("waitid(WSTOPPED)", e))?;
            let (gr, gw) = pipe()?;
            let parent = spawn(ctx, move || {
                let Ok(g) = spawn(ctx, || park()) else { return 1 };
                let _ = g.leave();
                let _ = say(gw.as_fd(), "forked");
                park()
            })?;
            Lines::new(gr).line(ctx.by(), "the grandchild to be forked")?;
            say(rep_w.as_fd(), "ready")?;
            for p in [deaf, stopped, parent] {
                let _ = p.leave();
            }
            park()
        };
        match run() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("reparent probe: nested init: {e}");
                1
            }
        }
    })?;
    Lines::new(rep_r).line(ctx.by(), "the nested init to start its four processes")?;
    // Everything below the init, as this namespace's /proc shows it.
    let procs = observe::scan().map_err(|e| SysError::Syscall { call: "read /proc".into(), source: e, hint: None })?;
    let mut below = vec![init.pid];
    let mut grew = true;
    while grew {
        grew = false;
        for p in &procs {
            if below.contains(&p.ppid) && !below.contains(&p.pid) {
                below.push(p.pid);
                grew = true;
            }
        }
    }
    let members: Vec<Proc> = below[1..].iter().map(|&p| Proc::adopt(p, ctx)).collect::<Result<_, _>>()?;
    init.signal(libc::SIGKILL)?;
    init.wait_exit("the nested init to die after SIGKILL")?;
    let mut left = 0;
    for m in &members {
        let gone = if ctx.kernel >= (6, 9) {
            os::pidfd_state(m.pidfd.as_fd())? == os::PidfdState::Reaped
        } else {
            observe::stat(m.pid).is_none()
        };
        if !gone {
            left += 1;
        }
    }
    let status = init.reap(0)?;
    for m in members {
        let _ = m.leave();
    }
    let n = below.len() - 1;
    Ok(verdict(
        n == 4 && left == 0 && status == Status::Killed(libc::SIGKILL),
        format!("init {status}; when its pidfd was readable {left} of its {n} processes were left"),
        "killed by SIGKILL, 0 of 4 left",
    ))
}

/// R8.5, R6.3 [N4]: once a namespace's init has died, a fork into it fails
/// with ENOMEM — while the init is still a zombie, and after it is reaped
/// (the namespace kept alive by a descriptor).
fn fork_into_dead_ns(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let (mut init, ns) = spawn_ns_init(ctx, || park())?;
    init.signal(libc::SIGKILL)?;
    init.wait_exit("the nested init to die after SIGKILL")?;
    let zombie = fork_into(ctx, ns.as_fd())?;
    init.reap(0)?;
    let reaped = fork_into(ctx, ns.as_fd())?;
    Ok(verdict(
        zombie == "ENOMEM" && reaped == "ENOMEM",
        format!("setns() into the namespace, then fork(): {zombie} with its init a zombie, {reaped} once reaped"),
        "ENOMEM both times",
    ))
}

/// `setns(ns)`, `fork()`, `setns()` back; the fork's errno, or what it made.
fn fork_into(ctx: &Ctx, ns: BorrowedFd<'_>) -> Result<String, SysError> {
    let own = open_ns("pid")?;
    setns_pid(ns, "the dead namespace")?;
    let r = spawn(ctx, || 0);
    setns_pid(own.as_fd(), "back to the caller's own PID namespace")?;
    Ok(match r {
        Ok(mut p) => {
            let _ = p.finish("the unexpected child to exit");
            format!("success (pid {})", p.pid)
        }
        Err(e) => errno_text(&Err::<(), _>(e)),
    })
}

#[derive(Clone, Copy)]
enum Reboot {
    Restart,
    PowerOff,
}

/// R6.5 [N8]: `reboot()` inside a namespace ends its init, whose parent
/// sees "killed by SIGHUP" for `RESTART` and "killed by SIGINT" for
/// `POWER_OFF`. `RESTART` is called by a process of the namespace that is
/// not its init (the init is killed, the caller exits), `POWER_OFF` by the
/// init itself.
fn reboot(ctx: &Ctx, how: Reboot) -> Result<ProbeOutcome, SysError> {
    let (cmd, name, want, caller) = match how {
        Reboot::Restart => (libc::LINUX_REBOOT_CMD_RESTART, "RESTART", libc::SIGHUP, "a child of the init"),
        Reboot::PowerOff => (libc::LINUX_REBOOT_CMD_POWER_OFF, "POWER_OFF", libc::SIGINT, "the init itself"),
    };
    let (why_r, why_w) = pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let call = || {
            let e = reboot_in_nested_ns(cmd, name);
            let _ = say(why_w.as_fd(), &e.to_string());
            1
        };
        match how {
            Reboot::PowerOff => call(),
            Reboot::Restart => {
                let Ok(k) = spawn(ctx, call) else { return 1 };
                let _ = k.leave();
                park()
            }
        }
    })?;
    // Whoever called reboot() says why if it returned; the pipe reads EOF
    // once the namespace is gone if it did not.
    if let Ok(why) = Lines::new(why_r).line(ctx.by(), &format!("reboot({name}) to end the nested init")) {
        return Ok(ProbeOutcome::Fail(format!("reboot({name}) by {caller} failed: {why}")));
    }
    let status = init.finish(&format!("the nested init to end after reboot({name})"))?;
    Ok(verdict(
        status == Status::Killed(want),
        format!("reboot({name}) by {caller}: the init {status}"),
        &format!("killed by {}", signame(want)),
    ))
}

/// Calls `reboot(cmd)` only from a nested PID namespace — two `NSpid`
/// levels in the probe's /proc, whose own namespace is itself fresh — where
/// the kernel ends that namespace's init instead of the machine. Returns
/// only on failure.
fn reboot_in_nested_ns(cmd: i32, name: &str) -> SysError {
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

/// R6.6 a/c [N5]: from inside its namespace, `kill(1, SIGTERM)` and
/// `kill(1, SIGKILL)` return 0 and do nothing to a `SIG_DFL` init; a
/// handled signal is delivered. (The init here is the probe's PID 1.)
fn init_shield_inside(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let (ack_r, ack_w) = pipe()?;
    handle_signal(libc::SIGUSR1, ack_w.as_raw_fd())?;
    let seen = in_child(ctx, "A, signalling PID 1 from inside", |_| {
        // The rule under test: a signal by pid, to our own PID 1.
        if os::getppid() != 1 {
            return Err(SysError::Protocol("A's parent is not the probe's PID 1".into()));
        }
        let kill = |sig: nix::sys::signal::Signal| match nix::sys::signal::kill(Pid::from_raw(1), sig) {
            Ok(()) => "0".to_string(),
            Err(e) => format!("{e:?}"),
        };
        use nix::sys::signal::Signal::*;
        Ok(format!("{} {} {}", kill(SIGTERM), kill(SIGKILL), kill(SIGUSR1)))
    })?;
    // The handler's byte: SIGUSR1 was delivered. Reading it returns to user
    // space once more, after every signal sent before was acted on; that
    // this code runs on (and PID 1 exits 0, which the helper checks) is
    // the init's survival.
    let mut acks = Lines::new(ack_r);
    let got = acks.bytes(1, ctx.by(), "PID 1's SIGUSR1 handler to run")?;
    drop(ack_w);
    Ok(verdict(
        seen == "0 0 0" && got == [libc::SIGUSR1 as u8],
        format!("kill(1, SIGTERM|SIGKILL|SIGUSR1) returned {seen}; the init lives on and its SIGUSR1 handler ran"),
        "0 0 0, the init alive, the handler run",
    ))
}

/// R6.6 b/c [N5]: from the parent namespace (through a pidfd), SIGTERM,
/// SIGINT and SIGHUP to a `SIG_DFL` namespace init are dropped, a handled
/// signal is delivered, and SIGKILL kills it.
fn init_shield_outside(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let rt = libc::SIGRTMIN();
    let (ack_r, ack_w) = pipe()?;
    let (rdy_r, rdy_w) = pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        if handle_signal(rt, ack_w.as_raw_fd()).is_err() {
            return 1;
        }
        let _ = say(rdy_w.as_fd(), "ready");
        park()
    })?;
    Lines::new(rdy_r).line(ctx.by(), "the nested init to install its handler")?;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, rt] {
        init.signal(sig)?;
    }
    // Signals are taken lowest number first, so by the time the real-time
    // signal's handler runs the others were acted on.
    let acked = Lines::new(ack_r).bytes(1, ctx.by(), "the nested init's SIGRTMIN handler to run");
    let survived = acked.is_ok() && !init.exited()?;
    if !survived {
        init.wait_exit("the nested init to finish dying")?;
        let status = init.reap(0)?;
        return Ok(ProbeOutcome::Fail(format!(
            "the nested init {status} after SIGTERM, SIGINT, SIGHUP from the parent namespace; expected them dropped"
        )));
    }
    init.signal(libc::SIGKILL)?;
    let status = init.finish("the nested init to die after SIGKILL")?;
    Ok(verdict(
        status == Status::Killed(libc::SIGKILL),
        format!("SIGTERM, SIGINT, SIGHUP dropped, a handled SIGRTMIN delivered; then SIGKILL: the init {status}"),
        "SIGKILL to kill it",
    ))
}

/// R6.6 g [N5c]: a two-thread namespace init whose leader blocks SIGTERM,
/// SIGINT and SIGUSR1 (its other thread does not) survives them, sent from
/// the parent namespace. Version-dependent: see the row.
fn mt_init_survives(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let rt = libc::SIGRTMIN();
    let sigs = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];
    let (ack_r, ack_w) = pipe()?;
    let (rdy_r, rdy_w) = pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let mut blocked = sigs.to_vec();
        blocked.push(rt);
        if handle_signal(rt, ack_w.as_raw_fd()).and_then(|_| thread_sigmask(libc::SIG_BLOCK, &blocked)).is_err() {
            return 1;
        }
        // The new thread starts with the leader's mask and unblocks.
        let _sibling = std::thread::spawn(move || {
            if thread_sigmask(libc::SIG_UNBLOCK, &blocked).is_ok() {
                let _ = say(rdy_w.as_fd(), "ready");
            }
            park()
        });
        park()
    })?;
    Lines::new(rdy_r).line(ctx.by(), "the nested init's second thread to start")?;
    for sig in sigs {
        init.signal(sig)?;
    }
    init.signal(rt)?;
    let acked = Lines::new(ack_r).bytes(1, ctx.by(), "the nested init's SIGRTMIN handler to run");
    let names: Vec<String> = sigs.iter().map(|&s| signame(s)).collect();
    if acked.is_ok() && !init.exited()? {
        return Ok(ProbeOutcome::Pass(format!(
            "a 2-thread init with {} blocked only in its leader survived them; SIGRTMIN, sent after, was handled",
            names.join(", ")
        )));
    }
    init.wait_exit("the nested init to finish dying")?;
    let status = init.reap(0)?;
    Ok(ProbeOutcome::Fail(format!(
        "saw the 2-thread init {status} after {} blocked only in its leader; expected it to survive",
        names.join(", ")
    )))
}

/// R6.7 [T6]: `clone(CLONE_PARENT)` from a namespace init fails with
/// EINVAL; from another process it succeeds and the child's parent is the
/// caller's parent (R8.1).
fn init_clone_parent(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let flags = libc::CLONE_PARENT as u64 | libc::SIGCHLD as u64;
    // SAFETY: PID 1 is single-threaded.
    let from_init = match unsafe { clone_fork(flags) } {
        Ok(0) => os::exit_now(0),
        Ok(pid) => format!("success (pid {pid})"),
        Err(e) => errno_text(&Err::<(), _>(e)),
    };
    let seen = in_child(ctx, "S, cloning with CLONE_PARENT", |_| {
        let (r, w) = pipe()?;
        // SAFETY: S is single-threaded.
        match unsafe { clone_fork(flags)? } {
            0 => {
                let _ = say(w.as_fd(), &os::getppid().to_string());
                os::exit_now(0)
            }
            g => {
                drop(w);
                let ppid = Lines::new(r).line(ctx.by(), "S's CLONE_PARENT child to report")?;
                Ok(format!("{g} {ppid}"))
            }
        }
    })?;
    let (g, ppid) = seen.split_once(' ').unwrap_or(("0", "?"));
    if let Ok(g) = g.parse::<i32>() {
        // Our child now: reap it.
        let _ = Proc::adopt(g, ctx).and_then(|mut p| p.finish("the CLONE_PARENT child to exit"));
    }
    Ok(verdict(
        from_init == "EINVAL" && ppid == "1",
        format!("from the init: {from_init}; from its child S: success, the new child's parent is pid {ppid}"),
        "EINVAL from the init; success with parent 1 from S",
    ))
}

/// R6.8 [M3]: `kill(-1, SIGKILL)` inside a namespace kills every process of
/// it except its init and the caller. This is a signal to "all", allowed
/// here only because the caller is a child of the probe's own PID 1 in the
/// probe's fresh namespace: the kernel reaches only tasks with a pid > 1 in
/// that namespace (`kill_something_info()`), and nothing outside has one.
fn kill_all_spares_init(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    let mut b = spawn(ctx, || park())?;
    let mut c = spawn(ctx, || park())?;
    let (rep_r, rep_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let mut a = spawn(ctx, move || {
        let r = if os::getppid() == 1 && os::getpid() > 1 {
            match nix::sys::signal::kill(Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL) {
                Ok(()) => "0".to_string(),
                Err(e) => format!("{e:?}"),
            }
        } else {
            "refused: not a child of the probe's PID 1".to_string()
        };
        let _ = say(rep_w.as_fd(), &r);
        let mut x = [0u8; 1];
        let _ = nix::unistd::read(go_r.as_fd(), &mut x);
        0
    })?;
    let r = Lines::new(rep_r).line(ctx.by(), "A to call kill(-1, SIGKILL)")?;
    let sb = b.finish("B to be killed by A's kill(-1, SIGKILL)")?;
    let sc = c.finish("C to be killed by A's kill(-1, SIGKILL)")?;
    write_all(go_w.as_fd(), b"x")?;
    let sa = a.finish("A to exit")?;
    let killed = Status::Killed(libc::SIGKILL);
    Ok(verdict(
        r == "0" && sb == killed && sc == killed && sa == Status::Exited(0),
        format!("kill(-1, SIGKILL) returned {r}; B {sb}, C {sc}; the caller A {sa}; the init lives on"),
        "0; B and C killed; A exited with 0",
    ))
}

/// R9.1 (6.9+): a zombie's pidfd is readable (POLLIN) without POLLHUP; once
/// reaped it reports POLLHUP as well.
fn pidfd_hup_after_reap(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    if ctx.kernel < (6, 9) {
        return Ok(ProbeOutcome::Skipped(format!(
            "POLLHUP on a reaped process's pidfd arrived in Linux 6.9; this is {}.{}",
            ctx.kernel.0, ctx.kernel.1
        )));
    }
    let mut c = spawn(ctx, || 0)?;
    c.wait_exit("C to exit")?;
    let flags = |ev: i16| {
        let mut v = Vec::new();
        if ev & libc::POLLIN != 0 {
            v.push("POLLIN");
        }
        if ev & libc::POLLHUP != 0 {
            v.push("POLLHUP");
        }
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join("|")
        }
    };
    let zombie = flags(os::poll_one(c.pidfd.as_fd(), libc::POLLIN, 0)?);
    c.reap(0)?;
    let reaped = flags(os::poll_one(c.pidfd.as_fd(), libc::POLLIN, 0)?);
    Ok(verdict(
        zombie == "POLLIN" && reaped == "POLLIN|POLLHUP",
        format!("a zombie's pidfd polls {zombie}; once reaped {reaped}"),
        "POLLIN, then POLLIN|POLLHUP",
    ))
}

/// Rounds and children of the pidfd readiness probe.
const READINESS_ROUNDS: usize = 300;
const READINESS_LIVE: usize = 16;
const READINESS_ZOMBIES: usize = 8;
const READINESS_THREADS: usize = 4;

/// R9.2 [exp_pidfd]: a killed process's pidfd becomes readable only after
/// every child of every one of its threads shows its new parent. Each round
/// a victim V (single-threaded, or with its live children forked by 4
/// threads every other round) has 16 live and 8 zombie children; the probe's
/// PID 1 SIGKILLs V through its pidfd, blocks until the pidfd is readable,
/// then reads every child's `PPid` from /proc: each must be 1. PID 1 ignores
/// SIGCHLD, so V's zombies are reaped when they move to it; one still
/// visible is counted, but R9.4 does not promise otherwise.
fn pidfd_readiness(ctx: &Ctx) -> Result<ProbeOutcome, SysError> {
    os::set_sigchld_ignored(true)?;
    let (mut stale, mut missing, mut threaded) = (0, 0, 0);
    // Auto-reaped zombies still in /proc, by victim kind (1 or 4 threads),
    // and the states they were seen in.
    let mut visible = [0usize; 2];
    let mut states = String::new();
    let mut first_stale = None;
    for round in 0..READINESS_ROUNDS {
        let threads = if round % 2 == 1 { READINESS_THREADS } else { 1 };
        if threads > 1 {
            threaded += 1;
        }
        let (rel_r, rel_w) = pipe()?;
        let (rdy_r, rdy_w) = pipe()?;
        let rel_w_raw = rel_w.as_raw_fd();
        let victim = spawn(ctx, move || {
            // The children must see EOF once PID 1 closes its end: this
            // copy goes before any of them is forked.
            let _ = nix::unistd::close(rel_w_raw);
            match victim(ctx, threads, rel_r.as_raw_fd(), rdy_w.as_fd()) {
                Ok(()) => park(),
                Err(e) => {
                    eprintln!("reparent probe: victim: {e}");
                    1
                }
            }
        })?;
        let line = Lines::new(rdy_r).line(ctx.by(), "the victim to fork its children")?;
        let (live, zombies) = line.split_once(';').unwrap_or((&line, ""));
        let pids = |s: &str| s.split(' ').filter_map(|p| p.parse::<i32>().ok()).collect::<Vec<_>>();
        let (live, zombies) = (pids(live), pids(zombies));
        if live.len() != READINESS_LIVE || zombies.len() != READINESS_ZOMBIES {
            return Err(SysError::Protocol(format!("the victim reported {line:?}")));
        }
        victim.signal(libc::SIGKILL)?;
        victim.wait_exit("the victim's pidfd to become readable after SIGKILL")?;
        for &p in &live {
            match observe::stat(p) {
                Some(s) if s.ppid == 1 => {}
                Some(s) => {
                    stale += 1;
                    first_stale.get_or_insert(format!("round {round}: pid {p} still had parent {}", s.ppid));
                }
                None => missing += 1,
            }
        }
        for s in zombies.iter().filter_map(|&z| observe::stat(z)) {
            visible[usize::from(threads > 1)] += 1;
            if !states.contains(s.state) {
                states.push(s.state);
            }
        }
        // V was auto-reaped too; closing the release pipe ends its children.
        let _ = victim.leave();
        drop(rel_w);
    }
    let live_total = READINESS_ROUNDS * READINESS_LIVE;
    let zombie_total = READINESS_ROUNDS * READINESS_ZOMBIES;
    let figures = format!(
        "{READINESS_ROUNDS} rounds ({threaded} with a {READINESS_THREADS}-thread victim), {READINESS_LIVE} live + \
         {READINESS_ZOMBIES} zombie children each: {stale}/{live_total} live children stale at readiness, \
         {missing} gone; {}/{zombie_total} auto-reaped zombies still in /proc ({} after a 1-thread victim, {} after \
         a {READINESS_THREADS}-thread one{}; allowed, R9.4)",
        visible[0] + visible[1],
        visible[0],
        visible[1],
        if states.is_empty() { String::new() } else { format!(", state {states}") }
    );
    Ok(match first_stale {
        None if missing == 0 => ProbeOutcome::Pass(figures),
        None => ProbeOutcome::Fail(format!("{figures}; expected every live child to be there")),
        Some(first) => ProbeOutcome::Fail(format!("{figures} (first: {first}); expected 0 stale")),
    })
}

/// The victim of one readiness round: leaves zombie children, forks live
/// ones (blocked on `release`) from `threads` threads, reports their pids
/// on `ready`, and returns with its threads parked.
fn victim(ctx: &Ctx, threads: usize, release: RawFd, ready: BorrowedFd<'_>) -> Result<(), SysError> {
    // Its zombies must stay zombies: SIGCHLD back to the default.
    os::set_sigchld_ignored(false)?;
    let mut zombies = Vec::new();
    for _ in 0..READINESS_ZOMBIES {
        let z = spawn(ctx, || 0)?;
        z.wait_exit("a zombie child of the victim to exit")?;
        zombies.push(z.leave());
    }
    let per = READINESS_LIVE / threads;
    let mut live = Vec::new();
    if threads == 1 {
        for _ in 0..per {
            live.push(fork_blocker(None, release)?);
        }
    } else {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 1..threads {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let pids: Result<Vec<i32>, String> =
                    (0..per).map(|_| fork_blocker(None, release).map_err(|e| e.to_string())).collect();
                let _ = tx.send(pids);
                park()
            });
        }
        for _ in 0..per {
            live.push(fork_blocker(None, release)?);
        }
        for _ in 1..threads {
            let pids = rx
                .recv_timeout(ctx.deadline)
                .map_err(|_| SysError::Timeout("a victim thread to fork its children".into()))?
                .map_err(SysError::Protocol)?;
            live.extend(pids);
        }
    }
    let text = |v: &[i32]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ");
    say(ready, &format!("{};{}", text(&live), text(&zombies)))
}
