//! The sandbox helper: the process that owns one case's namespaces.
//!
//! The runner (a test binary or `reparent`) is usually multi-threaded, and
//! a multi-threaded process may not `unshare(CLONE_NEWUSER)`. So the runner
//! re-executes its own binary as `reparent __sandbox` (or, for a run of
//! many cases, has its sandbox server fork one: [`super::server`]), a
//! single-threaded helper that:
//!
//! 1. calls `setsid()`, so every process of the case is in one session and
//!    one process group of its own (an orphaned one: see kernel-rules.md R5);
//! 2. unshares user + PID + mount namespaces (the user namespace is skipped
//!    only when running as root on a kernel that refuses it), maps itself to
//!    root inside, and makes every mount private;
//! 3. forks PID 1 of the new namespace, which mounts a fresh `/proc` (in the
//!    private mount namespace the helper shares) and becomes the built-in
//!    init node;
//! 4. serves the runner's requests, one JSON line each on stdin/stdout:
//!    build the tree, run a step and settle, observe.
//!
//! Lifetime: the runner sets `PR_SET_PDEATHSIG(SIGKILL)` on the helper, and
//! PID 1 sets it too (and checks that the helper still lived when it did:
//! `os::fork_run_linked`), so the death of the runner — even by SIGKILL — kills
//! the helper, whose death kills PID 1, whose death makes the kernel kill
//! every process of the namespace (`zap_pid_ns_processes()`, R6.3) — nested
//! namespaces and injected processes included, since each has a pid in it
//! (R6.9). On EOF
//! of stdin the helper kills PID 1 itself and waits until its pidfd is
//! readable, which is after the whole namespace is gone (R9.2), before it
//! exits. Every signal goes through a pidfd the helper holds.
//!
//! Settling after a step uses only the kernel's own ordering: pidfd
//! readiness for every process that died (after which its children have
//! their new parent and every signal the death causes has been generated,
//! R9.2), EOF on a node's channel for a death nobody predicted, an answered
//! ping for a node that lives (it has returned to user space, so every
//! signal sent before has been acted on and its handlers have run; pings go
//! out again after each round of deaths), and EPOLLHUP for every zombie
//! that a reaping parent will collect. Three things offer no event, and
//! are re-read from `/proc`, yielding the CPU between reads: a stop, the
//! resumption of a process stopped before the step, and a namespace init
//! held in `zap_pid_ns_processes()` by an injected zombie (R6.4), whose
//! pidfd never becomes readable — for the first and last the runner says
//! which processes to expect ([`SettleHints`]). Deadlines only turn a hang
//! into a failure that names what it waited for.
//!
//! Signals to nodes go through the pidfds the helper holds; the helper sits
//! outside every namespace of the case, so `kill` is always sent from an
//! ancestor namespace.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::channel::{self, Command, Received, Reply, SpawnOrder};
use super::observe::{self, Known, ProcStat};
use super::{node, os, SysError, WireError};
use crate::scenario::{Attrs, Node, Signal, Step, INIT};

/// A request from the runner.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Create the namespaces and the starting tree. With `init`, PID 1 is
    /// that command (an init under test) instead of the built-in init.
    Build {
        #[serde(with = "super::flat::tree")]
        tree: Node,
        deadline_ms: u64,
        #[serde(default)]
        init: Option<Vec<String>>,
        /// With `init`: how long it may leave an adopted zombie unreaped.
        #[serde(default)]
        reap_deadline_ms: u64,
    },
    /// Create the namespaces and PID 1 — the built-in init, with no
    /// attributes — before the tree is known: a spare sandbox, made while
    /// the runner still runs another case. The `Build` that follows builds
    /// the tree below that PID 1.
    Setup { deadline_ms: u64, reap_deadline_ms: u64 },
    /// Wait at most `within_ms` for PID 1, an init under test, to exit.
    AwaitInitExit { within_ms: u64 },
    /// Run one step, then settle as `hints` say.
    Step { step: Step, hints: SettleHints },
    /// Observe the namespace again.
    Observe,
}

/// [`Request::Build`] as the runner writes it: the same JSON, from a
/// borrowed tree — a deep tree is never cloned, since a clone of a `Node`
/// recurses once per level.
#[derive(Debug, Serialize)]
pub enum RequestRef<'a> {
    Build {
        #[serde(serialize_with = "tree_ref")]
        tree: &'a Node,
        deadline_ms: u64,
        init: &'a Option<Vec<String>>,
        reap_deadline_ms: u64,
    },
}

fn tree_ref<S: serde::Serializer>(tree: &&Node, s: S) -> Result<S::Ok, S::Error> {
    super::flat::tree::serialize(tree, s)
}

/// What the model predicts about the end of a step that the kernel offers
/// no event for. Everything else the settle learns from the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleHints {
    /// Processes stopped afterwards: a stop wakes no pidfd, so these are
    /// waited for by state, and never pinged (a stopped process cannot
    /// answer).
    pub stopped: Vec<String>,
    /// Processes `exiting` afterwards: a namespace init held in
    /// `zap_pid_ns_processes()` by an injected zombie (R6.4). Its channel
    /// reads EOF but its pidfd never becomes readable, so the settle waits
    /// instead until it is alone in its dying namespace.
    pub exiting: Vec<String>,
    /// PID 1 dies in this step: an init under test, which has no channel
    /// whose EOF would say so, exiting by its policy when its main child
    /// has exited (or killed). The settle waits for its pidfd, readable once
    /// the namespace is empty (R6.3, R9.2).
    #[serde(default)]
    pub init_exits: bool,
}

/// Time spent in each phase, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Timings {
    pub setup_us: u64,
    pub build_us: u64,
    pub act_us: u64,
    pub settle_us: u64,
    pub observe_us: u64,
}

/// The helper's answer to a request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Done {
        #[serde(with = "super::flat::forest")]
        forest: Vec<Node>,
        timings: Timings,
        userns: bool,
    },
    /// The error, which the runner rebuilds as the same [`SysError`].
    Failed(WireError),
    /// Not an answer: the helper is working on the request and has not
    /// hung (see [`super::client`]'s module docs).
    Progress,
    /// The answer to `AwaitInitExit`: microseconds PID 1 took to exit, or
    /// `None` if it still ran when the time was up.
    InitExit { after_us: Option<u64> },
    /// The answer to `Setup`: the namespaces and PID 1 are there.
    Ready { userns: bool },
}

/// One node as the helper knows it.
struct Rec {
    name: String,
    /// Pid as the sandbox's namespace numbers it.
    pid: i32,
    pidfd: OwnedFd,
    /// `None` once the node is known to be dead (or exiting).
    chan: Option<OwnedFd>,
    attrs: Attrs,
    seq: usize,
    /// Signals its handlers reported during the current step (bit n-1).
    got: u64,
    /// Its channel is gone but it has not exited: an init waiting in
    /// `zap_pid_ns_processes()` (R6.4).
    exiting: bool,
    /// For a namespace init: its PID namespace (`/proc/self/ns/pid`, which
    /// it opened itself), for `into=`.
    nsfd: Option<OwnedFd>,
    /// The nodes that are the inits of the nested PID namespaces it has a
    /// pid in, outermost first (empty: only the sandbox's). A `pidns` node
    /// is in its own list. Known from how each node was created: a
    /// process never changes namespace.
    ns: Vec<usize>,
    /// When the helper saw it exit (its pidfd readable): where an init
    /// under test's reap deadline starts.
    exited_at: Option<Instant>,
}

struct Helper {
    nodes: Vec<Rec>,
    /// Creation order of the next spawned node.
    next_seq: usize,
    /// PID 1 is an init under test, not our node.
    foreign_init: bool,
    /// How long the init under test may leave an adopted zombie unreaped.
    reap_deadline: Duration,
    /// Pids that were stopped at the last observation.
    last_stopped: Vec<i32>,
    /// The kernel hangs up a pidfd when its task is reaped (6.9+, R9.1).
    hup_on_reap: bool,
    deadline: Duration,
    /// When the helper last wrote a line to the runner.
    last_line: std::cell::Cell<Instant>,
    userns: bool,
    timings: Timings,
    /// Made by `Setup`, waiting for its `Build`.
    spare: bool,
}

/// One fork the helper asks for.
struct SpawnJob<'a> {
    parent: &'a str,
    name: &'a str,
    order: SpawnOrder,
    /// The `into=` init, whose namespace goes with the order.
    into: Option<&'a str>,
    seq: usize,
}

/// What becomes of a zombie a scan shows (see [`zombie_fate`]).
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// PID 1, whose parent is this helper: reaped here.
    OursToReap,
    /// Reaped by the one named (its parent, or the kernel), or being
    /// released already: waited for.
    Reaped(String),
    /// Nobody will reap it: it stays in the observation.
    Stays,
}

/// The fate of zombie node `z` (`p` as the scan read it; `collector`: who
/// reaps its parent's zombies, if anyone does).
///
/// A zombie that is being released reads state `X` and ppid 0 — and pgid
/// and sid 0: `do_task_stat()` fills those in only while
/// `lock_task_sighand()` succeeds, and `__exit_signal()` has cleared
/// `sighand` by then. Such a zombie is its reaper's (or the kernel's)
/// already, whatever its parent; only node 0, PID 1, whose parent is
/// outside the namespace, reads ppid 0 while it lives on as a zombie, and
/// only that one is this helper's child to reap. (Taking every ppid 0 for
/// PID 1 once made the helper reap a zombie an init under test was
/// releasing at that moment: ECHILD.)
fn zombie_fate(z: usize, p: &ProcStat, collector: impl FnOnce() -> Option<String>) -> Fate {
    if p.state == 'X' {
        return Fate::Reaped("the kernel or its reaper (being released)".into());
    }
    if p.ppid == 0 {
        return if z == 0 { Fate::OursToReap } else { Fate::Reaped("its reaper (being released)".into()) };
    }
    collector().map_or(Fate::Stays, Fate::Reaped)
}

/// Entry point of `reparent __sandbox`. Never returns.
pub fn main() -> ! {
    os::link_to_spawner();
    serve()
}

/// The helper's work, on its stdin and stdout, once it is linked to the
/// process it must die with: its spawner (`reparent __sandbox`), or the
/// sandbox server that forked it ([`super::server`]). Never returns.
pub(super) fn serve() -> ! {
    observe::keep_stat_files_open();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut helper: Option<Helper> = None;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let resp = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Failed(WireError::Protocol(format!("bad request from runner: {e}"))),
            Ok(req) => match handle(&mut helper, req) {
                Ok(r) => r,
                Err(e) => Response::Failed(WireError::from(&e)),
            },
        };
        let Ok(text) = serde_json::to_string(&resp) else { break };
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    if let Some(h) = helper {
        h.teardown();
    }
    os::exit_now(0)
}

fn handle(helper: &mut Option<Helper>, req: Request) -> Result<Response, SysError> {
    match req {
        Request::Setup { deadline_ms, reap_deadline_ms } => {
            if helper.is_some() {
                return Err(SysError::Protocol("Setup sent after Setup or Build".into()));
            }
            let root =
                Node { name: INIT.into(), attrs: Attrs::default(), markers: Default::default(), children: vec![] };
            let h = helper.insert(Helper::start(&root, Duration::from_millis(deadline_ms), None)?);
            h.reap_deadline = Duration::from_millis(reap_deadline_ms);
            h.spare = true;
            Ok(Response::Ready { userns: h.userns })
        }
        Request::Build { tree, deadline_ms, init, reap_deadline_ms } => {
            let h = match helper {
                None => {
                    check_room(&tree)?;
                    let mut h = Helper::start(&tree, Duration::from_millis(deadline_ms), init.as_deref())?;
                    h.reap_deadline = Duration::from_millis(reap_deadline_ms);
                    helper.insert(h)
                }
                Some(h) if h.spare => {
                    // The spare's PID 1 is the built-in init with no
                    // attributes; the runner sends it no other tree.
                    if init.is_some() || tree.attrs != Attrs::default() {
                        return Err(SysError::Protocol(
                            "a spare sandbox's PID 1 is the built-in init with no attributes".into(),
                        ));
                    }
                    check_room(&tree)?;
                    h.spare = false;
                    h.nodes[0].name = tree.name.clone();
                    // Its set-up was not this request's time.
                    h.timings.setup_us = 0;
                    h
                }
                Some(_) => return Err(SysError::Protocol("Build sent twice".into())),
            };
            let t = Instant::now();
            h.build(&tree)?;
            h.timings.build_us = t.elapsed().as_micros() as u64;
            // Building is quiet (see `first_round`): every node said hello
            // after applying its attributes, and nothing died or was sent
            // a signal, so no node is pinged — unless PID 1 is an init
            // under test, which may do anything.
            let first = (!h.foreign_init).then(Vec::new);
            h.settle_and_observe(&SettleHints::default(), first)
        }
        Request::Step { step, hints } => {
            let h =
                helper.as_mut().filter(|h| !h.spare).ok_or_else(|| SysError::Protocol("Step before Build".into()))?;
            h.timings = Timings::default();
            let t = Instant::now();
            h.act(&step)?;
            h.timings.act_us = t.elapsed().as_micros() as u64;
            let first = h.first_round(&step, &hints);
            h.settle_and_observe(&hints, first)
        }
        Request::Observe => {
            let h = helper
                .as_mut()
                .filter(|h| !h.spare)
                .ok_or_else(|| SysError::Protocol("Observe before Build".into()))?;
            h.timings = Timings::default();
            h.observe_response()
        }
        Request::AwaitInitExit { within_ms } => {
            let h = helper
                .as_mut()
                .filter(|h| !h.spare)
                .ok_or_else(|| SysError::Protocol("AwaitInitExit before Build".into()))?;
            let init = h.nodes.first().ok_or_else(|| SysError::Protocol("no PID 1".into()))?;
            let t = Instant::now();
            let until = t + Duration::from_millis(within_ms);
            let exited = os::pidfd_wait(init.pidfd.as_fd(), os::PidfdState::Exited, until)?;
            Ok(Response::InitExit { after_us: exited.then(|| t.elapsed().as_micros() as u64) })
        }
    }
}

/// The nodes of a tree below its root, level by level: every node of a
/// level can be forked at once, since its parent — on the level above — has
/// already applied its attributes. Each entry is (parent, node, position in
/// file order).
fn levels(tree: &Node) -> Vec<Vec<(&str, &Node, usize)>> {
    let pos: HashMap<&str, usize> = tree.preorder().iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
    let pos = &pos;
    let mut out = Vec::new();
    let mut level: Vec<&Node> = vec![tree];
    while !level.is_empty() {
        let next: Vec<(&str, &Node, usize)> = level
            .iter()
            .flat_map(|p| p.children.iter().map(move |c| (p.name.as_str(), c, pos[c.name.as_str()])))
            .collect();
        level = next.iter().map(|(_, c, _)| *c).collect();
        if !next.is_empty() {
            out.push(next);
        }
    }
    out
}

/// Whether the nodes can fork `tree` by themselves
/// ([`Helper::build_by_nodes`]): a tree small enough that the whole of it
/// travels to PID 1 in a few messages, and shallow enough that no node
/// re-executes itself on the way ([`node::FRESH_IMAGE_EVERY`]), which
/// would lose the tree. Other trees are built a level at a time.
fn fits_tree_build(tree: &Node) -> bool {
    const MAX_NODES: usize = 256;
    let mut stack = vec![(tree, 0usize)];
    let mut count = 0;
    while let Some((n, depth)) = stack.pop() {
        count += 1;
        if count > MAX_NODES || depth + 8 >= node::FRESH_IMAGE_EVERY {
            return false;
        }
        stack.extend(n.children.iter().map(|c| (c, depth + 1)));
    }
    true
}

/// A parent-death signal as `PR_GET_PDEATHSIG` reports it (0: none).
fn pdeath(sig: i32) -> Option<Signal> {
    (sig != 0).then_some(Signal(sig))
}

/// The signals of a `Pong` mask, in number order.
fn mask_signals(mask: u64) -> Vec<Signal> {
    Signal::from_mask(mask)
}

impl Helper {
    fn start(tree: &Node, deadline: Duration, foreign: Option<&[String]>) -> Result<Helper, SysError> {
        let t = Instant::now();
        // The node agent an init under test runs as its child: this binary,
        // found before /proc is replaced by the namespace's.
        let exe = std::env::current_exe().map_err(|e| SysError::Syscall {
            call: "readlink(/proc/self/exe)".into(),
            source: e,
            hint: None,
        })?;
        let first = match foreign {
            None => None,
            Some(cmd) => {
                if cmd.is_empty() {
                    return Err(SysError::Setup("--init needs a command".into()));
                }
                if tree.attrs != Attrs::default() || tree.children.len() != 1 {
                    return Err(SysError::Setup(format!(
                        "with an init under test ({}), `init` takes no attributes and has exactly one child in \
                         `tree:`: the process that init runs",
                        cmd.join(" ")
                    )));
                }
                Some(&tree.children[0])
            }
        };
        // (The tree's room on this machine is checked by the Build that
        // brings it: a spare's `Setup` has no tree yet.)
        let userns = os::enter_sandbox_namespaces()?;

        let (helper_end, node_end) = channel::pair()?;
        // The helper is single-threaded (it was just exec'd and has started
        // no thread), as `fork_run` requires. PID 1 takes the node's end of
        // the channel (the helper's copy closes when the closure is
        // dropped) and closes its copy of the helper's.
        let helper_raw = helper_end.as_raw_fd();
        let pid = os::fork_run_linked(move || {
            os::close_inherited(helper_raw);
            match (foreign, first) {
                (Some(cmd), Some(first)) => become_foreign_init(node_end, cmd, &exe, &first.attrs),
                _ => become_init(node_end, &tree.attrs),
            }
        })?;
        // The helper leads the process group init starts in. When a death
        // orphans that group with a stopped member, the kernel sends SIGHUP
        // and SIGCONT to every member, the helper included (R5.2, R5.3):
        // the helper must survive it. (Set after the fork, so that PID 1 —
        // an init under test above all — starts with SIGHUP at SIG_DFL.)
        os::ignore_sighup()?;
        let mut h = Helper {
            nodes: Vec::new(),
            next_seq: 1,
            foreign_init: first.is_some(),
            reap_deadline: deadline,
            last_stopped: Vec::new(),
            hup_on_reap: os::kernel_version() >= (6, 9),
            deadline,
            last_line: std::cell::Cell::new(Instant::now()),
            userns,
            timings: Timings::default(),
            spare: false,
        };
        match first {
            None => h.greet(helper_end, &tree.name, &tree.attrs, 0, Vec::new())?,
            Some(first) => {
                // PID 1 is not ours: no channel, only a pidfd (our own
                // unreaped child, so the pid names exactly it). Its one
                // child is our node agent, which greets us.
                let pidfd = os::pidfd_open(pid)?;
                h.nodes.push(Rec {
                    name: tree.name.clone(),
                    pid: 1,
                    pidfd,
                    chan: None,
                    attrs: Attrs::default(),
                    seq: 0,
                    got: 0,
                    exiting: false,
                    nsfd: None,
                    ns: Vec::new(),
                    exited_at: None,
                });
                h.greet(helper_end, &first.name, &first.attrs, 1, Vec::new())?;
            }
        }
        h.timings.setup_us = t.elapsed().as_micros() as u64;
        Ok(h)
    }

    /// The deadline of a wait that starts now. Every wait starts here, so
    /// this is also where the helper tells the runner it is still working
    /// when it has been quiet for half a deadline.
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        if now.duration_since(self.last_line.get()) >= self.deadline / 2 {
            self.last_line.set(now);
            let text = serde_json::to_string(&Response::Progress).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}").and_then(|_| out.flush());
        }
        now + self.deadline
    }

    /// Receives a new node's hello on its channel — its pid, its subreaper
    /// flag and parent-death signal as the kernel reads them back, whether
    /// it is a namespace init, a pidfd and, from an init, its namespace —
    /// and records it. `ns` lists the
    /// nested namespaces it was forked into (see [`Rec::ns`]).
    fn greet(&mut self, chan: OwnedFd, name: &str, attrs: &Attrs, seq: usize, ns: Vec<usize>) -> Result<(), SysError> {
        let (hello, pidfd, nsfd) = match channel::recv_reply(chan.as_fd(), self.deadline())? {
            Received::Msg((Reply::Hello(h), fds)) if !fds.is_empty() => {
                let mut fds = fds.into_iter();
                (h, fds.next().expect("not empty"), fds.next())
            }
            Received::Msg((Reply::Failed(why), _)) => return Err(SysError::Node { name: name.into(), message: why }),
            Received::Msg((Reply::Exhausted { what, limit }, _)) => return Err(exhausted(name, what, limit)),
            Received::Msg((other, _)) => {
                return Err(SysError::Protocol(format!("{name}: expected hello, got {other:?}")));
            }
            Received::Eof => {
                return Err(SysError::Node {
                    name: name.into(),
                    message: "was not started, or died before it could report (see stderr above)".into(),
                })
            }
            Received::Timeout => return Err(SysError::Timeout(format!("`{name}` to start and report its pid"))),
        };
        // The sandbox's own init is PID 1 by construction, and its
        // parent-death SIGKILL is the sandbox's lifeline, not an attribute.
        let root = seq == 0;
        let ns_init = hello.ns_init && !root;
        let mut ns = ns;
        if ns_init {
            ns.push(self.nodes.len());
        }
        let attrs = Attrs {
            subreaper: hello.subreaper,
            pdeathsig: if root { None } else { pdeath(hello.pdeathsig) },
            pidns: ns_init,
            ..attrs.clone()
        };
        self.nodes.push(Rec {
            name: name.into(),
            pid: hello.pid,
            pidfd,
            chan: Some(chan),
            attrs,
            seq,
            got: 0,
            exiting: false,
            nsfd,
            ns,
            exited_at: None,
        });
        Ok(())
    }

    fn rec(&self, name: &str) -> Result<usize, SysError> {
        self.nodes
            .iter()
            .rposition(|r| r.name == name)
            .ok_or_else(|| SysError::Protocol(format!("no process named `{name}`")))
    }

    /// Sends `cmd` to node `name` and waits for its answer; a `Failed`
    /// answer is an error naming the node.
    fn request(&mut self, name: &str, cmd: Command) -> Result<(Reply, Vec<OwnedFd>), SysError> {
        let i = self.rec(name)?;
        let deadline = self.deadline();
        let what = format!("{cmd:?}");
        let chan = self.chan(i, &what)?;
        match channel::send_command(chan.as_fd(), &cmd, deadline)? {
            channel::Sent::Sent => {}
            channel::Sent::Gone => {
                return Err(SysError::Node { name: name.into(), message: format!("died before it could run {what}") })
            }
            channel::Sent::Full => {
                return Err(SysError::Timeout(format!("`{name}` to read {what} (is it stopped?)")));
            }
        }
        match channel::recv_reply(chan.as_fd(), deadline)? {
            Received::Msg((Reply::Failed(why), _)) => Err(SysError::Node { name: name.into(), message: why }),
            Received::Msg((Reply::Exhausted { what, limit }, _)) => Err(exhausted(name, what, limit)),
            Received::Msg(r) => Ok(r),
            Received::Eof => Err(SysError::Node { name: name.into(), message: format!("died while running {what}") }),
            Received::Timeout => Err(SysError::Timeout(format!("`{name}` to answer {what} (is it stopped?)"))),
        }
    }

    /// Forks the starting tree below PID 1, one level at a time: each node
    /// is still forked by its own parent after that parent applied its
    /// attributes, but parents on one level fork concurrently.
    fn build(&mut self, tree: &Node) -> Result<(), SysError> {
        if !self.foreign_init && fits_tree_build(tree) {
            return self.build_by_nodes(tree);
        }
        for level in levels(tree) {
            // (An init under test already started its one child.)
            let batch: Vec<SpawnJob<'_>> = level
                .iter()
                .filter(|(_, c, _)| self.rec(&c.name).is_err())
                .map(|(p, c, seq)| SpawnJob {
                    parent: p,
                    name: &c.name,
                    order: SpawnOrder { attrs: c.attrs.clone(), thread: None, clone_parent: false, into: false },
                    into: None,
                    seq: *seq,
                })
                .collect();
            self.spawn_batch(batch)?;
        }
        self.next_seq = tree.preorder().len();
        Ok(())
    }

    /// Forks the starting tree below PID 1 with no round trip per level:
    /// PID 1 is sent the whole tree ([`Command::BuildTree`]), and each node
    /// forks its own children — after applying its attributes — then sends
    /// its `Hello` and the channels of its children ([`Reply::Built`]).
    /// The helper greets the new nodes in breadth-first order, each from
    /// its parent's `Built`; a node only ever sends these few small
    /// messages, so nobody waits for the helper meanwhile.
    fn build_by_nodes(&mut self, tree: &Node) -> Result<(), SysError> {
        let pre = tree.preorder();
        let index: HashMap<&str, u32> = pre.iter().enumerate().map(|(i, n)| (n.name.as_str(), i as u32)).collect();
        let mut entries = Vec::with_capacity(pre.len());
        for n in &pre {
            for c in &n.children {
                entries.push((index[c.name.as_str()], index[n.name.as_str()], c));
            }
        }
        entries.sort_by_key(|e| e.0);
        let nodes: Vec<(u32, Option<Attrs>)> = entries
            .iter()
            .map(|(_, parent, c)| (*parent, (c.attrs != Attrs::default()).then(|| c.attrs.clone())))
            .collect();
        // Parts small enough for one message each.
        let mut parts = Vec::new();
        let mut part = channel::TreePart::default();
        let mut size = 0;
        for n in nodes {
            let len = serde_json::to_vec(&n).map_or(64, |v| v.len()) + 1;
            if size + len > 3000 && !part.nodes.is_empty() {
                parts.push(std::mem::take(&mut part));
                size = 0;
            }
            size += len;
            part.nodes.push(n);
        }
        part.last = true;
        parts.push(part);
        let root = self.nodes[0].name.clone();
        for part in parts {
            let last = part.last;
            if !last {
                self.request(&root, Command::BuildTree(part))?;
                continue;
            }
            let deadline = self.deadline();
            let chan = self.chan(0, "build the tree")?;
            match channel::send_command(chan.as_fd(), &Command::BuildTree(part), deadline)? {
                channel::Sent::Sent => {}
                channel::Sent::Gone => {
                    return Err(SysError::Node { name: root, message: "died before it could build the tree".into() })
                }
                channel::Sent::Full => {
                    return Err(SysError::Timeout(format!("`{root}` to read the tree to build (is it stopped?)")))
                }
            }
        }
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(i) = queue.pop_front() {
            loop {
                let deadline = self.deadline();
                let name = self.nodes[i].name.clone();
                let failed = |message: String| SysError::Node { name: name.clone(), message };
                let chan = self.chan(i, "build its children")?;
                let (children, more, fds) = match channel::recv_reply(chan.as_fd(), deadline)? {
                    Received::Msg((Reply::Built { children, more }, fds)) if fds.len() == children.len() => {
                        (children, more, fds)
                    }
                    Received::Msg((Reply::Failed(why), _)) => {
                        return Err(failed(format!("could not fork its children: {why}")))
                    }
                    Received::Msg((Reply::Exhausted { what, limit }, _)) => {
                        return Err(exhausted(&name, format!("forking its children: {what}"), limit))
                    }
                    Received::Msg((other, fds)) => {
                        return Err(SysError::Protocol(format!(
                            "{name}: expected the channels of its children, got {other:?} with {} descriptor(s)",
                            fds.len()
                        )))
                    }
                    Received::Eof => return Err(failed("died before it could fork its children".into())),
                    Received::Timeout => {
                        return Err(SysError::Timeout(format!("`{name}` to fork its children (is it stopped?)")))
                    }
                };
                for (c, fd) in children.into_iter().zip(fds) {
                    let node = pre.get(c as usize).filter(|_| c != 0).ok_or_else(|| {
                        SysError::Protocol(format!("{name}: built a child of index {c}, not in the tree"))
                    })?;
                    let ns = self.nodes[i].ns.clone();
                    self.greet(fd, &node.name, &node.attrs, c as usize, ns)?;
                    queue.push_back(self.nodes.len() - 1);
                }
                if !more {
                    break;
                }
            }
        }
        if self.nodes.len() != pre.len() {
            return Err(SysError::Protocol(format!(
                "the nodes built {} of the tree's {} processes",
                self.nodes.len(),
                pre.len()
            )));
        }
        self.next_seq = pre.len();
        Ok(())
    }

    /// The control channel of node `i`, or why it has none.
    fn chan(&self, i: usize, what: &str) -> Result<&OwnedFd, SysError> {
        let r = &self.nodes[i];
        r.chan.as_ref().ok_or_else(|| SysError::Node {
            name: r.name.clone(),
            message: if i == 0 && self.foreign_init {
                format!("is the init under test, which the harness does not control: it cannot {what}")
            } else {
                format!("is dead and cannot {what}")
            },
        })
    }

    /// Asks each parent to fork its new nodes, then greets each new node.
    ///
    /// One parent may be asked for many forks at once, and its acks may
    /// fill the channel before the helper has sent every order: so orders go
    /// out without blocking, and while any are held back for room the
    /// helper reads acks from every parent, which is what a parent blocked
    /// on its answer waits for (see [`channel`]'s module docs). The
    /// deadline restarts whenever an answer arrives.
    fn spawn_batch(&mut self, batch: Vec<SpawnJob<'_>>) -> Result<(), SysError> {
        struct Pending {
            /// The `into=` init whose namespace goes with the order.
            into: Option<usize>,
            /// (helper's end, node's end) once made; the node's end is
            /// closed once sent.
            ends: Option<(OwnedFd, Option<OwnedFd>)>,
            ns: Vec<usize>,
        }
        let mut pending = Vec::with_capacity(batch.len());
        // Per parent, in order: the jobs whose order is still to go, and
        // those sent and not answered yet.
        let mut parents: Vec<(usize, std::collections::VecDeque<usize>, std::collections::VecDeque<usize>)> =
            Vec::new();
        for (j, job) in batch.iter().enumerate() {
            let i = self.rec(job.parent)?;
            self.chan(i, &format!("fork `{}`", job.name))?;
            let into = job.into.map(|n| self.rec(n)).transpose()?;
            if let Some(n) = into {
                let r = &self.nodes[n];
                if r.nsfd.is_none() {
                    return Err(SysError::Node {
                        name: r.name.clone(),
                        message: format!("is not the init of a PID namespace: `{}` cannot fork into it", job.parent),
                    });
                }
            }
            // The child is born where its forking thread's
            // pid_ns_for_children points: the `into=` init's namespace, or
            // its parent's own.
            let ns = into.map_or_else(|| self.nodes[i].ns.clone(), |n| self.nodes[n].ns.clone());
            pending.push(Pending { into, ends: None, ns });
            match parents.iter_mut().find(|(p, _, _)| *p == i) {
                Some((_, to_send, _)) => to_send.push_back(j),
                None => parents.push((i, [j].into(), Default::default())),
            }
        }
        let mut deadline = self.deadline();
        loop {
            // Send what fits.
            let mut blocked = vec![false; parents.len()];
            for (k, (i, to_send, awaiting)) in parents.iter_mut().enumerate() {
                while let Some(&j) = to_send.front() {
                    let job = &batch[j];
                    let p = &mut pending[j];
                    if p.ends.is_none() {
                        let (helper_end, node_end) = channel::pair()?;
                        p.ends = Some((helper_end, Some(node_end)));
                    }
                    let Some((_, Some(node_end))) = &p.ends else { unreachable!("made above") };
                    let mut pass = vec![node_end.as_fd()];
                    if let Some(nsfd) = p.into.and_then(|n| self.nodes[n].nsfd.as_ref()) {
                        pass.push(nsfd.as_fd());
                    }
                    let order = SpawnOrder { into: p.into.is_some(), ..job.order.clone() };
                    let chan = self.nodes[*i].chan.as_ref().expect("checked above");
                    match channel::try_send_command(chan.as_fd(), &Command::Spawn(order), &pass)? {
                        channel::Sent::Sent => {
                            // The parent has its copy now (or will never
                            // read it); ours would keep the channel open.
                            if let Some((_, node_end)) = &mut p.ends {
                                *node_end = None;
                            }
                            to_send.pop_front();
                            awaiting.push_back(j);
                        }
                        channel::Sent::Full => {
                            blocked[k] = true;
                            break;
                        }
                        channel::Sent::Gone => {
                            return Err(SysError::Node {
                                name: job.parent.into(),
                                message: format!("died before it could fork `{}`", job.name),
                            })
                        }
                    }
                }
            }
            if parents.iter().all(|(_, to_send, awaiting)| to_send.is_empty() && awaiting.is_empty()) {
                break;
            }
            // Wait for answers, or for room where orders are held back.
            let watch: Vec<(BorrowedFd<'_>, i16)> = parents
                .iter()
                .enumerate()
                .map(|(k, (i, _, awaiting))| {
                    let events =
                        if awaiting.is_empty() { 0 } else { libc::POLLIN } | if blocked[k] { libc::POLLOUT } else { 0 };
                    (self.nodes[*i].chan.as_ref().expect("checked above").as_fd(), events)
                })
                .collect();
            let ready = os::poll_each(&watch, os::millis_until(deadline))?;
            drop(watch);
            if ready.iter().all(|&r| r == 0) {
                let (i, _, awaiting) = parents
                    .iter()
                    .find(|(_, _, a)| !a.is_empty())
                    .or_else(|| parents.first())
                    .expect("something is outstanding");
                let name = awaiting.front().map_or("its children", |&j| batch[j].name);
                return Err(SysError::Timeout(format!("`{}` to fork `{name}` (is it stopped?)", self.nodes[*i].name)));
            }
            // Take every answer that is there.
            for (k, (i, _, awaiting)) in parents.iter_mut().enumerate() {
                if ready[k] & !libc::POLLOUT == 0 {
                    continue;
                }
                let parent = &self.nodes[*i];
                let failed = |message: String| SysError::Node { name: parent.name.clone(), message };
                while let Some(&j) = awaiting.front() {
                    let name = batch[j].name;
                    let pchan = parent.chan.as_ref().expect("checked above");
                    match channel::recv_reply(pchan.as_fd(), Instant::now())? {
                        Received::Msg((Reply::Ack(_), _)) => {}
                        Received::Msg((Reply::Failed(why), _)) => {
                            return Err(failed(format!("could not fork `{name}`: {why}")))
                        }
                        Received::Msg((Reply::Exhausted { what, limit }, _)) => {
                            return Err(exhausted(&parent.name, format!("forking `{name}`: {what}"), limit))
                        }
                        Received::Msg((other, _)) => {
                            return Err(SysError::Protocol(format!(
                                "{}: expected the fork's ack, got {other:?}",
                                parent.name
                            )))
                        }
                        Received::Eof => return Err(failed(format!("died before it could fork `{name}`"))),
                        Received::Timeout => break,
                    }
                    awaiting.pop_front();
                    deadline = self.deadline();
                }
            }
        }
        // Every new node has sent its hello on its own channel by now, or
        // is about to: one message each, which never blocks.
        for (job, p) in batch.iter().zip(pending) {
            let Some((chan, _)) = p.ends else { unreachable!("every order was sent") };
            self.greet(chan, job.name, &job.order.attrs, job.seq, p.ns)?;
        }
        Ok(())
    }

    fn act(&mut self, step: &Step) -> Result<(), SysError> {
        match step {
            Step::Kill { targets, signal } => {
                // All signals go out before anything is waited for: the kills
                // race, as the format says. A pidfd signal is process-directed.
                for t in targets {
                    let i = self.rec(t)?;
                    match os::pidfd_send_signal(self.nodes[i].pidfd.as_fd(), signal.0) {
                        Ok(()) => {}
                        // An earlier target's death took this one with it
                        // (a namespace init's zap, a parent-death SIGKILL)
                        // and it is already reaped: the signal has nothing
                        // left to do, which is what the model predicts too.
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(source) => {
                            return Err(SysError::Syscall {
                                call: format!("pidfd_send_signal(`{t}`, {signal})"),
                                source,
                                hint: None,
                            })
                        }
                    }
                }
                Ok(())
            }
            Step::Exit { target, code } => {
                let i = self.rec(target)?;
                // A node already dying has nothing left to do; the settle
                // sees its EOF either way.
                let sent =
                    channel::send_command(self.chan(i, "exit")?.as_fd(), &Command::Exit(*code), self.deadline())?;
                if sent == channel::Sent::Full {
                    return Err(SysError::Timeout(format!("`{target}` to read its exit order (is it stopped?)")));
                }
                Ok(())
            }
            Step::Subreaper { target, on } => {
                let (Reply::Ack(v), _) = self.request(target, Command::Subreaper(*on))? else {
                    return Err(SysError::Protocol(format!("{target}: expected Ack")));
                };
                let i = self.rec(target)?;
                self.nodes[i].attrs.subreaper = v != 0;
                Ok(())
            }
            Step::Spawn { child, parent, thread, clone_parent, into, attrs } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let order =
                    SpawnOrder { attrs: attrs.clone(), thread: *thread, clone_parent: *clone_parent, into: false };
                self.spawn_batch(vec![SpawnJob { parent, name: child, order, into: into.as_deref(), seq }])
            }
            Step::Reap { target } => self.request(target, Command::Reap).map(|_| ()),
            Step::ThreadExit { target, thread } => {
                // Answered once the kernel has finished with the thread (or,
                // for the last one, just before it exits).
                // The main thread's pdeath_signal outlives it: a delayed
                // group leader stays on the thread list until the group is
                // released, and forget_original_parent() sends the signal of
                // every thread on it (R8.3, R4.2). So the attribute stays.
                self.request(target, Command::ThreadExit(*thread))?;
                Ok(())
            }
            Step::Exec { target } => {
                // The answer is the new image's hello: the exec is complete.
                let (Reply::Hello(h), _) = self.request(target, Command::Exec)? else {
                    return Err(SysError::Protocol(format!("{target}: expected the new image's hello")));
                };
                let i = self.rec(target)?;
                let root = self.nodes[i].seq == 0;
                let a = &mut self.nodes[i].attrs;
                a.subreaper = h.subreaper;
                // The scenario's init has the harness's own parent-death
                // SIGKILL (the lifetime chain), which is not one of its
                // attributes.
                if !root {
                    a.pdeathsig = pdeath(h.pdeathsig);
                }
                Ok(())
            }
            Step::Setpgid { target } => self.request(target, Command::Setpgid).map(|_| ()),
            Step::Setsid { target } => self.request(target, Command::Setsid).map(|_| ()),
        }
    }

    /// Whom the first round of pings after `step` must reach (`None`:
    /// every living node).
    ///
    /// - A step that only kills its targets, makes one exit, ends one of
    ///   its threads (`thread-exit`) or execs (which ends every other
    ///   thread, `de_thread()`) can move nobody else but through those
    ///   deaths. A kill or an exit pings its targets: those that die show
    ///   EOF, and the next round pings whoever their deaths can signal. A
    ///   thread's exit or an exec is over when the step's command is
    ///   answered, so the targets and whoever those deaths can signal
    ///   ([`Self::signalled_by`]: a thread's death sends only the
    ///   parent-death signals of the children it forked, R4, and moves
    ///   them, R1.7) are pinged at once.
    /// - A *quiet* step — `subreaper`, `spawn`, `reap`, `setpgid`,
    ///   `setsid` — kills nobody and makes the kernel send no signal: a
    ///   prctl, a fork, a wait that releases a zombie, a change of group or
    ///   session (the orphaned-group signals of R5 come only from an exit,
    ///   `kill_orphaned_pgrp()` in `exit_notify()` and
    ///   `forget_original_parent()`, not from `setpgid()`/`setsid()`). Its
    ///   actor answered the command after its syscall returned, and a new
    ///   node said hello after applying its attributes, so nobody is
    ///   pinged; a death nobody predicted still shows, as every round polls
    ///   the pidfds of the nodes it did not ping.
    /// - A predicted stop or exiting init, an init held exiting from
    ///   before (a reap can release it), a stopped process (SIGHUP and
    ///   SIGCONT to an orphaned group reach anyone) or an init under test
    ///   pings everyone.
    fn first_round(&self, step: &Step, hints: &SettleHints) -> Option<Vec<usize>> {
        if self.foreign_init
            || hints.init_exits
            || !hints.exiting.is_empty()
            || !hints.stopped.is_empty()
            || !self.last_stopped.is_empty()
            || self.nodes.iter().any(|r| r.exiting)
        {
            return None;
        }
        let targets: Vec<usize> = step.names().iter().filter_map(|n| self.rec(n).ok()).collect();
        let mut only = match step {
            Step::Subreaper { .. }
            | Step::Spawn { .. }
            | Step::Reap { .. }
            | Step::Setpgid { .. }
            | Step::Setsid { .. } => return Some(Vec::new()),
            // Their deaths happen after the act returned: this round finds
            // them (EOF), and the next, once they are complete, pings
            // whoever they can have signalled.
            Step::Kill { .. } | Step::Exit { .. } => Vec::new(),
            // Complete when the act returns, their signals sent.
            Step::ThreadExit { .. } | Step::Exec { .. } => self.signalled_by(&targets, false)?,
        };
        only.extend(targets);
        only.sort_unstable();
        only.dedup();
        Some(only)
    }

    /// Waits until the kernel has finished with the step, then observes.
    ///
    /// 1. Processes predicted stopped: re-read their state until it shows
    ///    ([`Self::await_stops`]).
    /// 2. Rounds: ping the nodes `first` names ([`Self::first_round`];
    ///    `None`: every node believed alive and not stopped). An answer
    ///    carries the signals its handlers ran; EOF marks a death. Each
    ///    death is complete — children moved, and the pdeath, SIGCHLD and
    ///    orphaned-pgrp signals it causes generated (R9.2) — when its pidfd
    ///    is readable; then the next round pings whoever those deaths can
    ///    have signalled ([`Self::signalled_by`]), so that those signals
    ///    are handled (and their victims found) before the observation. A
    ///    node stopped before the step that must have been resumed by such
    ///    a death (SIGCONT, R5) is waited for by state and pinged too.
    ///    Rounds end when one finds no new death ([`Self::settle_deaths`]).
    /// 3. Zombies that a reaping parent will collect: wait until reaped
    ///    ([`Self::await_reaps`]); the last scan is the observation.
    fn settle_and_observe(&mut self, hints: &SettleHints, first: Option<Vec<usize>>) -> Result<Response, SysError> {
        let t = Instant::now();
        for r in &mut self.nodes {
            r.got = 0;
        }
        let named = |names: &[String]| -> Vec<usize> { names.iter().filter_map(|s| self.rec(s).ok()).collect() };
        let stopped = named(&hints.stopped);
        let exiting = named(&hints.exiting);
        self.await_stops(&stopped)?;
        let all_dead = self.settle_deaths(&stopped, &exiting, hints.init_exits, first)?;
        let procs = self.await_reaps(&all_dead)?;
        self.last_stopped = procs.iter().filter(|p| p.is_stopped()).map(|p| p.pid).collect();
        self.timings.settle_us = t.elapsed().as_micros() as u64;
        self.respond(procs)
    }

    /// Phase 1 of settling: no pidfd event exists for a stop, so the state
    /// of each node predicted `stopped` is re-read until it shows (or the
    /// node is gone).
    fn await_stops(&self, stopped: &[usize]) -> Result<(), SysError> {
        let deadline = self.deadline();
        for &i in stopped {
            let r = &self.nodes[i];
            loop {
                match observe::stat(r.pid) {
                    Some(s) if s.is_stopped() || s.is_zombie() => break,
                    None => break,
                    _ if os::pidfd_state(r.pidfd.as_fd())? != os::PidfdState::Alive => break,
                    _ => {}
                }
                if Instant::now() > deadline {
                    return Err(SysError::Timeout(format!("`{}` (pid {}) to stop", r.name, r.pid)));
                }
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Phase 2 of settling: rounds of pings and deaths until a round finds
    /// no new death (see [`Self::settle_and_observe`]). `stopped` and
    /// `exiting` are the nodes predicted so. Returns every node that died.
    fn settle_deaths(
        &mut self,
        stopped: &[usize],
        exiting: &[usize],
        init_exits: bool,
        first: Option<Vec<usize>>,
    ) -> Result<Vec<usize>, SysError> {
        // Inits that were exiting and are no longer predicted to be may
        // finish now: they count as deaths of this step.
        let mut dead: Vec<usize> =
            (0..self.nodes.len()).filter(|i| self.nodes[*i].exiting && !exiting.contains(i)).collect();
        // An init under test has no channel to read EOF on: its death is
        // awaited on its pidfd alone.
        if init_exits && self.foreign_init && !dead.contains(&0) {
            dead.push(0);
        }
        let mut all_dead = Vec::new();
        let mut stay_stopped = Vec::new();
        // Whom to ping: everyone in the first round, or those `first`
        // names; after a round of deaths, those the deaths can have
        // signalled.
        let mut only: Option<Vec<usize>> = first;
        let mut round = 0;
        loop {
            self.finish_deaths(&dead, exiting)?;
            all_dead.append(&mut dead);
            // Each round may take as long as one wait may.
            let deadline = self.deadline();
            let mut pinged = Vec::new();
            for i in 0..self.nodes.len() {
                if self.nodes[i].chan.is_none()
                    || stopped.contains(&i)
                    || stay_stopped.contains(&i)
                    || only.as_ref().is_some_and(|o| !o.contains(&i))
                {
                    continue;
                }
                // Only a node stopped at the last observation can still be
                // (one this step stops is predicted, or the ping times out).
                if self.last_stopped.contains(&self.nodes[i].pid)
                    && observe::stat(self.nodes[i].pid).is_some_and(|s| s.is_stopped())
                {
                    // Predicted to run: only a death of this step can
                    // resume it (SIGCONT to an orphaned group), and after
                    // round 0 those are behind us. If it stays stopped, the
                    // comparison will say so.
                    if round == 0 {
                        continue;
                    }
                    if !self.wait_resumed(i, deadline)? {
                        stay_stopped.push(i);
                        continue;
                    }
                }
                let Some(chan) = &self.nodes[i].chan else { continue };
                // One ping per round, each answered before the next round:
                // the channel has room unless the node stopped reading.
                match channel::send_command(chan.as_fd(), &Command::Ping, deadline)? {
                    channel::Sent::Sent => pinged.push(i),
                    channel::Sent::Gone => dead.push(i),
                    channel::Sent::Full => {
                        let r = &self.nodes[i];
                        return Err(SysError::Timeout(format!(
                            "`{}` (pid {}) to read a ping: it neither lives on nor dies (stopped?)",
                            r.name, r.pid
                        )));
                    }
                }
            }
            for &i in &pinged {
                let reply = self.recv_pong(i, deadline)?;
                let r = &mut self.nodes[i];
                match reply {
                    Received::Msg((Reply::Pong(mask), _)) => r.got |= mask,
                    Received::Msg((other, _)) => {
                        return Err(SysError::Protocol(format!("{}: expected pong, got {other:?}", r.name)))
                    }
                    Received::Eof => dead.push(i),
                    Received::Timeout => {
                        return Err(SysError::Timeout(format!(
                            "`{}` (pid {}) to answer a ping: it neither lives on nor dies (stopped?)",
                            r.name, r.pid
                        )))
                    }
                }
            }
            // A node that was not pinged (stopped, or not in this round)
            // but was killed also counts: one poll() over their pidfds.
            let unpinged: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].chan.is_some() && !pinged.contains(&i) && !dead.contains(&i))
                .collect();
            if !unpinged.is_empty() {
                let fds: Vec<_> = unpinged.iter().map(|&i| (self.nodes[i].pidfd.as_fd(), libc::POLLIN)).collect();
                let ready = os::poll_each(&fds, 0)?;
                dead.extend(unpinged.iter().zip(ready).filter(|(_, ev)| *ev != 0).map(|(&i, _)| i));
            }
            if dead.is_empty() {
                break;
            }
            only = self.signalled_by(&dead, !stopped.is_empty());
            round += 1;
        }
        Ok(all_dead)
    }

    /// The answer to a ping from node `i`. The main child of an init under
    /// test shares its channel with PID 1, which passed it on and still
    /// holds its copy: its death shows no EOF while the init lives, so its
    /// pidfd is watched too, and a readable pidfd counts as the EOF.
    fn recv_pong(&self, i: usize, deadline: Instant) -> Result<Received<(Reply, Vec<OwnedFd>)>, SysError> {
        let r = &self.nodes[i];
        let Some(chan) = &r.chan else { return Ok(Received::Eof) };
        if !(self.foreign_init && r.seq == 1) {
            return channel::recv_reply(chan.as_fd(), deadline);
        }
        loop {
            let ready = os::poll_each(
                &[(chan.as_fd(), libc::POLLIN), (r.pidfd.as_fd(), libc::POLLIN)],
                os::millis_until(deadline),
            )?;
            if ready[0] != 0 {
                match channel::recv_reply(chan.as_fd(), Instant::now())? {
                    Received::Timeout if Instant::now() < deadline => continue,
                    got => return Ok(got),
                }
            }
            if ready[1] != 0 {
                return Ok(Received::Eof);
            }
            if Instant::now() >= deadline {
                return Ok(Received::Timeout);
            }
        }
    }

    /// Phase 3 of settling: waits until every zombie that a reaping parent
    /// (or the kernel) will collect is reaped — first those of `all_dead`,
    /// then whatever a scan still shows. Returns the last scan, after which
    /// nothing was waited for: the observation.
    fn await_reaps(&mut self, all_dead: &[usize]) -> Result<Vec<ProcStat>, SysError> {
        let deadline = self.deadline();
        // First the nodes that just died, from their own stat, so that the
        // scan below usually finds nothing left to wait for.
        for &i in all_dead {
            if self.nodes[i].exiting {
                continue;
            }
            let Some(z) = observe::stat(self.nodes[i].pid) else { continue };
            if let Some(parent) = observe::stat(z.ppid).and_then(|p| self.collector(&p)) {
                self.await_reap(i, z.ppid, &parent, deadline)?;
            }
        }
        // Then whatever a scan still shows (zombies that moved to a new
        // parent, PID 1 itself). The last scan, after which nothing was
        // waited for, is the observation.
        loop {
            let procs = scan()?;
            let mut waited = false;
            for p in procs.iter().filter(|p| p.is_zombie()) {
                let Some(z) = self.by_pid(p.pid) else { continue };
                let collector = || procs.iter().find(|q| q.pid == p.ppid).and_then(|q| self.collector(q));
                match zombie_fate(z, p, collector) {
                    Fate::OursToReap => os::reap_pidfd(self.nodes[z].pidfd.as_fd())?,
                    Fate::Reaped(by) => self.await_reap(z, p.ppid, &by, deadline)?,
                    Fate::Stays => continue,
                }
                waited = true;
            }
            if !waited {
                return Ok(procs);
            }
        }
    }

    /// The nodes that the deaths of `dead` can have sent a signal to, once
    /// their pidfds are readable (R9.2): those with a parent-death signal
    /// (R4), and the other members of a dead init's namespace (zap, R6.3).
    /// A death sends SIGHUP and SIGCONT to an orphaned process group only
    /// if it has a stopped member (R5): then anyone (`None`). SIGCHLD, the
    /// only other signal a death sends, is never reported, and the reap it
    /// causes is waited for by other means.
    fn signalled_by(&self, dead: &[usize], stops_predicted: bool) -> Option<Vec<usize>> {
        if stops_predicted || !self.last_stopped.is_empty() {
            return None;
        }
        let inits: Vec<usize> = dead.iter().copied().filter(|&d| self.nodes[d].ns.last() == Some(&d)).collect();
        Some(
            (0..self.nodes.len())
                .filter(|&i| {
                    let r = &self.nodes[i];
                    r.attrs.pdeathsig.is_some() || inits.iter().any(|d| r.ns.contains(d))
                })
                .collect(),
        )
    }

    /// Marks the nodes in `dead` dead and waits until the kernel is done
    /// with each: its pidfd readable (R9.2) or, for an init predicted
    /// `exiting`, alone in its dying namespace.
    fn finish_deaths(&mut self, dead: &[usize], exiting: &[usize]) -> Result<(), SysError> {
        for &i in dead {
            let deadline = self.deadline();
            let r = &mut self.nodes[i];
            r.chan = None;
            // A process that dies in the step reports no signals.
            r.got = 0;
            if exiting.contains(&i) {
                self.wait_exiting(i, deadline)?;
                continue;
            }
            let r = &self.nodes[i];
            if os::pidfd_wait(r.pidfd.as_fd(), os::PidfdState::Exited, deadline)? {
                self.nodes[i].exiting = false;
                self.nodes[i].exited_at.get_or_insert_with(Instant::now);
                continue;
            }
            // Not predicted, but an init may be held in zap all the same:
            // then the comparison, not a timeout, should say so.
            if r.attrs.pidns && self.exiting_settled(i)? {
                self.nodes[i].exiting = true;
                continue;
            }
            if i == 0 && self.foreign_init {
                return Err(SysError::Timeout(
                    "the init under test (pid 1) to exit, as it was observed to do once its main child has \
                     exited (its pidfd readable)"
                        .into(),
                ));
            }
            return Err(SysError::Timeout(format!("`{}` (pid {}) to finish exiting (pidfd readable)", r.name, r.pid)));
        }
        Ok(())
    }

    /// Waits until init `i`, predicted `exiting`, is held in
    /// `zap_pid_ns_processes()` with nothing left to change (see
    /// [`Self::exiting_settled`]) — or has exited after all.
    fn wait_exiting(&mut self, i: usize, deadline: Instant) -> Result<(), SysError> {
        loop {
            if os::pidfd_state(self.nodes[i].pidfd.as_fd())? != os::PidfdState::Alive {
                self.nodes[i].exiting = false;
                return Ok(());
            }
            if self.exiting_settled(i)? {
                self.nodes[i].exiting = true;
                return Ok(());
            }
            if Instant::now() > deadline {
                let r = &self.nodes[i];
                return Err(SysError::Timeout(format!(
                    "`{}` (pid {}) to be left exiting with only injected zombies in its namespace",
                    r.name, r.pid
                )));
            }
            std::thread::yield_now();
        }
    }

    /// Whether init `i` is exiting (`PF_EXITING`, not a zombie) and its
    /// namespace has settled: every other process with a pid in it is a
    /// zombie whose parent lives outside it, which only that parent can
    /// reap (R6.4), and there is at least one. Anything else — a member
    /// still alive, a zombie that zap's `kernel_wait4()` or a dying member
    /// will collect, or no member left at all (zap's wait is over; the init
    /// is about to exit) — is still to change.
    fn exiting_settled(&self, i: usize) -> Result<bool, SysError> {
        let init = &self.nodes[i];
        if !observe::stat(init.pid).is_some_and(|s| s.is_exiting()) {
            return Ok(false);
        }
        let member = |pid: i32| self.by_pid(pid).is_some_and(|j| self.nodes[j].ns.contains(&i));
        // Something must hold it: with no member left, zap's wait is over
        // and the init is about to become a zombie, not settled.
        let mut held = false;
        for p in scan()?.iter().filter(|p| p.pid != init.pid && member(p.pid)) {
            // A nested namespace's init that waits the same way for its own
            // injected zombie holds this one up too: this init's
            // kernel_wait4() waits for it (R6.3, R6.9).
            let nested_init = self.by_pid(p.pid).filter(|&j| j != i && self.nodes[j].ns.last() == Some(&j));
            if let Some(j) = nested_init {
                if p.is_exiting() && self.exiting_settled(j)? {
                    held = true;
                    continue;
                }
            }
            if !p.is_zombie() || p.state == 'X' || p.ppid == init.pid || member(p.ppid) {
                return Ok(false);
            }
            held = true;
        }
        Ok(held)
    }

    /// Waits (re-reading its state) until node `i` is no longer stopped.
    /// `false`: it still is at the deadline, or it is gone.
    fn wait_resumed(&self, i: usize, deadline: Instant) -> Result<bool, SysError> {
        let r = &self.nodes[i];
        loop {
            match observe::stat(r.pid) {
                None => return Ok(false),
                Some(s) if !s.is_stopped() => return Ok(true),
                _ => {}
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }

    /// The name of `parent` if it will reap its exited children now: a node
    /// that reaps (or ignores SIGCHLD) and is neither stopped, exiting nor
    /// dead. A process whose main thread alone has exited still reaps.
    fn collector(&self, parent: &ProcStat) -> Option<String> {
        let node = &self.nodes[self.by_pid(parent.pid)?];
        let reaps = !node.attrs.noreap || node.attrs.sigchld_ignore;
        (reaps && !parent.is_stopped() && !parent.is_zombie() && !parent.is_exiting()).then(|| node.name.clone())
    }

    /// Waits until zombie node `z`, a child of `ppid`, is reaped by
    /// `collector`, or fails naming both. A zombie of an init under test
    /// must be reaped within the reap deadline of its exit (the init's job,
    /// shared/init-gate.md R1); past it the case fails with every zombie
    /// PID 1 has left.
    fn await_reap(&mut self, z: usize, ppid: i32, collector: &str, deadline: Instant) -> Result<(), SysError> {
        let by_init = self.foreign_init && ppid == 1;
        let deadline = if by_init {
            *self.nodes[z].exited_at.get_or_insert_with(Instant::now) + self.reap_deadline
        } else {
            deadline
        };
        let r = &self.nodes[z];
        if wait_reaped(r, self.hup_on_reap, deadline)? {
            return Ok(());
        }
        if by_init {
            return Err(self.not_reaped());
        }
        Err(SysError::Timeout(format!("zombie `{}` (pid {}) to be reaped by {collector}", r.name, r.pid)))
    }

    /// The evidence against an init under test that missed its reap
    /// deadline: every zombie it has now, with how long it has been one.
    fn not_reaped(&self) -> SysError {
        let now = Instant::now();
        let zombies = scan()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.ppid == 1 && p.is_zombie())
            .map(|p| match self.by_pid(p.pid) {
                Some(i) => {
                    let r = &self.nodes[i];
                    let age = r.exited_at.map_or_else(String::new, |t| {
                        format!(", a zombie for {} ms", now.duration_since(t).as_millis())
                    });
                    format!("`{}` (pid {}){age}", r.name, r.pid)
                }
                None => format!("pid {} (not a node of the tree)", p.pid),
            })
            .collect();
        SysError::NotReaped { deadline_ms: self.reap_deadline.as_millis() as u64, zombies }
    }

    /// The node now holding namespace pid `pid` (pids are reused after a
    /// reap, so the newest node that had it).
    fn by_pid(&self, pid: i32) -> Option<usize> {
        self.nodes.iter().rposition(|r| r.pid == pid)
    }

    /// Observes the namespace now.
    fn observe_response(&mut self) -> Result<Response, SysError> {
        let t = Instant::now();
        let procs = scan()?;
        self.timings.observe_us = t.elapsed().as_micros() as u64;
        self.respond(procs)
    }

    /// Renders a scan of the namespace as the response.
    fn respond(&mut self, procs: Vec<ProcStat>) -> Result<Response, SysError> {
        let t = Instant::now();
        let mut known = HashMap::new();
        for p in &procs {
            if let Some(i) = self.by_pid(p.pid) {
                let r = &self.nodes[i];
                known.insert(
                    p.pid,
                    Known { name: &r.name, attrs: r.attrs.clone(), seq: r.seq, got: mask_signals(r.got) },
                );
            }
        }
        let forest = observe::render(&procs, &known);
        self.timings.observe_us += t.elapsed().as_micros() as u64;
        Ok(Response::Done { forest, timings: self.timings, userns: self.userns })
    }

    /// Kills PID 1 and waits until the namespace is gone.
    fn teardown(self) {
        if let Some(init) = self.nodes.first() {
            let _ = os::pidfd_send_signal(init.pidfd.as_fd(), libc::SIGKILL);
            let _ = os::pidfd_wait(init.pidfd.as_fd(), os::PidfdState::Exited, self.deadline());
            let _ = os::reap_pidfd(init.pidfd.as_fd());
        }
    }
}

/// Refuses, before anything is created, a tree the machine's limits cannot
/// hold — rather than fail midway on a fork or a descriptor. The helper
/// holds a pidfd and a channel per process (the soft `RLIMIT_NOFILE` is
/// raised to the hard one for that), and every process and thread takes a
/// pid in the host's namespace too. Limits met later (by `spawn` steps, or
/// by other users of the machine meanwhile) are reported as
/// [`SysError::Resource`] when the call fails.
fn check_room(tree: &Node) -> Result<(), SysError> {
    let nodes = tree.preorder();
    let n = nodes.len() as u64;
    let threads: u64 = nodes.iter().map(|p| u64::from(p.attrs.threads)).sum();
    let namespaces = nodes.iter().filter(|p| p.attrs.pidns).count() as u64;
    let refuse = |what: String, limit: String| Err(SysError::Resource { what, limit });
    // Two per process, the new namespaces', and a few of the helper's own.
    let fds = 2 * n + namespaces + 16;
    let nofile = os::raise_nofile();
    if fds > nofile {
        return refuse(
            format!("a tree of {n} processes needs about {fds} descriptors in the sandbox helper (a pidfd and a channel per process)"),
            format!("RLIMIT_NOFILE {nofile}, its hard limit"),
        );
    }
    let tasks = n + threads;
    let in_use = os::threads_in_use();
    if let (Some(pid_max), Some(in_use)) = (os::sysctl("/proc/sys/kernel/pid_max"), in_use) {
        if tasks > pid_max.saturating_sub(in_use) {
            return refuse(
                format!("a tree of {n} processes and {threads} extra threads needs {tasks} pids"),
                format!("kernel.pid_max {pid_max}, of which {in_use} are in use"),
            );
        }
    }
    if let (Some(max), Some(in_use)) = (os::sysctl("/proc/sys/kernel/threads-max"), in_use) {
        if tasks > max.saturating_sub(in_use) {
            return refuse(
                format!("a tree of {n} processes and {threads} extra threads needs {tasks} tasks"),
                format!("kernel.threads-max {max}, of which {in_use} are in use"),
            );
        }
    }
    // RLIMIT_NPROC does not bind root (kernel/fork.c copy_process()).
    let nproc = os::rlimit(libc::RLIMIT_NPROC).0;
    if !os::is_root() && tasks > nproc {
        return refuse(
            format!("a tree of {n} processes and {threads} extra threads needs {tasks} tasks of this user"),
            format!("RLIMIT_NPROC {nproc}"),
        );
    }
    if let Some(max) = os::sysctl("/proc/sys/user/max_pid_namespaces") {
        if namespaces + 1 > max {
            return refuse(
                format!("a tree with {namespaces} nested PID namespaces needs {} in all", namespaces + 1),
                format!("user.max_pid_namespaces {max}"),
            );
        }
    }
    Ok(())
}

/// A node's resource failure, naming the node.
fn exhausted(name: &str, what: String, limit: String) -> SysError {
    SysError::Resource { what: format!("process `{name}`: {what}"), limit }
}

/// Every process of the namespace, from its /proc.
fn scan() -> Result<Vec<ProcStat>, SysError> {
    observe::scan().map_err(|e| os::syscall_error("read /proc", e, false))
}

/// Waits until a zombie node is reaped. Since 6.9 the kernel hangs up its
/// pidfd then (`__unhash_process()` wakes the pidfd's waiters with
/// EPOLLHUP), and the wait blocks on that event. Older kernels report
/// nothing at reap time, so there `/proc/<pid>` is re-read until it is gone,
/// yielding the CPU to the reaper in between. No process is forked while a
/// step settles, so the pid cannot have been reused meanwhile.
fn wait_reaped(r: &Rec, hup_on_reap: bool, deadline: Instant) -> Result<bool, SysError> {
    if hup_on_reap {
        return os::pidfd_wait(r.pidfd.as_fd(), os::PidfdState::Reaped, deadline);
    }
    loop {
        if os::pidfd_state(r.pidfd.as_fd())? == os::PidfdState::Reaped || observe::stat(r.pid).is_none() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::yield_now();
    }
}

/// What PID 1 does before it is an init, ours or one under test: ties its
/// life to the helper's (should the helper already be gone, the channel
/// reads EOF and init returns), puts every signal back to its default
/// action, makes no core dumps from the core-dump signals scenarios send,
/// leaves the helper's protocol pipes, and mounts the namespace's /proc.
fn prepare_pid1() -> Result<(), SysError> {
    os::prepare_pid1(true)
}

/// PID 1 of the new namespace as the built-in init node.
fn become_init(chan: OwnedFd, attrs: &Attrs) -> ! {
    let fail = |e: String| -> ! {
        let _ = channel::send_reply(chan.as_fd(), &Reply::Failed(e), &[]);
        os::exit_now(111)
    };
    if attrs.pdeathsig.is_some() || attrs.pidns {
        // Its parent-death signal is the sandbox's lifeline (SIGKILL when
        // the helper dies), and it is the namespace's init already.
        fail("`init` takes neither pdeathsig= nor pidns".into());
    }
    if let Err(e) = prepare_pid1() {
        fail(e.to_string());
    }
    node::mark_sandbox_init();
    node::become_node(chan, attrs.clone(), false)
}

/// PID 1 of the new namespace as an init under test: execs `cmd`, followed
/// by this binary's node agent (`<exe> __node`) as the command that init
/// runs. The agent finds its channel through the environment
/// (`node::NODE_FD_ENV`), because an init passes its descriptors on but not
/// its arguments' meaning.
fn become_foreign_init(chan: OwnedFd, cmd: &[String], exe: &std::path::Path, attrs: &Attrs) -> ! {
    let fail = |e: SysError| -> ! {
        let _ = channel::send_reply(chan.as_fd(), &Reply::from_error(&e), &[]);
        os::exit_now(111)
    };
    if let Err(e) = prepare_pid1() {
        fail(e);
    }
    if let Err(e) = os::clear_cloexec(chan.as_fd()) {
        fail(e);
    }
    std::env::set_var(node::NODE_FD_ENV, std::os::fd::AsRawFd::as_raw_fd(&chan).to_string());
    let env = node::NodeEnv { attrs: attrs.clone(), exec: false };
    std::env::set_var(node::NODE_ATTRS_ENV, serde_json::to_string(&env).unwrap_or_default());
    // The node agent's command goes at the place of a `{}` argument, as
    // `reparent gate` puts its workload, or at the end.
    let agent: [std::ffi::OsString; 2] = [exe.into(), node::NODE_ARG.into()];
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for a in &cmd[1..] {
        if a == "{}" {
            args.extend(agent.iter().cloned());
        } else {
            args.push(a.into());
        }
    }
    if !cmd[1..].iter().any(|a| a == "{}") {
        args.extend(agent);
    }
    let err = std::os::unix::process::CommandExt::exec(std::process::Command::new(&cmd[0]).args(args));
    fail(SysError::Syscall { call: format!("execvp({:?})", cmd[0]), source: err, hint: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only PID 1 is the helper's to reap; a zombie that reads ppid 0
    /// otherwise is being released by its reaper right now (`X`, or the
    /// moment before the scan saw `X`), and is waited for, never reaped
    /// here (that was an ECHILD). A zombie whose parent reaps is waited
    /// for; one nobody reaps stays.
    #[test]
    fn only_pid_1_is_reaped_by_the_helper() {
        let zombie = |pid: i32, ppid: i32, state: char| ProcStat {
            pid,
            ppid,
            state,
            pgid: 0,
            sid: 0,
            flags: 0,
            threads: 0,
            live_state: None,
            all_exiting: false,
        };
        let never = || -> Option<String> { panic!("the parent does not matter here") };
        assert_eq!(zombie_fate(0, &zombie(1, 0, 'Z'), never), Fate::OursToReap);
        assert!(matches!(zombie_fate(3, &zombie(7, 0, 'X'), never), Fate::Reaped(_)));
        assert!(matches!(zombie_fate(3, &zombie(7, 0, 'Z'), never), Fate::Reaped(_)));
        assert!(matches!(zombie_fate(3, &zombie(7, 5, 'X'), never), Fate::Reaped(_)));
        assert_eq!(zombie_fate(3, &zombie(7, 5, 'Z'), || Some("p".into())), Fate::Reaped("p".into()));
        assert_eq!(zombie_fate(3, &zombie(7, 5, 'Z'), || None), Fate::Stays);
    }

    /// The runner writes `Build` from a borrowed tree; the helper must read
    /// it as the `Request` it is.
    #[test]
    fn a_build_written_from_a_borrowed_tree_reads_back_as_the_request() {
        let tree = crate::scenario::parse("t.tree", "tree:\n  init\n    a subreaper\n      b\n    c\n").unwrap().tree;
        let init = Some(vec!["/bin/tini".to_string(), "--".to_string()]);
        let text =
            serde_json::to_string(&RequestRef::Build { tree: &tree, deadline_ms: 7, init: &init, reap_deadline_ms: 9 })
                .unwrap();
        match serde_json::from_str::<Request>(&text).unwrap() {
            Request::Build { tree: got, deadline_ms: 7, init: got_init, reap_deadline_ms: 9 } => {
                assert_eq!(got, tree);
                assert_eq!(got_init, init);
            }
            other => panic!("{other:?}"),
        }
    }
}
