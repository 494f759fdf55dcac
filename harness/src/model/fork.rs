//! Process creation: `spawn` steps and the nodes of `tree:`.
//!
//! kernel/fork.c `copy_process()` decides the two things a reparenting model
//! needs from a fork: the new process's `real_parent` is the forking task
//! (R8.1), and its `signal_struct` starts zeroed (`copy_signal()`, R2.4) except
//! for `has_child_subreaper`, which is copied from the parent under
//! `tasklist_lock` (R2.6). That copy is the only way a process that exists
//! before a `PR_SET_CHILD_SUBREAPER` call above it gets the flag on kernels
//! before 4.11, which is why the model carries it at all.
//!
//! After the fork, the node applies its own attributes, in the order the
//! sandbox does: it sets SIGCHLD to `SIG_IGN` or decides never to wait, and
//! calls `PR_SET_CHILD_SUBREAPER` itself — before forking any child of its
//! own.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::world::{Mutation, Pid, Proc, ProcState, World};
use crate::scenario::Attrs;

impl World {
    /// `spawn CHILD by PARENT [ATTR ...]`.
    pub(super) fn spawn_step(&self, child: &str, parent: &str, attrs: &Attrs) -> Result<Prediction, ModelError> {
        let parent = self.lookup_actor(parent, "fork")?;
        let mut world = self.clone();
        let mut reasons = Reasons::new();
        world.copy_process(Some(parent), child, attrs, &mut reasons)?;
        Ok(Prediction::one(world, reasons))
    }

    /// `copy_process()` for a new thread-group leader forked by `parent`
    /// (`None`: init, forked by the harness outside the namespace), followed
    /// by the node applying `attrs`.
    pub(super) fn copy_process(
        &mut self,
        parent: Option<Pid>,
        name: &str,
        attrs: &Attrs,
        reasons: &mut Reasons,
    ) -> Result<Pid, ModelError> {
        if self.name_used(name) {
            return Err(ModelError::NameTaken { name: name.to_string() });
        }
        // R2.6: p->signal->has_child_subreaper =
        //     p->real_parent->signal->has_child_subreaper ||
        //     p->real_parent->signal->is_child_subreaper;
        // The harness, init's parent, is no subreaper of the namespace.
        let has_child_subreaper = parent.is_some_and(|p| self[p].has_child_subreaper || self[p].is_child_subreaper);
        let pid = self.add(
            name,
            Proc {
                real_parent: parent,
                // R2.4: copy_signal() hands out a zeroed signal_struct.
                // R2.4: copy_signal() zeroes it (unless the model is asked
                // to make the opposite mistake).
                is_child_subreaper: self.config().mutation == Some(Mutation::SubreaperInherited)
                    && parent.is_some_and(|p| self[p].is_child_subreaper),
                has_child_subreaper,
                noreap: attrs.noreap,
                sigchld_ignore: attrs.sigchld_ignore,
                state: ProcState::Running,
                exiting: false,
                pending_fatal: None,
                is_init: parent.is_none(),
            },
        );
        match parent {
            Some(parent) => {
                let parent = self.name(parent);
                reasons.add(name, "R8.1", "copy_process()", || format!("forked by {parent}, its real_parent"));
                if has_child_subreaper {
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
        if attrs.sigchld_ignore {
            reasons.add(name, "R3.3", "do_notify_parent()", || {
                "sets SIGCHLD to SIG_IGN: the kernel will reap its children as they exit".into()
            });
        }
        if attrs.noreap {
            reasons.add(name, "R3.8", "wait_task_zombie()", || "never waits: its exited children stay zombies".into());
        }
        if attrs.subreaper {
            self.set_child_subreaper(pid, true, reasons)?;
        }
        Ok(pid)
    }
}
