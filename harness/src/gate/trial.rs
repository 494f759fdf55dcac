//! One trial of the gate: one run of the init under test, observed.
//!
//! The runner (often multi-threaded: a test binary) cannot create a user
//! namespace, so each trial is this binary re-executed as
//! `reparent __gate SPEC` — the trial helper, single-threaded — which:
//!
//! 1. makes itself a child subreaper, then (like the sandbox helper)
//!    creates user + PID + mount namespaces (PID + mount as root where the
//!    user namespace is refused);
//! 2. forks the **observer**, PID 1 of the new namespace: it dies with the
//!    helper (`PR_SET_PDEATHSIG(SIGKILL)`, which it sets itself and no
//!    init under test can clear), and when it dies the kernel kills every
//!    process of its namespace — whatever the init does to its own
//!    parent-death signal;
//! 3. the observer forks the init: in PID 1 mode with `CLONE_NEWPID |
//!    CLONE_NEWNS`, so the init is PID 1 of a namespace nested in the
//!    observer's (and mounts that namespace's `/proc` before it execs); in
//!    subreaper mode as a plain child, so whatever leaks out of the init
//!    lands on the observer, is counted and dies with it;
//! 4. the observer is the init's parent: it holds its pidfd, sends it
//!    signals from outside its namespace, and takes its status with
//!    `waitid(P_PIDFD)`. It talks to the workload over a seqpacket channel
//!    that the init passes on to it, receives pidfds of the workload and
//!    its orphans, and judges nothing: the result is plain data
//!    ([`TrialResult`]), written as one JSON line to the helper, which
//!    hands it to the runner on its stdout.
//!
//! Every wait blocks on an event — a message, pidfd POLLIN (exited),
//! pidfd POLLHUP (reaped, 6.9+; before that the pidfd's fdinfo is re-read)
//! — bounded by the trial's deadline, which names what it waited for. The
//! time-based bounds are the patience: how long to wait for what may
//! never happen (a reap by an init that never reaps, a signal it never
//! forwards, its exit while survivors live or once its main child is
//! reaped, its SIGTERM to a survivor) — and F5's escalation window.

#![forbid(unsafe_code)]

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::wire::{
    Escalation, Got, Mode, Order, Plan, Ready, Reaping, Report, Startup, Status, Survivor, Teardown, TrialResult,
    TrialSpec, GATE_FD_ENV,
};
use super::workload::{recv, send, status_mask, Msg};
use crate::sys::{os, SysError};

/// The argument that makes the binary run as a trial helper.
pub const TRIAL_ARG: &str = "__gate";

/// What the helper prints, one JSON line.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Done(Box<TrialResult>),
    /// No namespace could be made: why, and what to do.
    CannotRun(String),
    /// The observer failed or died without a result.
    Broken(String),
}

/// Entry point of `reparent __gate SPEC`. Never returns.
pub fn main(args: &[String]) -> ! {
    let outcome = match args.get(2).map(|a| serde_json::from_str::<TrialSpec>(a)) {
        Some(Ok(spec)) => helper(&spec),
        Some(Err(e)) => Outcome::Broken(format!("bad trial spec: {e}")),
        None => Outcome::Broken(format!("usage: reparent {TRIAL_ARG} SPEC (started by `reparent gate`)")),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", serde_json::to_string(&outcome).unwrap_or_default());
    let _ = out.flush();
    os::exit_now(0)
}

fn helper(spec: &TrialSpec) -> Outcome {
    // The init starts with the standard streams only (H2 sees what it
    // adds): nothing the gate's own caller left open reaches it.
    os::close_all_but(2);
    if let Err(e) = os::set_child_subreaper(true) {
        return Outcome::Broken(e.to_string());
    }
    if let Err(e) = os::enter_sandbox_namespaces() {
        return Outcome::CannotRun(e.to_string());
    }
    let (res_r, res_w) = match os::pipe() {
        Ok(p) => p,
        Err(e) => return Outcome::Broken(e.to_string()),
    };
    let res_r_raw = res_r.as_raw_fd();
    let pid = match os::fork_run_linked(|| {
        os::close_inherited(res_r_raw);
        observer_main(spec, res_w)
    }) {
        Ok(pid) => pid,
        Err(e) => return Outcome::CannotRun(e.to_string()),
    };
    let Ok(pidfd) = os::pidfd_open(pid) else {
        return Outcome::Broken("pidfd_open(observer) failed".into());
    };
    // The observer's result, read until EOF (its exit), bounded by a
    // deadline that covers every wait of a trial.
    let bound =
        Instant::now() + Duration::from_millis(spec.deadline_ms * 8 + spec.patience_ms * 8 + spec.escalation_ms);
    let mut lines = os::Lines::new(res_r);
    let line = lines.line(bound, "the trial's observer to report");
    if line.is_err() {
        let _ = os::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    let status = os::waitid_pidfd(pidfd.as_fd(), 0);
    match line {
        Ok(line) => match serde_json::from_str::<TrialResult>(&line) {
            Ok(r) => Outcome::Done(Box::new(r)),
            Err(e) => Outcome::Broken(format!("undecodable trial result ({e})")),
        },
        Err(e) => Outcome::Broken(format!("{e} (observer: {status:?})")),
    }
}

/// PID 1 of the trial's namespace; it dies with the trial helper
/// ([`os::fork_run_linked`]).
fn observer_main(spec: &TrialSpec, out: OwnedFd) -> i32 {
    let setup = || -> Result<(), SysError> {
        os::default_all_signals()?;
        os::no_core_dumps()?;
        os::mount("proc", "/proc", Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)?;
        if os::getpid() != 1 {
            return Err(SysError::Protocol(format!("the observer is pid {}, not 1", os::getpid())));
        }
        Ok(())
    };
    let result = match setup() {
        Ok(()) => Trial::run(spec),
        Err(e) => TrialResult { error: Some(e.to_string()), ..TrialResult::default() },
    };
    let line = serde_json::to_string(&result).unwrap_or_default();
    let _ = os::write_all(out.as_fd(), format!("{line}\n").as_bytes());
    0
}

/// Why a plan stopped before its end.
enum Stop {
    InitExited,
    Timeout(String),
    Error(String),
}

impl From<SysError> for Stop {
    fn from(e: SysError) -> Stop {
        Stop::Error(e.to_string())
    }
}

/// What the observer waited for and got.
enum Event {
    Msg(Report, Vec<OwnedFd>),
    /// A signal report, recorded in the result.
    Signal,
    InitExited,
    Timeout,
}

/// Orphans the workload made: their release pipe and themselves.
struct Orphans {
    release: Option<OwnedFd>,
    pids: Vec<i32>,
    pidfds: Vec<OwnedFd>,
}

struct Trial<'a> {
    spec: &'a TrialSpec,
    start: Instant,
    chan: OwnedFd,
    chan_open: bool,
    /// The init's pid in the observer's namespace.
    init_pid: i32,
    init: OwnedFd,
    init_done: bool,
    workload: Option<OwnedFd>,
    /// The write end that releases the child made before the init's exec (R6).
    pre_release: Option<OwnedFd>,
    out: OwnedFd,
    /// P2: the master side of the init's terminal, held (never read) while
    /// the trial runs: closing it would hang the terminal up.
    _tty_master: Option<OwnedFd>,
    hup_on_reap: bool,
    step: &'static str,
    r: TrialResult,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl<'a> Trial<'a> {
    fn run(spec: &'a TrialSpec) -> TrialResult {
        let start = Instant::now();
        let mut t = match Trial::start(spec, start) {
            Ok(t) => t,
            Err(e) => return TrialResult { error: Some(e.to_string()), ..TrialResult::default() },
        };
        match t.plan() {
            Ok(()) => {}
            Err(Stop::InitExited) => t.r.init_exited_during = Some(t.step.to_string()),
            Err(Stop::Timeout(what)) => t.r.timed_out = Some(what),
            Err(Stop::Error(e)) => t.r.error = Some(e),
        }
        t.finish();
        let text = os::read_head(t.out.as_fd(), 4096);
        t.r.output = String::from_utf8_lossy(&text).into_owned();
        t.r.elapsed_ms = ms(start.elapsed());
        t.r
    }

    fn start(spec: &'a TrialSpec, start: Instant) -> Result<Trial<'a>, SysError> {
        let (chan, wl_end) = os::seqpacket_pair()?;
        let out = os::memfd(c"init-output")?;
        let (pre_r, pre_w) = os::pipe()?;
        let (flags, what) = match spec.mode {
            Mode::Pid1 => (libc::CLONE_NEWPID | libc::CLONE_NEWNS, "CLONE_NEWPID|CLONE_NEWNS"),
            Mode::Subreaper => (0, "SIGCHLD"),
        };
        // P2: the init's terminal; the observer keeps the master side open
        // while the trial runs (closing it would hang the terminal up).
        let tty = match spec.plan {
            Plan::Terminal => Some(os::openpty()?),
            _ => None,
        };
        // F6: the init's process is born with the signal blocked (the
        // mask is inherited by clone and kept across exec), so that the
        // signal sent as soon as the observer holds its pidfd is queued
        // for the init, whenever it comes — also before the exec, where as
        // a namespace's PID 1 at SIG_DFL it would be dropped (R6.6) in the
        // gate's own code, and charged to the init.
        let startup = match spec.plan {
            Plan::Startup { sig, .. } => Some(sig),
            _ => None,
        };
        if let Some(sig) = startup {
            os::block_signals(&[sig])?;
        }
        let chan_raw = chan.as_raw_fd();
        let pre_w_raw = pre_w.as_raw_fd();
        let slave = tty.as_ref().map(|(_, s)| s.as_fd());
        let pid = os::clone_run(flags, libc::SIGCHLD, what, false, || {
            os::close_inherited(chan_raw);
            become_init(spec, wl_end.as_fd(), out.as_fd(), pre_r.as_fd(), pre_w_raw, slave)
        });
        if let Some(sig) = startup {
            os::unblock_signals(&[sig])?;
        }
        let pid = pid?;
        let init = os::pidfd_open(pid)?;
        drop(wl_end);
        drop(pre_r);
        Ok(Trial {
            spec,
            start,
            chan,
            chan_open: true,
            init_pid: pid,
            init,
            init_done: false,
            workload: None,
            pre_release: Some(pre_w),
            out,
            _tty_master: tty.map(|(m, _)| m),
            hup_on_reap: os::kernel_version() >= (6, 9),
            step: "start",
            r: TrialResult::default(),
        })
    }

    fn now_ms(&self) -> f64 {
        ms(self.start.elapsed())
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.spec.deadline_ms)
    }

    fn patience(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.spec.patience_ms)
    }

    /// Reaps the init once its pidfd is readable.
    fn reap_init(&mut self) -> Result<(), SysError> {
        if self.init_done {
            return Ok(());
        }
        let st = os::waitid_pidfd(self.init.as_fd(), 0)?;
        self.init_done = true;
        self.r.init_exit_ms = Some(self.now_ms());
        self.r.init_status = Some(match st {
            os::Exit::Exited(c) => Status::Exited(c),
            os::Exit::Killed(s) => Status::Killed(s),
        });
        Ok(())
    }

    /// The next message from the workload's side, or the init's exit, or
    /// the bound. Signal reports are recorded on the way.
    fn next(&mut self, until: Instant) -> Result<Event, SysError> {
        loop {
            let mut fds: Vec<(BorrowedFd<'_>, i16)> = Vec::new();
            if !self.init_done {
                fds.push((self.init.as_fd(), libc::POLLIN));
            }
            if self.chan_open {
                fds.push((self.chan.as_fd(), libc::POLLIN));
            }
            let left = os::millis_until(until);
            if fds.is_empty() || left == 0 {
                return Ok(Event::Timeout);
            }
            let ev = os::poll_each(&fds, left)?;
            let (init_ev, chan_ev) = if self.init_done { (0, ev[0]) } else { (ev[0], ev.get(1).copied().unwrap_or(0)) };
            if self.chan_open && chan_ev != 0 {
                match recv::<Report>(self.chan.as_fd())? {
                    Msg::Eof => self.chan_open = false,
                    Msg::Msg(Report::Signal(mut g), _) => {
                        g.at_ms = self.now_ms();
                        self.r.signals.push(g);
                        return Ok(Event::Signal);
                    }
                    Msg::Msg(m, fds) => return Ok(Event::Msg(m, fds)),
                }
                continue;
            }
            if init_ev != 0 {
                self.reap_init()?;
                return Ok(Event::InitExited);
            }
        }
    }

    /// Waits for a message that `want` accepts.
    fn expect<T>(&mut self, what: &str, mut want: impl FnMut(Report, Vec<OwnedFd>) -> Option<T>) -> Result<T, Stop> {
        let until = self.deadline();
        loop {
            match self.next(until)? {
                Event::Msg(Report::Failed(e), _) => {
                    if self.r.ready.is_none() && e.starts_with("exec ") {
                        self.r.exec_error = Some(e);
                        return Err(Stop::Error("the init could not be executed".into()));
                    }
                    return Err(Stop::Error(format!("the workload failed: {e}")));
                }
                Event::Msg(m, fds) => {
                    if let Some(v) = want(m, fds) {
                        return Ok(v);
                    }
                }
                Event::Signal => {}
                Event::InitExited => return Err(Stop::InitExited),
                Event::Timeout => return Err(Stop::Timeout(what.to_string())),
            }
        }
    }

    fn order(&mut self, o: &Order) -> Result<(), Stop> {
        if !send(self.chan.as_fd(), o, &[])? {
            return Err(Stop::Error(format!("the workload is gone (sending {o:?})")));
        }
        Ok(())
    }

    fn ready(&mut self) -> Result<Ready, Stop> {
        self.step = "waiting for READY";
        let (ready, fd) =
            self.expect("READY from the workload (did the init run its command?)", |m, mut fds| match m {
                Report::Ready(r) => Some((r, fds.pop())),
                _ => None,
            })?;
        self.workload = fd;
        self.r.ready = Some(ready.clone());
        self.r.init_cwd =
            std::fs::read_link(format!("/proc/{}/cwd", self.init_pid)).ok().map(|p| p.to_string_lossy().into_owned());
        Ok(ready)
    }

    fn ping(&mut self) -> Result<(), Stop> {
        self.order(&Order::Ping)?;
        self.expect("the workload to answer a ping", |m, _| matches!(m, Report::Pong).then_some(()))
    }

    /// Has the init exited (without blocking)?
    fn init_alive(&mut self) -> Result<bool, SysError> {
        if self.init_done {
            return Ok(false);
        }
        if os::pidfd_state(self.init.as_fd())? != os::PidfdState::Alive {
            self.reap_init()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Asks for `n` orphans and waits until their parent has exited, i.e.
    /// until they have been reparented (its pidfd is readable only then).
    fn orphans(&mut self, n: usize, tie: bool) -> Result<Orphans, Stop> {
        self.orphans_with(n, tie, false)
    }

    /// [`Trial::orphans`]; with `term_default`, SIGTERM kills them.
    fn orphans_with(&mut self, n: usize, tie: bool, term_default: bool) -> Result<Orphans, Stop> {
        self.order(&Order::Orphans { n, tie, term_default })?;
        let (pids, mut fds) = self.expect("the workload's orphans to be forked", |m, fds| match m {
            Report::Orphans { pids } => Some((pids, fds)),
            _ => None,
        })?;
        if fds.len() != pids.len() + 2 {
            return Err(Stop::Error(format!("{} descriptors came with {} orphans", fds.len(), pids.len())));
        }
        let pidfds = fds.split_off(2);
        let middle = fds.pop().expect("two descriptors");
        let release = fds.pop();
        if !os::pidfd_wait(middle.as_fd(), os::PidfdState::Exited, self.deadline())? {
            return Err(Stop::Timeout("the orphans' parent to exit".into()));
        }
        Ok(Orphans { release, pids, pidfds })
    }

    /// Who each orphan's parent is now, as the observer's /proc has it.
    fn adopters(&self, o: &Orphans) -> Vec<String> {
        o.pidfds
            .iter()
            .map(|fd| match fdinfo_pid(fd.as_fd()) {
                Some(pid) if pid > 0 => match crate::sys::observe::status_ppid(pid) {
                    Some(pp) if pp == self.init_pid => "init".to_string(),
                    Some(1) => "gate".to_string(),
                    Some(0) if self.spec.mode == Mode::Pid1 => "init".to_string(),
                    Some(pp) => format!("pid {pp}"),
                    None => "gone".to_string(),
                },
                _ => "gone".to_string(),
            })
            .collect()
    }

    /// Releases the orphans and measures, for each, exit → reap, until
    /// all are reaped or the patience runs out. Orphans that came to the
    /// gate are reaped by it (and counted).
    fn reap_round(&mut self, mut o: Orphans) -> Result<Reaping, Stop> {
        let adopted_by = self.adopters(&o);
        drop(o.release.take());
        let n = o.pidfds.len();
        let mut exited: Vec<Option<Instant>> = vec![None; n];
        let mut reaped: Vec<Option<Instant>> = vec![None; n];
        let mut by_gate = 0;
        let give_up = Instant::now() + Duration::from_millis(self.spec.deadline_ms + self.spec.patience_ms);
        let mut patience_from: Option<Instant> = None;
        loop {
            let now = Instant::now();
            for k in 0..n {
                if reaped[k].is_some() {
                    continue;
                }
                let fd = o.pidfds[k].as_fd();
                let state = if self.hup_on_reap {
                    os::pidfd_state(fd)?
                } else if fdinfo_pid(fd) == Some(-1) {
                    os::PidfdState::Reaped
                } else {
                    os::pidfd_state(fd)?
                };
                if state != os::PidfdState::Alive && exited[k].is_none() {
                    exited[k] = Some(now);
                }
                if state == os::PidfdState::Exited && adopted_by[k] == "gate" {
                    // It came to us: we reap it (S2).
                    if os::waitid_pidfd(fd, libc::WNOHANG).is_ok() {
                        by_gate += 1;
                        reaped[k] = Some(now);
                    }
                } else if state == os::PidfdState::Reaped {
                    reaped[k] = Some(now);
                }
            }
            if reaped.iter().all(Option::is_some) {
                break;
            }
            if exited.iter().all(Option::is_some) && patience_from.is_none() {
                patience_from = Some(now);
            }
            let bound = patience_from.map_or(give_up, |p| p + Duration::from_millis(self.spec.patience_ms));
            if now >= bound.min(give_up) {
                break;
            }
            if self.hup_on_reap {
                let fds: Vec<(BorrowedFd<'_>, i16)> = (0..n)
                    .filter(|&k| reaped[k].is_none())
                    .map(|k| (o.pidfds[k].as_fd(), if exited[k].is_some() { 0 } else { libc::POLLIN }))
                    .collect();
                os::poll_each(&fds, os::millis_until(bound.min(give_up)))?;
            } else {
                std::thread::yield_now();
            }
        }
        let latencies_ms = (0..n).filter_map(|k| Some(ms(reaped[k]?.saturating_duration_since(exited[k]?)))).collect();
        let zombies = (0..n).filter(|&k| reaped[k].is_none()).map(|k| o.pids[k]).collect();
        Ok(Reaping {
            orphans: n,
            adopted_by,
            reaped: reaped.iter().filter(|r| r.is_some()).count(),
            latencies_ms,
            zombies,
            reaped_by_gate: by_gate,
        })
    }

    /// Waits until the workload's process `by` has received every signal
    /// of `sigs` (counting from `from`), or the patience runs out; returns
    /// whether it ran out.
    fn await_signals(&mut self, from: usize, by: i32, sigs: &[i32]) -> Result<bool, Stop> {
        let until = self.patience();
        loop {
            let have = |s: &i32| self.r.signals[from..].iter().any(|g| g.by == by && g.signo == *s);
            if sigs.iter().all(have) {
                return Ok(false);
            }
            match self.next(until)? {
                Event::Timeout => return Ok(true),
                Event::InitExited => return Err(Stop::InitExited),
                Event::Msg(Report::Failed(e), _) => return Err(Stop::Error(format!("the workload failed: {e}"))),
                Event::Msg(..) | Event::Signal => {}
            }
        }
    }

    /// Waits for the init's exit until `until`; returns whether it came.
    fn await_init_exit(&mut self, until: Instant) -> Result<bool, Stop> {
        loop {
            if !self.init_alive()? {
                return Ok(true);
            }
            match self.next(until)? {
                Event::InitExited => return Ok(true),
                Event::Timeout => return Ok(false),
                Event::Msg(..) | Event::Signal => {}
            }
        }
    }

    /// The end of a plan that ends with the main child's exit: the init
    /// must follow within the deadline.
    fn final_exit(&mut self) -> Result<(), Stop> {
        self.step = "waiting for the init to exit after its main child";
        if !self.await_init_exit(self.deadline())? {
            return Err(Stop::Timeout("the init to exit after its main child did".into()));
        }
        Ok(())
    }

    /// A pidfd of the main child, if the trial has one (its own copy, so
    /// that waiting on it borrows nothing of the trial).
    fn workload_pidfd(&self) -> Result<Option<OwnedFd>, Stop> {
        self.workload.as_ref().map(|w| w.try_clone()).transpose().map_err(|e| Stop::Error(e.to_string()))
    }

    /// T1–T3's start: READY, one survivor (SIGTERM at its default action
    /// with `term_default`), then the main child's exit, awaited. Returns
    /// the survivor's orphans and when the main child had exited. `tag`
    /// prefixes the steps.
    fn survivor_then_main_exit(&mut self, term_default: bool, tag: &'static str) -> Result<(Orphans, Instant), Stop> {
        self.ready()?;
        self.step = if term_default { "T2: making a survivor that SIGTERM kills" } else { "making a survivor" };
        let o = self.orphans_with(1, false, term_default)?;
        self.step = tag;
        self.order(&Order::Exit(0))?;
        match self.workload_pidfd()? {
            Some(w) if os::pidfd_wait(w.as_fd(), os::PidfdState::Exited, self.deadline())? => Ok((o, Instant::now())),
            _ => Err(Stop::Timeout("the main child to exit".into())),
        }
    }

    /// R7's end: once the main child is reaped — by the init, or by the
    /// kernel itself when SIGCHLD stays ignored (R3.3) — the init has
    /// nothing left to wait for, and its exit is what may never happen:
    /// awaited for the patience, not the deadline. Without POLLHUP on a
    /// reap (before 6.9), [`Trial::final_exit`].
    fn exit_after_reap(&mut self) -> Result<(), Stop> {
        let Some(w) = self.workload_pidfd()?.filter(|_| self.hup_on_reap) else { return self.final_exit() };
        self.step = "waiting for the main child to be reaped";
        if !os::pidfd_wait(w.as_fd(), os::PidfdState::Reaped, self.deadline())? {
            // Not reaped at all: the init is still to wait for it.
            return self.final_exit();
        }
        self.step = "waiting for the init to exit after its main child was reaped";
        if !self.await_init_exit(self.patience())? {
            return Err(Stop::Timeout(format!(
                "the init to exit after its main child was reaped (time-based: {} ms, --patience)",
                self.spec.patience_ms
            )));
        }
        Ok(())
    }

    fn plan(&mut self) -> Result<(), Stop> {
        match self.spec.plan.clone() {
            Plan::BadCommand => {
                self.step = "waiting for the init to fail to run its command";
                if !self.await_init_exit(self.deadline())? {
                    return Err(Stop::Timeout("the init to exit after its command failed to run".into()));
                }
                Ok(())
            }
            Plan::Exit(code) => {
                self.ready()?;
                self.order(&Order::Exit(code))?;
                self.final_exit()
            }
            Plan::SigchldIgnored { code } => {
                self.ready()?;
                self.order(&Order::Exit(code))?;
                self.exit_after_reap()
            }
            Plan::Die(sig) => {
                self.ready()?;
                self.order(&Order::Die(sig))?;
                self.final_exit()
            }
            Plan::ExitWithOrphan { code, order } => {
                self.ready()?;
                self.step = "making an orphan";
                let mut o = self.orphans(1, order == 2)?;
                self.step = "the main child and an orphan exit together";
                if order == 0 {
                    drop(o.release.take());
                }
                self.order(&Order::Exit(code))?;
                if order == 1 {
                    drop(o.release.take());
                }
                self.final_exit()
            }
            Plan::Main { code, burst, forward } => self.main_plan(code, burst, &forward),
            Plan::Escalation => self.escalation(),
            Plan::Startup { sig, witness } => self.startup(sig, witness),
            Plan::Terminal => {
                self.ready()?;
                self.step = "P2: the main child exits";
                self.order(&Order::Exit(0))?;
                self.final_exit()
            }
            Plan::Teardown => self.teardown(),
            Plan::TeardownTerm => self.teardown_term(),
            Plan::KillInit => {
                let ready = self.ready()?;
                self.step = "making orphans";
                let o = self.orphans(2, false)?;
                self.step = "killing the init";
                os::pidfd_send_signal(self.init.as_fd(), libc::SIGKILL).map_err(|e| Stop::Error(e.to_string()))?;
                self.reap_init()?;
                let mut left = Vec::new();
                let mut tree: Vec<(String, BorrowedFd<'_>)> = Vec::new();
                if let Some(w) = &self.workload {
                    tree.push((format!("workload (pid {})", ready.pid), w.as_fd()));
                }
                for (pid, fd) in o.pids.iter().zip(&o.pidfds) {
                    tree.push((format!("orphan (pid {pid})"), fd.as_fd()));
                }
                for (name, fd) in tree {
                    let reaped = if self.hup_on_reap {
                        os::pidfd_state(fd)? == os::PidfdState::Reaped
                    } else {
                        fdinfo_pid(fd) == Some(-1)
                    };
                    if !reaped {
                        left.push(name);
                    }
                }
                self.r.unreaped_at_init_exit = left;
                Ok(())
            }
            Plan::ChildBeforeExec { code } => {
                self.step = "waiting for the pre-exec child";
                let pre = self.expect("the pre-exec child's pidfd", |m, mut fds| match m {
                    Report::PreChild { .. } => fds.pop(),
                    _ => None,
                })?;
                self.ready()?;
                self.step = "the pre-exec child exits";
                drop(self.pre_release.take());
                if !os::pidfd_wait(pre.as_fd(), os::PidfdState::Exited, self.deadline())? {
                    return Err(Stop::Timeout("the pre-exec child to exit".into()));
                }
                let reaped = if self.hup_on_reap {
                    os::pidfd_wait(pre.as_fd(), os::PidfdState::Reaped, self.patience())?
                } else {
                    fdinfo_pid(pre.as_fd()) == Some(-1)
                };
                self.r.prechild_reaped = Some(reaped);
                self.ping()?;
                self.r.alive_after_prechild = Some(self.init_alive()?);
                self.order(&Order::Exit(code))?;
                self.final_exit()
            }
        }
    }

    fn main_plan(&mut self, code: i32, burst: usize, forward: &[i32]) -> Result<(), Stop> {
        let ready = self.ready()?;
        self.step = "R1: one orphan";
        let o = self.orphans(1, false)?;
        let round = self.reap_round(o)?;
        self.r.reaping.push(round);
        self.step = "R2: a burst of orphans";
        let o = self.orphans(burst, false)?;
        let round = self.reap_round(o)?;
        self.r.reaping.push(round);

        // A bystander in the main child's process group, alive while the
        // signals fly (F3), released and reaped after.
        self.step = "F3: a bystander orphan";
        let bystander = self.orphans(1, false)?;
        self.step = "F1: signals from outside";
        let from = self.r.signals.len();
        self.r.f1_start_ms = Some(self.now_ms());
        for &s in forward {
            if !self.init_alive()? {
                return Err(Stop::InitExited);
            }
            os::pidfd_send_signal(self.init.as_fd(), s).map_err(|e| Stop::Error(format!("pidfd_send_signal: {e}")))?;
            self.r.sent_outside.push(s);
        }
        self.r.f1_waited_out = self.await_signals(from, ready.pid, forward)?;
        self.step = "F2: signals from inside";
        // Let every signal of F1 come in before F2 counts its own.
        self.ping()?;
        let from = self.r.signals.len();
        self.r.f2_start_ms = Some(self.now_ms());
        self.order(&Order::KillInit { pid: ready.ppid, sigs: forward.to_vec() })?;
        self.r.sent_inside = forward.to_vec();
        self.r.f2_waited_out = self.await_signals(from, ready.pid, forward)?;
        self.ping()?;
        self.r.f2_end_ms = Some(self.now_ms());
        self.step = "reaping the bystander";
        let round = self.reap_round(bystander)?;
        self.r.reaping.push(round);

        self.step = "R5: the main child stops and continues";
        if let Some(w) = &self.workload {
            let w = w.try_clone().map_err(|e| Stop::Error(e.to_string()))?;
            os::pidfd_send_signal(w.as_fd(), libc::SIGSTOP).map_err(|e| Stop::Error(e.to_string()))?;
            self.await_stopped(w.as_fd())?;
            let alive_stopped = self.init_alive()?;
            os::pidfd_send_signal(w.as_fd(), libc::SIGCONT).map_err(|e| Stop::Error(e.to_string()))?;
            self.ping()?;
            self.r.alive_after_stop = Some(alive_stopped && self.init_alive()?);
        }
        // The init's working directory, read again now that it has been
        // in its main loop (it forwarded F1's signals): an init that
        // changes it after forking its child (dumb-init: `chdir("/")`)
        // may not have done so yet at READY.
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{}/cwd", self.init_pid)) {
            self.r.init_cwd = Some(cwd.to_string_lossy().into_owned());
        }
        self.r.init_cpu_ticks = cpu_ticks(self.init_pid);
        self.r.init_wakeups = wakeups(self.init_pid);
        self.step = "the main child exits";
        self.order(&Order::Exit(code))?;
        self.final_exit()
    }

    /// Waits until the process behind `pidfd` shows state `T` in /proc:
    /// the kernel has no event for a stop seen by a non-parent.
    fn await_stopped(&mut self, pidfd: BorrowedFd<'_>) -> Result<(), Stop> {
        let until = self.deadline();
        loop {
            let pid = fdinfo_pid(pidfd).unwrap_or(-1);
            if crate::sys::observe::stat(pid).is_some_and(|s| s.state == 'T') {
                return Ok(());
            }
            if !self.init_alive()? {
                return Err(Stop::InitExited);
            }
            if Instant::now() >= until {
                return Err(Stop::Timeout("the main child to stop (SIGSTOP)".into()));
            }
            std::thread::yield_now();
        }
    }

    /// F5: SIGTERM to the init from outside; the main child records it
    /// and lives on (it blocks every catchable signal). Its death, if the
    /// init escalates, is an event (its pidfd readable), waited for until
    /// the escalation window (`--escalation`) — the bound, which the
    /// verdict names.
    fn escalation(&mut self) -> Result<(), Stop> {
        let ready = self.ready()?;
        let Some(w) = self.workload_pidfd()? else {
            return Err(Stop::Error("no pidfd of the main child".into()));
        };
        self.step = "F5: SIGTERM to the init";
        let from = self.r.signals.len();
        let sent = Instant::now();
        os::pidfd_send_signal(self.init.as_fd(), libc::SIGTERM).map_err(|e| Stop::Error(e.to_string()))?;
        let bound = sent + Duration::from_millis(self.spec.escalation_ms);
        let mut e = Escalation { bound_ms: self.spec.escalation_ms, ..Escalation::default() };
        // Its record of SIGTERM (within the patience), then its death
        // (within the deadline), whichever comes; the init may exit on
        // the way, as it does when its main child dies.
        let reached = !self.await_signals_upto(from, ready.pid, libc::SIGTERM, sent)?;
        if reached {
            e.term_reached_ms = Some(ms(sent.elapsed()));
        }
        if os::pidfd_wait(w.as_fd(), os::PidfdState::Exited, bound)? {
            e.child_died_ms = Some(ms(sent.elapsed()));
            self.r.escalation = Some(e);
            self.step = "F5: the init after its main child was killed";
            return self.final_exit();
        }
        self.r.escalation = Some(e);
        self.step = "F5: the main child exits";
        self.order(&Order::Exit(0))?;
        self.final_exit()
    }

    /// Like [`Trial::await_signals`] for one signal, bounded by the
    /// patience from `since`; returns whether it ran out. The init's exit
    /// on the way is no error here.
    fn await_signals_upto(&mut self, from: usize, by: i32, sig: i32, since: Instant) -> Result<bool, Stop> {
        let until = since + Duration::from_millis(self.spec.patience_ms);
        loop {
            if self.r.signals[from..].iter().any(|g| g.by == by && g.signo == sig) {
                return Ok(false);
            }
            match self.next(until)? {
                Event::Timeout | Event::InitExited => return Ok(true),
                Event::Msg(Report::Failed(e), _) => return Err(Stop::Error(format!("the workload failed: {e}"))),
                Event::Msg(..) | Event::Signal => {}
            }
        }
    }

    /// F6: `sig` through the init's pidfd at once, then READY (or the
    /// init's end: it died of `sig`, or its main child did); after READY
    /// the witness, which the init forwards: standard signals are taken
    /// lowest number first, so once the main child has the witness, the
    /// init has dealt with `sig`, which was pending before it.
    fn startup(&mut self, sig: i32, witness: Option<i32>) -> Result<(), Stop> {
        self.step = "F6: a signal as soon as the gate holds the init's pidfd";
        let send_error = os::pidfd_send_signal(self.init.as_fd(), sig).err().map(|e| e.to_string());
        self.r.startup = Some(Startup { sig, witness, send_error, waited_out: false, held_by_init: false });
        let ready = self.ready()?;
        self.step = "F6: the witness after READY";
        let waited_out = match witness {
            Some(w) => {
                os::pidfd_send_signal(self.init.as_fd(), w).map_err(|e| Stop::Error(e.to_string()))?;
                let until = self.deadline();
                self.await_signal_until(ready.pid, w, until)?
            }
            None => {
                let until = self.patience();
                self.await_signal_until(ready.pid, sig, until)?
            }
        };
        let held = pending_signals(self.init_pid) & (1u64 << (sig - 1)) != 0;
        if let Some(st) = &mut self.r.startup {
            st.waited_out = waited_out;
            st.held_by_init = held;
        }
        self.step = "F6: the main child exits";
        self.order(&Order::Exit(0))?;
        self.final_exit()
    }

    /// Waits until the workload's process `by` has reported `sig` (since
    /// the trial's start), or `until`; returns whether it ran out.
    fn await_signal_until(&mut self, by: i32, sig: i32, until: Instant) -> Result<bool, Stop> {
        loop {
            if self.r.signals.iter().any(|g| g.by == by && g.signo == sig) {
                return Ok(false);
            }
            match self.next(until)? {
                Event::Timeout => return Ok(true),
                Event::InitExited => return Err(Stop::InitExited),
                Event::Msg(Report::Failed(e), _) => return Err(Stop::Error(format!("the workload failed: {e}"))),
                Event::Msg(..) | Event::Signal => {}
            }
        }
    }

    /// T2: a survivor that SIGTERM kills. The kernel decides in
    /// the sender's own call which signal ends it (a fatal signal to a
    /// process that neither blocks nor catches it marks the whole process
    /// exiting at once, and a later SIGKILL changes nothing), and keeps
    /// that status for its pidfd when it is reaped (PIDFD_INFO_EXIT,
    /// 6.15+): no race with the kernel's SIGKILL when the init exits.
    fn teardown_term(&mut self) -> Result<(), Stop> {
        let (mut o, main_exit) =
            self.survivor_then_main_exit(true, "T2: the main child exits while the survivor lives")?;
        let Some(survivor) = o.pidfds.pop() else {
            return Err(Stop::Error("no pidfd of the survivor".into()));
        };
        let mut sv = Survivor::default();
        let patience = main_exit + Duration::from_millis(self.spec.patience_ms);
        if os::pidfd_wait(survivor.as_fd(), os::PidfdState::Exited, patience)? {
            sv.died_ms = Some(ms(main_exit.elapsed()));
        } else {
            self.step = "T2: the survivor is released";
            sv.released = true;
            drop(o.release.take());
        }
        self.step = "T2: the init exits";
        if !self.await_init_exit(self.deadline())? {
            self.r.survivor = Some(sv);
            return Err(Stop::Timeout("the init to exit after its main child and the survivor did".into()));
        }
        // As PID 1, the init's wait has returned, so the namespace is
        // empty (R6.4): the survivor is reaped, and its status kept. Not
        // PID 1, the survivor may have come to the observer (a subreaper):
        // then the observer reaps it, and waitid() says how it ended.
        self.step = "T2: how the survivor ended";
        let fd = survivor.as_fd();
        let until = self.deadline();
        loop {
            let state = os::pidfd_state(fd)?;
            let pid1 = self.spec.mode == Mode::Pid1;
            if state == os::PidfdState::Reaped || (pid1 && !self.hup_on_reap && state == os::PidfdState::Exited) {
                match os::pidfd_exit_info(fd) {
                    Ok(Some(os::Exit::Exited(c))) => sv.status = Some(Status::Exited(c)),
                    Ok(Some(os::Exit::Killed(s))) => sv.status = Some(Status::Killed(s)),
                    Ok(None) => sv.info_error = Some("PIDFD_INFO_EXIT gave no exit information".into()),
                    Err(e) => sv.info_error = Some(e.to_string()),
                }
                break;
            }
            if state == os::PidfdState::Exited && !pid1 {
                if let Ok(st) = os::waitid_pidfd(fd, libc::WNOHANG) {
                    sv.status = Some(match st {
                        os::Exit::Exited(c) => Status::Exited(c),
                        os::Exit::Killed(s) => Status::Killed(s),
                    });
                    sv.reaped_by_gate = true;
                    break;
                }
            }
            let want = if state == os::PidfdState::Alive { os::PidfdState::Exited } else { os::PidfdState::Reaped };
            if !os::pidfd_wait(fd, want, until)? {
                sv.info_error = Some(format!("the survivor was not {want:?} within the deadline").to_lowercase());
                break;
            }
        }
        self.r.survivor = Some(sv);
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), Stop> {
        let (mut o, main_exit) = self.survivor_then_main_exit(false, "the main child exits while a survivor lives")?;
        let mut td = Teardown::default();
        if self.await_init_exit(main_exit + Duration::from_millis(self.spec.patience_ms))? {
            td.exit_while_survivors_ms = Some(ms(main_exit.elapsed()));
            td.survivors_after_exit =
                o.pidfds.iter().filter(|f| os::pidfd_state(f.as_fd()).ok() == Some(os::PidfdState::Alive)).count();
        } else {
            self.step = "the survivor is released";
            drop(o.release.take());
            if self.await_init_exit(self.deadline())? {
                td.exit_after_release = true;
            } else {
                td.never = true;
            }
        }
        self.r.teardown = Some(td);
        Ok(())
    }

    /// Kills what is left: the init if it still runs (and reaps it), and
    /// counts what came to the gate.
    fn finish(&mut self) {
        if !self.init_done {
            if let Ok(true) = self.init_alive() {
                let _ = os::pidfd_send_signal(self.init.as_fd(), libc::SIGKILL);
                self.r.init_killed_by_gate = true;
                let _ = self.reap_init();
            }
        }
        // Everything else in the observer's namespace came to it (or was
        // left alive by the init, subreaper mode): count it; it dies with
        // the observer.
        let others = std::fs::read_dir("/proc")
            .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter(|&p| p != 1).count())
            .unwrap_or(0);
        self.r.leaked = others + os::reap_all_exited();
    }
}

/// The `Pid:` line of a pidfd's fdinfo: its pid in the reader's
/// namespace, -1 once it is reaped (0 when outside it).
fn fdinfo_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|v| v.trim().parse().ok())
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The signals pending for a process, `ShdPnd | SigPnd` of
/// `/proc/<pid>/status` (0 when unreadable).
fn pending_signals(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_mask(&status, "ShdPnd:") | status_mask(&status, "SigPnd:")
}

/// `voluntary_ctxt_switches` of `/proc/<pid>/status`: how often it slept
/// and woke.
fn wakeups(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok())
}

/// The init's process, between the clone and the exec: mounts its
/// namespace's /proc (PID 1 mode), sends its output to the capture file
/// (P2: puts it on its terminal instead),
/// sets up what the plan asks (a child made before the exec, SIGCHLD
/// ignored), passes the workload its channel, and execs the init.
fn become_init(
    spec: &TrialSpec,
    chan: BorrowedFd<'_>,
    out: BorrowedFd<'_>,
    pre_r: BorrowedFd<'_>,
    pre_w: i32,
    tty: Option<BorrowedFd<'_>>,
) -> i32 {
    let fail = |e: String| -> i32 {
        let _ = send(chan, &Report::Failed(e), &[]);
        111
    };
    if spec.mode == Mode::Pid1 {
        if let Err(e) = os::mount("proc", "/proc", Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) {
            return fail(format!("mounting the init's /proc: {e}"));
        }
    }
    // P2: a session of its own whose controlling terminal is the pty, as
    // a terminal emulator or `docker run -t` starts it.
    let stdio = match tty {
        Some(tty) => os::setsid().and_then(|()| os::set_controlling_tty(tty)).and_then(|()| os::stdio_to_terminal(tty)),
        None => os::redirect_stdio_to(out),
    };
    if let Err(e) = stdio {
        return fail(e.to_string());
    }
    // The init starts with no signal ignored (H1 says so): the observer
    // reset all it could; glibc's own two are reset here, just before exec.
    if let Err(e) = os::default_glibc_signals() {
        return fail(e.to_string());
    }
    if let Plan::ChildBeforeExec { .. } = spec.plan {
        let child = os::fork_run(|| {
            os::close_inherited(pre_w);
            os::wait_byte(pre_r);
            7
        });
        match child.and_then(os::pidfd_open) {
            Ok(fd) => {
                let _ = send(chan, &Report::PreChild { pid: 0 }, &[fd.as_fd()]);
            }
            Err(e) => return fail(e.to_string()),
        }
    }
    if let Plan::SigchldIgnored { .. } = spec.plan {
        if let Err(e) = os::set_sigchld_ignored(true) {
            return fail(e.to_string());
        }
    }
    if let Err(e) = os::clear_cloexec(chan) {
        return fail(e.to_string());
    }
    std::env::set_var(GATE_FD_ENV, chan.as_raw_fd().to_string());
    let err = std::os::unix::process::CommandExt::exec(std::process::Command::new(&spec.argv[0]).args(&spec.argv[1..]));
    fail(format!("exec {:?}: {err}", spec.argv[0]))
}

/// The signals a `Got` list holds for one receiver, sent by `sender`.
pub fn received(signals: &[Got], by: i32) -> impl Iterator<Item = &Got> {
    signals.iter().filter(move |g| g.by == by)
}
