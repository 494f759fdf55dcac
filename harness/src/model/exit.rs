//! Process exit, and where the orphans go: kernel/exit.c `exit_notify()`,
//! `forget_original_parent()`, `find_child_reaper()`, `find_new_reaper()` and
//! `reparent_leader()`, and kernel/pid_namespace.c `zap_pid_ns_processes()`.
//!
//! This is the heart of the oracle, and it follows the kernel's order (R1.2)
//! so that it can be read against kernel/exit.c line by line:
//!
//! 1. `forget_original_parent()`: if the dying process is the namespace's
//!    init, `find_child_reaper()` first runs `zap_pid_ns_processes()`, which
//!    kills and reaps everything else (R6.3). Otherwise `find_new_reaper()`
//!    picks the new parent (R1.3) and every child moves to it, a zombie child
//!    being re-notified to it (R3.2) and perhaps reaped at once (R3.3).
//! 2. `kill_orphaned_pgrp()` (R5.2) cannot fire in the sandbox (see the
//!    `model` module doc), so it is not modelled.
//! 3. The process becomes a zombie, and notifies its own parent, which may
//!    reap it at once (R3.3, R3.4).
//!
//! Each call of [`World::exit_notify`] is one atomic event under
//! `tasklist_lock`; the `PF_EXITING` flag that `exit_signals()` sets before it
//! ([`World::exit_signals`]) is a separate, earlier event, and `race.rs`
//! interleaves the two across processes that die together.

use super::error::ModelError;
use super::prediction::{Prediction, Reason, Reasons};
use super::race::Victim;
use super::signal::Notified;
use super::world::{Mutation, Pid, ProcState, World};

/// What `find_new_reaper()` decided and saw on its way, for the reasons.
struct NewReaper {
    reaper: Pid,
    /// The walk found `reaper` as a living subreaper (R1.3b), rather than
    /// falling back to the child reaper (R1.3c).
    by_walk: bool,
    /// Subreapers the walk passed because they had no living thread (R1.4).
    passed: Vec<Pid>,
    /// The walk did not run: the father lacks `has_child_subreaper` (R1.6).
    /// Holds the living subreaper the walk would have found, if any.
    skipped_walk: Option<Option<Pid>>,
}

impl World {
    /// `exit A`: A calls `exit()` itself.
    pub(super) fn exit_step(&self, target: &str) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "exit")?;
        let mut reasons = Reasons::new();
        reasons.add(target, "R1.2", "do_exit()", || "calls exit()".into());
        let victim = Victim { pid, may_reap_first: false };
        Ok(self.clone().settle_deaths(vec![victim], reasons))
    }

    /// `exit_signals()` (kernel/signal.c), early in `do_exit()`: sets
    /// `PF_EXITING`. From now on the process is not living (R1.4): the reaper
    /// walk passes it by, but orphans it already adopted stay until its
    /// `exit_notify()`.
    pub(super) fn exit_signals(&mut self, tsk: Pid) {
        self.update(tsk, |p| p.exiting = true);
    }

    /// `exit_notify()`, for the single thread of `tsk` (R1.2). Atomic.
    pub(super) fn exit_notify(&mut self, tsk: Pid, reasons: &mut Reasons) {
        self.exit_signals(tsk);
        self.forget_original_parent(tsk, reasons);
        // kill_orphaned_pgrp() (R5.2): the parent is always in the dying
        // process's own process group, so it never signals anything here.
        self.update(tsk, |p| {
            p.state = ProcState::Zombie;
            p.pending_fatal = None;
        });
        let parent = self[tsk].real_parent;
        // R3.4: a single-threaded leader notifies its parent now.
        let notified = self.do_notify_parent(tsk);
        let name = self.name(tsk);
        match (notified, parent) {
            (Notified::AutoReaped, Some(parent)) => reasons.add(name, "R3.3", "do_notify_parent()", || {
                format!(
                    "exits; its parent {} has SIGCHLD set to SIG_IGN, so the kernel reaps it at once",
                    self.name(parent)
                )
            }),
            (Notified::Queued, Some(parent)) => reasons.add(name, "R1.2", "exit_notify()", || {
                let note = self.waiter_note(parent);
                format!("exits and is now a zombie child of {}; {note}", self.name(parent))
            }),
            (_, None) => reasons.add(name, "R6.3", "exit_notify()", || {
                "exits last of its namespace and is now a zombie; the harness, its parent outside \
                 the namespace, reaps it"
                    .into()
            }),
        }
    }

    /// `forget_original_parent()`: hands every child of `father` to its new
    /// parent, in list order.
    fn forget_original_parent(&mut self, father: Pid, reasons: &mut Reasons) {
        let Some(child_reaper) = self.find_child_reaper(father, reasons) else { return };
        let children = self.children(father);
        if children.is_empty() {
            return;
        }
        let found = self.find_new_reaper(father, child_reaper);
        for child in children {
            // Described before the move, as the walk saw the world.
            reasons.add_reason(|| {
                let (rule, text) = self.describe(father, &found);
                Reason::new(self.name(child), rule, "find_new_reaper()", text)
            });
            self.update(child, |c| c.real_parent = Some(found.reaper));
            // The new parent is never in father's thread group here (R1.7),
            // so reparent_leader() always runs.
            self.reparent_leader(child, found.reaper, reasons);
        }
    }

    /// `find_child_reaper()`: the namespace's init, unless `father` is that
    /// init. Then, with no other thread to take over (R6.2),
    /// `zap_pid_ns_processes()` empties the namespace (R6.3) and `father`
    /// has no children left to hand on.
    fn find_child_reaper(&mut self, father: Pid, reasons: &mut Reasons) -> Option<Pid> {
        let reaper = self.child_reaper()?;
        if reaper != father {
            return Some(reaper);
        }
        self.zap_pid_ns_processes(father, reasons);
        None
    }

    /// `find_new_reaper(father, child_reaper)` (R1.3).
    fn find_new_reaper(&self, father: Pid, child_reaper: Pid) -> NewReaper {
        // (a) find_alive_thread(father): every node is single-threaded, and
        // the one thread has PF_EXITING, so there is no threaded reparent.
        let dying = &self[father];
        // (b) The walk, gated by has_child_subreaper (R1.6). It climbs
        // real_parent while the pid level stays the same: the harness above
        // init is outside the namespace (R1.5), so it stops after init.
        let farthest = self.config().mutation == Some(Mutation::FarthestSubreaper);
        let walk = |passed: &mut Vec<Pid>| {
            let mut r = dying.real_parent;
            let mut found = None;
            while let Some(pid) = r {
                let p = &self[pid];
                if p.is_child_subreaper {
                    if p.is_living() {
                        if !farthest {
                            return Some(pid);
                        }
                        // The deliberate bug: keep climbing.
                        found = Some(pid);
                    } else {
                        // No living thread: go on upward (R1.4), not to init.
                        passed.push(pid);
                    }
                }
                r = p.real_parent;
            }
            found
        };
        let mut passed = Vec::new();
        let skipped_walk = if dying.has_child_subreaper {
            if let Some(reaper) = walk(&mut passed) {
                return NewReaper { reaper, by_walk: true, passed, skipped_walk: None };
            }
            None
        } else {
            Some(walk(&mut Vec::new()))
        };
        // (c) child_reaper, even if it is exiting itself (R6.3 follows).
        NewReaper { reaper: child_reaper, by_walk: false, passed, skipped_walk }
    }

    /// The rule and the words for a `find_new_reaper()` decision.
    fn describe(&self, father: Pid, found: &NewReaper) -> (&'static str, String) {
        let f = self.name(father);
        let r = self.name(found.reaper);
        let to_init = if self[found.reaper].exiting {
            format!("it goes to {r}, the namespace's child reaper, which is exiting too")
        } else {
            format!("it goes to {r}, the namespace's child reaper")
        };
        let passed = || {
            let names: Vec<&str> = found.passed.iter().map(|&p| self.name(p)).collect();
            let verb = if names.len() == 1 { "is" } else { "are" };
            format!("subreaper {} {verb} exiting and no longer living", names.join(", "))
        };
        match found.skipped_walk {
            Some(Some(would)) if !self[would].is_init => (
                "R1.6",
                format!(
                    "parent {f} died; {f} lacks has_child_subreaper, so the walk up to subreaper \
                     {} does not run and {to_init}",
                    self.name(would)
                ),
            ),
            Some(_) => (
                "R1.3",
                format!("parent {f} died; no subreaper above {f} (has_child_subreaper is unset), so {to_init}"),
            ),
            None if !found.by_walk && found.passed.is_empty() => {
                ("R1.3", format!("parent {f} died; no living subreaper above {f}, so {to_init}"))
            }
            None if !found.by_walk => ("R1.4", format!("parent {f} died; {}, and none above; so {to_init}", passed())),
            None if found.passed.is_empty() => {
                ("R1.3", format!("parent {f} died; nearest living subreaper above {f} is {r}"))
            }
            None => {
                ("R1.4", format!("parent {f} died; {}, so the nearest living subreaper above {f} is {r}", passed()))
            }
        }
    }

    /// `reparent_leader()`: for a child that moved to another thread group.
    /// `exit_signal` goes back to SIGCHLD (R3.1; it already is, for forked
    /// nodes) and a zombie is re-notified to its new parent (R3.2), which
    /// reaps it at once if it ignores SIGCHLD (R3.3). The orphaned-pgrp check
    /// of R5.3 cannot fire here.
    fn reparent_leader(&mut self, child: Pid, reaper: Pid, reasons: &mut Reasons) {
        if self[child].state != ProcState::Zombie {
            return;
        }
        let notified = self.do_notify_parent(child);
        let (name, r) = (self.name(child), self.name(reaper));
        match notified {
            Notified::AutoReaped => reasons.add(name, "R3.3", "do_notify_parent()", || {
                format!(
                    "a zombie, re-notified to {r}, which has SIGCHLD set to SIG_IGN: the kernel \
                     reaps it at once"
                )
            }),
            Notified::Queued => reasons.add(name, "R3.2", "reparent_leader()", || {
                format!("a zombie, re-notified to {r} with SIGCHLD; {}", self.waiter_note(reaper))
            }),
        }
    }

    /// `zap_pid_ns_processes()` (R6.3), run by the last thread of the
    /// namespace's init from `find_child_reaper()`: pid allocation stops,
    /// init's SIGCHLD becomes `SIG_IGN`, every other task gets SIGKILL, and
    /// init waits until every other pid of the namespace is freed. So when
    /// init goes on to become a zombie, it is alone.
    fn zap_pid_ns_processes(&mut self, init: Pid, reasons: &mut Reasons) {
        let others: Vec<Pid> = self.pids().filter(|&p| p != init).collect();
        for pid in others {
            let text = if self[pid].state == ProcState::Zombie {
                "reaped as init exits: zap_pid_ns_processes() waits until every pid of the \
                 namespace is freed"
            } else {
                "killed with SIGKILL by zap_pid_ns_processes() as init exits, and reaped: nothing \
                 outlives its namespace's init"
            };
            reasons.add(self.name(pid), "R6.3", "zap_pid_ns_processes()", || text.into());
            self.release_task(pid);
        }
    }
}
