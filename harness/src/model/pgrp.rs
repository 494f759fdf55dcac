//! Process groups and sessions: `setpgid A`, `setsid A` (kernel/sys.c) and
//! the orphaned-process-group rules of kernel/exit.c
//! (`will_become_orphaned_pgrp()`, `has_stopped_jobs()`,
//! `kill_orphaned_pgrp()`).
//!
//! POSIX job control says a group whose every member's parent is either in
//! the group or in another session has no shell left to continue its
//! stopped jobs. When a death makes a group so (R5.1), and the group has a
//! stopped member, the kernel sends the whole group SIGHUP and then SIGCONT,
//! privileged (`SEND_SIG_PRIV`) — on the dying process's own exit (R5.2) and
//! for each child that moves to another process (R5.3). A reaper in the same
//! session but another group keeps the group connected, and inside a PID
//! namespace that includes the namespace's init, which is not the global
//! init (R5.4). The same test decides whether SIGTSTP, SIGTTIN and SIGTTOU
//! stop a process or are discarded (R5.7, `is_current_pgrp_orphaned()`).
//!
//! The harness's sandbox helper is init's parent: it is a session and group
//! leader of its own (`setsid()`), and init starts in that group. Its own
//! parent is in another session, so it never connects a group; and it
//! ignores SIGHUP, so a signal to its group cannot end the scenario.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::race::Victim;
use super::signal::Sender;
use super::world::{Mutation, Pid, ProcState, Tid, World};
use crate::scenario::{OrphanHup, Signal};

impl World {
    /// `setpgid A`: `setpgid(0, 0)`, A leads a new group in its session.
    pub(super) fn setpgid_step(mut self, target: &str) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "call setpgid()")?;
        if self[pid].session == Some(pid) {
            return Err(ModelError::SessionLeader { name: target.to_string() });
        }
        let mut reasons = Reasons::new();
        if self[pid].pgrp != Some(pid) {
            self.update(pid, |p| p.pgrp = Some(pid));
            reasons.add(target, "R5.1", "setpgid()", || "leads a new process group of its own".into());
        }
        Ok(Prediction::one(self, reasons))
    }

    /// `setsid A`: A leads a new session and group.
    pub(super) fn setsid_step(mut self, target: &str) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "call setsid()")?;
        if self[pid].pgrp == Some(pid) {
            return Err(ModelError::GroupLeader { name: target.to_string() });
        }
        let mut reasons = Reasons::new();
        self.update(pid, |p| {
            p.pgrp = Some(pid);
            p.session = Some(pid);
        });
        reasons.add(target, "R5.1", "setsid()", || "leads a new session and process group".into());
        Ok(Prediction::one(self, reasons))
    }

    /// `will_become_orphaned_pgrp(pgrp, ignored)` (R5.1): no member, other
    /// than `ignored` and zombies, has a parent in another group of its own
    /// session. (No parent here is the global init.)
    pub(super) fn will_become_orphaned_pgrp(&self, g: Option<Pid>, ignored: Option<Pid>) -> bool {
        !self.pgrp_members(g).into_iter().any(|p| {
            if Some(p) == ignored || self[p].state == ProcState::Zombie {
                return false;
            }
            let (ppgrp, psession) = self.parent_group(p);
            ppgrp != g && psession == self[p].session
        })
    }

    /// `is_current_pgrp_orphaned()`.
    pub(super) fn is_pgrp_orphaned(&self, g: Option<Pid>) -> bool {
        self.will_become_orphaned_pgrp(g, None)
    }

    /// `has_stopped_jobs()`: a member has completed a group stop.
    fn has_stopped_jobs(&self, g: Option<Pid>) -> bool {
        if self.config().mutated(Mutation::HupWithoutStoppedJobs) {
            return true;
        }
        self.pgrp_members(g).into_iter().any(|p| self[p].state == ProcState::Stopped)
    }

    /// R5.2, in `exit_notify()` when the group is dead: `tsk`'s own group.
    pub(super) fn kill_orphaned_pgrp_on_exit(&mut self, tsk: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        if !self.exit_orphans_own_group(tsk) {
            return Vec::new();
        }
        let g = self[tsk].pgrp;
        let why = format!(
            "{} exited, and with it the last link of its process group to a parent in another group \
             of the session; the group has a stopped member",
            self.name(tsk)
        );
        self.hup_and_cont(g, "R5.2", &why, reasons)
    }

    /// R5.2's test, as `kill_orphaned_pgrp(tsk->group_leader, NULL)` makes it
    /// in the world as it is: `tsk`'s parent is in another group of its
    /// session, no other member of `tsk`'s group is, and a member is stopped.
    fn exit_orphans_own_group(&self, tsk: Pid) -> bool {
        let g = self[tsk].pgrp;
        let (ppgrp, psession) = self.parent_group(tsk);
        ppgrp != g
            && psession == self[tsk].session
            && self.will_become_orphaned_pgrp(g, Some(tsk))
            && self.has_stopped_jobs(g)
    }

    /// Whether the R5.2 check of the multi-threaded `tsk`, dying, can run
    /// early and send something the check after the move-out would not:
    /// `group_dead` is the last thread to pass `atomic_dec_and_test()` in
    /// `do_exit()`, and it may reach `exit_notify()` before a sibling thread
    /// that forked some of the children has handed them on. If that thread
    /// forked none itself, the check sees every child still under `tsk`, in
    /// its group, so a child that its new parent would connect to the
    /// session does not connect the group yet. The model takes that order
    /// (every child still under `tsk`) beside the one with every child
    /// moved; the orders between, some children moved, are not listed.
    pub(super) fn may_check_orphans_early(&self, tsk: Pid) -> bool {
        let p = &self[tsk];
        if p.orphan_checked || !p.exiting || p.state == ProcState::Zombie {
            return false;
        }
        let threads: Vec<u8> = p
            .main_alive
            .then_some(0)
            .into_iter()
            .chain((1..16u8).filter(|k| p.threads_alive & (1 << k) != 0))
            .collect();
        let childless = threads.iter().any(|&thread| self.thread_children(Tid { pid: tsk, thread }).is_empty());
        let in_group = self.children(tsk).into_iter().any(|c| self[c].pgrp == p.pgrp);
        threads.len() >= 2 && childless && in_group && self.exit_orphans_own_group(tsk)
    }

    /// The early R5.2 check of [`Self::may_check_orphans_early`]: the
    /// group's SIGHUP and SIGCONT while the children are still under `tsk`.
    pub(super) fn early_orphan_check(&mut self, tsk: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        self.update(tsk, |p| p.orphan_checked = true);
        let name = self.name(tsk);
        reasons.add(name, "R5.2", "exit_notify()", || {
            "dies thread by thread: the thread that is group_dead, which forked none of its children, runs \
             kill_orphaned_pgrp() before a sibling thread has handed its children on, so they still count \
             as children in the group (R1.9)"
                .into()
        });
        self.kill_orphaned_pgrp_on_exit(tsk, reasons)
    }

    /// R5.3, in `reparent_leader()`, right after `child` moved from `father`
    /// to another process.
    pub(super) fn kill_orphaned_pgrp_on_reparent(
        &mut self,
        child: Pid,
        father: Pid,
        reasons: &mut Reasons,
    ) -> Vec<Victim> {
        let g = self[child].pgrp;
        if self[father].pgrp == g || self[father].session != self[child].session {
            return Vec::new();
        }
        // The deliberate bug skips the test of R5.4: the new parent may keep
        // the group connected.
        let skip_test = self.config().mutated(Mutation::ReparentSkipsOrphanTest);
        if (!skip_test && !self.will_become_orphaned_pgrp(g, None)) || !self.has_stopped_jobs(g) {
            return Vec::new();
        }
        let why = format!(
            "{} moved away from {}, which kept its process group connected, to a parent that does not; \
             the group has a stopped member",
            self.name(child),
            self.name(father)
        );
        self.hup_and_cont(g, "R5.3", &why, reasons)
    }

    /// R5.2 for a group whose connecting members `zap_pid_ns_processes()`
    /// killed: signalled if it is orphaned now and has a stopped member.
    pub(super) fn kill_orphaned_pgrp_after_zap(
        &mut self,
        g: Option<Pid>,
        why: &str,
        reasons: &mut Reasons,
    ) -> Vec<Victim> {
        if !self.will_become_orphaned_pgrp(g, None) || !self.has_stopped_jobs(g) {
            return Vec::new();
        }
        self.hup_and_cont(g, "R5.2", why, reasons)
    }

    /// `__kill_pgrp_info(SIGHUP)` then `(SIGCONT)`, both `SEND_SIG_PRIV`.
    /// On a build that sends the SIGHUP to stopped members only
    /// ([`OrphanHup::StoppedMembers`]), "stopped" is as it was when the
    /// SIGHUP went out, before the SIGCONT.
    fn hup_and_cont(&mut self, g: Option<Pid>, rule: &'static str, why: &str, reasons: &mut Reasons) -> Vec<Victim> {
        if self.config().mutation == Some(Mutation::NoOrphanedPgrpSignal) {
            return Vec::new();
        }
        let members: Vec<Pid> = self.pgrp_members(g);
        let hup_to: Vec<Pid> = match self.config().build.orphan_hup {
            OrphanHup::AllMembers => members.clone(),
            OrphanHup::StoppedMembers => {
                members.iter().copied().filter(|&m| self[m].state == ProcState::Stopped).collect()
            }
        };
        let mut victims = Vec::new();
        for &m in &members {
            let text = if hup_to.contains(&m) {
                format!("gets SIGHUP then SIGCONT: its process group is newly orphaned ({why})")
            } else {
                format!(
                    "gets SIGCONT but no SIGHUP: its process group is newly orphaned ({why}), and this kernel \
                     build sends that SIGHUP to stopped members only"
                )
            };
            reasons.add(self.name(m), rule, "kill_orphaned_pgrp()", move || text);
        }
        for (sig, to) in [(Signal::HUP, &hup_to), (Signal::CONT, &members)] {
            for &m in to {
                if !self.exists(m) {
                    continue;
                }
                if let Some(v) = self.send_signal(m, sig, Sender::OrphanedPgrp, reasons) {
                    if !victims.iter().any(|u: &Victim| u.pid == v.pid) {
                        victims.push(v);
                    }
                }
            }
        }
        victims
    }
}
