//! The `.tree` scenario format: its syntax tree, parser and canonical renderer.
//!
//! The format is a contract with people outside the project (see
//! `shared/scenario-format.md`): a file written to it must keep meaning the
//! same thing. So the parser rejects, with file, line and column, everything
//! it does not understand, rather than guessing. The renderer is canonical,
//! so that `parse(render(x)) == x` and a canonically written file renders
//! back byte for byte; the same notation serves for hand-written scenarios,
//! snapshots and shrunk failing cases.
//!
//! Nothing in this module touches the system: it is shared by the model and
//! the driver.

#![forbid(unsafe_code)]

mod escape;
mod parse;
mod render;
mod signal;

pub mod arbitrary;

pub use escape::escape;
pub use parse::{parse, parse_bytes, ParseError, MAX_FILE_BYTES, MAX_PIDNS_NESTING, MAX_PROCESSES, MAX_STEPS};
pub use render::{render, render_forest, render_node_line};
pub use signal::Signal;

/// A node name: `[a-z][a-z0-9_-]*`, unique in a file. `init` is PID 1.
pub type Name = String;

/// The name of the namespace's PID 1 in every scenario.
pub const INIT: &str = "init";

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// `about: TEXT`
    pub about: Option<String>,
    /// `needs: ...` headers, in file order.
    pub needs: Vec<Need>,
    /// The starting tree; its root is always `init`.
    pub tree: Node,
    /// The steps, in order, each with its optional `expect:` block.
    pub steps: Vec<StepEntry>,
}

/// A `needs:` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// `needs: kernel >= X.Y`
    Kernel { major: u32, minor: u32 },
    /// `needs: root`
    Root,
    /// `needs: orphan-hup all|stopped-only`: the scenario's `expect:`
    /// blocks hold only on kernel builds whose orphaned-group SIGHUP
    /// reaches these members.
    OrphanHup(OrphanHup),
}

/// The members of a newly orphaned process group that its SIGHUP reaches.
/// SIGCONT reaches every member on every build seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrphanHup {
    /// Every member: mainline `kill_orphaned_pgrp()` calls
    /// `__kill_pgrp_info(SIGHUP, SEND_SIG_PRIV, pgrp)`, as kernel-rules.md
    /// R5.2 says.
    #[default]
    AllMembers,
    /// Only the stopped members: seen on the 6.18.44 build
    /// `6.18.44-fc-v1252`, where a running member, whether it catches,
    /// blocks or defaults SIGHUP, never sees it, while every member gets
    /// SIGCONT.
    StoppedMembers,
}

impl OrphanHup {
    /// Every value, with the word `needs: orphan-hup WORD` and
    /// `--model-orphan-hup` use.
    pub const ALL: [(&'static str, OrphanHup); 2] =
        [("all", OrphanHup::AllMembers), ("stopped-only", OrphanHup::StoppedMembers)];

    /// The word for this value.
    pub fn word(self) -> &'static str {
        match self {
            OrphanHup::AllMembers => "all",
            OrphanHup::StoppedMembers => "stopped-only",
        }
    }

    /// Parses a word of [`OrphanHup::ALL`].
    pub fn from_word(word: &str) -> Option<OrphanHup> {
        OrphanHup::ALL.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }
}

/// One process of a tree, with its attributes, its markers (only in
/// `expect:` blocks and rendered observations) and its children in creation
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub name: Name,
    pub attrs: Attrs,
    pub markers: Markers,
    pub children: Vec<Node>,
}

/// The attributes of a node (the `tree:` table of the format). Rendered in
/// this field order: `subreaper noreap sigchld=ignore threads=N pdeathsig=SIG
/// catch=SIG,SIG pgrp session pidns`.
///
/// In an `expect:` block they say what the process is *now*: `threads` counts
/// the extra threads still alive, `pdeathsig` is its main thread's
/// `pdeath_signal` (gone with the main thread), `pgrp` marks a process-group
/// leader that is not a session leader, and `session` a session leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Attrs {
    /// `subreaper`: `PR_SET_CHILD_SUBREAPER(1)`.
    pub subreaper: bool,
    /// `noreap`: never waits for its children.
    pub noreap: bool,
    /// `sigchld=ignore`: SIGCHLD is `SIG_IGN`, the kernel reaps its children.
    pub sigchld_ignore: bool,
    /// `threads=N`: N extra threads (numbered 1..=N) besides the main thread.
    /// 0 is the default and is never rendered.
    pub threads: u32,
    /// `pdeathsig=SIG`: `PR_SET_PDEATHSIG(SIG)` by the main thread.
    pub pdeathsig: Option<Signal>,
    /// `catch=SIG,SIG`: handlers that record these signals and return. Kept
    /// sorted by signal number, without duplicates; never SIGKILL or SIGSTOP.
    pub catch: Vec<Signal>,
    /// `pgrp`: `setpgid(0, 0)`.
    pub pgrp: bool,
    /// `session`: `setsid()`.
    pub session: bool,
    /// `pidns`: PID 1 of a new nested PID namespace, created by its parent.
    pub pidns: bool,
}

/// The markers of a node line. Rendered in this field order:
/// `main-exited exiting zombie stopped got=SIG,SIG`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Markers {
    /// `main-exited`: the main thread has exited, other threads live on.
    pub main_exited: bool,
    /// `exiting`: has begun to exit but is not a zombie yet (a namespace init
    /// waiting in `zap_pid_ns_processes()` for its namespace to empty).
    pub exiting: bool,
    /// `zombie`: exited, not reaped yet.
    pub zombie: bool,
    /// `stopped`: state `T`.
    pub stopped: bool,
    /// `got=SIG,SIG`: the signals its handlers (`catch=`) ran for during the
    /// step, as a set in signal-number order; never SIGCHLD.
    pub got: Vec<Signal>,
}

/// A step and the `expect:` block that follows it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEntry {
    pub step: Step,
    /// 1-based line of the step in its file (0 for generated cases).
    pub line: usize,
    /// `None`: no `expect:` block. `Some(vec![])`: an empty block, meaning no
    /// process of the namespace is left.
    pub expect: Option<Vec<Node>>,
}

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// `kill A [B ...] [SIG]`: SIG from outside the namespace to each target,
    /// all sent before any is waited for.
    Kill { targets: Vec<Name>, signal: Signal },
    /// `exit A [CODE]`
    Exit { target: Name, code: i32 },
    /// `subreaper A on|off`
    Subreaper { target: Name, on: bool },
    /// `spawn B by A [thread=K] [clone-parent] [into=N] [ATTR ...]`, rendered
    /// in that order.
    Spawn {
        child: Name,
        parent: Name,
        /// `thread=K`: extra thread K of A forks (default: A's main thread).
        thread: Option<u32>,
        /// `clone-parent`: `CLONE_PARENT`, so B's parent is A's parent.
        clone_parent: bool,
        /// `into=N`: A first joins the PID namespace of `pidns` node N.
        into: Option<Name>,
        attrs: Attrs,
    },
    /// `reap A`
    Reap { target: Name },
    /// `thread-exit A K` / `thread-exit A main`
    ThreadExit { target: Name, thread: ThreadRef },
    /// `exec A`: A re-executes itself, keeping its place in the tree.
    Exec { target: Name },
    /// `setpgid A`: `setpgid(0, 0)`.
    Setpgid { target: Name },
    /// `setsid A`: `setsid()`.
    Setsid { target: Name },
}

/// Which thread of a process a step means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ThreadRef {
    /// `main`: the thread group leader.
    Main,
    /// `K`: extra thread K (1-based, as numbered by `threads=N`).
    Extra(u32),
}

impl Step {
    /// The processes this step names as actors or targets, in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Step::Kill { targets, .. } => targets.iter().map(String::as_str).collect(),
            Step::Exit { target, .. }
            | Step::Subreaper { target, .. }
            | Step::Reap { target }
            | Step::ThreadExit { target, .. }
            | Step::Exec { target }
            | Step::Setpgid { target }
            | Step::Setsid { target } => vec![target.as_str()],
            Step::Spawn { child, parent, into, .. } => {
                let mut v = vec![parent.as_str(), child.as_str()];
                v.extend(into.as_deref());
                v
            }
        }
    }

    /// The step's keyword, for statistics and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Kill { .. } => "kill",
            Step::Exit { .. } => "exit",
            Step::Subreaper { .. } => "subreaper",
            Step::Spawn { .. } => "spawn",
            Step::Reap { .. } => "reap",
            Step::ThreadExit { .. } => "thread-exit",
            Step::Exec { .. } => "exec",
            Step::Setpgid { .. } => "setpgid",
            Step::Setsid { .. } => "setsid",
        }
    }
}

impl Node {
    /// A node with no attributes, markers or children.
    pub fn new(name: impl Into<Name>) -> Self {
        Node { name: name.into(), ..Node::default() }
    }

    /// Every node of this subtree, parents before children.
    pub fn preorder(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(n.children.iter().rev());
        }
        out
    }
}
