//! Process creation: `spawn` steps and the nodes of `tree:`.
//!
//! kernel/fork.c `copy_process()` decides what a reparenting model needs from
//! a fork (R8.1):
//!
//! - the new process's `real_parent` is the forking *thread*, or, with
//!   `CLONE_PARENT`, the forker's own `real_parent` — which a namespace init
//!   may not use (`SIGNAL_UNKILLABLE`, EINVAL, R6.7);
//! - its `signal_struct` starts zeroed (`copy_signal()`, R2.4) except for
//!   `has_child_subreaper`, copied from the real parent under
//!   `tasklist_lock` (R2.6);
//! - `pdeath_signal` starts at 0 (R4.7); pgrp and session are the forker's;
//! - it is born in the forker's `pid_ns_for_children`: the forker's own
//!   namespace, or one it joined with `setns()` (`into=`), which must be a
//!   descendant of its own (R6.1) and must not be dying (`alloc_pid()`
//!   fails with ENOMEM once `zap_pid_ns_processes()` has begun, R6.3); with
//!   `pidns` (`CLONE_NEWPID`) it is PID 1 of a new namespace nested there.
//!
//! After the fork, the node applies its own attributes, in the order the
//! sandbox does: `setsid()`/`setpgid()`, `PR_SET_CHILD_SUBREAPER`, its SIGCHLD
//! disposition, its handlers, `PR_SET_PDEATHSIG`, then its extra threads —
//! before forking any child of its own.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::world::{Fork, Mutation, Pid, Proc, ProcState, SigSet, SpawnHow, Tid, World};
use crate::scenario::Attrs;

/// `threads=N` is numbered 1..=N, and the model keeps the living ones in a
/// 16-bit set.
const MAX_THREADS: u32 = 15;

impl World {
    /// `spawn CHILD by PARENT [thread=K] [clone-parent] [into=N] [ATTR ...]`.
    pub(super) fn spawn_step(
        mut self,
        child: &str,
        actor: &str,
        how: SpawnHow<'_>,
        attrs: &Attrs,
    ) -> Result<Prediction, ModelError> {
        let a = self.lookup_actor(actor, "fork")?;
        let thread = match how.thread {
            None => 0,
            Some(k) => {
                let alive = k <= MAX_THREADS && self[a].thread_alive(k as u8);
                if !alive {
                    return Err(ModelError::NoSuchThread { name: actor.to_string(), thread: k.to_string() });
                }
                k as u8
            }
        };
        if how.thread.is_none() && !self[a].main_alive {
            return Err(ModelError::NoSuchThread { name: actor.to_string(), thread: "main".into() });
        }
        let mut reasons = Reasons::new();
        let into_ns = match how.into {
            None => None,
            Some(n) => Some(self.check_setns(a, n)?),
        };
        if let (Some(n), true) = (how.into, attrs.pidns) {
            return Err(ModelError::NewPidnsAfterSetns { name: actor.to_string(), target: n.to_string() });
        }
        let forker = Tid { pid: a, thread };
        let parent = if how.clone_parent && !self.config().mutated(Mutation::CloneParentIgnored) {
            if self[a].is_init {
                return Err(ModelError::CloneParentFromInit { name: actor.to_string() });
            }
            // copy_process(): p->real_parent = current->real_parent.
            self[a].real_parent
        } else {
            Some(forker)
        };
        let fork = Fork { forker: how.clone_parent.then_some(a), into_ns };
        self.copy_process(parent, child, attrs, fork, &mut reasons)?;
        if how.clone_parent {
            reasons.add(child, "R8.1", "copy_process()", || {
                format!("forked by {actor} with CLONE_PARENT: its real_parent is {actor}'s own parent")
            });
        }
        Ok(Prediction::one(self, reasons))
    }

    /// `setns(fd, CLONE_NEWPID)` by `actor` into the namespace of `pidns`
    /// node `target` (`pidns_install()`), then the fork's `alloc_pid()`.
    fn check_setns(&self, actor: Pid, target: &str) -> Result<Pid, ModelError> {
        let n = self.lookup(target)?;
        let node = &self[n];
        if !node.is_init || node.outer_ns.is_none() {
            return Err(ModelError::NotANamespace { name: target.to_string() });
        }
        if !self.ns_within(n, self[actor].ns) {
            return Err(ModelError::SetnsRefused { name: self.name(actor).to_string(), target: target.to_string() });
        }
        if !matches!(node.state, ProcState::Running | ProcState::Stopped) || !node.is_living() {
            return Err(ModelError::NamespaceDying { target: target.to_string() });
        }
        Ok(n)
    }

    /// `copy_process()` for a new thread-group leader whose real parent is
    /// `parent` (`None`: init, forked by the harness outside the namespace),
    /// followed by the node applying `attrs`.
    pub(super) fn copy_process(
        &mut self,
        parent: Option<Tid>,
        name: &str,
        attrs: &Attrs,
        fork: Fork,
        reasons: &mut Reasons,
    ) -> Result<Pid, ModelError> {
        if self.name_used(name) {
            return Err(ModelError::NameTaken { name: name.to_string() });
        }
        if attrs.threads > MAX_THREADS {
            return Err(ModelError::TooManyThreads { name: name.to_string(), threads: attrs.threads });
        }
        let parent_pid = parent.map(|t| t.pid);
        let forker = fork.forker.or(parent_pid);
        let me = self.next_pid();
        // R2.6: p->signal->has_child_subreaper =
        //     p->real_parent->signal->has_child_subreaper ||
        //     p->real_parent->signal->is_child_subreaper;
        // The harness, init's parent, is no subreaper of the namespace.
        let has_child_subreaper = parent_pid.is_some_and(|p| self[p].has_child_subreaper || self[p].is_child_subreaper);
        let (pgrp, session) = match forker {
            Some(f) => (self[f].pgrp, self[f].session),
            None => (None, None),
        };
        // pid_ns_for_children: the forker's own namespace unless it joined
        // another one.
        let born_in = match (fork.into_ns, forker) {
            (Some(ns), _) => Some(ns),
            (None, Some(f)) => Some(self[f].ns),
            (None, None) => None,
        };
        let new_ns = attrs.pidns || born_in.is_none();
        let proc = Proc {
            real_parent: parent,
            // R2.4: copy_signal() hands out a zeroed signal_struct (unless the
            // model is asked to make the opposite mistake).
            is_child_subreaper: self.config().mutation == Some(Mutation::SubreaperInherited)
                && parent_pid.is_some_and(|p| self[p].is_child_subreaper),
            has_child_subreaper,
            noreap: attrs.noreap,
            sigchld_ignore: attrs.sigchld_ignore,
            catch: SigSet::of(&attrs.catch),
            pdeath: None,
            main_alive: true,
            threads_alive: (1..=attrs.threads).fold(0u16, |m, k| m | 1 << k),
            state: ProcState::Running,
            exiting: false,
            pending_fatal: None,
            pending_caught: SigSet::default(),
            got: SigSet::default(),
            pgrp,
            session,
            ns: if new_ns { me } else { born_in.unwrap_or(me) },
            is_init: new_ns,
            outer_ns: if new_ns { born_in } else { None },
            unnotified: false,
            orphan_checked: false,
        };
        let pid = self.add(name, proc);
        debug_assert_eq!(pid, me);
        self.explain_fork(pid, parent_pid, fork, new_ns, reasons);
        self.apply_attrs(pid, attrs, forker, reasons)?;
        Ok(pid)
    }

    /// The reasons of a fork: who forked the new process, what it inherits
    /// from its real parent (R2.6), and whether it is a namespace's PID 1
    /// (R6.1).
    fn explain_fork(&self, pid: Pid, parent_pid: Option<Pid>, fork: Fork, new_ns: bool, reasons: &mut Reasons) {
        let name = self.name(pid);
        match parent_pid {
            Some(p) => {
                let parent = self.name(p);
                if fork.forker.is_none() {
                    reasons.add(name, "R8.1", "copy_process()", || format!("forked by {parent}, its real_parent"));
                }
                if self[pid].has_child_subreaper {
                    reasons.add(name, "R2.6", "copy_process()", || {
                        format!(
                            "inherits has_child_subreaper from {parent}, which is a subreaper or \
                             has one above it; is_child_subreaper starts at 0 (R2.4)"
                        )
                    });
                }
            }
            None => reasons.add(name, "R6.1", "copy_process()", || {
                "first process of the new PID namespace: its child_reaper, SIGNAL_UNKILLABLE".into()
            }),
        }
        if parent_pid.is_some() && new_ns {
            reasons.add(name, "R6.1", "copy_process()", || {
                "PID 1 of a new nested PID namespace (CLONE_NEWPID): its child_reaper, \
                 SIGNAL_UNKILLABLE"
                    .into()
            });
        }
        if let Some(ns) = fork.into_ns {
            reasons.add(name, "R6.1", "pidns_install()", || {
                format!("born in {}'s namespace, which its forker joined with setns()", self.name(ns))
            });
        }
    }

    /// What the new node does first with its attributes: `setsid()` or
    /// `setpgid()`, its SIGCHLD disposition, `PR_SET_CHILD_SUBREAPER` and
    /// `PR_SET_PDEATHSIG`.
    fn apply_attrs(
        &mut self,
        pid: Pid,
        attrs: &Attrs,
        forker: Option<Pid>,
        reasons: &mut Reasons,
    ) -> Result<(), ModelError> {
        let name = self.name(pid).to_string();
        if attrs.session {
            self.update(pid, |p| {
                p.session = Some(pid);
                p.pgrp = Some(pid);
            });
        } else if attrs.pgrp {
            self.update(pid, |p| p.pgrp = Some(pid));
        }
        if attrs.sigchld_ignore {
            reasons.add(&name, "R3.3", "do_notify_parent()", || {
                "sets SIGCHLD to SIG_IGN: the kernel will reap its children as they exit".into()
            });
        }
        if attrs.noreap {
            reasons.add(&name, "R3.8", "wait_task_zombie()", || "never waits: its exited children stay zombies".into());
        }
        if attrs.subreaper {
            self.set_child_subreaper(pid, true, reasons)?;
        }
        let inherited = match (self.config().mutation, forker) {
            (Some(Mutation::PdeathInherited), Some(f)) => self[f].pdeath,
            _ => None,
        };
        if let Some(sig) = attrs.pdeathsig.or(inherited) {
            self.update(pid, |p| p.pdeath = Some(sig));
        }
        Ok(())
    }
}
