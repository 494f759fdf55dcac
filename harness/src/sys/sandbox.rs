//! The sandbox helper: the process that owns one case's namespaces.
//!
//! The runner (a test binary or `reparent`) is usually multi-threaded, and
//! a multi-threaded process may not `unshare(CLONE_NEWUSER)`. So the runner
//! re-executes its own binary as `reparent __sandbox`, a single-threaded
//! helper that:
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
//! PID 1 sets it too, so the death of the runner — even by SIGKILL — kills
//! the helper, whose death kills PID 1, whose death makes the kernel kill
//! every process of the namespace (`zap_pid_ns_processes()`, R6.3). On EOF
//! of stdin the helper kills PID 1 itself and waits until its pidfd is
//! readable, which is after the whole namespace is gone (R9.2), before it
//! exits. Every signal goes through a pidfd the helper holds.
//!
//! Settling after a step uses only the kernel's own ordering: pidfd
//! readiness for every process that died (after which its children have
//! their new parent, R9.2), EOF on a node's channel for a death nobody
//! predicted, an answered ping for a node that lives (it has returned to
//! user space, so every signal sent before has been acted on), and EPOLLHUP
//! for every zombie that a reaping parent will collect. The one exception
//! is a stop: the kernel offers no pidfd event for it, so the helper
//! re-reads `/proc/<pid>/stat` until the state is `T`, yielding the CPU
//! between reads. Deadlines only turn a hang into a failure that names what
//! it waited for.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::channel::{self, Command, Received, Reply};
use super::observe::{self, Known, ProcStat};
use super::{node, os, SysError};
use crate::scenario::{Attrs, Node, Step};

/// A request from the runner.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Create the namespaces and the starting tree. With `init`, PID 1 is
    /// that command (an init under test) instead of the built-in init.
    Build {
        tree: Node,
        deadline_ms: u64,
        #[serde(default)]
        init: Option<Vec<String>>,
    },
    /// Run one step; `stopped` names the processes expected to be stopped
    /// afterwards (those are waited for by state, not by a ping).
    Step { step: Step, stopped: Vec<String> },
    /// Observe the namespace again.
    Observe,
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
    Done { forest: Vec<Node>, procs: Vec<ProcStat>, timings: Timings, userns: bool },
    Failed { message: String },
}

/// One node as the helper knows it.
struct Rec {
    name: String,
    /// Pid inside the namespace.
    pid: i32,
    pidfd: OwnedFd,
    /// `None` once the node is known to be dead.
    chan: Option<OwnedFd>,
    attrs: Attrs,
    seq: usize,
}

struct Helper {
    nodes: Vec<Rec>,
    /// Creation order of the next spawned node.
    next_seq: usize,
    /// PID 1 is an init under test, not our node.
    foreign_init: bool,
    /// Pids that were stopped at the last observation.
    last_stopped: Vec<i32>,
    /// The kernel hangs up a pidfd when its task is reaped (6.9+, R9.1).
    hup_on_reap: bool,
    deadline: Duration,
    userns: bool,
    timings: Timings,
}

/// Entry point of `reparent __sandbox`. Never returns.
pub fn main() -> ! {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut helper: Option<Helper> = None;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let resp = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Failed { message: format!("bad request from runner: {e}") },
            Ok(req) => match handle(&mut helper, req) {
                Ok(r) => r,
                Err(e) => Response::Failed { message: e.to_string() },
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
        Request::Build { tree, deadline_ms, init } => {
            if helper.is_some() {
                return Err(SysError::Protocol("Build sent twice".into()));
            }
            let h = helper.insert(Helper::start(&tree, Duration::from_millis(deadline_ms), init.as_deref())?);
            let t = Instant::now();
            h.build(&tree)?;
            h.timings.build_us = t.elapsed().as_micros() as u64;
            h.settle_and_observe(&[])
        }
        Request::Step { step, stopped } => {
            let h = helper.as_mut().ok_or_else(|| SysError::Protocol("Step before Build".into()))?;
            h.timings = Timings::default();
            let t = Instant::now();
            h.act(&step)?;
            h.timings.act_us = t.elapsed().as_micros() as u64;
            h.settle_and_observe(&stopped)
        }
        Request::Observe => {
            let h = helper.as_mut().ok_or_else(|| SysError::Protocol("Observe before Build".into()))?;
            h.timings = Timings::default();
            h.observe_response()
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

fn attr_bits(a: &Attrs) -> u8 {
    let mut b = 0;
    if a.subreaper {
        b |= channel::ATTR_SUBREAPER;
    }
    if a.noreap {
        b |= channel::ATTR_NOREAP;
    }
    if a.sigchld_ignore {
        b |= channel::ATTR_SIGCHLD_IGNORE;
    }
    b
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
        os::setsid()?;
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let userns = match os::unshare(
            libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS,
            "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS",
        ) {
            Ok(()) => true,
            Err(e) if uid == 0 => {
                // Root can do without a user namespace.
                os::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS, "CLONE_NEWPID|CLONE_NEWNS").map_err(|_| e)?;
                false
            }
            Err(e) => return Err(e),
        };
        if userns {
            os::write_file("/proc/self/setgroups", "deny")?;
            os::write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
            os::write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
        }
        os::mount("none", "/", None, libc::MS_REC | libc::MS_PRIVATE)?;

        let (helper_end, node_end) = channel::pair()?;
        // SAFETY: the helper is single-threaded (it was just exec'd and has
        // started no thread).
        let pid = unsafe { os::fork()? };
        if pid == 0 {
            drop(helper_end);
            match (foreign, first) {
                (Some(cmd), Some(first)) => become_foreign_init(node_end, cmd, &exe, attr_bits(&first.attrs)),
                _ => become_init(node_end, attr_bits(&tree.attrs)),
            }
        }
        drop(node_end);
        let mut h = Helper {
            nodes: Vec::new(),
            next_seq: 1,
            foreign_init: first.is_some(),
            last_stopped: Vec::new(),
            hup_on_reap: os::kernel_version() >= (6, 9),
            deadline,
            userns,
            timings: Timings::default(),
        };
        match first {
            None => h.greet(helper_end, &tree.name, &tree.attrs, 0)?,
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
                });
                h.greet(helper_end, &first.name, &first.attrs, 1)?;
            }
        }
        h.timings.setup_us = t.elapsed().as_micros() as u64;
        Ok(h)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.deadline
    }

    /// Receives a new node's hello on its channel — its pid, its subreaper
    /// flag as the kernel reads it back, and a pidfd — and records it.
    fn greet(&mut self, chan: OwnedFd, name: &str, attrs: &Attrs, seq: usize) -> Result<(), SysError> {
        let (pid, subreaper, pidfd) = match channel::recv_reply(chan.as_fd(), self.deadline())? {
            Received::Msg(Reply::Hello(pid, subreaper, pidfd)) => (pid, subreaper, pidfd),
            Received::Msg(Reply::Failed(why)) => return Err(SysError::Node { name: name.into(), message: why }),
            Received::Msg(other) => {
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
        let attrs = Attrs { subreaper, ..attrs.clone() };
        self.nodes.push(Rec { name: name.into(), pid, pidfd, chan: Some(chan), attrs, seq });
        Ok(())
    }

    fn rec(&self, name: &str) -> Result<usize, SysError> {
        self.nodes
            .iter()
            .rposition(|r| r.name == name)
            .ok_or_else(|| SysError::Protocol(format!("no process named `{name}`")))
    }

    fn request(&mut self, name: &str, cmd: Command) -> Result<Reply, SysError> {
        let i = self.rec(name)?;
        let deadline = self.deadline();
        let chan = self.chan(i, &format!("{cmd:?}"))?;
        if !channel::send_command(chan.as_fd(), cmd)? {
            return Err(SysError::Node { name: name.into(), message: format!("died before it could run {cmd:?}") });
        }
        match channel::recv_reply(chan.as_fd(), deadline)? {
            Received::Msg(Reply::Failed(why)) => Err(SysError::Node { name: name.into(), message: why }),
            Received::Msg(r) => Ok(r),
            Received::Eof => Err(SysError::Node { name: name.into(), message: format!("died while running {cmd:?}") }),
            Received::Timeout => Err(SysError::Timeout(format!("`{name}` to answer {cmd:?} (is it stopped?)"))),
        }
    }

    /// Forks the starting tree below PID 1, one level at a time: each node
    /// is still forked by its own parent after that parent applied its
    /// attributes, but parents on one level fork concurrently.
    fn build(&mut self, tree: &Node) -> Result<(), SysError> {
        for level in levels(tree) {
            // (An init under test already started its one child.)
            let batch: Vec<(&str, &str, &Attrs, usize)> = level
                .iter()
                .filter(|(_, c, _)| self.rec(&c.name).is_err())
                .map(|(p, c, seq)| (*p, c.name.as_str(), &c.attrs, *seq))
                .collect();
            self.spawn_batch(&batch)?;
        }
        self.next_seq = tree.preorder().len();
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

    /// Asks each parent to fork its new node, then collects every hello.
    fn spawn_batch(&mut self, batch: &[(&str, &str, &Attrs, usize)]) -> Result<(), SysError> {
        let mut pending = Vec::with_capacity(batch.len());
        for &(parent, name, attrs, seq) in batch {
            let i = self.rec(parent)?;
            let (helper_end, node_end) = channel::pair()?;
            let chan = self.chan(i, &format!("fork `{name}`"))?;
            if !channel::send_command_with(chan.as_fd(), Command::Spawn(attr_bits(attrs)), Some(node_end.as_fd()))? {
                return Err(SysError::Node {
                    name: parent.into(),
                    message: format!("died before it could fork `{name}`"),
                });
            }
            pending.push((name, attrs, seq, helper_end));
        }
        for (name, attrs, seq, chan) in pending {
            self.greet(chan, name, attrs, seq)?;
        }
        Ok(())
    }

    fn act(&mut self, step: &Step) -> Result<(), SysError> {
        match step {
            Step::Kill { targets, signal } => {
                // All signals go out before anything is waited for: the kills
                // race, as the format says.
                for t in targets {
                    let i = self.rec(t)?;
                    os::pidfd_send_signal(self.nodes[i].pidfd.as_fd(), signal.0).map_err(|source| {
                        SysError::Syscall { call: format!("pidfd_send_signal(`{t}`, {signal})"), source, hint: None }
                    })?;
                }
                Ok(())
            }
            Step::Exit { target, code } => {
                let i = self.rec(target)?;
                // A node already dying has nothing left to do; the settle
                // sees its EOF either way.
                channel::send_command(self.chan(i, "exit")?.as_fd(), Command::Exit(*code))?;
                Ok(())
            }
            Step::Subreaper { target, on } => {
                let Reply::Ack(v) = self.request(target, Command::Subreaper(*on))? else {
                    return Err(SysError::Protocol(format!("{target}: expected Ack")));
                };
                let i = self.rec(target)?;
                self.nodes[i].attrs.subreaper = v != 0;
                Ok(())
            }
            Step::Spawn { child, parent, attrs, .. } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.spawn_batch(&[(parent, child, attrs, seq)])
            }
            Step::Reap { target } => self.request(target, Command::Reap).map(|_| ()),
            other => unimplemented!("TODO(issue 3): {}", other.kind()),
        }
    }

    /// Waits until the kernel has finished with the step, then observes.
    fn settle_and_observe(&mut self, stopped: &[String]) -> Result<Response, SysError> {
        let t = Instant::now();
        let deadline = self.deadline();
        let stopped_idx: Vec<usize> = stopped.iter().filter_map(|s| self.rec(s).ok()).collect();

        // 1. Processes expected to stop: no pidfd event exists for a stop, so
        //    re-read their state until it shows (or they turn out dead).
        for &i in &stopped_idx {
            let r = &self.nodes[i];
            loop {
                match observe::stat(r.pid) {
                    Some(s) if matches!(s.state, 'T' | 't' | 'Z' | 'X') => break,
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

        // 2. Everyone else still believed alive answers a ping, or turns out
        //    dead (EOF). All pings go out first so the waits overlap.
        let mut pinged = Vec::new();
        let mut dead = Vec::new();
        for (i, r) in self.nodes.iter().enumerate() {
            let Some(chan) = &r.chan else { continue };
            // A node still stopped cannot answer; whether it should be is for
            // the comparison to judge, not a reason to hang. (Only a node
            // stopped at the last observation can still be, unless this
            // step stopped it, which the model then predicted.)
            if stopped_idx.contains(&i)
                || (self.last_stopped.contains(&r.pid)
                    && observe::stat(r.pid).is_some_and(|s| matches!(s.state, 'T' | 't')))
            {
                continue;
            }
            if channel::send_command(chan.as_fd(), Command::Ping)? {
                pinged.push(i);
            } else {
                dead.push(i);
            }
        }
        for &i in &pinged {
            let r = &self.nodes[i];
            let Some(chan) = &r.chan else { continue };
            match channel::recv_reply(chan.as_fd(), deadline)? {
                Received::Msg(Reply::Pong) => {}
                Received::Msg(other) => {
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
        // A node that was not pinged (stopped) but was killed also counts.
        for (i, r) in self.nodes.iter().enumerate() {
            if r.chan.is_some()
                && !pinged.contains(&i)
                && !dead.contains(&i)
                && os::pidfd_state(r.pidfd.as_fd())? != os::PidfdState::Alive
            {
                dead.push(i);
            }
        }

        // 3. Each death is complete — its children moved, R9.2 — when its
        //    pidfd is readable.
        for &i in &dead {
            let r = &mut self.nodes[i];
            r.chan = None;
            if !os::pidfd_wait(r.pidfd.as_fd(), os::PidfdState::Exited, deadline)? {
                return Err(SysError::Timeout(format!(
                    "`{}` (pid {}) to finish exiting (pidfd readable)",
                    r.name, r.pid
                )));
            }
        }

        // 4. Zombies that their parent will collect: wait until reaped.
        //    First the nodes that just died, from their own stat, so that
        //    the scan below usually finds nothing left to wait for.
        for &i in &dead {
            let Some(z) = observe::stat(self.nodes[i].pid) else { continue };
            if let Some(parent) = observe::stat(z.ppid).and_then(|p| self.collector(&p)) {
                self.await_reap(i, &parent, deadline)?;
            }
        }
        //    Then whatever a scan still shows (zombies that moved to a new
        //    parent, PID 1 itself). The last scan, after which nothing was
        //    waited for, is the observation.
        let procs = loop {
            let procs = scan()?;
            let mut waited = false;
            for p in procs.iter().filter(|p| matches!(p.state, 'Z' | 'X')) {
                let Some(z) = self.by_pid(p.pid) else { continue };
                if p.ppid == 0 {
                    // PID 1: its parent is this helper.
                    os::reap_pidfd(self.nodes[z].pidfd.as_fd())?;
                    waited = true;
                    continue;
                }
                let collector = procs.iter().find(|q| q.pid == p.ppid).and_then(|q| self.collector(q));
                // 'X': already being released by the kernel (auto-reaped).
                if p.state == 'X' || collector.is_some() {
                    self.await_reap(z, &collector.unwrap_or_else(|| "the kernel".into()), deadline)?;
                    waited = true;
                }
            }
            if !waited {
                break procs;
            }
        };
        self.last_stopped = procs.iter().filter(|p| matches!(p.state, 'T' | 't')).map(|p| p.pid).collect();
        self.timings.settle_us = t.elapsed().as_micros() as u64;
        self.respond(procs)
    }

    /// The name of `parent` if it will reap its exited children now: a node
    /// that reaps (or ignores SIGCHLD) and is neither stopped nor dead.
    fn collector(&self, parent: &ProcStat) -> Option<String> {
        let node = &self.nodes[self.by_pid(parent.pid)?];
        let reaps = !node.attrs.noreap || node.attrs.sigchld_ignore;
        (reaps && !matches!(parent.state, 'T' | 't' | 'Z' | 'X')).then(|| node.name.clone())
    }

    /// Waits until zombie node `z` is reaped by `collector`, or fails naming
    /// both.
    fn await_reap(&self, z: usize, collector: &str, deadline: Instant) -> Result<(), SysError> {
        let r = &self.nodes[z];
        if wait_reaped(r, self.hup_on_reap, deadline)? {
            return Ok(());
        }
        Err(SysError::Timeout(format!("zombie `{}` (pid {}) to be reaped by {collector}", r.name, r.pid)))
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
                known.insert(p.pid, Known { name: &r.name, attrs: r.attrs.clone(), seq: r.seq });
            }
        }
        let forest = observe::render(&procs, &known);
        self.timings.observe_us += t.elapsed().as_micros() as u64;
        Ok(Response::Done { forest, procs, timings: self.timings, userns: self.userns })
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

/// Every process of the namespace, from its /proc.
fn scan() -> Result<Vec<ProcStat>, SysError> {
    observe::scan().map_err(|e| SysError::Syscall { call: "read /proc".into(), source: e, hint: None })
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
/// life to the helper's, puts every signal back to its default action,
/// leaves the helper's protocol pipes, and mounts the namespace's /proc.
fn prepare_pid1() -> Result<(), SysError> {
    // Dies with the helper (R6.10: a parent-death SIGKILL from the parent
    // namespace is forced through init's shield). Should the helper already
    // be gone, the channel reads EOF and init returns.
    os::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, "PR_SET_PDEATHSIG, SIGKILL")?;
    // Default actions for every signal, inherited by every node forked
    // below (the Rust runtime of the helper installed handlers).
    os::default_all_signals()?;
    // No core dumps from core-dump signals sent in scenarios.
    os::prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE, 0")?;
    // Nodes must not hold the helper's protocol pipes.
    // SAFETY: fds 0 and 1 belong to the helper's protocol; the child
    // replaces them with harmless ones.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        libc::dup2(null, 0);
        libc::dup2(2, 1);
    }
    os::mount("proc", "/proc", Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)
}

/// PID 1 of the new namespace as the built-in init node.
fn become_init(chan: OwnedFd, attrs: u8) -> ! {
    if let Err(e) = prepare_pid1() {
        let _ = channel::send_reply(chan.as_fd(), Reply::Failed(e.to_string()));
        os::exit_now(111);
    }
    node::become_node(chan, attrs)
}

/// PID 1 of the new namespace as an init under test: execs `cmd`, followed
/// by this binary's node agent (`<exe> __node`) as the command that init
/// runs. The agent finds its channel through the environment
/// (`node::NODE_FD_ENV`), because an init passes its descriptors on but not
/// its arguments' meaning.
fn become_foreign_init(chan: OwnedFd, cmd: &[String], exe: &std::path::Path, attrs: u8) -> ! {
    let fail = |e: SysError| -> ! {
        let _ = channel::send_reply(chan.as_fd(), Reply::Failed(e.to_string()));
        os::exit_now(111)
    };
    if let Err(e) = prepare_pid1() {
        fail(e);
    }
    if let Err(e) = os::clear_cloexec(chan.as_fd()) {
        fail(e);
    }
    std::env::set_var(node::NODE_FD_ENV, std::os::fd::AsRawFd::as_raw_fd(&chan).to_string());
    std::env::set_var(node::NODE_ATTRS_ENV, attrs.to_string());
    let mut args: Vec<std::ffi::OsString> = cmd[1..].iter().map(Into::into).collect();
    args.push(exe.into());
    args.push(node::NODE_ARG.into());
    let err = std::os::unix::process::CommandExt::exec(std::process::Command::new(&cmd[0]).args(args));
    fail(SysError::Syscall { call: format!("execvp({:?})", cmd[0]), source: err, hint: None })
}
