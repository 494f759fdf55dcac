//! Reaping: which zombies the nodes wait for (kernel/exit.c `do_wait()`,
//! `wait_task_zombie()`).
//!
//! The kernel reaps only when told to: at exit time for a parent that
//! ignores SIGCHLD (R3.3, done in `exit.rs`), and otherwise when the parent
//! calls `wait()`. So who waits is the node's behaviour, which the scenario
//! states: a node reaps its exited children promptly, as a shell does, unless
//! it is `noreap`; a `reap A` step makes a `noreap` node wait once. A node
//! runs its wait loop only while it runs: a stopped node waits once it is
//! continued, and a dying one never again (R3.9: its zombies move with its
//! other children). init's parent, the harness, reaps init.
//!
//! The model predicts the tree after the kernel has settled and every
//! reaping parent has reaped, so after each step [`World::reap_promptly`]
//! plays those waits.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::world::{Pid, ProcState, World};

impl World {
    /// `reap A`: A waits for all of its exited children now.
    pub(super) fn reap_step(&self, target: &str) -> Result<Prediction, ModelError> {
        let parent = self.lookup_actor(target, "wait for its children")?;
        let mut world = self.clone();
        let mut reasons = Reasons::new();
        let before = world.zombie_children(parent);
        for &child in &before {
            world.wait_task_zombie(child, &mut reasons);
        }
        // A namespace init waiting for that zombie can now finish (R6.4).
        let mut prediction = world.settle_deaths(Vec::new(), reasons);
        // The node waits with waitpid(-1, WNOHANG) until none is left, so a
        // zombie child that its own reaps made — a namespace init that
        // waited for one of them and has finished exiting — is reaped in
        // the same loop if it became a zombie before the loop's last call,
        // and stays otherwise: two outcomes.
        let mut more = Vec::new();
        for outcome in &prediction.outcomes {
            let late: Vec<Pid> =
                outcome.world.zombie_children(parent).into_iter().filter(|z| !before.contains(z)).collect();
            if late.is_empty() {
                continue;
            }
            let mut world = outcome.world.clone();
            let mut reasons = Reasons::new();
            for &z in &late {
                let (zn, pn) = (world.name(z), world.name(parent));
                let text = format!(
                    "reaped in the same wait: {pn} calls waitpid(-1, WNOHANG) until none is left, and {zn} \
                     became its zombie child before the last call"
                );
                reasons.add(zn, "R3.8", "wait_task_zombie()", move || text);
                world.wait_task_zombie(z, &mut reasons);
            }
            for mut o in world.settle_deaths(Vec::new(), reasons).outcomes {
                let mut all = outcome.reasons.clone();
                all.append(&mut o.reasons);
                o.reasons = all;
                more.push(o);
            }
        }
        for o in more {
            if !prediction.outcomes.iter().any(|p| p.world.render() == o.world.render()) {
                prediction.outcomes.push(o);
            }
        }
        Ok(prediction)
    }

    /// Once every death of a step has run: the reaping nodes reap, and a
    /// namespace init that waited for its namespace to empty finishes
    /// exiting, until nothing changes. Returns deaths this starts (an
    /// orphaned group's SIGHUP as an init finally exits).
    pub(super) fn settle(&mut self, reasons: &mut Reasons) -> Vec<super::race::Victim> {
        loop {
            let before = self.procs.clone();
            let mut victims = self.reap_promptly(reasons);
            victims.extend(self.finish_zaps(reasons));
            if !victims.is_empty() || self.procs == before {
                return victims;
            }
        }
    }

    /// Every wait a reaping node, or the harness, would do now. Returns the
    /// init under test as a new death if it has just reaped its main child
    /// and its policy is to exit then.
    pub(super) fn reap_promptly(&mut self, reasons: &mut Reasons) -> Vec<super::race::Victim> {
        let main = self.main_child();
        let mut victims = Vec::new();
        let zombies: Vec<Pid> = self.pids().filter(|&p| self[p].state == ProcState::Zombie).collect();
        for zombie in zombies {
            if !self.exists(zombie) {
                continue;
            }
            let waits = match self[zombie].parent_pid() {
                // Only under Mutation::MovedZombieNotRenotified.
                _ if self[zombie].unnotified => false,
                None => true,
                Some(parent) => self.reaps_promptly(parent),
            };
            if waits {
                self.wait_task_zombie(zombie, reasons);
                if Some(zombie) == main && self.config.init.is_some_and(|p| p.exits_with_main_child) {
                    let init = super::world::Pid(0);
                    reasons.add(self.name(init), "T1", "the init under test, init-gate.md", || {
                        "has reaped its main child and exits, as it was observed to do; its death ends the \
                         namespace (R6.3)"
                            .into()
                    });
                    victims.push(super::race::Victim { pid: init, may_reap_first: false, stopped: false });
                }
            }
        }
        victims
    }

    /// Whether the node waits for its children as soon as they exit.
    pub(super) fn reaps_promptly(&self, pid: Pid) -> bool {
        let p = &self[pid];
        // A sigchld=ignore parent never has zombie children (R3.3).
        p.state == ProcState::Running && p.is_living() && !p.noreap && !p.sigchld_ignore
    }

    /// `wait_task_zombie()`: the parent collects the zombie, which is
    /// released.
    pub(super) fn wait_task_zombie(&mut self, zombie: Pid, reasons: &mut Reasons) {
        reasons.add(self.name(zombie), "R3.8", "wait_task_zombie()", || match self[zombie].parent_pid() {
            Some(parent) => format!("reaped by its parent {}", self.name(parent)),
            None => "reaped by its parent outside the namespace, the harness".to_string(),
        });
        self.release_task(zombie);
    }

    pub(super) fn zombie_children(&self, parent: Pid) -> Vec<Pid> {
        let children = self.children(parent).into_iter();
        children.filter(|&c| self[c].state == ProcState::Zombie).collect()
    }

    /// Says whether and when `parent` will wait for a zombie child.
    pub(super) fn waiter_note(&self, parent: Pid) -> String {
        let p = &self[parent];
        let name = self.name(parent);
        if p.exiting || matches!(p.state, ProcState::Zombie | ProcState::Exiting) {
            format!("{name} is exiting itself and will not wait for it (R3.9)")
        } else if p.noreap {
            format!("{name} never waits (noreap), so it stays a zombie")
        } else if p.state == ProcState::Stopped {
            format!("{name} is stopped and waits for it only once continued")
        } else {
            format!("{name} waits for it")
        }
    }
}
