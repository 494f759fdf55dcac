//! Probes: one question each to the running kernel, for `reparent kernel`.
//!
//! Scenarios check trees — who ends up whose parent. Some rules of
//! kernel-rules.md are about what no tree shows: what a `prctl()` reads
//! back, the errno of a `clone()`, the wait status of an init that
//! `reboot()` ended, whether a signal reaches an init, when a pidfd becomes
//! readable. A probe asks one such question, as the C probes of
//! kernel-rules.md section 11 did on 6.18.44.
//!
//! A probe only observes: it reports what it saw as plain data (an
//! [`Observation`]: return values, errno names, wait statuses, counts,
//! pids) and knows nothing of what the answer should be. Which rule an
//! observation bears on, and whether it passes, is the kernel layer's
//! business (`kernel::probes::judge`).
//!
//! Each probe runs in a sandbox of its own, built as the scenario sandbox
//! is (see [`super::sandbox`]): the runner re-executes this binary as
//! `reparent __probe NAME DEADLINE_MS`, a single-threaded helper that calls
//! `setsid()`, unshares user + PID + mount namespaces (root falls back to
//! PID + mount where a user namespace is refused), maps itself to root
//! inside and forks PID 1 of the new namespace. PID 1 mounts a private
//! `/proc`, runs the probe — forking, and nesting PID namespaces, as the
//! probe needs — and writes its observation on a pipe.
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

#![forbid(unsafe_code)]

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::os::{self, Exit, Lines};
use super::{observe, SandboxOptions, SysError};
use crate::scenario::Signal;

/// The argument that makes the binary run a probe's helper:
/// `reparent __probe NAME DEADLINE_MS`.
pub const PROBE_ARG: &str = "__probe";

/// The argument a probe re-executes the binary with, to read a flag after
/// `execve()`: `reparent __probe-exec subreaper|pdeathsig FD`.
pub const PROBE_EXEC_ARG: &str = "__probe-exec";

/// How a process a probe waited for ended — or that it had not, or that
/// the wait failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// `WNOHANG` found it still running.
    Alive,
    Exited(i32),
    /// Killed by this signal.
    Killed(i32),
    /// The wait failed with this errno (e.g. `ECHILD`).
    Errno(String),
}

impl From<Exit> for Wait {
    fn from(e: Exit) -> Wait {
        match e {
            Exit::Exited(c) => Wait::Exited(c),
            Exit::Killed(s) => Wait::Killed(s),
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Alive => write!(f, "alive"),
            Wait::Exited(c) => write!(f, "exited with {c}"),
            Wait::Killed(s) => write!(f, "was killed by {}", Signal(*s).name()),
            Wait::Errno(e) => write!(f, "{e}"),
        }
    }
}

/// A syscall's result: what it returned, or its errno's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    Ok(i64),
    Err(String),
}

impl Ret {
    fn of(r: Result<impl Into<i64>, SysError>) -> Ret {
        match r {
            Ok(v) => Ret::Ok(v.into()),
            Err(e) => Ret::Err(os::error_name(&e)),
        }
    }

    /// `0` or `EINVAL`: the return value alone.
    pub fn short(&self) -> String {
        match self {
            Ret::Ok(v) => v.to_string(),
            Ret::Err(e) => e.clone(),
        }
    }
}

impl fmt::Display for Ret {
    /// `success (0)` or `EINVAL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Ok(v) => write!(f, "success ({v})"),
            Ret::Err(e) => write!(f, "{e}"),
        }
    }
}

/// A signal as a signalfd reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigInfo {
    pub signo: i32,
    pub pid: i32,
    pub code: i32,
    pub status: i32,
}

/// A pidfd's readiness: POLLIN, POLLHUP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polled {
    pub pollin: bool,
    pub pollhup: bool,
}

/// What a probe saw, one variant per probe (named in its doc), as plain
/// data: no judgement, no expected value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observation {
    /// `ppid-is-tgid`: thread `tid` of process `tgid` forked C; C's
    /// `getppid()` and its `/proc/<pid>/status` `PPid`.
    PpidIsTgid { tgid: i32, tid: i32, getppid: i32, proc_ppid: i32 },
    /// `pidfd-info-ppid`: `PIDFD_GET_INFO` on C's pidfd gave ppid `before`
    /// while its parent lived, `after` once the parent died and the
    /// subreaper adopted C.
    PidfdInfoPpid { parent: u32, before: u32, subreaper: u32, after: u32 },
    /// `pidfd-info-ppid` on a kernel without `PIDFD_GET_INFO`: the errno.
    PidfdInfoUnsupported { errno: String },
    /// `subreaper-readback`: `PR_SET_CHILD_SUBREAPER(42)` returned
    /// `set_ret`; `PR_GET_CHILD_SUBREAPER` read `read`.
    SubreaperReadback { set_ret: i32, read: i32 },
    /// `subreaper-not-inherited`: what a subreaper's fork child reads.
    SubreaperNotInherited { child_reads: i32 },
    /// `subreaper-kept-across-exec`: what a subreaper reads after its own
    /// `execve()`.
    SubreaperAfterExec { reads: i32 },
    /// `init-may-be-subreaper`: the namespace's init (pid `pid`) set the
    /// flag (`set`) and read it back.
    InitMayBeSubreaper { pid: i32, set: Ret, read: i32 },
    /// `exit-signal-reset`: a clone child with exit signal SIGUSR1, waited
    /// for before its parent died (plain `waitpid`, `__WALL` `waitpid`) and
    /// after a subreaper adopted it (plain `waitpid`, then the reap of a
    /// plain `waitid` once it exited).
    ExitSignalReset { before_plain: Wait, before_wall: Wait, after_plain: Wait, reaped: Wait },
    /// `sigign-autoreap` / `nocldwait-autoreap`: the signals the subreaper
    /// got when zombie `zombie` (exit code 7) was moved to it, then what
    /// `waitpid(-1, WNOHANG|__WALL)` gave.
    Autoreap { zombie: i32, signals: Vec<SigInfo>, then_wait: Wait },
    /// `pdeathsig-range`: `PR_SET_PDEATHSIG(65)`, then what 64 and 0 read
    /// back as.
    PdeathsigRange { set65: Ret, read64: i32, read0: i32 },
    /// `pdeathsig-cleared-on-fork`: a process with pdeath signal
    /// `parent_sig` forked a child, which read `child_reads`.
    PdeathsigAfterFork { parent_sig: i32, child_reads: i32 },
    /// `pdeathsig-kept-across-exec`: set `set`, then `execve()`, then read.
    PdeathsigAfterExec { set: i32, reads: i32 },
    /// `ns-empty-at-init-readiness`: how the killed init ended; of the
    /// `members` processes below it, how many were `left` when its pidfd
    /// became readable.
    NsEmptyAtReadiness { init: Wait, members: usize, left: usize },
    /// `fork-into-dead-ns`: `fork()` after `setns()` into a namespace whose
    /// init is a zombie, then reaped (the child's pid on success).
    ForkIntoDeadNs { zombie: Ret, reaped: Ret },
    /// `reboot-restart` / `reboot-power-off`: why `reboot()` returned, if
    /// it did; otherwise how the nested init ended.
    Reboot { failed: Option<String>, init: Option<Wait> },
    /// `init-shield-inside`: `kill(1, SIGTERM|SIGKILL|SIGUSR1)` from a child
    /// of the init, and the signals the init's handler acknowledged.
    InitShieldInside { kill_term: Ret, kill_kill: Ret, kill_usr1: Ret, handled: Vec<i32> },
    /// `init-shield-outside`: after SIGTERM, SIGINT, SIGHUP and a handled
    /// SIGRTMIN from the parent namespace: how the init ended if it died
    /// (`died`); else how it ended after SIGKILL.
    InitShieldOutside { died: Option<Wait>, after_sigkill: Option<Wait> },
    /// `mt-init-leader-blocks`: signals `blocked` in the 2-thread init's
    /// leader only, sent from outside; how the init ended, if it did (`None`:
    /// it lived on, and handled a SIGRTMIN sent after them).
    MtInitLeaderBlocks { blocked: Vec<i32>, died: Option<Wait> },
    /// `init-clone-parent`: `clone(CLONE_PARENT)` by the init (`from_init`,
    /// the child's pid on success); by its child S, the new child's parent.
    InitCloneParent { from_init: Ret, from_child_ppid: i32 },
    /// `kill-all-spares-init`: A's `kill(-1, SIGKILL)`, and how B, C and A
    /// ended.
    KillAllSparesInit { returned: Ret, b: Wait, c: Wait, a: Wait },
    /// `pidfd-hup-after-reap`: a zombie's pidfd, then once reaped.
    PidfdHupAfterReap { zombie: Polled, reaped: Polled },
    /// `pidfd-readiness`: `rounds` rounds (`threaded` with a
    /// `threads`-thread victim), `live` + `zombies` children each; live
    /// children whose parent was not yet PID 1 at readiness (`stale`, the
    /// first described), gone (`missing`); auto-reaped zombies still in
    /// /proc after a 1-thread and a many-thread victim, and their states.
    PidfdReadiness {
        rounds: usize,
        threaded: usize,
        threads: usize,
        live: usize,
        zombies: usize,
        stale: usize,
        missing: usize,
        visible_single: usize,
        visible_threaded: usize,
        states: String,
        first_stale: Option<String>,
    },
    /// The probe could not finish (a deadline, a failed call): why.
    Failed(String),
    /// No sandbox could be created, so nothing can be probed: why, and how
    /// to fix it.
    Unavailable(String),
}

/// A probe's report, as its helper prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeReport {
    pub observation: Observation,
    /// Whether the sandbox had a user namespace (`None` if none was made).
    pub userns: Option<bool>,
}

/// What every probe may use: where the binary is, how long a wait may
/// take, and which kernel this is (to pick how to look, never what to
/// expect).
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

type Body = fn(&Ctx) -> Result<Observation, SysError>;

/// Every probe this layer can run, by name (the kernel layer's catalogue
/// says which rule each bears on).
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
    ("mt-init-leader-blocks", mt_init_leader_blocks),
    ("init-clone-parent", init_clone_parent),
    ("kill-all-spares-init", kill_all_spares_init),
    ("pidfd-hup-after-reap", pidfd_hup_after_reap),
    ("pidfd-readiness", pidfd_readiness),
];

/// The names of every probe this layer can run.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROBES.iter().map(|(n, _)| *n)
}

/// Deadlines a probe of a few waits may take in all.
const BASE_DEADLINES: u32 = 10;

/// How long probe `name` may take in all, with `deadline` per wait. Every
/// wait inside a probe has its own deadline; this bounds a probe that hangs
/// between them, and grows with the probe's work: a probe that repeats its
/// work in rounds (`pidfd-readiness`) gets a deadline per round on top.
/// One budget for everything made R9.2's 300 rounds time out under
/// emulation, where a round costs 15-20 times what it costs natively.
pub fn budget(name: &str, deadline: Duration) -> Duration {
    let rounds = match name {
        "pidfd-readiness" => readiness_rounds().unwrap_or(READINESS_ROUNDS) as u32,
        _ => 0,
    };
    deadline * (BASE_DEADLINES + rounds)
}

// ---------------------------------------------------------------------------
// The runner's side.

/// Runs probe `name` in a fresh sandbox and returns what it saw. Never
/// panics; whatever goes wrong is in the observation.
pub fn observe(opts: &SandboxOptions, name: &str) -> ProbeReport {
    run_helper(opts, name)
        .unwrap_or_else(|e| ProbeReport { observation: Observation::Failed(e.to_string()), userns: None })
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
    // Without a pidfd there is no way to signal it, but its own deadlines
    // end it.
    let (mut child, pidfd) = os::spawn_linked(&mut cmd, &format!("{} {PROBE_ARG} {name}", opts.exe.display()))?;
    let mut out = child.stdout.take().ok_or_else(|| SysError::Protocol("no stdout".into()))?;
    // The helper bounds every wait of its probe, and the probe as a whole
    // (`budget`); this only catches a helper that hangs outside them.
    let budget = budget(name, opts.deadline) + opts.deadline * 2;
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
    let fail = |m: String| ProbeReport { observation: Observation::Failed(m), userns: None };
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
        Err(e) => return ProbeReport { observation: Observation::Unavailable(e.to_string()), userns: None },
    };
    let ctx = Ctx { exe, deadline: Duration::from_millis(ms), kernel: os::kernel_version() };
    let observation = run_pid1(&ctx, name, body).unwrap_or_else(|e| Observation::Failed(e.to_string()));
    ProbeReport { observation, userns: Some(userns) }
}

/// Forks PID 1, lets it run the probe, and waits until its namespace is
/// gone. PID 1 reports on a pipe; its exit status must be 0, or something
/// killed it (which for an init is itself a finding).
fn run_pid1(ctx: &Ctx, name: &str, body: Body) -> Result<Observation, SysError> {
    let (r, w) = os::pipe()?;
    // The helper is single-threaded: it was just exec'd and has started no
    // thread.
    let r_raw = r.as_raw_fd();
    let pid = os::fork_run_linked(move || {
        os::close_inherited(r_raw);
        pid1(ctx, body, w)
    })?;
    let mut init = Proc::adopt(pid, ctx)?;
    // Every wait inside a probe has its own deadline; this one catches a
    // probe that hangs between them.
    let budget = budget(name, ctx.deadline);
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
        return Ok(Observation::Failed(format!(
            "timed out: probe `{name}` did not finish within {} ms; its namespace was killed",
            budget.as_millis()
        )));
    }
    let seen = text.ok().and_then(|t| serde_json::from_str::<Observation>(&t).ok());
    Ok(match (seen, status) {
        (Some(o), Wait::Exited(0)) => o,
        (Some(o), s) => Observation::Failed(format!("the probe's PID 1 {s} after it reported {o:?}")),
        (None, s) => Observation::Failed(format!("the probe's PID 1 {s} without reporting (see stderr)")),
    })
}

/// PID 1 of the probe's namespace. Never returns.
fn pid1(ctx: &Ctx, body: Body, report: OwnedFd) -> ! {
    // Its preparation checks that it is pid 1: the guarantee behind the
    // `kill(-1)` and `kill(1)` probes.
    let run = || -> Result<Observation, SysError> {
        os::prepare_pid1(false)?;
        body(ctx)
    };
    let seen = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Observation::Failed(e.to_string()),
        Err(_) => Observation::Failed("the probe panicked (see stderr)".into()),
    };
    let text = serde_json::to_string(&seen).unwrap_or_else(|_| "\"unreportable\"".into());
    let _ = os::say(report.as_fd(), &text);
    os::exit_now(0)
}

// ---------------------------------------------------------------------------
// The exec'd side: `reparent __probe-exec WHAT FD`.

/// Entry point of `reparent __probe-exec`: a probe's process after its own
/// `execve()` reads back the flag the probe asked for and reports it on
/// descriptor FD (inherited across the exec). Never returns.
pub fn exec_main(args: &[String]) -> ! {
    let fd = args.get(3).and_then(|s| s.parse::<RawFd>().ok()).and_then(os::take_inherited_fd);
    let Some(fd) = fd else {
        eprintln!("reparent {PROBE_EXEC_ARG}: started by a probe of `reparent kernel`, not by hand");
        os::exit_now(2)
    };
    let value = match args.get(2).map(String::as_str) {
        Some("subreaper") => os::child_subreaper_value(),
        Some("pdeathsig") => os::get_pdeathsig(),
        other => Err(SysError::Protocol(format!("{PROBE_EXEC_ARG}: unknown flag {other:?}"))),
    };
    let msg: Result<String, String> = value.map(|v| v.to_string()).map_err(|e| e.to_string());
    let _ = os::say(fd.as_fd(), &serde_json::to_string(&msg).unwrap_or_default());
    os::exit_now(0)
}

// ---------------------------------------------------------------------------
// The probes' processes.

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
            call: format!("pidfd_send_signal(pid {}, {})", self.pid, Signal(sig).name()),
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
    fn reap(&mut self, flags: i32) -> Result<Wait, SysError> {
        let s = os::waitid_pidfd(self.pidfd.as_fd(), flags);
        if s.is_ok() {
            self.done = true;
        }
        s.map(Wait::from)
    }

    fn finish(&mut self, what: &str) -> Result<Wait, SysError> {
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
        let _ = os::waitid_pidfd(self.pidfd.as_fd(), libc::__WALL);
    }
}

/// Forks a child that runs `f` and exits with its result. For
/// single-threaded callers only: every probe process forks before it starts
/// a thread, and uses `os::fork_blocker` after.
fn spawn(ctx: &Ctx, f: impl FnOnce() -> i32) -> Result<Proc, SysError> {
    let pid = os::fork_run(f)?;
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
    let (r, w) = os::pipe()?;
    let mut kid = spawn(ctx, move || {
        let msg: Result<String, String> = f(w.as_fd()).map_err(|e| e.to_string());
        let _ = os::say(w.as_fd(), &serde_json::to_string(&msg).unwrap_or_default());
        0
    })?;
    let line = Lines::new(r).line(ctx.by(), &format!("{what} to report"))?;
    let status = kid.finish(&format!("{what} to exit"))?;
    let msg: Result<String, String> =
        serde_json::from_str(&line).map_err(|e| SysError::Protocol(format!("{what} reported {line:?}: {e}")))?;
    match (msg, status) {
        (Ok(text), Wait::Exited(0)) => Ok(text),
        (Ok(_), s) => Err(SysError::Node { name: what.into(), message: format!("{s}") }),
        (Err(e), _) => Err(SysError::Node { name: what.into(), message: e }),
    }
}

/// [`in_child`] for a child that reports a value as JSON.
fn in_child_json<T: Serialize + for<'de> Deserialize<'de>>(
    ctx: &Ctx,
    what: &str,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<T, SysError>,
) -> Result<T, SysError> {
    let text = in_child(ctx, what, |fd| {
        f(fd).and_then(|v| serde_json::to_string(&v).map_err(|e| SysError::Protocol(e.to_string())))
    })?;
    serde_json::from_str(&text).map_err(|e| SysError::Protocol(format!("{what} reported {text:?}: {e}")))
}

/// Forks `body` as PID 1 of a new PID namespace nested in the caller's, and
/// returns it with a descriptor of that namespace. The caller's next
/// children are forked where they were before: it `setns()`es back to its
/// own namespace, as it may (`pidns_install()` accepts the active one).
fn spawn_ns_init(ctx: &Ctx, body: impl FnOnce() -> i32) -> Result<(Proc, OwnedFd), SysError> {
    let own = os::open_own_pidns()?;
    os::unshare_pidns()?;
    let init = spawn(ctx, body);
    let ns = os::open_ns("pid_for_children");
    os::setns_pid(own.as_fd(), "back to the caller's own PID namespace")?;
    Ok((init?, ns?))
}

fn wait_of(r: Result<Option<Exit>, i32>) -> Wait {
    match r {
        Ok(None) => Wait::Alive,
        Ok(Some(e)) => e.into(),
        Err(e) => Wait::Errno(os::errno_name(e)),
    }
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, SysError> {
    text.trim().parse().map_err(|_| SysError::Protocol(format!("{what} reported {text:?}")))
}

// ---------------------------------------------------------------------------
// The probes. Each runs as (or below) PID 1 of its own namespace.

/// R1.10 [N2]: a child forked by a non-leader thread: its `getppid()` and
/// `/proc/<pid>/status` `PPid`, against the forker's tgid and tid.
fn ppid_is_tgid(ctx: &Ctx) -> Result<Observation, SysError> {
    let (tgid, tid, getppid, proc_ppid) = in_child_json(ctx, "P, whose second thread forks C", |_| {
        let me = os::getpid();
        let (rep_r, rep_w) = os::pipe()?;
        let (rel_r, rel_w) = os::pipe()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let tid = os::gettid();
            let _ = tx.send((tid, os::fork_blocker(Some(rep_w.as_raw_fd()), rel_r.as_raw_fd())));
            drop(rep_w);
            // Stay alive, a live non-leader parent, until C is released.
            os::wait_byte(rel_r.as_fd());
        });
        let (tid, c) = rx.recv_timeout(ctx.deadline).map_err(|_| SysError::Timeout("P's thread to fork C".into()))?;
        let c = c?;
        let mut reports = Lines::new(rep_r);
        let getppid = reports.bytes(4, ctx.by(), "C to report its getppid()")?;
        let getppid = i32::from_ne_bytes([getppid[0], getppid[1], getppid[2], getppid[3]]);
        let proc_ppid = observe::status_ppid(c).unwrap_or(-1);
        let mut child = Proc::adopt(c, ctx)?;
        // Two bytes: one for C, one for the thread.
        os::write_all(rel_w.as_fd(), b"xx")?;
        child.finish("C to exit once released")?;
        let _ = thread.join();
        Ok((me, tid, getppid, proc_ppid))
    })?;
    Ok(Observation::PpidIsTgid { tgid, tid, getppid, proc_ppid })
}

/// R1.10 (6.13+): `PIDFD_GET_INFO`'s ppid of C while its parent M lives,
/// and after M dies and the subreaper S adopts C.
fn pidfd_info_ppid(ctx: &Ctx) -> Result<Observation, SysError> {
    in_child_json(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        let (rep_r, rep_w) = os::pipe()?;
        let mut m = spawn(ctx, move || {
            let Ok(c) = spawn(ctx, || os::park()) else { return 1 };
            let _ = os::say(rep_w.as_fd(), &c.leave().to_string());
            os::park()
        })?;
        let c: i32 = parse(&Lines::new(rep_r).line(ctx.by(), "M to fork C")?, "M")?;
        let c = Proc::adopt(c, ctx)?;
        let before = match os::pidfd_ppid(c.pidfd.as_fd()) {
            Err(e) if matches!(os::errno_of(&e), Some(libc::ENOTTY | libc::EINVAL)) => {
                return Ok(Observation::PidfdInfoUnsupported { errno: os::error_name(&e) });
            }
            r => r?,
        };
        m.signal(libc::SIGKILL)?;
        m.finish("M to die after SIGKILL")?;
        let after = os::pidfd_ppid(c.pidfd.as_fd())?;
        Ok(Observation::PidfdInfoPpid { parent: m.pid as u32, before, subreaper: os::getpid() as u32, after })
    })
}

/// R2.1/R2.2: what `PR_SET_CHILD_SUBREAPER(42)` returns and what the flag
/// reads back as.
fn subreaper_readback(ctx: &Ctx) -> Result<Observation, SysError> {
    in_child_json(ctx, "S, calling PR_SET_CHILD_SUBREAPER(42)", |_| {
        let set_ret = os::prctl_set_subreaper(42)?;
        Ok(Observation::SubreaperReadback { set_ret, read: os::child_subreaper_value()? })
    })
}

/// R2.4 [T3]: what a fork child of a subreaper reads.
fn subreaper_not_inherited(ctx: &Ctx) -> Result<Observation, SysError> {
    let child_reads = in_child_json(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        in_child_json(ctx, "S's child C", |_| os::child_subreaper_value())
    })?;
    Ok(Observation::SubreaperNotInherited { child_reads })
}

/// R2.5 [T3]: what a subreaper reads after its own `execve()`.
fn subreaper_kept_across_exec(ctx: &Ctx) -> Result<Observation, SysError> {
    let seen = in_child(ctx, "subreaper S, re-executed", |report| {
        if !os::set_child_subreaper(true)? {
            return Err(SysError::Protocol("PR_SET_CHILD_SUBREAPER(1) did not read back as 1".into()));
        }
        exec_self(ctx, "subreaper", report)
    })?;
    Ok(Observation::SubreaperAfterExec { reads: parse(&seen, "the re-executed subreaper")? })
}

/// R2.8 [T6]: the namespace's init sets the flag.
fn init_may_be_subreaper(_ctx: &Ctx) -> Result<Observation, SysError> {
    let set = Ret::of(os::prctl_set_subreaper(1));
    let read = os::child_subreaper_value()?;
    Ok(Observation::InitMayBeSubreaper { pid: os::getpid(), set, read })
}

/// Re-executes this binary as `__probe-exec WHAT FD`, which reports the
/// flag on `report`. Returns only if the exec failed.
fn exec_self(ctx: &Ctx, what: &str, report: BorrowedFd<'_>) -> Result<String, SysError> {
    os::clear_cloexec(report)?;
    let err = Command::new(&ctx.exe).arg(PROBE_EXEC_ARG).arg(what).arg(report.as_raw_fd().to_string()).exec();
    Err(SysError::Syscall { call: format!("execve({})", ctx.exe.display()), source: err, hint: None })
}

/// R3.1 [Z1]: a clone child C of M with `exit_signal = SIGUSR1`, waited for
/// by M (plain and `__WALL`), then by the subreaper S that adopts it when M
/// exits (plain `waitpid`, and a plain `waitid` reap once it exited).
fn exit_signal_reset(ctx: &Ctx) -> Result<Observation, SysError> {
    in_child_json(ctx, "subreaper S", |_| {
        os::set_child_subreaper(true)?;
        let (rel_r, rel_w) = os::pipe()?;
        let (rep_r, rep_w) = os::pipe()?;
        let mut m = spawn(ctx, move || {
            // M is single-threaded.
            let c = os::clone_run(0, libc::SIGUSR1, "SIGUSR1", false, || {
                os::wait_byte(rel_r.as_fd());
                0
            });
            let report = match c {
                Ok(c) => {
                    let plain = wait_of(os::waitpid_nohang(Some(c), false));
                    let wall = wait_of(os::waitpid_nohang(Some(c), true));
                    Ok((c, plain, wall))
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = os::say(rep_w.as_fd(), &serde_json::to_string(&report).unwrap_or_default());
            i32::from(report.is_err())
        })?;
        let line = Lines::new(rep_r).line(ctx.by(), "M to clone C with exit_signal SIGUSR1")?;
        let report: Result<(i32, Wait, Wait), String> =
            serde_json::from_str(&line).map_err(|e| SysError::Protocol(format!("M reported {line:?}: {e}")))?;
        let (c, before_plain, before_wall) = report.map_err(|e| SysError::Node { name: "M".into(), message: e })?;
        m.finish("M to exit")?;
        let mut child = Proc::adopt(c, ctx)?;
        let after_plain = wait_of(os::waitpid_nohang(Some(c), false));
        os::write_all(rel_w.as_fd(), b"x")?;
        child.wait_exit("C to exit once released")?;
        // A plain wait (no __WALL) reaps only a SIGCHLD child.
        let reaped = child.reap(0).unwrap_or_else(|e| Wait::Errno(os::error_name(&e)));
        Ok(Observation::ExitSignalReset { before_plain, before_wall, after_plain, reaped })
    })
}

/// R3.3 [Z3, Z3b]: a subreaper R whose SIGCHLD is `SIG_IGN` (or has
/// `SA_NOCLDWAIT`) adopts a zombie Z (exit code 7): the signals R gets,
/// then what is left for R to wait for.
fn autoreap(ctx: &Ctx, nocldwait: bool) -> Result<Observation, SysError> {
    in_child_json(ctx, "subreaper R", |_| {
        os::set_child_subreaper(true)?;
        let (rep_r, rep_w) = os::pipe()?;
        let (go_r, go_w) = os::pipe()?;
        // M keeps the default SIGCHLD it inherits now; R changes its own
        // afterwards.
        let m = spawn(ctx, move || {
            let Ok(z) = spawn(ctx, || 7) else { return 1 };
            if z.wait_exit("Z to exit").is_err() {
                return 1;
            }
            let _ = os::say(rep_w.as_fd(), &z.leave().to_string());
            os::wait_byte(go_r.as_fd());
            0
        })?;
        let zombie: i32 = parse(&Lines::new(rep_r).line(ctx.by(), "M to leave a zombie Z")?, "M")?;
        if nocldwait {
            os::set_sigchld_nocldwait()?;
        } else {
            os::set_sigchld_ignored(true)?;
        }
        let sigfd = os::sigchld_fd()?;
        os::write_all(go_w.as_fd(), b"x")?;
        m.wait_exit("M to exit")?;
        let _ = m.leave(); // auto-reaped, like Z
        let signals = os::read_signalfd(sigfd.as_fd())
            .into_iter()
            .map(|s| SigInfo { signo: s.signo, pid: s.pid, code: s.code, status: s.status })
            .collect();
        let then_wait = wait_of(os::waitpid_nohang(None, true));
        Ok(Observation::Autoreap { zombie, signals, then_wait })
    })
}

/// R4.1: `PR_SET_PDEATHSIG` with 65, 64 and 0.
fn pdeathsig_range(ctx: &Ctx) -> Result<Observation, SysError> {
    in_child_json(ctx, "X, setting pdeath signals", |_| {
        let set65 = Ret::of(os::prctl(libc::PR_SET_PDEATHSIG, 65, "PR_SET_PDEATHSIG, 65"));
        os::set_pdeathsig(64)?;
        let read64 = os::get_pdeathsig()?;
        os::set_pdeathsig(0)?;
        let read0 = os::get_pdeathsig()?;
        Ok(Observation::PdeathsigRange { set65, read64, read0 })
    })
}

/// R4.7 [P3]: what a fork child of a process with a pdeath signal reads.
fn pdeathsig_cleared_on_fork(ctx: &Ctx) -> Result<Observation, SysError> {
    let child_reads = in_child_json(ctx, "X, with pdeathsig SIGUSR2", |_| {
        os::set_pdeathsig(libc::SIGUSR2)?;
        in_child_json(ctx, "X's child", |_| os::get_pdeathsig())
    })?;
    Ok(Observation::PdeathsigAfterFork { parent_sig: libc::SIGUSR2, child_reads })
}

/// R4.7 [P4]: `pdeath_signal` across a plain `execve()`.
fn pdeathsig_kept_across_exec(ctx: &Ctx) -> Result<Observation, SysError> {
    let seen = in_child(ctx, "X, with pdeathsig SIGUSR2, re-executed", |report| {
        os::set_pdeathsig(libc::SIGUSR2)?;
        exec_self(ctx, "pdeathsig", report)
    })?;
    Ok(Observation::PdeathsigAfterExec { set: libc::SIGUSR2, reads: parse(&seen, "the re-executed X")? })
}

/// R6.3 [N1]: a nested init with four processes below it — one that
/// ignores SIGTERM, a stopped one, one with a grandchild, and that
/// grandchild — is killed; when its pidfd is readable, how many are left.
fn ns_empty_at_init_readiness(ctx: &Ctx) -> Result<Observation, SysError> {
    let (rep_r, rep_w) = os::pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let run = || -> Result<(), SysError> {
            let deaf = spawn(ctx, || match os::ignore_signal(libc::SIGTERM) {
                Ok(()) => os::park(),
                Err(_) => 1,
            })?;
            let stopped = spawn(ctx, || os::park())?;
            stopped.signal(libc::SIGSTOP)?;
            // Blocks until the stop is complete: the kernel's event for it.
            os::wait_stopped(stopped.pidfd.as_fd())?;
            let (gr, gw) = os::pipe()?;
            let parent = spawn(ctx, move || {
                let Ok(g) = spawn(ctx, || os::park()) else { return 1 };
                let _ = g.leave();
                let _ = os::say(gw.as_fd(), "forked");
                os::park()
            })?;
            Lines::new(gr).line(ctx.by(), "the grandchild to be forked")?;
            os::say(rep_w.as_fd(), "ready")?;
            for p in [deaf, stopped, parent] {
                let _ = p.leave();
            }
            os::park()
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
        // A reaped process's pidfd hangs up since 6.9; before, /proc says.
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
    Ok(Observation::NsEmptyAtReadiness { init: status, members: below.len() - 1, left })
}

/// R8.5, R6.3 [N4]: a fork into a namespace whose init has died — while
/// the init is still a zombie, and after it is reaped (the namespace kept
/// alive by a descriptor).
fn fork_into_dead_ns(ctx: &Ctx) -> Result<Observation, SysError> {
    let (mut init, ns) = spawn_ns_init(ctx, || os::park())?;
    init.signal(libc::SIGKILL)?;
    init.wait_exit("the nested init to die after SIGKILL")?;
    let zombie = fork_into(ctx, ns.as_fd())?;
    init.reap(0)?;
    let reaped = fork_into(ctx, ns.as_fd())?;
    Ok(Observation::ForkIntoDeadNs { zombie, reaped })
}

/// `setns(ns)`, `fork()`, `setns()` back; the fork's errno, or the pid it
/// made.
fn fork_into(ctx: &Ctx, ns: BorrowedFd<'_>) -> Result<Ret, SysError> {
    let own = os::open_own_pidns()?;
    os::setns_pid(ns, "the dead namespace")?;
    let r = spawn(ctx, || 0);
    os::setns_pid(own.as_fd(), "back to the caller's own PID namespace")?;
    Ok(match r {
        Ok(mut p) => {
            let _ = p.finish("the unexpected child to exit");
            Ret::Ok(p.pid.into())
        }
        Err(e) => Ret::Err(os::error_name(&e)),
    })
}

#[derive(Clone, Copy)]
enum Reboot {
    Restart,
    PowerOff,
}

/// R6.5 [N8]: `reboot()` inside a nested namespace, and how its init ends.
/// `RESTART` is called by a process of the namespace that is not its init
/// (the init is killed, the caller exits), `POWER_OFF` by the init itself.
fn reboot(ctx: &Ctx, how: Reboot) -> Result<Observation, SysError> {
    let (cmd, name) = match how {
        Reboot::Restart => (libc::LINUX_REBOOT_CMD_RESTART, "RESTART"),
        Reboot::PowerOff => (libc::LINUX_REBOOT_CMD_POWER_OFF, "POWER_OFF"),
    };
    let (why_r, why_w) = os::pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let call = || {
            let e = os::reboot_in_nested_ns(cmd, name);
            let _ = os::say(why_w.as_fd(), &e.to_string());
            1
        };
        match how {
            Reboot::PowerOff => call(),
            Reboot::Restart => {
                let Ok(k) = spawn(ctx, call) else { return 1 };
                let _ = k.leave();
                os::park()
            }
        }
    })?;
    // Whoever called reboot() says why if it returned; the pipe reads EOF
    // once the namespace is gone if it did not.
    if let Ok(why) = Lines::new(why_r).line(ctx.by(), &format!("reboot({name}) to end the nested init")) {
        return Ok(Observation::Reboot { failed: Some(why), init: None });
    }
    let status = init.finish(&format!("the nested init to end after reboot({name})"))?;
    Ok(Observation::Reboot { failed: None, init: Some(status) })
}

/// R6.6 a/c [N5]: from inside its namespace, `kill(1, SIGTERM)`,
/// `kill(1, SIGKILL)` and `kill(1, SIGUSR1)` to a `SIG_DFL` init (the
/// probe's PID 1) that handles SIGUSR1 only.
fn init_shield_inside(ctx: &Ctx) -> Result<Observation, SysError> {
    let (ack_r, ack_w) = os::pipe()?;
    os::ack_signal(libc::SIGUSR1, ack_w.as_raw_fd())?;
    let (kill_term, kill_kill, kill_usr1) = in_child_json(ctx, "A, signalling PID 1 from inside", |_| {
        // The rule under test: a signal by pid, to our own PID 1.
        if os::getppid() != 1 {
            return Err(SysError::Protocol("A's parent is not the probe's PID 1".into()));
        }
        let kill = |sig: i32| match os::kill(1, sig) {
            Ok(()) => Ret::Ok(0),
            Err(e) => Ret::Err(os::errno_name(e)),
        };
        Ok((kill(libc::SIGTERM), kill(libc::SIGKILL), kill(libc::SIGUSR1)))
    })?;
    // The handler's byte: SIGUSR1 was delivered. Reading it returns to user
    // space once more, after every signal sent before was acted on; that
    // this code runs on (and PID 1 exits 0, which the helper checks) is
    // the init's survival.
    let got = Lines::new(ack_r).bytes(1, ctx.by(), "PID 1's SIGUSR1 handler to run")?;
    drop(ack_w);
    let handled = got.into_iter().map(i32::from).collect();
    Ok(Observation::InitShieldInside { kill_term, kill_kill, kill_usr1, handled })
}

/// R6.6 b/c [N5]: from the parent namespace (through a pidfd), SIGTERM,
/// SIGINT, SIGHUP and a handled SIGRTMIN to a `SIG_DFL` namespace init;
/// then SIGKILL.
fn init_shield_outside(ctx: &Ctx) -> Result<Observation, SysError> {
    let rt = os::sigrtmin();
    let (ack_r, ack_w) = os::pipe()?;
    let (rdy_r, rdy_w) = os::pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        if os::ack_signal(rt, ack_w.as_raw_fd()).is_err() {
            return 1;
        }
        let _ = os::say(rdy_w.as_fd(), "ready");
        os::park()
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
        return Ok(Observation::InitShieldOutside { died: Some(status), after_sigkill: None });
    }
    init.signal(libc::SIGKILL)?;
    let status = init.finish("the nested init to die after SIGKILL")?;
    Ok(Observation::InitShieldOutside { died: None, after_sigkill: Some(status) })
}

/// R6.6 g [N5c]: a two-thread namespace init whose leader blocks SIGTERM,
/// SIGINT and SIGUSR1 (its other thread does not) is sent them from the
/// parent namespace, then a handled SIGRTMIN: whether it died. Builds
/// differ (kernel-rules.md R6.6g): this only reports what it saw.
fn mt_init_leader_blocks(ctx: &Ctx) -> Result<Observation, SysError> {
    let rt = os::sigrtmin();
    let sigs = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];
    let (ack_r, ack_w) = os::pipe()?;
    let (rdy_r, rdy_w) = os::pipe()?;
    let (mut init, _ns) = spawn_ns_init(ctx, move || {
        let mut blocked = sigs.to_vec();
        blocked.push(rt);
        if os::ack_signal(rt, ack_w.as_raw_fd()).and_then(|_| os::block_signals(&blocked)).is_err() {
            return 1;
        }
        // The new thread starts with the leader's mask and unblocks.
        let _sibling = std::thread::spawn(move || {
            if os::unblock_signals(&blocked).is_ok() {
                let _ = os::say(rdy_w.as_fd(), "ready");
            }
            os::park()
        });
        os::park()
    })?;
    Lines::new(rdy_r).line(ctx.by(), "the nested init's second thread to start")?;
    for sig in sigs {
        init.signal(sig)?;
    }
    init.signal(rt)?;
    let acked = Lines::new(ack_r).bytes(1, ctx.by(), "the nested init's SIGRTMIN handler to run");
    if acked.is_ok() && !init.exited()? {
        return Ok(Observation::MtInitLeaderBlocks { blocked: sigs.to_vec(), died: None });
    }
    init.wait_exit("the nested init to finish dying")?;
    let status = init.reap(0)?;
    Ok(Observation::MtInitLeaderBlocks { blocked: sigs.to_vec(), died: Some(status) })
}

/// R6.7 [T6]: `clone(CLONE_PARENT)` from a namespace init, and from another
/// process S, whose new child's parent is then S's parent (R8.1).
fn init_clone_parent(ctx: &Ctx) -> Result<Observation, SysError> {
    // PID 1 is single-threaded.
    let from_init = Ret::of(os::clone_run(libc::CLONE_PARENT, libc::SIGCHLD, "CLONE_PARENT|SIGCHLD", false, || 0));
    let (g, from_child_ppid) = in_child_json(ctx, "S, cloning with CLONE_PARENT", |_| {
        let (r, w) = os::pipe()?;
        // S is single-threaded.
        let g = os::clone_run(libc::CLONE_PARENT, libc::SIGCHLD, "CLONE_PARENT|SIGCHLD", false, move || {
            let _ = os::say(w.as_fd(), &os::getppid().to_string());
            0
        })?;
        let ppid: i32 = parse(&Lines::new(r).line(ctx.by(), "S's CLONE_PARENT child to report")?, "the child")?;
        Ok((g, ppid))
    })?;
    // Our child now: reap it.
    let _ = Proc::adopt(g, ctx).and_then(|mut p| p.finish("the CLONE_PARENT child to exit"));
    Ok(Observation::InitCloneParent { from_init, from_child_ppid })
}

/// R6.8 [M3]: `kill(-1, SIGKILL)` inside a namespace, by A; how B, C and A
/// end. This is a signal to "all", allowed here only because the caller is
/// a child of the probe's own PID 1 in the probe's fresh namespace: the
/// kernel reaches only tasks with a pid > 1 in that namespace
/// (`kill_something_info()`), and nothing outside has one.
fn kill_all_spares_init(ctx: &Ctx) -> Result<Observation, SysError> {
    let mut b = spawn(ctx, || os::park())?;
    let mut c = spawn(ctx, || os::park())?;
    let (rep_r, rep_w) = os::pipe()?;
    let (go_r, go_w) = os::pipe()?;
    let mut a = spawn(ctx, move || {
        let r = if os::getppid() == 1 && os::getpid() > 1 {
            match os::kill(-1, libc::SIGKILL) {
                Ok(()) => Ret::Ok(0),
                Err(e) => Ret::Err(os::errno_name(e)),
            }
        } else {
            Ret::Err("refused: not a child of the probe's PID 1".to_string())
        };
        let _ = os::say(rep_w.as_fd(), &serde_json::to_string(&r).unwrap_or_default());
        os::wait_byte(go_r.as_fd());
        0
    })?;
    let line = Lines::new(rep_r).line(ctx.by(), "A to call kill(-1, SIGKILL)")?;
    let returned: Ret =
        serde_json::from_str(&line).map_err(|e| SysError::Protocol(format!("A reported {line:?}: {e}")))?;
    let sb = b.finish("B to be killed by A's kill(-1, SIGKILL)")?;
    let sc = c.finish("C to be killed by A's kill(-1, SIGKILL)")?;
    os::write_all(go_w.as_fd(), b"x")?;
    let sa = a.finish("A to exit")?;
    Ok(Observation::KillAllSparesInit { returned, b: sb, c: sc, a: sa })
}

/// R9.1 (6.9+): a zombie's pidfd polled, then once reaped.
fn pidfd_hup_after_reap(ctx: &Ctx) -> Result<Observation, SysError> {
    let mut c = spawn(ctx, || 0)?;
    c.wait_exit("C to exit")?;
    let polled = |p: &Proc| -> Result<Polled, SysError> {
        let r = os::readiness(p.pidfd.as_fd())?;
        Ok(Polled { pollin: r.readable, pollhup: r.hung_up })
    };
    let zombie = polled(&c)?;
    c.reap(0)?;
    let reaped = polled(&c)?;
    Ok(Observation::PidfdHupAfterReap { zombie, reaped })
}

/// Rounds and children of the pidfd readiness probe.
///
/// 64 rounds, half of them with a 4-thread victim: 1,024 live children
/// checked at readiness and 512 auto-reaped zombies looked for, each round
/// a fresh victim of 25 processes. The rule is an ordering inside one
/// `tasklist_lock` section (R9.2), so any stale child in any round fails
/// the row; the rounds only give a kernel that broke the ordering chances
/// to show it, in both victim kinds. 300 rounds (as kernel-rules.md R9.3
/// measured, 0 of 9,600 stale on 6.18.44) cost 0.8-1.2 s here and 17-80 s
/// in a QEMU guest without KVM, where they were most of `reparent kernel`'s
/// time; 64 cost a fifth of that.
const READINESS_ROUNDS: usize = 64;
// Every other round has a many-thread victim: an odd count, or too few
// rounds, would leave one kind barely tried.
const _: () = assert!(READINESS_ROUNDS >= 32 && READINESS_ROUNDS / 2 * 2 == READINESS_ROUNDS);
/// The fewest rounds `REPARENT_READINESS_ROUNDS` may ask for: 8 victims of
/// each kind.
pub const READINESS_MIN_ROUNDS: usize = 16;

/// The rounds of the readiness probe: [`READINESS_ROUNDS`], or
/// `REPARENT_READINESS_ROUNDS` (an even number from
/// [`READINESS_MIN_ROUNDS`] on). `reparent vm` sets 16 in a guest under
/// emulation, where a round costs 15-50 times what it costs natively; the
/// row's evidence names the count it ran, and any stale child in any round
/// still fails it.
pub fn readiness_rounds() -> Result<usize, SysError> {
    match std::env::var("REPARENT_READINESS_ROUNDS") {
        Err(_) => Ok(READINESS_ROUNDS),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n >= READINESS_MIN_ROUNDS && n % 2 == 0 => Ok(n),
            _ => Err(SysError::Setup(format!(
                "REPARENT_READINESS_ROUNDS={v:?}: expected an even number of rounds, at least {READINESS_MIN_ROUNDS}"
            ))),
        },
    }
}
const READINESS_LIVE: usize = 16;
const READINESS_ZOMBIES: usize = 8;
const READINESS_THREADS: usize = 4;
// Each thread of a many-thread victim forks as many live children.
const _: () = assert!(READINESS_LIVE / READINESS_THREADS * READINESS_THREADS == READINESS_LIVE);

/// R9.2 [exp_pidfd]: when a killed process's pidfd becomes readable, does
/// every child of every one of its threads show its new parent? Each of
/// [`READINESS_ROUNDS`] rounds a victim V (single-threaded, or with its live
/// children forked by 4 threads every other round) has 16 live and 8 zombie children; the probe's
/// PID 1 SIGKILLs V through its pidfd, blocks until the pidfd is readable,
/// then reads every child's `PPid` from /proc. PID 1 ignores SIGCHLD, so
/// V's zombies are reaped when they move to it; those still visible are
/// counted.
fn pidfd_readiness(ctx: &Ctx) -> Result<Observation, SysError> {
    os::set_sigchld_ignored(true)?;
    let (mut stale, mut missing, mut threaded) = (0, 0, 0);
    // Auto-reaped zombies still in /proc, by victim kind (1 or 4 threads),
    // and the states they were seen in.
    let mut visible = [0usize; 2];
    let mut states = String::new();
    let mut first_stale = None;
    let rounds = readiness_rounds()?;
    for round in 0..rounds {
        let threads = if round % 2 == 1 { READINESS_THREADS } else { 1 };
        if threads > 1 {
            threaded += 1;
        }
        let (rel_r, rel_w) = os::pipe()?;
        let (rdy_r, rdy_w) = os::pipe()?;
        let rel_w_raw = rel_w.as_raw_fd();
        let victim = spawn(ctx, move || {
            // The children must see EOF once PID 1 closes its end: this
            // copy goes before any of them is forked.
            os::close_inherited(rel_w_raw);
            match victim(ctx, threads, rel_r.as_raw_fd(), rdy_w.as_fd()) {
                Ok(()) => os::park(),
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
    Ok(Observation::PidfdReadiness {
        rounds,
        threaded,
        threads: READINESS_THREADS,
        live: READINESS_LIVE,
        zombies: READINESS_ZOMBIES,
        stale,
        missing,
        visible_single: visible[0],
        visible_threaded: visible[1],
        states,
        first_stale,
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
            live.push(os::fork_blocker(None, release)?);
        }
    } else {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 1..threads {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let pids: Result<Vec<i32>, String> =
                    (0..per).map(|_| os::fork_blocker(None, release).map_err(|e| e.to_string())).collect();
                let _ = tx.send(pids);
                os::park()
            });
        }
        for _ in 0..per {
            live.push(os::fork_blocker(None, release)?);
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
    os::say(ready, &format!("{};{}", text(&live), text(&zombies)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_in_rounds_gets_a_deadline_per_round() {
        let d = Duration::from_millis(100);
        assert_eq!(budget("subreaper-readback", d), d * BASE_DEADLINES);
        assert_eq!(budget("pidfd-readiness", d), d * (BASE_DEADLINES + READINESS_ROUNDS as u32));
        // Twice the deadline, twice the budget: under emulation a longer
        // REPARENT_DEADLINE_MS stretches every probe alike.
        assert_eq!(budget("pidfd-readiness", d * 2), budget("pidfd-readiness", d) * 2);
    }
}
