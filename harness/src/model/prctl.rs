//! `subreaper A on|off`: `prctl(PR_SET_CHILD_SUBREAPER)` (kernel/sys.c).
//!
//! Two flags make a subreaper, and the reaper walk reads both:
//! `is_child_subreaper` says "stop here" (R2.1), and `has_child_subreaper`
//! says "there may be somewhere to stop above me, walk" (R1.6). Setting the
//! first also sets the second on every existing descendant since v4.11
//! (`walk_process_tree(me, propagate_has_child_subreaper)`, R2.7). Before
//! that, only processes forked afterwards got it (R2.6), so the orphans of an
//! older descendant skipped the new subreaper and went to init: that is the
//! difference the `kernel` of [`super::ModelConfig`] selects.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::world::{Mutation, Pid, World};

impl World {
    /// `subreaper A on|off`.
    pub(super) fn subreaper_step(&self, target: &str, on: bool) -> Result<Prediction, ModelError> {
        let me = self.lookup_actor(target, "call prctl(PR_SET_CHILD_SUBREAPER)")?;
        let mut world = self.clone();
        let mut reasons = Reasons::new();
        world.set_child_subreaper(me, on, &mut reasons)?;
        Ok(Prediction::one(world, reasons))
    }

    /// `PR_SET_CHILD_SUBREAPER`, called by `me` itself.
    pub(super) fn set_child_subreaper(&mut self, me: Pid, on: bool, reasons: &mut Reasons) -> Result<(), ModelError> {
        if !self.config.has_subreapers() {
            let (major, minor) = self.config.kernel;
            return Err(ModelError::NoSubreapers { name: self.name(me).to_string(), major, minor });
        }
        // R2.1 / R2.3: me->signal->is_child_subreaper = !!arg2; nothing else
        // is undone by the unset.
        if !on && self.config.mutated(Mutation::SubreaperOffIgnored) {
            return Ok(());
        }
        if self[me].is_child_subreaper != on {
            self.update(me, |p| p.is_child_subreaper = on);
            let rule = if on { "R2.1" } else { "R2.3" };
            reasons.add(self.name(me), rule, "prctl(PR_SET_CHILD_SUBREAPER)", || {
                if on {
                    "becomes a child subreaper: orphans below it now stop here".into()
                } else {
                    "is no longer a child subreaper: orphans below it now pass it by; its \
                     descendants keep has_child_subreaper, which is harmless"
                        .into()
                }
            });
        }
        if !on {
            return Ok(());
        }
        if self.config.propagates_has_child_subreaper() && !self.config.mutated(Mutation::NoSubreaperPropagation) {
            self.walk_process_tree(me, reasons);
        } else {
            let descendants = self.descendants(me).into_iter();
            let unflagged: Vec<&str> = descendants
                .filter(|&d| !self[d].has_child_subreaper && !self[d].is_init)
                .map(|d| self.name(d))
                .collect();
            if !unflagged.is_empty() {
                let (major, minor) = self.config.kernel;
                let name = self.name(me);
                reasons.add(name, "R2.7", "walk_process_tree()", || {
                    format!(
                        "Linux {major}.{minor} predates the propagation of has_child_subreaper \
                         (4.11): {} keep it unset, so their orphans will skip {name}",
                        unflagged.join(", ")
                    )
                });
            }
        }
        Ok(())
    }

    /// `walk_process_tree(top, propagate_has_child_subreaper, NULL)`
    /// (kernel/fork.c, kernel/sys.c): depth first through the children of
    /// `top`; the visitor sets the flag and descends, or skips the whole
    /// subtree of a process that already has it ("all its descendants already
    /// have these flag too") or is a child reaper ("they will never get out
    /// pidns"). Zombies and exiting processes are on the children lists too,
    /// so they are visited like the others.
    fn walk_process_tree(&mut self, top: Pid, reasons: &mut Reasons) {
        let mut stack: Vec<Pid> = self.children(top).into_iter().rev().collect();
        while let Some(p) = stack.pop() {
            if self[p].has_child_subreaper || self[p].is_init {
                continue;
            }
            self.update(p, |p| p.has_child_subreaper = true);
            reasons.add(self.name(p), "R2.7", "propagate_has_child_subreaper()", || {
                format!("gets has_child_subreaper, as {} became a subreaper above it", self.name(top))
            });
            stack.extend(self.children(p).into_iter().rev());
        }
    }

    fn descendants(&self, top: Pid) -> Vec<Pid> {
        let mut out = Vec::new();
        let mut stack = self.children(top);
        while let Some(p) = stack.pop() {
            out.push(p);
            stack.extend(self.children(p));
        }
        out.sort();
        out
    }
}
