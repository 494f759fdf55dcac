//! The world the rules act on: every process of the sandbox's PID namespace,
//! with just the kernel state that decides where orphans go and which zombies
//! are reaped.
//!
//! A [`World`] is a value: [`World::apply`] never changes it, it returns the
//! worlds the step can lead to. That is what lets the racing-death search
//! (`race.rs`) fork the world at every point where the kernel's order is not
//! fixed, and keep only the distinct worlds it ends with; and it is cheap to
//! clone, since the names, which never change, are shared.
//!
//! Processes are kept in creation order, indexed by a model pid that counts
//! forks. The kernel keeps each parent's children in a list in adoption order
//! (`list_splice_tail_init()` in `forget_original_parent()`), but nothing the
//! sandbox can observe depends on that order (it matters for pdeath signals
//! and the orphaned-pgrp checks, neither of which arise here), so the model
//! derives children from the `real_parent` links and lists them in creation
//! order, as `expect:` blocks do. Worlds that differ only in list order are
//! then equal, as they should be.

use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use crate::scenario::{Attrs, Markers, Node, Step, INIT};

/// The kernel the model predicts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelConfig {
    /// `(major, minor)`. Before 4.11, `has_child_subreaper` is inherited
    /// only at fork (R2.6) and not propagated to existing descendants (R2.7),
    /// and it still gates the reaper walk (R1.6).
    pub kernel: (u32, u32),
    /// A deliberate bug, to show that the suite catches it (mutation
    /// testing). `None` for every real use.
    pub mutation: Option<Mutation>,
}

/// Deliberate bugs the model can be asked to make, so that a test can prove
/// the random cases find and shrink them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// `find_new_reaper()` takes the farthest living subreaper instead of
    /// the nearest.
    FarthestSubreaper,
    /// A forked child inherits its parent's subreaper flag (R2.4 says it
    /// does not).
    SubreaperInherited,
}

impl Mutation {
    /// Every mutation, with its command-line name.
    pub const ALL: [(&'static str, Mutation); 2] =
        [("farthest-subreaper", Mutation::FarthestSubreaper), ("subreaper-inherited", Mutation::SubreaperInherited)];

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }
}

impl Default for ModelConfig {
    /// Linux 6.18, the kernel `kernel-rules.md` was checked against.
    fn default() -> Self {
        ModelConfig { kernel: (6, 18), mutation: None }
    }
}

impl ModelConfig {
    /// `PR_SET_CHILD_SUBREAPER` exists (v3.4, `ebec18a6d3aa`; R2.9).
    pub(super) fn has_subreapers(self) -> bool {
        self.kernel >= (3, 4)
    }

    /// `PR_SET_CHILD_SUBREAPER` walks the existing descendants (v4.11,
    /// `749860ce2427`; R2.7).
    pub(super) fn propagates_has_child_subreaper(self) -> bool {
        self.kernel >= (4, 11)
    }
}

/// What `/proc/<pid>/stat` would show, reduced to what scenarios mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcState {
    /// Alive and not stopped (`R`/`S`).
    Running,
    /// Stopped by a signal (`T`).
    Stopped,
    /// Exited, not reaped yet (`Z`).
    Zombie,
}

impl fmt::Display for ProcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcState::Running => "running",
            ProcState::Stopped => "stopped",
            ProcState::Zombie => "a zombie",
        })
    }
}

/// The model's pid: the process's place in the global creation sequence.
/// Not the pid the kernel gives; it only orders and names processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Pid(pub(super) u32);

/// One process: the parts of its `task_struct` and `signal_struct` that the
/// rules read, plus what the node running in it does. Its name is kept in
/// [`World`], by pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Proc {
    /// `task->real_parent`. `None` for init, whose parent is the harness,
    /// outside the namespace.
    pub(super) real_parent: Option<Pid>,
    /// `signal->is_child_subreaper` (R2.1).
    pub(super) is_child_subreaper: bool,
    /// `signal->has_child_subreaper` (R2.6, R2.7): gates the walk (R1.6).
    pub(super) has_child_subreaper: bool,
    /// The node never waits for its children (`noreap`).
    pub(super) noreap: bool,
    /// SIGCHLD is `SIG_IGN`: the kernel reaps its children (R3.3).
    pub(super) sigchld_ignore: bool,
    pub(super) state: ProcState,
    /// `PF_EXITING`, set by `exit_signals()` (R1.4). Only a process in the
    /// middle of a racing death has it without being a zombie.
    pub(super) exiting: bool,
    /// A fatal signal other than SIGKILL that arrived while the process was
    /// stopped: it kills when SIGCONT lets `get_signal()` run.
    pub(super) pending_fatal: Option<crate::scenario::Signal>,
    /// PID 1 of the namespace: `ns->child_reaper`, `SIGNAL_UNKILLABLE` (R6.1).
    pub(super) is_init: bool,
}

impl Proc {
    /// R1.4, `find_alive_thread()`: a thread without `PF_EXITING`. Stopped
    /// counts as living; zombies always have `PF_EXITING`.
    pub(super) fn is_living(&self) -> bool {
        !self.exiting && self.state != ProcState::Zombie
    }

    fn attrs(&self) -> Attrs {
        Attrs {
            subreaper: self.is_child_subreaper,
            noreap: self.noreap,
            sigchld_ignore: self.sigchld_ignore,
            ..Attrs::default()
        }
    }
}

/// Every process of the namespace, as the kernel would have it after a step
/// has settled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    pub(super) config: ModelConfig,
    /// The name of every process ever created, by pid, so that a name is
    /// never reused and a step naming a reaped process says "gone" rather
    /// than "unknown". Shared between the worlds a step forks.
    names: Arc<Vec<String>>,
    /// Every process by pid; `None` once reaped (`release_task()`).
    procs: Vec<Option<Proc>>,
}

impl Index<Pid> for World {
    type Output = Proc;

    /// The process `pid`, which the caller knows to exist: the rules only
    /// ever follow pids they have just read from the world.
    fn index(&self, pid: Pid) -> &Proc {
        match self.procs.get(pid.index()) {
            Some(Some(p)) => p,
            _ => panic!("model invariant broken: {pid:?} is gone"),
        }
    }
}

impl Pid {
    fn index(self) -> usize {
        self.0 as usize
    }
}

impl World {
    /// Builds the starting tree: init first, then every node top down in
    /// file order, each forked by its parent, which has already applied its
    /// own attributes — exactly as the sandbox builds it.
    pub fn new(tree: &Node, cfg: ModelConfig) -> Result<World, ModelError> {
        if tree.name != INIT {
            return Err(ModelError::RootNotInit { found: tree.name.clone() });
        }
        if let Some(marked) = tree.preorder().into_iter().find(|n| n.markers != Markers::default()) {
            let mut markers = Vec::new();
            if marked.markers.zombie {
                markers.push("zombie");
            }
            if marked.markers.stopped {
                markers.push("stopped");
            }
            return Err(ModelError::MarkersInTree { name: marked.name.clone(), markers: markers.join(" ") });
        }
        let mut world = World { config: cfg, names: Arc::new(Vec::new()), procs: Vec::new() };
        // The reasons for building the start tree are not part of any step.
        let mut reasons = Reasons::quiet();
        let init = world.copy_process(None, &tree.name, &tree.attrs, &mut reasons)?;
        world.create_children(init, tree, &mut reasons)?;
        Ok(world)
    }

    fn create_children(&mut self, parent: Pid, node: &Node, reasons: &mut Reasons) -> Result<(), ModelError> {
        for child in &node.children {
            let pid = self.copy_process(Some(parent), &child.name, &child.attrs, reasons)?;
            self.create_children(pid, child, reasons)?;
        }
        Ok(())
    }

    /// Predicts the worlds after `step`, once the kernel has settled and the
    /// reaping parents have reaped. Pure: `self` is unchanged.
    pub fn apply(&self, step: &Step) -> Result<Prediction, ModelError> {
        if !self.namespace_alive() {
            let action = match step {
                Step::Kill { .. } => "kill",
                Step::Exit { .. } => "exit",
                Step::Subreaper { .. } => "set a subreaper",
                Step::Spawn { .. } => "spawn",
                Step::Reap { .. } => "reap",
                other => other.kind(),
            };
            return Err(ModelError::NamespaceDead { action: action.to_string() });
        }
        match step {
            Step::Kill { targets, signal } => self.kill_step(targets, *signal),
            Step::Exit { target, .. } => self.exit_step(target),
            Step::Subreaper { target, on } => self.subreaper_step(target, *on),
            Step::Spawn { child, parent, attrs, .. } => self.spawn_step(child, parent, attrs),
            Step::Reap { target } => self.reap_step(target),
            other => unimplemented!("TODO(issue 3): {}", other.kind()),
        }
    }

    /// The tree as an `expect:` block shows it: `[init subtree]`, or nothing
    /// once the namespace is gone. Children in creation order; attributes as
    /// they are now; markers `zombie` and `stopped`.
    pub fn render(&self) -> Vec<Node> {
        self.pids().filter(|&pid| self[pid].real_parent.is_none()).map(|pid| self.render_node(pid)).collect()
    }

    fn render_node(&self, pid: Pid) -> Node {
        let p = &self[pid];
        Node {
            name: self.name(pid).to_string(),
            attrs: p.attrs(),
            markers: Markers {
                zombie: p.state == ProcState::Zombie,
                stopped: p.state == ProcState::Stopped,
                ..Markers::default()
            },
            children: self.children(pid).into_iter().map(|c| self.render_node(c)).collect(),
        }
    }

    /// The state of a process; `None` once it is gone (reaped) or if it
    /// never existed.
    pub fn state(&self, name: &str) -> Option<ProcState> {
        self.find(name).map(|pid| self[pid].state)
    }

    /// The parent's name; `None` for init (its parent is the harness,
    /// outside the namespace) and for a process that is gone.
    pub fn parent(&self, name: &str) -> Option<String> {
        let parent = self[self.find(name)?].real_parent?;
        Some(self.name(parent).to_string())
    }

    /// Every process that exists (alive, stopped or zombie), in creation
    /// order.
    pub fn names(&self) -> Vec<String> {
        self.pids().map(|pid| self.name(pid).to_string()).collect()
    }

    /// The attributes a process has now: `subreaper` is its
    /// `is_child_subreaper`.
    pub fn attrs(&self, name: &str) -> Option<Attrs> {
        self.find(name).map(|pid| self[pid].attrs())
    }

    /// Its `has_child_subreaper` flag, which no `expect:` block shows but
    /// which decides the reaper walk on kernels before 4.11 (R1.6).
    pub fn has_child_subreaper(&self, name: &str) -> Option<bool> {
        self.find(name).map(|pid| self[pid].has_child_subreaper)
    }

    /// Whether init is still there. Once it dies, `zap_pid_ns_processes()`
    /// takes every other process with it (R6.3).
    pub fn namespace_alive(&self) -> bool {
        self.child_reaper().is_some()
    }

    /// The kernel the world is modelled for.
    pub fn config(&self) -> ModelConfig {
        self.config
    }

    pub(super) fn find(&self, name: &str) -> Option<Pid> {
        self.pids().find(|&pid| self.name(pid) == name)
    }

    /// Whether a process of this name exists or ever existed.
    pub(super) fn name_used(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The process a step names, which must still exist.
    pub(super) fn lookup(&self, name: &str) -> Result<Pid, ModelError> {
        match self.find(name) {
            Some(pid) => Ok(pid),
            None if self.name_used(name) => Err(ModelError::Gone { name: name.to_string() }),
            None => Err(ModelError::UnknownProcess { name: name.to_string() }),
        }
    }

    /// The process a step asks to run code itself (`exit`, `prctl`, `fork`,
    /// `wait`): it must exist and be running.
    pub(super) fn lookup_actor(&self, name: &str, action: &'static str) -> Result<Pid, ModelError> {
        let pid = self.lookup(name)?;
        match self[pid].state {
            ProcState::Running => Ok(pid),
            state => Err(ModelError::NotRunning { name: name.to_string(), action, state }),
        }
    }

    /// The name of a process, even one that is gone.
    pub(super) fn name(&self, pid: Pid) -> &str {
        self.names.get(pid.index()).map_or("?", String::as_str)
    }

    /// Every process that exists, in creation order.
    pub(super) fn pids(&self) -> impl Iterator<Item = Pid> + '_ {
        let existing = self.procs.iter().enumerate().filter(|(_, p)| p.is_some());
        existing.map(|(i, _)| Pid(i as u32))
    }

    pub(super) fn exists(&self, pid: Pid) -> bool {
        matches!(self.procs.get(pid.index()), Some(Some(_)))
    }

    /// Adds a newly forked process; its pid comes next in creation order.
    pub(super) fn add(&mut self, name: &str, proc: Proc) -> Pid {
        Arc::make_mut(&mut self.names).push(name.to_string());
        self.procs.push(Some(proc));
        Pid(self.procs.len() as u32 - 1)
    }

    /// Changes one process in place; a pid that is gone is left alone.
    pub(super) fn update(&mut self, pid: Pid, change: impl FnOnce(&mut Proc)) {
        if let Some(Some(p)) = self.procs.get_mut(pid.index()) {
            change(p);
        }
    }

    /// `release_task()`: the process is gone; its name stays used.
    pub(super) fn release_task(&mut self, pid: Pid) {
        if let Some(slot) = self.procs.get_mut(pid.index()) {
            *slot = None;
        }
    }

    /// `father->children`, in creation order (see the module doc).
    pub(super) fn children(&self, father: Pid) -> Vec<Pid> {
        self.pids().filter(|&pid| self[pid].real_parent == Some(father)).collect()
    }

    /// `task_active_pid_ns(p)->child_reaper`: the namespace's init.
    pub(super) fn child_reaper(&self) -> Option<Pid> {
        self.pids().find(|&pid| self[pid].is_init)
    }
}
