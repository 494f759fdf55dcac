//! The init gate (`reparent gate -- INIT [ARGS...]`): grades an init — the
//! program a container runs as PID 1 — on what it does with orphans,
//! signals and exit codes, after `shared/init-gate.md`.
//!
//! The kernel hands every orphan of a PID namespace to its init (R1.3c);
//! what the init does with them, and with signals and its main child's
//! status, is the init's own code, and that is what the gate grades —
//! never what the kernel does (see [`checks`]). It runs INIT many times,
//! each run a *trial* ([`trial`]) in fresh namespaces with one plan: INIT
//! is PID 1 of its own PID namespace (or, `--subreaper`, an ordinary child
//! of the gate), and runs our workload ([`workload`]) as its main child,
//! which obeys the gate over a channel. The trials' observations are
//! judged by pure functions into one verdict per check ([`checks`]), and
//! shown as a table, JSON or JUnit XML ([`report`]).
//!
//! For an init's own `cargo test`:
//!
//! ```no_run
//! use reparent_harness::gate::Gate;
//! let report = Gate::new(["target/debug/my-init", "--"])
//!     .workload("/usr/local/bin/reparent") // a `reparent` binary: it serves the gate's trials
//!     .run()
//!     .expect("the gate could run");
//! report.assert_hard_checks_pass();
//! ```

#![forbid(unsafe_code)]

pub mod checks;
pub mod report;
pub mod trial;
pub mod wire;
pub mod workload;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use checks::{Check, Kind, Verdict};
pub use report::{Expectations, Report};
pub use wire::Mode;

use checks::Observations;
use trial::{Outcome, TRIAL_ARG};
use wire::{Plan, TrialResult, TrialSpec};
use workload::WORKLOAD_ARG;

use crate::sys::os;

/// Why the gate could not run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// INIT is missing or cannot be executed.
    #[error("cannot run the init: {0}")]
    Init(String),
    /// No namespace could be created; the message says why and what to do.
    #[error("cannot create the gate's namespaces: {0}")]
    Namespaces(String),
    /// The workload binary is missing or does not serve the gate.
    #[error("{0}")]
    Setup(String),
}

/// The signals F1 sends: HUP INT QUIT USR1 USR2 TERM WINCH ALRM CONT.
pub const FORWARDED: [i32; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGWINCH,
    libc::SIGALRM,
    libc::SIGCONT,
];

/// The exit codes X1 tries.
pub const EXIT_CODES: [i32; 8] = [0, 1, 2, 7, 126, 127, 128, 255];
/// The signals X2 kills the main child with.
pub const DEATHS: [i32; 4] = [libc::SIGTERM, libc::SIGKILL, libc::SIGSEGV, libc::SIGUSR2];

/// A gate for one init: build it, then [`Gate::run`].
#[derive(Clone, Debug)]
pub struct Gate {
    init: Vec<String>,
    mode: Mode,
    deadline: Duration,
    patience: Duration,
    escalation: Duration,
    workload: Option<PathBuf>,
    burst: usize,
    together: usize,
    startups: usize,
    forward_hard: Vec<i32>,
    jobs: usize,
    cases: u32,
    seed: u64,
    failures_dir: PathBuf,
}

/// F5's window: how long a main child that ignores SIGTERM is watched for
/// the init's SIGKILL. Inits that escalate do so after seconds (pid1-exe:
/// 2 s); the window covers that with room for a loaded machine, and is
/// the gate's floor when the init does not escalate (a time-based `no`).
pub const DEFAULT_ESCALATION: Duration = Duration::from_millis(2500);

/// Fresh starts of the init F6 sends its early signal to.
pub const DEFAULT_STARTUPS: usize = 10;

/// Random trees the gate runs under the init by default (RT): few and
/// small, so that one init's whole gate stays within seconds.
pub const DEFAULT_CASES: u32 = 20;
/// The default seed of RT's random trees: fixed, so that a red gate is a
/// change in the init (or the kernel), and runs again the same way.
pub const DEFAULT_SEED: u64 = 1;

impl Gate {
    /// The init's command and arguments. The workload's command is put at
    /// the place of a `{}` argument, or appended (most inits take `INIT
    /// [OPTIONS] -- CMD`).
    pub fn new<I, S>(init: I) -> Gate
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Gate {
            init: init.into_iter().map(Into::into).collect(),
            mode: Mode::Pid1,
            deadline: Duration::from_secs(3),
            patience: Duration::from_millis(500),
            escalation: DEFAULT_ESCALATION,
            workload: None,
            burst: 200,
            together: 9,
            startups: DEFAULT_STARTUPS,
            jobs: 12,
            forward_hard: FORWARDED.iter().copied().filter(|&s| s != libc::SIGCONT).collect(),
            cases: DEFAULT_CASES,
            seed: DEFAULT_SEED,
            failures_dir: PathBuf::from("reparent-failures"),
        }
    }

    /// RT (init-gate.md section 4): `cases` random trees below the init's
    /// main child, drawn from `seed` (default 20 cases, seed 1; 0 cases
    /// skips RT).
    pub fn random_trees(mut self, cases: u32, seed: u64) -> Gate {
        self.cases = cases;
        self.seed = seed;
        self
    }

    /// Where RT writes a failing random case, shrunk, as a `.tree` file
    /// (default `reparent-failures`, created when needed).
    pub fn failures_dir(mut self, dir: impl AsRef<Path>) -> Gate {
        self.failures_dir = dir.as_ref().to_path_buf();
        self
    }

    /// Runs the init as an ordinary child of the gate (a subreaper), not as
    /// PID 1: the S and T3 checks.
    pub fn subreaper(mut self, on: bool) -> Gate {
        self.mode = if on { Mode::Subreaper } else { Mode::Pid1 };
        self
    }

    /// How long any one wait may take before it is a failure that names
    /// what it waited for (default 3 s).
    pub fn deadline(mut self, d: Duration) -> Gate {
        self.deadline = d;
        self
    }

    /// How long to wait for what may never happen — the reap of an orphan
    /// (R1, R2, R4's bound for `never`), a signal the init may not forward
    /// (F1, F2; F6 without a witness), the init's exit while a descendant
    /// lives (T1) or once its main child is reaped (R7), a survivor's
    /// signal (T2) — default 500 ms. With F5's window the only time-based
    /// bounds; a verdict that rests on one says so.
    pub fn patience(mut self, d: Duration) -> Gate {
        self.patience = d;
        self
    }

    /// F5's window (default 2.5 s): how long a main child that ignores
    /// SIGTERM is watched for the init's SIGKILL; `no` rests on it.
    pub fn escalation(mut self, d: Duration) -> Gate {
        self.escalation = d;
        self
    }

    /// The `reparent` binary whose `__gate` and `__workload` roles run the
    /// trials (default: `REPARENT_BIN`, else the running executable). In
    /// this repository's tests: `env!("CARGO_BIN_EXE_reparent")`; in
    /// another crate, a `reparent` built or installed from this
    /// repository (`cargo install --path .`).
    pub fn workload(mut self, exe: impl AsRef<Path>) -> Gate {
        self.workload = Some(exe.as_ref().to_path_buf());
        self
    }

    /// Fresh starts of the init for F6, the startup window (default 10;
    /// 0 skips F6).
    pub fn startups(mut self, n: usize) -> Gate {
        self.startups = n;
        self
    }

    /// Orphans in R2's burst (default 200).
    pub fn burst(mut self, n: usize) -> Gate {
        self.burst = n;
        self
    }

    /// How many trials run at once after the main one (default 12: most
    /// trials wait on events, and an init that hangs in each costs one
    /// deadline per round).
    pub fn jobs(mut self, n: usize) -> Gate {
        self.jobs = n.max(1);
        self
    }

    /// The signals F1 requires (default: HUP INT QUIT USR1 USR2 TERM WINCH
    /// ALRM); CONT is always sent and reported.
    pub fn forwards(mut self, sigs: &[i32]) -> Gate {
        self.forward_hard = sigs.to_vec();
        self
    }

    fn exe(&self) -> Result<PathBuf, GateError> {
        let exe = match (&self.workload, std::env::var_os("REPARENT_BIN")) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => std::env::current_exe().map_err(|e| GateError::Setup(format!("current_exe: {e}")))?,
        };
        // An absolute path: the init resolves the command in its own cwd.
        let exe = std::fs::canonicalize(&exe)
            .map_err(|e| GateError::Setup(format!("the workload binary {}: {e}", exe.display())))?;
        Ok(exe)
    }

    /// INIT's argv with `cmd` at the place of `{}`, or appended.
    fn argv(&self, cmd: &[String]) -> Vec<String> {
        if self.init.iter().any(|a| a == "{}") {
            self.init.iter().flat_map(|a| if a == "{}" { cmd.to_vec() } else { vec![a.clone()] }).collect()
        } else {
            self.init.iter().cloned().chain(cmd.iter().cloned()).collect()
        }
    }

    /// Checks that INIT can be executed at all, before any trial.
    fn check_init(&self) -> Result<(), GateError> {
        let Some(first) = self.init.first() else {
            return Err(GateError::Init("no INIT command given: `reparent gate -- INIT [ARGS...]`".into()));
        };
        let path = if first.contains('/') {
            PathBuf::from(first)
        } else {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join(first)).find(|c| c.is_file()))
                .unwrap_or(None);
            found.ok_or_else(|| {
                GateError::Init(format!(
                    "`{}` is not found in PATH: give its full path, or install it",
                    crate::scenario::escape(first)
                ))
            })?
        };
        let shown = crate::scenario::escape(&path.to_string_lossy()).into_owned();
        let meta = std::fs::metadata(&path).map_err(|e| GateError::Init(format!("{shown}: {e}")))?;
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(GateError::Init(format!(
                "{shown} is not an executable file: chmod +x it, or give the init's binary"
            )));
        }
        Ok(())
    }

    /// Runs every trial and judges every check.
    pub fn run(&self) -> Result<Report, GateError> {
        let started = Instant::now();
        self.check_init()?;
        let exe = self.exe()?;
        let workload = vec![exe.to_string_lossy().into_owned(), WORKLOAD_ARG.to_string()];
        let pid1 = self.mode == Mode::Pid1;
        let mut o = Observations {
            mode: Some(self.mode),
            main_code: 5,
            forward_hard: self.forward_hard.clone(),
            patience_ms: self.patience.as_millis() as u64,
            ..Observations::default()
        };
        let run = |plan: Plan, argv: Vec<String>| -> TrialOutcome { run_trial(&exe, self, plan, argv) };
        // The main trial first: if the init cannot run at all, say so once.
        // F5 waits out its window (`--escalation`) whenever the init does
        // not escalate, the longest wait of a gate that passes: it starts
        // beside the main trial, and its result counts only if the main
        // trial got to READY.
        let escalation = {
            let (exe, gate, argv) = (exe.clone(), self.clone(), self.argv(&workload));
            std::thread::spawn(move || run_trial(&exe, &gate, Plan::Escalation, argv))
        };
        let join_escalation = || escalation.join().unwrap_or_else(|_| Ok(Err("the F5 trial's thread panicked".into())));
        let main =
            run(Plan::Main { code: o.main_code, burst: self.burst, forward: FORWARDED.to_vec() }, self.argv(&workload));
        let main = match main {
            Ok(m) => m,
            Err(e) => {
                let _ = join_escalation();
                return Err(e);
            }
        };
        let reached = match &main {
            Ok(r) if r.ready.is_some() => None,
            Ok(r) if r.exec_error.is_some() => {
                Some(format!("the init could not be executed: {}", r.exec_error.as_deref().unwrap_or("")))
            }
            Ok(_) => Some("the main trial never got to READY, so neither would this one (see R1)".to_string()),
            Err(e) => Some(format!("the main trial broke: {e}")),
        };
        o.main = Some(main);
        // X3 needs no READY; every other trial does: when the main trial
        // never got there, they are not run (each would only wait out its
        // deadline) and say so. The rest run at once, a few at a time, so
        // that an init that hangs in every one still gets its report
        // within a few deadlines.
        let noexec = NoExecFile::new().map_err(|e| GateError::Setup(format!("creating a 0644 file for X3: {e}")))?;
        let missing = format!("/nonexistent/reparent-gate-{}", std::process::id());
        let noexec_cmd = noexec.path.to_string_lossy().into_owned();
        let mut jobs: Vec<(Slot, Plan, Vec<String>)> = vec![
            (Slot::Bad("missing"), Plan::BadCommand, self.argv(std::slice::from_ref(&missing))),
            (Slot::Bad("0644 file"), Plan::BadCommand, self.argv(std::slice::from_ref(&noexec_cmd))),
        ];
        if let Some(why) = reached {
            o.not_run = Some(why);
        } else {
            let w = self.argv(&workload);
            jobs.extend(EXIT_CODES.iter().map(|&k| (Slot::Exit(k), Plan::Exit(k), w.clone())));
            jobs.extend(DEATHS.iter().map(|&s| (Slot::Death(s), Plan::Die(s), w.clone())));
            jobs.push((Slot::Teardown, Plan::Teardown, w.clone()));
            jobs.push((Slot::Kill, Plan::KillInit, w.clone()));
            jobs.push((Slot::Terminal, Plan::Terminal, w.clone()));
            // F6: fresh starts with a signal the main trial showed the init
            // forwards, sent as soon as the gate holds the init's pidfd.
            let startup = o.main.as_ref().and_then(|m| m.as_ref().ok()).map(checks::startup_signals);
            match startup {
                _ if self.startups == 0 => o.startup_not_run = Some("skipped: no fresh starts asked for".into()),
                Some(Ok((sig, witness))) => {
                    o.startup_sigs = Some((sig, witness));
                    for _ in 0..self.startups {
                        jobs.push((Slot::Startup, Plan::Startup { sig, witness }, w.clone()));
                    }
                }
                Some(Err(why)) => o.startup_not_run = Some(why),
                None => o.startup_not_run = Some("no main trial".into()),
            }
            jobs.push((Slot::TeardownTerm, Plan::TeardownTerm, w.clone()));
            if pid1 {
                for i in 0..self.together {
                    let (code, order) = (3 + (i / 3) as i32, (i % 3) as u8);
                    jobs.push((Slot::Together(code, order), Plan::ExitWithOrphan { code, order }, w.clone()));
                }
                jobs.push((Slot::PreChild(3), Plan::ChildBeforeExec { code: 3 }, w.clone()));
                jobs.push((Slot::SigchldIgnored(4), Plan::SigchldIgnored { code: 4 }, w.clone()));
            }
        }
        // RT's random trees run beside the trials, in sandboxes of their
        // own (PID 1 mode only: the trees hang below the init as PID 1).
        let random_trees = pid1 && o.not_run.is_none() && self.cases > 0;
        let (results, random) = std::thread::scope(|s| {
            let rt = random_trees.then(|| s.spawn(|| self.run_random_trees(&exe)));
            let results = run_parallel(jobs, self.jobs, &run);
            let random = rt.map(|h| h.join().unwrap_or_else(|_| Err("the random trees' thread panicked".into())));
            (results, random)
        });
        let escalation = join_escalation();
        let results = results?;
        if o.not_run.is_none() {
            o.escalation = Some(escalation?);
        }
        o.random = random;
        drop(noexec);
        for (slot, r) in results {
            match slot {
                Slot::Bad(what) => o.bad_command.push((what, r)),
                Slot::Exit(k) => o.exits.push((k, r)),
                Slot::Death(s) => o.deaths.push((s, r)),
                Slot::Teardown => o.teardown = Some(r),
                Slot::Kill => o.kill = Some(r),
                Slot::Startup => o.startup.push(r),
                Slot::Terminal => o.terminal = Some(r),
                Slot::TeardownTerm => o.teardown_term = Some(r),
                Slot::Together(code, order) => o.together.push((code, order, r)),
                Slot::PreChild(code) => o.prechild = Some((code, r)),
                Slot::SigchldIgnored(code) => o.sigchld_ignored = Some((code, r)),
            }
        }
        let checks = checks::judge(&o);
        Ok(Report {
            init: self.init.clone(),
            mode: self.mode,
            kernel: os::kernel_release(),
            uid: os::uid(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            checks,
        })
    }
}

impl Gate {
    /// RT: the random trees of init-gate.md section 4 under the init
    /// (`driver::under_init`, as `reparent check --init` runs them), with
    /// the gate's deadline, and its patience as the reap deadline.
    fn run_random_trees(&self, exe: &Path) -> Result<checks::RandomTrees, String> {
        use crate::driver::under_init::{self, UnderInitParams};
        let mut opts = crate::sys::SandboxOptions::new(exe).map_err(|e| e.to_string())?;
        opts.init = Some(self.init.clone());
        opts.deadline = self.deadline;
        opts.reap_deadline = self.patience;
        let mut params = UnderInitParams::new(self.cases, self.seed, &self.failures_dir);
        params.exe = exe.to_string_lossy().into_owned();
        let out = under_init::random_trees(&opts, &params).map_err(|e| e.to_string())?;
        Ok(checks::RandomTrees {
            cases: out.cases,
            passed: out.passed,
            steps: out.steps,
            seed: self.seed,
            policy: format!("the model took its policy: {} ({})", out.policy.policy.text(), out.policy.evidence),
            reap_deadline_ms: self.patience.as_millis() as u64,
            failure: out.failure.map(|f| checks::RandomTreesFailure {
                case: f.case,
                shrunk: f.shrunk,
                message: f.message,
                file: f.path.map(|p| p.display().to_string()).map_err(|e| e.to_string()),
                replay: out.replay.clone(),
            }),
        })
    }
}

/// What one trial gave: its result or why it broke, or why the gate
/// cannot run at all.
type TrialOutcome = Result<TrialSeen, GateError>;

/// A trial's result, or why it broke.
type TrialSeen = Result<TrialResult, String>;

/// Where a trial's result goes.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Bad(&'static str),
    Exit(i32),
    Death(i32),
    Teardown,
    Kill,
    Startup,
    Terminal,
    TeardownTerm,
    Together(i32, u8),
    PreChild(i32),
    SigchldIgnored(i32),
}

/// Runs the trials on `threads` threads; the results come back in the
/// order of `jobs`.
fn run_parallel(
    jobs: Vec<(Slot, Plan, Vec<String>)>,
    threads: usize,
    run: &(dyn Fn(Plan, Vec<String>) -> TrialOutcome + Sync),
) -> Result<Vec<(Slot, TrialSeen)>, GateError> {
    let n = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let done = std::sync::Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let Some((i, (slot, plan, argv))) = queue.lock().ok().and_then(|mut q| q.pop()) else { return };
                let r = run(plan, argv);
                if let Ok(mut d) = done.lock() {
                    d.push((i, slot, r));
                }
            });
        }
    });
    let mut done = done.into_inner().map_err(|_| GateError::Setup("a trial thread panicked".into()))?;
    done.sort_by_key(|(i, _, _)| *i);
    done.into_iter().map(|(_, slot, r)| r.map(|r| (slot, r))).collect()
}

/// A file with mode 0644 for X3 (`execvp()` runs a 0755 non-binary
/// through /bin/sh, so it must not be executable), removed on drop.
struct NoExecFile {
    path: PathBuf,
}

impl NoExecFile {
    fn new() -> std::io::Result<NoExecFile> {
        use std::os::unix::fs::PermissionsExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("reparent-gate-noexec-{}-{nanos}", std::process::id()));
        std::fs::write(&path, "#!/bin/sh\nexit 0\n")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(NoExecFile { path })
    }
}

impl Drop for NoExecFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs one trial in a helper process (`<exe> __gate SPEC`) that dies
/// with the calling thread. `Ok(Err(why))`: this trial broke (its verdicts
/// say "not reached"); `Err`: the gate cannot run at all.
fn run_trial(exe: &Path, gate: &Gate, plan: Plan, argv: Vec<String>) -> Result<Result<TrialResult, String>, GateError> {
    let spec = TrialSpec {
        argv,
        mode: gate.mode,
        plan,
        deadline_ms: gate.deadline.as_millis() as u64,
        escalation_ms: gate.escalation.as_millis() as u64,
        patience_ms: gate.patience.as_millis() as u64,
    };
    let text = serde_json::to_string(&spec).map_err(|e| GateError::Setup(e.to_string()))?;
    let mut cmd = Command::new(exe);
    cmd.arg(TRIAL_ARG).arg(text).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let (mut child, pidfd) = os::spawn_linked(&mut cmd, &format!("{} {TRIAL_ARG}", exe.display()))
        .map_err(|e| GateError::Setup(e.to_string()))?;
    let Some(stdout) = child.stdout.take() else {
        return Ok(Err("no stdout".into()));
    };
    let mut lines = os::Lines::new(stdout.into());
    // The helper bounds its own waits; this bound only catches a helper
    // that hangs itself.
    let bound = Instant::now() + gate.deadline * 10 + gate.patience * 10 + gate.escalation;
    let line = lines.line(bound, "the gate's trial helper to report");
    if line.is_err() {
        let _ = os::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    let _ = child.wait();
    let line = match line {
        Ok(l) => l,
        Err(e) => {
            return Err(GateError::Setup(format!(
                "{e}: is {} a `reparent` binary that serves `{TRIAL_ARG}`? (Gate::workload, REPARENT_BIN)",
                exe.display()
            )))
        }
    };
    match serde_json::from_str::<Outcome>(&line) {
        Ok(Outcome::Done(r)) => Ok(Ok(*r)),
        Ok(Outcome::CannotRun(why)) => Err(GateError::Namespaces(why)),
        Ok(Outcome::Broken(why)) => Ok(Err(why)),
        Err(e) => Err(GateError::Setup(format!(
            "undecodable answer from {} {TRIAL_ARG} ({e}): {} — is it a `reparent` binary of the same version?",
            exe.display(),
            crate::sys::excerpt(line.as_bytes())
        ))),
    }
}
