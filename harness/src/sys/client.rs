//! The runner's handle on one case: a [`Sandbox`] owns the helper process
//! (and through it the namespace and every node), and its `Drop` tears it all
//! down, so a panic or an early return cannot leak a process.
//!
//! The helper is this same binary re-executed as `<exe> __sandbox` (see
//! [`super::sandbox`]) or, for a run of many cases
//! ([`SandboxOptions::pipeline`]), a fork of this thread's sandbox server,
//! `<exe> __sandbox-server` ([`super::server`]), executed once; the caller
//! passes the path of a binary that routes those arguments to
//! [`super::sandbox::main`] and [`super::server::main`] — `reparent` does,
//! and tests use `env!("CARGO_BIN_EXE_reparent")`.
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

use super::sandbox::{Request, RequestRef, Response, SettleHints, Timings};
use super::{os, SysError};
use crate::scenario::{Attrs, Node, Step};

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
    /// Keep the namespace set-up and teardown off the critical path (see
    /// [`finish_thread`]): while a case runs, the next sandbox — a helper
    /// with its namespaces and a bare built-in PID 1 — is made ahead, and a
    /// closed sandbox's teardown goes on while the next case runs. For
    /// many cases in a row (`check`, `bench`); whoever sets it calls
    /// [`finish_thread`] on each thread that started sandboxes before it
    /// reports that the run is over. Off by default.
    pub pipeline: bool,
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
        Ok(SandboxOptions { exe: exe.as_ref().to_path_buf(), deadline, init: None, reap_deadline, pipeline: false })
    }
}

/// What the helper saw after a request.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The canonical tree(s) of the namespace; empty once it is gone.
    pub forest: Vec<Node>,
    /// Where the helper's time went.
    pub timings: Timings,
    /// For [`Sandbox::await_init_exit`]: how long PID 1 took to exit.
    pub init_exited_after: Option<Duration>,
}

/// A helper process, and who reaps it.
enum HelperProc {
    /// Spawned by this runner (`<exe> __sandbox`): our own child.
    Spawned(Child),
    /// Forked by this thread's sandbox server (its pid), which reaps it.
    Served(i32),
}

impl HelperProc {
    fn pid(&self) -> i32 {
        match self {
            HelperProc::Spawned(child) => child.id() as i32,
            HelperProc::Served(pid) => *pid,
        }
    }

    /// Once the helper has exited (its pidfd readable, or SIGKILL sent):
    /// reaps it, or — the server's to reap — waits until it has exited.
    fn reap(&mut self, pidfd: &OwnedFd) {
        match self {
            HelperProc::Spawned(child) => {
                let _ = child.wait();
            }
            HelperProc::Served(_) => {
                // Bounded only because every wait is: SIGKILL has been sent.
                let _ = os::pidfd_wait(pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + KILLED_EXIT);
            }
        }
    }
}

/// How long a helper sent SIGKILL may take to exit before it is given up.
const KILLED_EXIT: Duration = Duration::from_secs(60);

/// One live case: a helper process, its namespaces and its tree.
pub struct Sandbox {
    /// The helper, and a pidfd naming exactly it (taken while it was an
    /// unreaped child of its spawner or server).
    proc: Option<(HelperProc, OwnedFd)>,
    /// The helper's stdin (non-blocking): requests.
    stdin: Option<OwnedFd>,
    /// The helper's stdout: answers, one line each.
    stdout: os::Lines,
    deadline: Duration,
    /// See [`SandboxOptions::pipeline`].
    pipeline: bool,
    /// Whether a user namespace was created (false only for root without one).
    pub userns: bool,
}

impl Sandbox {
    /// Starts a helper (its stdin and stdout are the protocol) without
    /// asking it anything yet: with [`SandboxOptions::pipeline`], a fork
    /// of this thread's sandbox server; otherwise spawned.
    fn spawn(opts: &SandboxOptions) -> Result<Sandbox, SysError> {
        let (proc, pidfd, stdin, stdout) = if opts.pipeline { served_helper(opts)? } else { spawned_helper(opts)? };
        os::set_nonblocking(stdin.as_fd())?;
        Ok(Sandbox {
            proc: Some((proc, pidfd)),
            stdin: Some(stdin),
            stdout: os::Lines::new(stdout),
            deadline: opts.deadline,
            pipeline: opts.pipeline,
            userns: false,
        })
    }

    /// Starts a helper and builds `tree` (rooted at `init`) in a fresh
    /// namespace — with [`SandboxOptions::pipeline`], in the spare made
    /// ahead when it fits (the built-in init with no attributes), and then
    /// the next spare is made.
    pub fn start(opts: &SandboxOptions, tree: &Node) -> Result<(Sandbox, Observation), SysError> {
        let bare_init = opts.init.is_none() && tree.attrs == Attrs::default();
        let t = Instant::now();
        let spare = if opts.pipeline && bare_init { take_spare(opts, tree) } else { None };
        let (sb, obs) = match spare {
            // Built ahead, while the case before ran: what this case waited
            // for it is its set-up time; the build itself was off its path.
            Some(Taken::Built(sb, built)) => {
                let mut obs = built.map_err(build_error)?;
                obs.timings = Timings { setup_us: t.elapsed().as_micros() as u64, ..Timings::default() };
                (sb, obs)
            }
            spare => {
                let waited = t.elapsed();
                let mut sb = match spare {
                    Some(Taken::Ready(sb)) => sb,
                    _ => Sandbox::spawn(opts)?,
                };
                let mut obs = sb
                    .send(&build_request(opts, tree), "Build")
                    .and_then(|()| sb.answer("Build"))
                    .map_err(build_error)?;
                // Waiting for the spare to be ready is this case's set-up time.
                obs.timings.setup_us += waited.as_micros() as u64;
                (sb, obs)
            }
        };
        if opts.pipeline && opts.init.is_none() {
            make_spare(opts);
        }
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
            Request::Setup { .. } => "Setup",
        };
        self.send(req, name)?;
        self.answer(name)
    }

    /// Writes one request.
    fn send(&mut self, req: &impl serde::Serialize, name: &str) -> Result<(), SysError> {
        let mut text = serde_json::to_string(req).map_err(|e| SysError::Protocol(e.to_string()))?;
        text.push('\n');
        let stdin = self.stdin.as_ref().ok_or_else(|| SysError::Protocol("helper closed".into()))?;
        let what = format!("the sandbox helper to read the {name} request");
        if !os::write_all_until(stdin.as_fd(), text.as_bytes(), Instant::now() + self.deadline, &what)? {
            return Err(helper_gone());
        }
        Ok(())
    }

    /// Reads the answer to the `name` request.
    fn answer(&mut self, name: &str) -> Result<Observation, SysError> {
        let what =
            format!("the sandbox helper to answer the {name} request (it has sent nothing for twice the deadline)");
        loop {
            let line = match self.stdout.line(Instant::now() + 2 * self.deadline, &what) {
                Ok(line) => line,
                Err(SysError::Protocol(_)) => return Err(helper_gone()),
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
                Response::Done { forest, timings, userns } => {
                    self.userns = userns;
                    Ok(Observation { forest, timings, init_exited_after: None })
                }
                Response::InitExit { after_us } => Ok(Observation {
                    forest: Vec::new(),
                    timings: Timings::default(),
                    init_exited_after: after_us.map(Duration::from_micros),
                }),
                Response::Ready { userns } => {
                    self.userns = userns;
                    Ok(Observation { forest: Vec::new(), timings: Timings::default(), init_exited_after: None })
                }
                Response::Failed(e) => Err(SysError::from(e)),
            };
        }
    }

    /// The helper's pid (in the runner's namespace), for tests that check
    /// what outlives a case.
    pub fn helper_pid(&self) -> i32 {
        self.proc.as_ref().map_or(0, |(proc, _)| proc.pid())
    }

    /// Tears the case down: the helper kills PID 1 and waits for the
    /// namespace to empty, then exits. Returns how long the caller waited:
    /// with [`SandboxOptions::pipeline`] the teardown goes on in the
    /// background (see [`finish_thread`]), and only a backlog of more than
    /// [`MAX_TEARDOWNS`] is waited for here.
    pub fn close(mut self) -> Duration {
        let t = Instant::now();
        if self.pipeline {
            // EOF tells the helper to kill PID 1 and wait for the namespace
            // to be gone.
            self.stdin = None;
            if let Some((proc, pidfd)) = self.proc.take() {
                let deadline = Instant::now() + self.deadline;
                TEARDOWNS.with_borrow_mut(|v| v.push(Teardown { proc, pidfd, deadline }));
            }
            settle_teardowns(MAX_TEARDOWNS);
        } else {
            self.shutdown();
        }
        t.elapsed()
    }

    fn shutdown(&mut self) {
        self.stdin = None;
        if let Some((proc, pidfd)) = self.proc.take() {
            finish_teardown(Teardown { proc, pidfd, deadline: Instant::now() + self.deadline });
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The request that builds `tree` under `opts`.
fn build_request<'a>(opts: &'a SandboxOptions, tree: &'a Node) -> RequestRef<'a> {
    RequestRef::Build {
        tree,
        deadline_ms: opts.deadline.as_millis() as u64,
        init: &opts.init,
        reap_deadline_ms: opts.reap_deadline.as_millis() as u64,
    }
}

/// A failure to build the starting tree as the caller sees it: a node that
/// fails, or a wait that times out, while the tree is built is that; any
/// other failure means the sandbox itself could not be made.
fn build_error(e: SysError) -> SysError {
    match e {
        SysError::Node { .. }
        | SysError::Timeout(_)
        | SysError::Setup(_)
        | SysError::Resource { .. }
        | SysError::NotReaped { .. } => e,
        other => SysError::Setup(other.to_string()),
    }
}

fn helper_gone() -> SysError {
    SysError::Protocol("the sandbox helper exited unexpectedly (see its stderr above)".into())
}

/// How many closed sandboxes of one thread may still be tearing down
/// while it goes on ([`SandboxOptions::pipeline`]).
pub const MAX_TEARDOWNS: usize = 2;

/// A closed sandbox whose helper has been told to tear down (EOF on its
/// stdin) and has not exited yet.
struct Teardown {
    proc: HelperProc,
    pidfd: OwnedFd,
    /// Past this, the helper is killed (its PID 1, and with it the
    /// namespace, dies with it).
    deadline: Instant,
}

/// A spare sandbox made ahead ([`SandboxOptions::pipeline`]): a helper
/// asked to `Setup`, whose answer is read when a case takes it.
struct Spare {
    sb: Sandbox,
    exe: std::path::PathBuf,
    deadline: Duration,
    reap_deadline: Duration,
    /// The tree it was also asked to build ([`build_ahead`]), whose answer
    /// follows `Setup`'s.
    built: Option<Node>,
}

/// What a case takes from the spare: a sandbox ready for its tree, or one
/// that has built it already, with the answer to that `Build`.
enum Taken {
    Ready(Sandbox),
    Built(Sandbox, Result<Observation, SysError>),
}

/// Trees of at most this many processes are built ahead: the next case's
/// tree lives beside the running case's for a while, and a large one
/// would double what a case needs of the machine's pid and process limits.
pub const BUILD_AHEAD_MAX: usize = 256;

thread_local! {
    // Sandboxes belong to the thread that started them: a helper dies with
    // its spawning thread (`os::spawn_linked_self`).
    static SPARE: std::cell::RefCell<Option<Spare>> = const { std::cell::RefCell::new(None) };
    static NEXT: std::cell::RefCell<Option<Node>> = const { std::cell::RefCell::new(None) };
    static TEARDOWNS: std::cell::RefCell<Vec<Teardown>> = const { std::cell::RefCell::new(Vec::new()) };
    static SERVER: std::cell::RefCell<Option<Server>> = const { std::cell::RefCell::new(None) };
}

/// Waits until the helper of `t` has exited — after its namespace is gone —
/// or kills it at its deadline, and reaps it.
fn finish_teardown(mut t: Teardown) {
    if !os::pidfd_wait(t.pidfd.as_fd(), os::PidfdState::Exited, t.deadline).unwrap_or(false) {
        let _ = os::pidfd_send_signal(t.pidfd.as_fd(), libc::SIGKILL);
    }
    t.proc.reap(&t.pidfd);
}

/// Reaps the teardowns of this thread that are over, then waits for the
/// oldest until at most `keep` are left.
fn settle_teardowns(keep: usize) {
    let mut waiting = TEARDOWNS.with_borrow_mut(std::mem::take);
    waiting.retain_mut(|t| {
        let done = os::pidfd_state(t.pidfd.as_fd()).map_or(true, |s| s != os::PidfdState::Alive);
        if done {
            t.proc.reap(&t.pidfd);
        }
        !done
    });
    while waiting.len() > keep {
        finish_teardown(waiting.remove(0));
    }
    TEARDOWNS.with_borrow_mut(|v| v.append(&mut waiting));
}

/// This thread's spare, if it was made with the same options, its set-up
/// succeeded and, if it built a tree ahead, that tree is `tree`; otherwise
/// it is closed and `None` returned, and the caller starts a sandbox the
/// ordinary way (which reports any set-up failure as it should).
fn take_spare(opts: &SandboxOptions, tree: &Node) -> Option<Taken> {
    let spare = SPARE.with_borrow_mut(Option::take)?;
    if spare.exe != opts.exe
        || spare.deadline != opts.deadline
        || spare.reap_deadline != opts.reap_deadline
        || spare.built.as_ref().is_some_and(|b| b != tree)
    {
        spare.sb.close();
        return None;
    }
    let mut sb = spare.sb;
    if sb.answer("Setup").is_err() {
        sb.close();
        return None;
    }
    if spare.built.is_none() {
        return Some(Taken::Ready(sb));
    }
    let built = sb.answer("Build");
    Some(Taken::Built(sb, built))
}

/// Names the tree of this thread's next [`Sandbox::start`] ahead of the
/// current one, with [`SandboxOptions::pipeline`]: the spare made when the
/// current case starts builds it too, while the current case runs, so the
/// next case finds its tree standing (if it starts with that very tree;
/// any other tree, and the spare is dropped). Only for the built-in init
/// with no attributes and trees of at most [`BUILD_AHEAD_MAX`] processes;
/// otherwise ignored.
pub fn build_ahead(tree: &Node) {
    if tree.attrs == Attrs::default() && tree.preorder().len() <= BUILD_AHEAD_MAX {
        NEXT.with_borrow_mut(|n| *n = Some(tree.clone()));
    }
}

/// Makes this thread's next spare, unless it has one: starts a helper and
/// sends it `Setup` — and `Build` for the tree named by [`build_ahead`], if
/// any — without waiting for the answers. A failure here is not reported:
/// the next case starts its sandbox the ordinary way.
fn make_spare(opts: &SandboxOptions) {
    let next = NEXT.with_borrow_mut(Option::take);
    if SPARE.with_borrow(Option::is_some) {
        return;
    }
    let Ok(mut sb) = Sandbox::spawn(opts) else { return };
    let setup = Request::Setup {
        deadline_ms: opts.deadline.as_millis() as u64,
        reap_deadline_ms: opts.reap_deadline.as_millis() as u64,
    };
    if sb.send(&setup, "Setup").is_err() {
        return;
    }
    let built = next.filter(|t| sb.send(&build_request(opts, t), "Build").is_ok());
    let spare = Spare { sb, exe: opts.exe.clone(), deadline: opts.deadline, reap_deadline: opts.reap_deadline, built };
    SPARE.with_borrow_mut(|s| *s = Some(spare));
}

/// Ends this thread's pipelined sandboxes ([`SandboxOptions::pipeline`]):
/// closes its spare and waits until every sandbox it closed is gone, so
/// that no process of the run outlives the call. Call it on every thread
/// that started sandboxes with `pipeline`, before the run is reported
/// over; a thread that exits without it still takes its helpers with it
/// (their parent-death signal), but not synchronously.
pub fn finish_thread() {
    NEXT.with_borrow_mut(|n| *n = None);
    if let Some(spare) = SPARE.with_borrow_mut(Option::take) {
        spare.sb.close();
    }
    settle_teardowns(0);
    // Every helper it forked is gone: the server can go.
    drop(SERVER.with_borrow_mut(Option::take));
}

/// This thread's sandbox server ([`super::server`]): it forks the helpers
/// of [`SandboxOptions::pipeline`] runs, and dies with the thread.
struct Server {
    exe: std::path::PathBuf,
    child: Child,
    pidfd: OwnedFd,
    /// Our end of its stdin, a `SOCK_SEQPACKET` pair (taken to close it).
    sock: Option<OwnedFd>,
    deadline: Duration,
}

/// A helper just started, spawned or served: its process, a pidfd of it,
/// and the runner's ends of its stdin and stdout.
type Started = (HelperProc, OwnedFd, OwnedFd, OwnedFd);

impl Server {
    fn start(opts: &SandboxOptions) -> Result<Server, SysError> {
        let (ours, theirs) = os::seqpacket_pair()?;
        let mut cmd = Command::new(&opts.exe);
        cmd.arg(super::server::SERVER_ARG).stdin(Stdio::from(theirs)).stdout(Stdio::null()).stderr(Stdio::inherit());
        let what = format!("{} {}", opts.exe.display(), super::server::SERVER_ARG);
        let (child, pidfd) = os::spawn_linked_self(&mut cmd, &what)?;
        Ok(Server { exe: opts.exe.clone(), child, pidfd, sock: Some(ours), deadline: opts.deadline })
    }

    /// Asks for a helper. `Ok(None)`: the server is gone.
    fn fork(&self) -> Result<Option<Started>, SysError> {
        let sock = self.sock.as_ref().ok_or_else(|| SysError::Protocol("sandbox server closed".into()))?;
        if os::send_with_fds(sock.as_fd(), super::server::REQUEST, &[], false)? != os::Sent::Sent {
            return Ok(None);
        }
        let deadline = Instant::now() + self.deadline;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if os::poll_one(sock.as_fd(), libc::POLLIN, os::millis_until(deadline).max(1))? == 0 {
                return Err(SysError::Timeout("the sandbox server to fork a helper".into()));
            }
            let (n, mut fds) = match os::recv_with_fds(sock.as_fd(), &mut buf, 3)? {
                os::Recv::Msg(n, fds) => (n, fds),
                os::Recv::Again => continue,
                os::Recv::Eof => return Ok(None),
            };
            let msg = &buf[..n];
            return match msg {
                [b'+', pid @ ..] if fds.len() == 3 => {
                    let pid = i32::from_ne_bytes(pid.try_into().map_err(|_| bad_answer(msg, 3))?);
                    let (pidfd, stdout, stdin) = (fds.remove(2), fds.remove(1), fds.remove(0));
                    Ok(Some((HelperProc::Served(pid), pidfd, stdin, stdout)))
                }
                [b'-', json @ ..] if fds.is_empty() => {
                    let e: super::WireError = serde_json::from_slice(json).map_err(|_| bad_answer(msg, 0))?;
                    Err(SysError::from(e))
                }
                _ => Err(bad_answer(msg, fds.len())),
            };
        }
    }
}

fn bad_answer(msg: &[u8], fds: usize) -> SysError {
    SysError::Protocol(format!(
        "undecodable answer from the sandbox server ({fds} descriptors): {}",
        super::excerpt(msg)
    ))
}

impl Drop for Server {
    /// EOF on its socket ends the server; it is waited for (killed at the
    /// deadline) and reaped.
    fn drop(&mut self) {
        drop(self.sock.take());
        if !os::pidfd_wait(self.pidfd.as_fd(), os::PidfdState::Exited, Instant::now() + self.deadline).unwrap_or(false)
        {
            let _ = os::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A helper spawned as `<exe> __sandbox`, our own child.
fn spawned_helper(opts: &SandboxOptions) -> Result<Started, SysError> {
    let mut cmd = Command::new(&opts.exe);
    cmd.arg(HELPER_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // Our own unreaped child: its pid cannot be reused, so this pidfd
    // names exactly it. Without one there is no signal: EOF on its stdin
    // makes the helper, which has built nothing yet, exit by itself.
    let (mut child, pidfd) = os::spawn_linked_self(&mut cmd, &format!("{} {HELPER_ARG}", opts.exe.display()))?;
    let stdin: OwnedFd = child.stdin.take().ok_or_else(|| SysError::Protocol("no stdin".into()))?.into();
    let stdout: OwnedFd = child.stdout.take().ok_or_else(|| SysError::Protocol("no stdout".into()))?.into();
    Ok((HelperProc::Spawned(child), pidfd, stdin, stdout))
}

/// A helper forked by this thread's server, which is started first if need
/// be — and once more if it turns out to be gone. A server that fails is
/// ended and the failure returned.
fn served_helper(opts: &SandboxOptions) -> Result<Started, SysError> {
    for _ in 0..2 {
        let server = match SERVER.with_borrow_mut(Option::take) {
            Some(s) if s.exe == opts.exe && s.deadline == opts.deadline => s,
            old => {
                drop(old);
                Server::start(opts)?
            }
        };
        if let Some(helper) = server.fork()? {
            SERVER.with_borrow_mut(|s| *s = Some(server));
            return Ok(helper);
        }
    }
    Err(SysError::Protocol("the sandbox server exited twice before it could fork a helper".into()))
}
