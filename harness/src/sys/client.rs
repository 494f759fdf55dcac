//! The runner's handle on one case: a [`Sandbox`] owns the helper process
//! (and through it the namespace and every node), and its `Drop` tears it all
//! down, so a panic or an early return cannot leak a process.
//!
//! The helper is this same binary re-executed as `<exe> __sandbox` (see
//! [`super::sandbox`]); the caller passes the path of a binary that routes
//! that argument to [`super::sandbox::main`] — `reparent` does, and tests use
//! `env!("CARGO_BIN_EXE_reparent")`.
//!
//! Every wait on the helper is bounded: a request is written, and each line
//! of the answer read, within the deadline. A long request (building
//! thousands of processes) is many waits inside the helper, each bounded by
//! the same deadline, so the helper writes a `Progress` line between them
//! whenever it has been quiet for half a deadline; the runner's wait for
//! the next line is therefore twice the deadline, and a helper that sends
//! nothing for that long is hung, which is a named failure.

#![forbid(unsafe_code)]

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::observe::ProcStat;
use super::sandbox::{Request, Response, SettleHints, Timings};
use super::{os, SysError};
use crate::scenario::{Node, Step};

/// The argument that makes the binary run as the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox";

/// The default reap deadline of an init under test, in milliseconds: ten
/// times what init-gate.md calls a prompt reap (100 ms), so that a loaded
/// machine does not fail a correct init, and short enough that a
/// non-reaping one fails in a second.
pub const DEFAULT_REAP_DEADLINE_MS: u64 = 1000;

/// How to start sandboxes.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// The binary that serves [`HELPER_ARG`].
    pub exe: PathBuf,
    /// How long any single wait may take before it is a failure.
    pub deadline: Duration,
    /// An init under test to run as PID 1 instead of the built-in one: its
    /// command and arguments, to which `<exe> __node` is appended (or
    /// which it replaces a `{}` argument of).
    pub init: Option<Vec<String>>,
    /// How long an init under test may leave a zombie it adopted unreaped,
    /// from the zombie's exit (its pidfd readable) to its reap, before the
    /// case fails with the zombies left. Only for `init`: the built-in
    /// init reaps by construction, within `deadline`.
    pub reap_deadline: Duration,
}

impl SandboxOptions {
    /// Options for `exe`, with the deadline from `REPARENT_DEADLINE_MS`
    /// (default 5000) and the reap deadline of an init under test from
    /// `REPARENT_REAP_DEADLINE_MS` (default [`DEFAULT_REAP_DEADLINE_MS`]).
    pub fn new(exe: impl AsRef<Path>) -> Result<Self, SysError> {
        let millis = |var: &str, default: u64| match std::env::var(var) {
            Err(_) => Ok(Duration::from_millis(default)),
            Ok(v) => v
                .parse()
                .map(Duration::from_millis)
                .map_err(|_| SysError::Setup(format!("{var}={v:?} is not a whole number of milliseconds"))),
        };
        let deadline = millis("REPARENT_DEADLINE_MS", 5000)?;
        let reap_deadline = millis("REPARENT_REAP_DEADLINE_MS", DEFAULT_REAP_DEADLINE_MS)?;
        Ok(SandboxOptions { exe: exe.as_ref().to_path_buf(), deadline, init: None, reap_deadline })
    }
}

/// What the helper saw after a request.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The canonical tree(s) of the namespace; empty once it is gone.
    pub forest: Vec<Node>,
    /// The raw `/proc` scan behind it.
    pub procs: Vec<ProcStat>,
    /// Where the helper's time went.
    pub timings: Timings,
    /// For [`Sandbox::await_init_exit`]: how long PID 1 took to exit.
    pub init_exited_after: Option<Duration>,
}

/// One live case: a helper process, its namespaces and its tree.
pub struct Sandbox {
    child: Child,
    pidfd: OwnedFd,
    /// The helper's stdin (non-blocking): requests.
    stdin: Option<OwnedFd>,
    /// The helper's stdout: answers, one line each.
    stdout: os::Lines,
    deadline: Duration,
    /// Whether a user namespace was created (false only for root without one).
    pub userns: bool,
}

impl Sandbox {
    /// Starts a helper and builds `tree` (rooted at `init`) in a fresh
    /// namespace.
    pub fn start(opts: &SandboxOptions, tree: &Node) -> Result<(Sandbox, Observation), SysError> {
        let mut cmd = Command::new(&opts.exe);
        cmd.arg(HELPER_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        // Our own unreaped child: its pid cannot be reused, so this pidfd
        // names exactly it. Without one there is no signal: EOF on its
        // stdin makes the helper, which has built nothing yet, exit by
        // itself.
        let (mut child, pidfd) = os::spawn_linked(&mut cmd, &format!("{} {HELPER_ARG}", opts.exe.display()))?;
        let stdin: Option<OwnedFd> = child.stdin.take().map(Into::into);
        if let Some(fd) = &stdin {
            os::set_nonblocking(fd.as_fd())?;
        }
        let stdout: OwnedFd = child.stdout.take().ok_or_else(|| SysError::Protocol("no stdout".into()))?.into();
        let stdout = os::Lines::new(stdout);
        let mut sb = Sandbox { child, pidfd, stdin, stdout, deadline: opts.deadline, userns: false };
        let deadline_ms = opts.deadline.as_millis() as u64;
        // A node that fails, or a wait that times out, while the tree is
        // built is that; any other failure means the sandbox itself could
        // not be made.
        let reap_deadline_ms = opts.reap_deadline.as_millis() as u64;
        let build = Request::Build { tree: tree.clone(), deadline_ms, init: opts.init.clone(), reap_deadline_ms };
        let obs = sb.call(&build).map_err(|e| match e {
            SysError::Node { .. }
            | SysError::Timeout(_)
            | SysError::Setup(_)
            | SysError::Resource { .. }
            | SysError::NotReaped { .. } => e,
            other => SysError::Setup(other.to_string()),
        })?;
        Ok((sb, obs))
    }

    /// Runs one step and waits until the kernel has settled. `hints` name
    /// the processes the model expects to be stopped or exiting afterwards
    /// (the states no pidfd event announces).
    pub fn step(&mut self, step: &Step, hints: &SettleHints) -> Result<Observation, SysError> {
        self.call(&Request::Step { step: step.clone(), hints: hints.clone() })
    }

    /// Observes the namespace again.
    pub fn observe(&mut self) -> Result<Observation, SysError> {
        self.call(&Request::Observe)
    }

    /// Waits at most `within` for PID 1 (an init under test) to exit, and
    /// says how long it took: `None` if it still runs at the end. This is
    /// the one wait whose expiry is an answer, not a failure — "it did not
    /// exit within `within`" — so callers say so where they report it.
    pub fn await_init_exit(&mut self, within: Duration) -> Result<Option<Duration>, SysError> {
        let obs = self.call(&Request::AwaitInitExit { within_ms: within.as_millis() as u64 })?;
        Ok(obs.init_exited_after)
    }

    fn call(&mut self, req: &Request) -> Result<Observation, SysError> {
        let name = match req {
            Request::Build { .. } => "Build",
            Request::Step { .. } => "Step",
            Request::Observe => "Observe",
            Request::AwaitInitExit { .. } => "AwaitInitExit",
        };
        let mut text = serde_json::to_string(req).map_err(|e| SysError::Protocol(e.to_string()))?;
        text.push('\n');
        let stdin = self.stdin.as_ref().ok_or_else(|| SysError::Protocol("helper closed".into()))?;
        let gone = || SysError::Protocol("the sandbox helper exited unexpectedly (see its stderr above)".into());
        let what = format!("the sandbox helper to read the {name} request");
        if !os::write_all_until(stdin.as_fd(), text.as_bytes(), Instant::now() + self.deadline, &what)? {
            return Err(gone());
        }
        let what =
            format!("the sandbox helper to answer the {name} request (it has sent nothing for twice the deadline)");
        loop {
            let line = match self.stdout.line(Instant::now() + 2 * self.deadline, &what) {
                Ok(line) => line,
                Err(SysError::Protocol(_)) => return Err(gone()),
                Err(e) => return Err(e),
            };
            let resp = serde_json::from_str::<Response>(&line).map_err(|e| {
                SysError::Protocol(format!(
                    "undecodable answer to the {name} request from the sandbox helper ({e}): {}",
                    super::excerpt(line.as_bytes())
                ))
            })?;
            return match resp {
                Response::Progress => continue,
                Response::Done { forest, procs, timings, userns } => {
                    self.userns = userns;
                    Ok(Observation { forest, procs, timings, init_exited_after: None })
                }
                Response::InitExit { after_us } => Ok(Observation {
                    forest: Vec::new(),
                    procs: Vec::new(),
                    timings: Timings::default(),
                    init_exited_after: after_us.map(Duration::from_micros),
                }),
                Response::Failed(e) => Err(SysError::from(e)),
            };
        }
    }

    /// The helper's pid (in the runner's namespace), for tests that check
    /// what outlives a case.
    pub fn helper_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Tears the case down: the helper kills PID 1 and waits for the
    /// namespace to empty, then exits. Returns how long it took.
    pub fn close(mut self) -> Duration {
        let t = Instant::now();
        self.shutdown();
        t.elapsed()
    }

    fn shutdown(&mut self) {
        if self.stdin.take().is_none() {
            return;
        }
        // EOF tells the helper to kill PID 1 and wait for the namespace to
        // be gone; past the deadline, kill the helper (PID 1 dies with it).
        if !os::pidfd_wait(self.pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + self.deadline).unwrap_or(false)
        {
            let _ = os::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}
