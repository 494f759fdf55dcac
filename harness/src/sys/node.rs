//! The node agent: the code every process of a scenario tree runs.
//!
//! A node is a forked copy of the sandbox helper (or, after `exec`, a fresh
//! image of the same binary) that waits for commands on its channel and
//! carries them out itself — `exit()`, `PR_SET_CHILD_SUBREAPER`, `fork()`,
//! `wait()`, `setpgid()`, `setsid()`, `execve()`, a thread's `SYS_exit` —
//! because those calls only mean something when the process in the tree
//! makes them, and several (fork, exit, pdeathsig, setns) only when a
//! particular **thread** makes them: the kernel links a child to the thread
//! that forked it (R1.1), and a thread's exit moves only its own children
//! (R1.7, R4.3).
//!
//! ## Threads and the control thread
//!
//! A node with `threads=N` runs N extra threads, numbered 1..N, besides its
//! main thread. Exactly one thread at a time is the *control thread*: it
//! serves the channel, reaps children (through a signalfd for SIGCHLD,
//! unless the node is `noreap` or ignores SIGCHLD, as a shell does), and is
//! the only thread that does not block signals. The main thread starts as
//! the control thread; the extra threads are created with every signal
//! blocked and park on an order queue, from which they fork (`thread=K`),
//! exit (`thread-exit A K`) or take control. When the control thread is to
//! exit (`thread-exit A main`, or an extra thread that had taken over), it
//! hands control to the lowest-numbered living extra thread, which unblocks
//! the signals and acknowledges before the old one blocks them and calls
//! the raw `SYS_exit`; the new control thread waits until the kernel has
//! finished with its predecessor (its children moved) before it answers the
//! helper. The last thread of a process simply exits, which ends it.
//!
//! ## Caught signals and `got=`
//!
//! `catch=` installs a handler that sets the signal's bit in a process-wide
//! atomic mask (async-signal-safe: one lock-free `fetch_or`). Every `Pong`
//! carries the mask and clears it. The helper pings only after every signal
//! of the step has been generated (kills sent, every dead process's pidfd
//! readable, R9.2), and a signal the control thread alone does not block is
//! delivered to it: the kernel runs the handlers of all pending unblocked
//! signals before the thread returns to user space
//! (`exit_to_user_mode_loop()` → `get_signal()` while `TIF_SIGPENDING`), so
//! before the `recvmsg()` that reads the ping returns, every such handler
//! has run, and the mask read after it has their bits. Were an extra
//! thread to take the signal instead, its handler could run after the pong
//! and report the signal one step late.
//!
//! The loop also serves the signalfd before the channel, so an answer to a
//! `Ping` says the node has collected every child whose SIGCHLD arrived
//! before the ping.
//!
//! ## A fresh image every few generations
//!
//! `fork()` copies the parent's memory map, and for every private mapping
//! the kernel links the child's copy to the `anon_vma` of each ancestor that
//! shared it (`anon_vma_clone()` in `dup_mmap()`), so a fork costs time in
//! proportion to how many forks, without an exec, lie behind it: a chain of
//! 1,000 nodes took 45 s to build, nearly all of it in
//! `anon_vma_interval_tree_insert`. A new node that is [`FRESH_IMAGE_EVERY`]
//! forks away from the last exec therefore re-executes this binary as
//! `__node` before it applies its attributes (exactly as an exec'd node
//! does), which starts a new memory map and the count again.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::channel::{self, Command, Hello, Reply, SpawnOrder};
use super::{observe, os, SysError};
use crate::scenario::{Attrs, Signal, ThreadRef};

/// The argument that makes the binary run as a node that was exec'd — by
/// an init under test, or by the node itself (`exec`) — and the
/// environment variables that hand it its channel and attributes.
pub const NODE_ARG: &str = "__node";
pub const NODE_FD_ENV: &str = "REPARENT_NODE_FD";
/// JSON of [`NodeEnv`].
pub const NODE_ATTRS_ENV: &str = "REPARENT_NODE_ATTRS";

/// What an exec'd node is told through [`NODE_ATTRS_ENV`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeEnv {
    pub attrs: Attrs,
    /// The node re-executed itself: the kernel kept its process group,
    /// session, subreaper flag, parent-death signal and ignored SIGCHLD
    /// (R2.5, R4.7); only the handlers need installing again.
    pub exec: bool,
}

/// How many forks without an exec a new node may be from its last exec
/// before it execs itself (see the module docs).
pub const FRESH_IMAGE_EVERY: usize = 32;

/// How many forks lie between this process and the last exec in its line.
static FORKS_SINCE_EXEC: AtomicUsize = AtomicUsize::new(0);

/// This process is in the sandbox's own PID namespace, whose `/proc` is
/// mounted, so its ids there are simply `getpid()`/`gettid()`. Set by the
/// sandbox's PID 1 and inherited by plain forks; cleared in a node forked
/// into a nested namespace, and unknown (false) after an exec — then the
/// ids are read from `/proc/self`.
static IN_SANDBOX_NS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The sandbox's PID 1 marks itself (see [`IN_SANDBOX_NS`]).
pub fn mark_sandbox_init() {
    IN_SANDBOX_NS.store(true, Ordering::SeqCst);
}

/// This process's id (or, with `thread`, its thread's) as the sandbox's
/// `/proc` numbers it.
fn sandbox_id(thread: bool) -> Option<i32> {
    if IN_SANDBOX_NS.load(Ordering::SeqCst) {
        return Some(if thread { os::gettid() } else { os::getpid() });
    }
    observe::own_id(thread)
}

/// The signals whose handlers ran since the last `Pong`, as
/// [`Signal::mask_bit`]s. Process-wide, because a handler runs on whichever thread
/// the kernel picks (here: the control thread).
static GOT: AtomicU64 = AtomicU64::new(0);

/// The `catch=` handler. Async-signal-safe: one lock-free atomic operation.
extern "C" fn record(sig: libc::c_int) {
    GOT.fetch_or(Signal(sig).mask_bit(), Ordering::SeqCst);
}

/// Entry point of `reparent __node`: a node exec'd by an init under test,
/// or by itself. It first undoes what the Rust runtime set up. Never
/// returns.
pub fn main_from_env() -> ! {
    let fd = std::env::var(NODE_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok());
    let env = match std::env::var(NODE_ATTRS_ENV) {
        Err(_) => Ok(NodeEnv::default()),
        Ok(v) => serde_json::from_str::<NodeEnv>(&v).map_err(|e| format!("{NODE_ATTRS_ENV}={v:?}: {e}")),
    };
    let Some(chan) = fd.and_then(os::take_inherited_fd) else {
        eprintln!("reparent {NODE_ARG}: {NODE_FD_ENV} is not set: this is started by the sandbox, not by hand");
        os::exit_now(2)
    };
    let env = match env {
        Ok(e) => e,
        Err(e) => {
            let _ = channel::send_reply(chan.as_fd(), &Reply::Failed(e), &[]);
            os::exit_now(2)
        }
    };
    // The environment is ours to hand on, not our children's to inherit.
    std::env::remove_var(NODE_FD_ENV);
    std::env::remove_var(NODE_ATTRS_ENV);
    // An exec makes the process dumpable again: no core dumps from the
    // core-dump signals that scenarios send (see the sandbox's PID 1).
    let ready = os::no_core_dumps().and_then(|_| os::default_all_signals()).and_then(|_| os::set_cloexec(chan.as_fd()));
    if let Err(e) = ready {
        let _ = channel::send_reply(chan.as_fd(), &Reply::from_error(&e), &[]);
        os::exit_now(111)
    }
    become_node(chan, env.attrs, env.exec)
}

/// Becomes a node: applies `attrs`, greets the helper with its pid and a
/// pidfd of itself, then serves commands until told to exit. Never returns.
pub fn become_node(chan: OwnedFd, attrs: Attrs, after_exec: bool) -> ! {
    become_node_building(chan, attrs, after_exec, None)
}

/// [`become_node`], and then, with `build`, forks the node's children in
/// the starting tree (see [`Subtree`]).
fn become_node_building(chan: OwnedFd, attrs: Attrs, after_exec: bool, build: Option<Subtree>) -> ! {
    let code = match run(chan, attrs, after_exec, build) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reparent node {}: {e}", os::getpid());
            111
        }
    };
    os::exit_now(code)
}

/// One node process, shared by its threads.
struct Agent {
    chan: OwnedFd,
    sigfd: OwnedFd,
    /// Reaps its children at once.
    reaps: bool,
    attrs: Attrs,
    /// Its pid as the sandbox's /proc numbers it.
    pid: i32,
    /// Index = thread number; 0 is the main thread.
    threads: Mutex<Vec<Slot>>,
}

struct Slot {
    /// Thread id as the sandbox's /proc numbers it.
    tid: i32,
    alive: bool,
    /// How to reach an extra thread (`None` for the main thread).
    orders: Option<Sender<Order>>,
    /// A `PIDFD_THREAD` pidfd (6.9+), readable once the thread has exited.
    pidfd: Option<OwnedFd>,
}

/// What the control thread asks of an extra thread.
enum Order {
    Fork(ForkJob, SyncSender<Result<i32, Reply>>),
    Exit,
    /// Become the control thread; `from` is the thread that is leaving.
    TakeControl {
        from: usize,
        handed: SyncSender<()>,
    },
}

struct ForkJob {
    /// The signals the forking process catches: the child inherits its
    /// handlers and must put them back to the default.
    inherited: Vec<Signal>,
    attrs: Attrs,
    clone_parent: bool,
    chan: OwnedFd,
    into: Option<OwnedFd>,
    /// The new node forks its own children of the starting tree.
    build: Option<Subtree>,
}

/// The starting tree as a node forks it (`Command::BuildTree`): every
/// process of the tree — its parent's index and its attributes, index 0
/// the root — and the index of the node at hand. A new node is a fork of
/// its parent, so it has the whole list already; only the root receives it.
#[derive(Clone)]
struct Subtree {
    tree: Arc<Vec<(u32, Option<Attrs>)>>,
    me: u32,
}

impl Agent {
    fn threads(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A thread never exits holding the lock, so it is never poisoned by
        // a panic elsewhere that matters: take the data either way.
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reply(&self, r: &Reply) -> Result<bool, SysError> {
        channel::send_reply(self.chan.as_fd(), r, &[])
    }
}

fn run(chan: OwnedFd, attrs: Attrs, after_exec: bool, build: Option<Subtree>) -> Result<(), SysError> {
    let agent = match prepare(&attrs, after_exec) {
        Ok((sigfd, pid)) => {
            let main = Slot { tid: pid, alive: true, orders: None, pidfd: None };
            let reaps = !attrs.noreap && !attrs.sigchld_ignore;
            Arc::new(Agent { chan, sigfd, reaps, attrs, pid, threads: Mutex::new(vec![main]) })
        }
        Err(e) => {
            let _ = channel::send_reply(chan.as_fd(), &Reply::from_error(&e), &[]);
            return Err(e);
        }
    };
    let hello = (if after_exec { Ok(()) } else { start_threads(&agent) }).and_then(|_| hello(&agent));
    match hello {
        Ok((hello, fds)) => {
            let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            channel::send_reply(agent.chan.as_fd(), &Reply::Hello(hello), &fds)?;
        }
        Err(e) => {
            let _ = agent.reply(&Reply::from_error(&e));
            return Err(e);
        }
    }
    if let Some(sub) = build {
        if let Err(failure) = build_children(&agent, &sub) {
            agent.reply(&failure)?;
        }
    }
    serve(&agent, 0)
}

/// Forks this node's children of the starting tree, each of which forks
/// its own in turn, and hands the helper their channels
/// ([`Reply::Built`]). A failure is the reply to send instead.
fn build_children(agent: &Agent, sub: &Subtree) -> Result<(), Reply> {
    let kids: Vec<u32> = (1..sub.tree.len() as u32).filter(|&j| sub.tree[j as usize].0 == sub.me).collect();
    let mut ends = Vec::with_capacity(kids.len());
    for &c in &kids {
        let (helper_end, node_end) = channel::pair().map_err(|e| Reply::from_error(&e))?;
        fork_node(ForkJob {
            inherited: agent.attrs.catch.clone(),
            attrs: sub.tree[c as usize].1.clone().unwrap_or_default(),
            clone_parent: false,
            chan: node_end,
            into: None,
            build: Some(Subtree { tree: Arc::clone(&sub.tree), me: c }),
        })?;
        ends.push(helper_end);
    }
    let parts = kids.len().div_ceil(channel::BUILT_FDS).max(1);
    for k in 0..parts {
        let range = k * channel::BUILT_FDS..((k + 1) * channel::BUILT_FDS).min(kids.len());
        let fds: Vec<_> = ends[range.clone()].iter().map(|f| f.as_fd()).collect();
        let built = Reply::Built { children: kids[range].to_vec(), more: k + 1 < parts };
        match channel::send_reply(agent.chan.as_fd(), &built, &fds) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(Reply::from_error(&e)),
        }
    }
    Ok(())
}

/// Applies the attributes in the format's order, up to the threads.
/// Returns the SIGCHLD signalfd and the node's pid (sandbox numbering).
fn prepare(attrs: &Attrs, after_exec: bool) -> Result<(OwnedFd, i32), SysError> {
    if !after_exec {
        if attrs.session {
            os::setsid()?;
        } else if attrs.pgrp {
            os::setpgid_self()?;
        }
        if attrs.subreaper {
            os::set_child_subreaper(true)?;
        }
    }
    // A fork inherits its parent's SIGCHLD disposition: set ours either way.
    os::set_sigchld_ignored(attrs.sigchld_ignore)?;
    for s in &attrs.catch {
        os::catch_signal(s.0, record)?;
    }
    if !after_exec {
        if let Some(s) = attrs.pdeathsig {
            os::set_pdeathsig(s.0)?;
        }
    }
    // The control thread takes every signal but SIGCHLD, which it reads
    // from a signalfd.
    os::set_signal_mask(&[libc::SIGCHLD]);
    let sigfd = os::sigchld_fd()?;
    if after_exec && !attrs.noreap && !attrs.sigchld_ignore {
        // A child that exited while the old image was being replaced.
        os::reap_all_exited();
    }
    let pid = sandbox_id(false)
        .ok_or_else(|| SysError::Protocol("cannot read the link /proc/self (is /proc mounted?)".into()))?;
    Ok((sigfd, pid))
}

/// Starts the extra threads, with every signal blocked (they inherit the
/// creating thread's mask), and records them.
fn start_threads(agent: &Arc<Agent>) -> Result<(), SysError> {
    if agent.attrs.threads == 0 {
        return Ok(());
    }
    os::block_all_signals();
    let r = (1..=agent.attrs.threads as usize).try_for_each(|k| {
        let (tx, rx) = mpsc::channel();
        let (idtx, idrx) = mpsc::sync_channel(1);
        let a = Arc::clone(agent);
        std::thread::Builder::new()
            .spawn(move || worker(a, k, rx, idtx))
            .map_err(|e| os::syscall_error(format!("pthread_create (thread {k})"), e, true))?;
        let (local, top) =
            idrx.recv().map_err(|_| SysError::Protocol(format!("thread {k} died before reporting its id")))?;
        let pidfd = os::pidfd_open_thread(local)?;
        agent.threads().push(Slot { tid: top, alive: true, orders: Some(tx), pidfd });
        Ok(())
    });
    os::set_signal_mask(&[libc::SIGCHLD]);
    r
}

/// The greeting and the descriptors that go with it: a pidfd of the node
/// and, from a namespace init, its namespace.
fn hello(agent: &Agent) -> Result<(Hello, Vec<OwnedFd>), SysError> {
    let me = os::getpid();
    let hello = Hello {
        pid: agent.pid,
        subreaper: os::get_child_subreaper()?,
        pdeathsig: os::get_pdeathsig()?,
        ns_init: me == 1,
    };
    // pidfd_open() looks the pid up in the caller's own namespace.
    let mut fds = vec![os::pidfd_open(me)?];
    if hello.ns_init {
        fds.push(os::open_own_pidns()?);
    }
    Ok((hello, fds))
}

/// An extra thread: reports its ids, then carries out orders.
fn worker(agent: Arc<Agent>, k: usize, orders: Receiver<Order>, id: SyncSender<(i32, i32)>) {
    let top = sandbox_id(true).unwrap_or(0);
    let _ = id.send((os::gettid(), top));
    drop(id);
    loop {
        match orders.recv() {
            Ok(Order::Fork(job, done)) => {
                let _ = done.send(fork_node(job));
            }
            Ok(Order::TakeControl { from, handed }) => take_control(&agent, k, from, handed),
            Ok(Order::Exit) | Err(_) => os::exit_thread(),
        }
    }
}

/// Thread `k` becomes the control thread in place of `from`. Never returns.
fn take_control(agent: &Agent, k: usize, from: usize, handed: SyncSender<()>) -> ! {
    // Take the signals before the old control thread blocks them, so that
    // some thread always does.
    os::set_signal_mask(&[libc::SIGCHLD]);
    let _ = handed.send(());
    drop(handed);
    wait_thread_gone(agent, from);
    let code = match agent.reply(&Reply::Ack(0)).and_then(|_| serve(agent, k)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reparent node {}: {e}", os::getpid());
            111
        }
    };
    os::exit_now(code)
}

/// Waits until the kernel has finished with thread `t`'s exit: it has
/// passed `exit_notify()`, so its children have their new parent and their
/// parent-death signals are sent (R1.2, R4.3). A sub-thread's
/// `PIDFD_THREAD` pidfd says so (6.9+); older kernels release the thread
/// right after `exit_notify()`, so its `/proc` entry goes. The main thread
/// stays as a zombie leader (R8.3) and no pidfd wakes for it: its state
/// turns `Z` when `exit_notify()` sets `exit_state`, which /proc shows.
fn wait_thread_gone(agent: &Agent, t: usize) {
    let (tid, pidfd) = {
        let mut threads = agent.threads();
        (threads[t].tid, threads[t].pidfd.take())
    };
    if let Some(fd) = pidfd {
        let _ = os::pidfd_wait(fd.as_fd(), os::PidfdState::Exited, Instant::now() + Duration::from_secs(86400));
        return;
    }
    // Bounded only by the helper's deadline on the answer this precedes.
    while matches!(observe::task_state(agent.pid, tid), Some(s) if !matches!(s, 'Z' | 'X')) {
        std::thread::yield_now();
    }
}

/// The control loop, run by whichever thread is the control thread (`me`).
/// Returns when the helper is gone.
fn serve(agent: &Agent, me: usize) -> Result<(), SysError> {
    // The parts of a `BuildTree` received so far, after the root's entry.
    let mut tree: Vec<(u32, Option<Attrs>)> = Vec::new();
    loop {
        // EINTR (a handler ran, or a stop/continue) is retried inside.
        let Ok(fds) = os::poll_fds(&[agent.sigfd.as_fd(), agent.chan.as_fd()], libc::POLLIN, -1) else {
            continue;
        };
        if fds[0] != 0 {
            os::drain(agent.sigfd.as_fd());
            if agent.reaps {
                os::reap_all_exited();
            }
        }
        if fds[1] == 0 {
            continue;
        }
        // Every caught signal generated before the helper sent this command
        // has had its handler run by the time recvmsg() returns it (see the
        // module docs).
        let Some((cmd, passed)) = channel::recv_command(agent.chan.as_fd())? else {
            // The helper is gone; so is the namespace, shortly.
            return Ok(());
        };
        let reply = match cmd {
            Command::Ping => Reply::Pong(GOT.swap(0, Ordering::SeqCst) & !(1u64 << (libc::SIGCHLD - 1))),
            Command::Exit(code) => os::exit_now(code),
            Command::Subreaper(on) => match os::set_child_subreaper(on) {
                Ok(v) => Reply::Ack(v as i32),
                Err(e) => Reply::from_error(&e),
            },
            Command::Reap => Reply::Ack(os::reap_all_exited() as i32),
            Command::Spawn(order) => match spawn(agent, me, order, passed) {
                Ok(pid) => Reply::Ack(pid),
                Err(failure) => failure,
            },
            Command::ThreadExit(t) => match thread_exit(agent, me, t) {
                Ok(()) => Reply::Ack(0),
                Err(e) => Reply::Failed(e),
            },
            Command::Exec => exec(agent, me),
            Command::Setpgid => ack(os::setpgid_self()),
            Command::Setsid => ack(os::setsid()),
            Command::BuildTree(part) => {
                if tree.is_empty() {
                    tree.push((u32::MAX, None));
                }
                tree.extend(part.nodes);
                if !part.last {
                    Reply::Ack(0)
                } else {
                    let sub = Subtree { tree: Arc::new(std::mem::take(&mut tree)), me: 0 };
                    match build_children(agent, &sub) {
                        Ok(()) => continue,
                        Err(failure) => failure,
                    }
                }
            }
        };
        agent.reply(&reply)?;
    }
}

fn ack(r: Result<(), SysError>) -> Reply {
    match r {
        Ok(()) => Reply::Ack(0),
        Err(e) => Reply::from_error(&e),
    }
}

fn thread_name(k: usize) -> String {
    if k == 0 {
        "its main thread".into()
    } else {
        format!("its thread {k}")
    }
}

/// The order channel of living thread `k`, or why there is none.
fn orders_of(agent: &Agent, k: usize) -> Result<Sender<Order>, String> {
    let threads = agent.threads();
    match threads.get(k) {
        None => Err(format!("has no thread {k}")),
        Some(s) if !s.alive => Err(format!("{} has exited", thread_name(k))),
        Some(s) => s.orders.clone().ok_or_else(|| format!("{} is not an extra thread", thread_name(k))),
    }
}

/// Forks a new node from the main thread or from thread K.
fn spawn(agent: &Agent, me: usize, order: SpawnOrder, passed: Vec<OwnedFd>) -> Result<i32, Reply> {
    let mut passed = passed.into_iter();
    let chan = passed.next().ok_or_else(|| Reply::Failed("spawn came without the new node's channel".into()))?;
    let into = if order.into {
        Some(passed.next().ok_or_else(|| Reply::Failed("spawn into= came without the namespace".into()))?)
    } else {
        None
    };
    let job = ForkJob {
        inherited: agent.attrs.catch.clone(),
        attrs: order.attrs,
        clone_parent: order.clone_parent,
        chan,
        into,
        build: None,
    };
    let by = order.thread.map_or(0, |k| k as usize);
    if by == me {
        return fork_node(job);
    }
    let orders = orders_of(agent, by).map_err(|e| Reply::Failed(format!("cannot fork: {e}")))?;
    let (done, result) = mpsc::sync_channel(1);
    orders
        .send(Order::Fork(job, done))
        .map_err(|_| Reply::Failed(format!("cannot fork: {} is gone", thread_name(by))))?;
    result.recv().map_err(|_| Reply::Failed(format!("{} died while forking", thread_name(by))))?
}

/// Forks (or clones) a new node from the calling thread. With `into`, the
/// thread first joins that init's PID namespace (setns affects only the
/// calling thread's `pid_ns_for_children`), and returns to its own after.
fn fork_node(job: ForkJob) -> Result<i32, Reply> {
    let ForkJob { inherited, attrs, clone_parent, chan, into, build } = job;
    let nested = attrs.pidns || into.is_some();
    // A new PID namespace is made with unshare(CLONE_NEWPID) on this
    // thread and a plain fork(), not the raw clone(CLONE_NEWPID) syscall:
    // libc's fork() takes the allocator's lock across the fork, the raw
    // syscall does not, so a child cloned while another thread of a
    // multi-threaded node held musl's (single) malloc lock hung on its
    // first allocation — seen in `reparent vm` guests (the static build)
    // as "timed out waiting for `p10` to start", twice in about 1,000
    // random cases. The thread returns to its own namespace after.
    let unshared = attrs.pidns && !clone_parent && into.is_none();
    let back = match &into {
        None if unshared => {
            let own = os::open_own_pidns().map_err(|e| Reply::from_error(&e))?;
            os::unshare_pidns().map_err(|e| Reply::from_error(&e))?;
            Some(own)
        }
        None => None,
        Some(init) => {
            let own = os::open_own_pidns().map_err(|e| Reply::from_error(&e))?;
            os::setns_pid(init.as_fd(), "the into= init's namespace").map_err(|e| Reply::from_error(&e))?;
            Some(own)
        }
    };
    let mut flags = 0;
    let mut what = vec![];
    if clone_parent {
        flags |= libc::CLONE_PARENT;
        what.push("CLONE_PARENT");
    }
    if attrs.pidns && !unshared {
        flags |= libc::CLONE_NEWPID;
        what.push("CLONE_NEWPID");
    }
    what.push("SIGCHLD");
    // Every other thread of this node is parked holding no lock, as
    // `clone_run` requires: the control thread, if it is not this one,
    // waits for this fork's result on a channel; the extra threads wait on
    // their order queues; the signal handlers touch one atomic.
    // The child's channel goes with the closure: the parent's copy is
    // closed when the closure is dropped here.
    let r = os::clone_run(flags, libc::SIGCHLD, &what.join("|"), into.is_some(), move || {
        if nested {
            IN_SANDBOX_NS.store(false, Ordering::SeqCst);
        }
        start_child(chan, &inherited, attrs, build)
    });
    let back = back.map(|own| os::setns_pid(own.as_fd(), "own PID namespace").map_err(|e| e.to_string()));
    match (r, back) {
        (Ok(pid), None | Some(Ok(()))) => Ok(pid),
        (Err(e), None | Some(Ok(()))) => Err(Reply::from_error(&e)),
        (Ok(_), Some(Err(e))) => Err(Reply::Failed(format!("forked, but could not return to its own namespace: {e}"))),
        (Err(e), Some(Err(b))) => Err(Reply::Failed(format!("{e}; and could not return to its own namespace: {b}"))),
    }
}

/// The new node, just forked: a single thread, a copy of the forking one.
/// It keeps only its channel and starts from default signal dispositions
/// (its parent's handlers, `inherited`, are not its own; every other
/// signal is at its default since PID 1 reset them all), an empty
/// caught-signal mask and, once `prepare()` has run, its own signal mask.
/// Never returns.
fn start_child(chan: OwnedFd, inherited: &[Signal], attrs: Attrs, build: Option<Subtree>) -> ! {
    // EOF on its parent's channel is how the helper learns that the parent
    // died, so the child must not keep it (nor any other of its parent's
    // descriptors) open.
    os::close_all_but(chan.as_raw_fd());
    GOT.store(0, Ordering::SeqCst);
    // (A node of a starting tree built by the nodes themselves keeps its
    // image, and with it the tree: the helper builds that way only trees
    // shallower than FRESH_IMAGE_EVERY.)
    if FORKS_SINCE_EXEC.fetch_add(1, Ordering::SeqCst) + 1 >= FRESH_IMAGE_EVERY && build.is_none() {
        // The new image starts from default handlers and applies `attrs`.
        let e = exec_node(chan.as_fd(), &NodeEnv { attrs, exec: false });
        let _ = channel::send_reply(chan.as_fd(), &Reply::from_error(&e), &[]);
        os::exit_now(111)
    }
    if let Err(e) = inherited.iter().try_for_each(|s| os::default_signal(s.0)) {
        let _ = channel::send_reply(chan.as_fd(), &Reply::from_error(&e), &[]);
        os::exit_now(111)
    }
    become_node_building(chan, attrs, false, build)
}

/// `thread-exit`: ends thread `t`, and answers only once the kernel is done
/// with it. For the control thread itself this never returns.
fn thread_exit(agent: &Agent, me: usize, t: ThreadRef) -> Result<(), String> {
    let k = match t {
        ThreadRef::Main => 0,
        ThreadRef::Extra(k) => k as usize,
    };
    if k == me {
        hand_off_and_exit(agent, me);
    }
    let orders = orders_of(agent, k)?;
    agent.threads()[k].alive = false;
    orders.send(Order::Exit).map_err(|_| format!("{} is gone", thread_name(k)))?;
    wait_thread_gone(agent, k);
    Ok(())
}

/// The control thread leaves: hands control to the lowest-numbered living
/// extra thread and exits once it has taken it, or, as the last thread,
/// answers and exits, which ends the process.
fn hand_off_and_exit(agent: &Agent, me: usize) -> ! {
    let next = {
        let mut threads = agent.threads();
        threads[me].alive = false;
        threads.iter().skip(1).find(|s| s.alive).and_then(|s| s.orders.clone())
    };
    match next {
        None => {
            let _ = agent.reply(&Reply::Ack(0));
        }
        Some(orders) => {
            let (handed, taken) = mpsc::sync_channel(0);
            if orders.send(Order::TakeControl { from: me, handed }).is_ok() {
                let _ = taken.recv();
            }
            os::block_all_signals();
        }
    }
    os::exit_thread()
}

/// `exec`: the main thread re-executes this binary as `__node`, keeping
/// the channel open across it; the new image greets the helper again.
/// Returns only on failure.
fn exec(agent: &Agent, me: usize) -> Reply {
    if me != 0 {
        return Reply::Failed("its main thread has exited; only the main thread execs here".into());
    }
    let env = NodeEnv { attrs: agent.attrs.clone(), exec: true };
    Reply::from_error(&exec_node(agent.chan.as_fd(), &env))
}

/// Re-executes this binary (`/proc/self/exe`) as `__node`, handing it
/// `chan` and `env` through the environment. Returns only on failure.
pub fn exec_node(chan: std::os::fd::BorrowedFd<'_>, env: &NodeEnv) -> SysError {
    let json = match serde_json::to_string(env) {
        Ok(j) => j,
        Err(e) => return SysError::Protocol(format!("cannot encode the attributes: {e}")),
    };
    let cstr = |s: String| CString::new(s).ok();
    let mut vars: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != NODE_FD_ENV && k != NODE_ATTRS_ENV)
        .filter_map(|(k, v)| cstr(format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    vars.extend(cstr(format!("{NODE_FD_ENV}={}", chan.as_raw_fd())));
    vars.extend(cstr(format!("{NODE_ATTRS_ENV}={json}")));
    let argv0 = std::env::args().next().unwrap_or_else(|| "reparent".into());
    let args: Vec<CString> = [argv0, NODE_ARG.to_string()].into_iter().filter_map(cstr).collect();
    if let Err(e) = os::clear_cloexec(chan) {
        return e;
    }
    let e = os::exec_self(&args, &vars);
    let _ = os::set_cloexec(chan);
    e
}
