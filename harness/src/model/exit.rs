//! Process exit, and where the orphans go: kernel/exit.c `exit_notify()`,
//! `forget_original_parent()`, `find_child_reaper()`, `find_new_reaper()`,
//! `reparent_leader()` and `kill_orphaned_pgrp()`, and kernel/pid_namespace.c
//! `zap_pid_ns_processes()`.
//!
//! This is the heart of the oracle, and it follows the kernel's order (R1.2)
//! so that it can be read against kernel/exit.c line by line:
//!
//! 1. `forget_original_parent()`: if the dying process is a namespace's
//!    init, `find_child_reaper()` first runs `zap_pid_ns_processes()`, which
//!    kills and reaps everything in the namespace, nested ones included, and
//!    may leave the init waiting (`exiting`) for a parent outside to reap an
//!    injected zombie (R6.3, R6.4). Otherwise `find_new_reaper()` picks the
//!    new parent (R1.3): a living sibling thread first, then the nearest
//!    living subreaper at the dying process's own pid level, then its
//!    namespace's init (R1.5). Every child moves, its parent-death signal is
//!    sent (R4.2), and — across processes — a zombie child is re-notified
//!    (R3.2), perhaps reaped at once (R3.3), and the child's process group
//!    is checked for being newly orphaned (R5.3).
//! 2. `kill_orphaned_pgrp()` for the dying process's own group (R5.2).
//! 3. The process becomes a zombie, and notifies its own parent, which may
//!    reap it at once (R3.3, R3.4).
//!
//! Each call of [`World::exit_notify`] is one atomic event under
//! `tasklist_lock`; the `PF_EXITING` flag that `exit_signals()` sets before it
//! ([`World::exit_signals`]) is a separate, earlier event, and `race.rs`
//! interleaves the two across processes that die together. Signals sent on
//! the way can start further deaths (a parent-death SIGKILL, an orphaned
//! group's SIGHUP): they are returned as new victims, and die in the same
//! step.
//!
//! A multi-threaded process dies one thread at a time, each handing its
//! children to a sibling that is still living (a threaded reparent: same
//! process, no SIGCHLD, no orphan check, but the parent-death signal fires,
//! R1.7, R1.9) until the last one sends them out of the process. The model
//! takes the move out as the last thread's `exit_notify()`, and the hops
//! before it as one possible event per child that has a parent-death
//! signal ([`World::threaded_hop`]), which `race.rs` interleaves with the
//! rest: a thread may run `exit_notify()` while a sibling still lacks
//! `PF_EXITING` (R1.4), so the child gets its signal while its parent is
//! still the dying process (R4.3), and if the signal kills it, it dies
//! there — reaped at once if that process ignores SIGCHLD (R3.3), else a
//! zombie that the last thread hands on and re-notifies (R3.2), its own
//! children orphaned by a walk that may still find the dying process
//! living (R1.3, R1.4). Or every thread has `PF_EXITING` first and no hop
//! happens. A hop changes nothing else observable — not the parent process,
//! nor `exit_signal` — and how many hops there are is left open (R4.4):
//! `got=` is a set. The R5.2 check of the dying process's own group runs in
//! the thread that is `group_dead`, which may get there before a sibling
//! has handed its children on: when a thread forked none of the children,
//! `race.rs` also takes the check with every child still under the dying
//! process ([`World::early_orphan_check`]), where a child in its group
//! does not yet connect that group to the session. `thread-exit` and
//! `exec` run single thread exits ([`World::exit_thread`]).

use super::error::ModelError;
use super::prediction::{Prediction, Reason, Reasons};
use super::race::Victim;
use super::signal::{Notified, Sender};
use super::world::{Mutation, Pid, ProcState, Tid, World};
use crate::scenario::ThreadRef;

/// What `find_new_reaper()` decided and saw on its way, for the reasons.
struct NewReaper {
    reaper: Tid,
    /// A sibling thread of the dying one (R1.3a, R1.7).
    threaded: bool,
    /// The walk found `reaper` as a living subreaper (R1.3b), rather than
    /// falling back to the child reaper (R1.3c).
    by_walk: bool,
    /// Subreapers the walk passed because they had no living thread (R1.4).
    passed: Vec<Pid>,
    /// The walk did not run: the father lacks `has_child_subreaper` (R1.6).
    /// Holds the living subreaper the walk would have found, if any.
    skipped_walk: Option<Option<Pid>>,
    /// The walk stopped at a namespace boundary: the first ancestor at
    /// another pid level (R1.5).
    stopped_at_level: Option<Pid>,
}

impl World {
    /// `exit A`: A calls `exit()` itself.
    pub(super) fn exit_step(self, target: &str) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "exit")?;
        let mut reasons = Reasons::new();
        reasons.add(target, "R1.2", "do_exit()", || "calls exit()".into());
        let victim = Victim { pid, may_reap_first: false, stopped: false };
        Ok(self.settle_deaths(vec![victim], reasons))
    }

    /// `thread-exit A K|main`: one thread of A calls the `exit` system call
    /// (not `exit_group`). The last living thread takes the process with it.
    pub(super) fn thread_exit_step(mut self, target: &str, thread: ThreadRef) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "end a thread")?;
        let (k, label) = match thread {
            ThreadRef::Main => (0u8, "main".to_string()),
            ThreadRef::Extra(k) if (1..16).contains(&k) => (k as u8, k.to_string()),
            ThreadRef::Extra(k) => {
                return Err(ModelError::NoSuchThread { name: target.to_string(), thread: k.to_string() });
            }
        };
        if !self[pid].thread_alive(k) {
            return Err(ModelError::NoSuchThread { name: target.to_string(), thread: label });
        }
        let mut reasons = Reasons::new();
        let init_main = k == 0 && self[pid].is_init && self.config().mutated(Mutation::InitMainExitEndsNamespace);
        if self[pid].living_threads() == 1 || init_main {
            reasons.add(target, "R1.2", "do_exit()", || {
                format!("thread {label}, its last living thread, exits: the process exits with it (group_dead)")
            });
            let victim = Victim { pid, may_reap_first: false, stopped: false };
            return Ok(self.settle_deaths(vec![victim], reasons));
        }
        let victims = self.exit_thread(Tid { pid, thread: k }, &mut reasons);
        Ok(self.settle_deaths(victims, reasons))
    }

    /// `exec A`: A's main thread calls `execve()` on the node program.
    /// `de_thread()` kills every other thread first, and their children move
    /// to the exec'ing thread, with their parent-death signals (R4.3
    /// [MTEXEC], R8.4). The subreaper flag (R2.5) and the main thread's
    /// parent-death signal (R4.7) survive a plain exec; the node re-installs
    /// its handlers and keeps reaping as before.
    pub(super) fn exec_step(mut self, target: &str) -> Result<Prediction, ModelError> {
        let pid = self.lookup_actor(target, "exec")?;
        if !self[pid].main_alive {
            return Err(ModelError::NoSuchThread { name: target.to_string(), thread: "main".into() });
        }
        let mut reasons = Reasons::new();
        reasons.add(target, "R8.4", "de_thread()", || {
            "calls execve(): every other thread is killed, the subreaper flag and pdeath signal stay".into()
        });
        let mut victims = Vec::new();
        let spares = self.config().mutated(Mutation::ExecSparesThreads);
        if self.config().mutated(Mutation::ExecClearsPdeath) {
            self.update(pid, |p| p.pdeath = None);
        }
        for k in 1..16u8 {
            if self[pid].thread_alive(k) && !spares {
                victims.extend(self.exit_thread(Tid { pid, thread: k }, &mut reasons));
            }
        }
        Ok(self.settle_deaths(victims, reasons))
    }

    /// One thread exits while others of its process live on (R1.7): its
    /// children go to the first living sibling thread; the parent process
    /// stays the same, so no SIGCHLD, no `exit_signal` reset and no orphan
    /// check — but their parent-death signals fire (R4.3 [P1, P2]).
    pub(super) fn exit_thread(&mut self, thread: Tid, reasons: &mut Reasons) -> Vec<Victim> {
        let pid = thread.pid;
        let clears_pdeath = self.config().mutated(Mutation::MainExitClearsPdeath);
        self.update(pid, |p| {
            if thread.thread == 0 {
                p.main_alive = false;
                if clears_pdeath {
                    p.pdeath = None;
                }
            } else {
                p.threads_alive &= !(1 << thread.thread);
            }
        });
        let label = if thread.thread == 0 { "main".to_string() } else { thread.thread.to_string() };
        reasons.add(self.name(pid), "R1.7", "do_exit()", || {
            if thread.thread == 0 {
                "its main thread exits while other threads live: the process lives on (main-exited), its \
                 leader a delayed zombie until the last thread goes (R8.3)"
                    .into()
            } else {
                format!("its thread {label} exits; the process lives on")
            }
        });
        let Some(to) = self[pid].alive_thread(pid) else { return Vec::new() };
        let mut victims = Vec::new();
        for child in self.thread_children(thread) {
            self.update(child, |c| c.real_parent = Some(to));
            reasons.add(self.name(child), "R1.7", "find_new_reaper()", || {
                format!(
                    "its parent thread ({} thread {label}) exited; find_alive_thread() hands it to thread {} of \
                     the same process, so its parent process does not change",
                    self.name(pid),
                    thread_label(to.thread)
                )
            });
            if self.config().mutation != Some(Mutation::ThreadedHopNoPdeath) {
                victims.extend(self.send_pdeath(child, reasons));
            }
        }
        victims
    }

    /// Whether a child of `father`, which has begun to die as a whole, may
    /// still hop inside it (R1.9): `father` has two or more living threads
    /// and not all of them have `PF_EXITING` yet, so a thread that runs
    /// `exit_notify()` before the others finds a living sibling. A namespace
    /// init is left out: its death kills and reaps its whole namespace
    /// whatever its threads do (R6.3).
    pub(super) fn may_hop_inside(&self, father: Pid) -> bool {
        let p = &self[father];
        !p.is_init
            && p.is_living()
            && p.living_threads() >= 2
            && self.config().mutation != Some(Mutation::ThreadedHopNoPdeath)
    }

    /// Whether a hop inside its dying parent can change anything for
    /// `child`: only its parent-death signal can (a threaded reparent
    /// changes neither its parent process nor its `exit_signal`, R1.7), so
    /// only a live child with one hops.
    pub(super) fn hop_matters(&self, child: Pid) -> bool {
        let c = &self[child];
        c.pdeath.is_some() && matches!(c.state, ProcState::Running | ProcState::Stopped) && !c.exiting
    }

    /// One hop of `child` inside `father`, a multi-threaded process that is
    /// dying as a whole (a fatal signal, or `exit_group()`): the thread it
    /// is a child of runs `exit_notify()` while a sibling still lacks
    /// `PF_EXITING`, so `find_new_reaper()` (a) `find_alive_thread()` hands it
    /// to that sibling (R1.3, R1.7, R1.9) and `forget_original_parent()`
    /// sends its parent-death signal (R4.3, R4.4). Its parent process stays
    /// `father`, so if the signal kills it, it dies a child of `father`:
    /// reaped at once if `father` ignores SIGCHLD (R3.3), otherwise a zombie
    /// that `father`'s last thread hands on and re-notifies (R3.2). Which
    /// sibling it lands on is not kept: the group's last `exit_notify()`
    /// moves every child of the process, whichever thread it is on.
    pub(super) fn threaded_hop(&mut self, father: Pid, child: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        reasons.add(self.name(child), "R1.9", "find_new_reaper()", || {
            let f = self.name(father);
            format!(
                "{f} is dying thread by thread: its parent thread in {f} exits while a sibling thread \
                 still lacks PF_EXITING, and find_alive_thread() hands it to that thread (R1.7), so its \
                 parent is still {f}"
            )
        });
        let cfg = self.config();
        let by_extra_thread = self[child].real_parent.is_some_and(|t| t.thread != 0);
        if cfg.mutated(Mutation::ThreadedHopNoPdeath)
            || (by_extra_thread && cfg.mutated(Mutation::PdeathMainThreadChildrenOnly))
        {
            return Vec::new();
        }
        self.send_pdeath(child, reasons).into_iter().collect()
    }

    /// `exit_signals()` (kernel/signal.c), early in `do_exit()`: sets
    /// `PF_EXITING` on every thread. From now on the process is not living
    /// (R1.4): the reaper walk passes it by, but orphans it already adopted
    /// stay until its `exit_notify()`.
    pub(super) fn exit_signals(&mut self, tsk: Pid) {
        self.update(tsk, |p| p.exiting = true);
    }

    /// `exit_notify()` of the last thread of `tsk` (R1.2): the process is
    /// `group_dead`. Atomic. Returns the processes that signals sent on the
    /// way have started to kill.
    pub(super) fn exit_notify(&mut self, tsk: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        self.exit_signals(tsk);
        self.update(tsk, |p| {
            p.main_alive = false;
            p.threads_alive = 0;
            p.pending_fatal = None;
            p.pending_caught = Default::default();
            // A process that dies reports no signals: its handlers' record
            // dies with it.
            p.got = Default::default();
        });
        let mut victims = Vec::new();
        if self[tsk].is_init {
            // find_child_reaper(): the init's last thread is dying. Unless
            // zap_pid_ns_processes() could finish, the init waits in it.
            let (empty, orphaned) = self.zap_pid_ns_processes(tsk, reasons);
            victims.extend(orphaned);
            if !empty {
                return victims;
            }
        } else {
            victims.extend(self.forget_original_parent(tsk, reasons));
        }
        victims.extend(self.finish_exit(tsk, reasons));
        victims
    }

    /// The rest of `exit_notify()` once the children are gone: the orphaned
    /// group check (R5.2), the zombie, and the notification of the parent.
    fn finish_exit(&mut self, tsk: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        let victims = if self[tsk].orphan_checked { Vec::new() } else { self.kill_orphaned_pgrp_on_exit(tsk, reasons) };
        self.update(tsk, |p| p.state = ProcState::Zombie);
        let parent = self[tsk].parent_pid();
        // R3.4: a leader whose thread group is empty notifies its parent now.
        let notified = self.do_notify_parent(tsk);
        let name = self.name(tsk);
        match (notified, parent) {
            (Notified::AutoReaped, Some(parent)) => reasons.add(name, "R3.3", "do_notify_parent()", || {
                if self[parent].state == ProcState::Exiting {
                    format!(
                        "exits; its parent {} is in zap_pid_ns_processes(), which set its SIGCHLD to \
                         SIG_IGN, so the kernel reaps it at once",
                        self.name(parent)
                    )
                } else {
                    format!(
                        "exits; its parent {} has SIGCHLD set to SIG_IGN, so the kernel reaps it at once",
                        self.name(parent)
                    )
                }
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
        victims
    }

    /// `forget_original_parent()`: hands every child of `father` to its new
    /// parent, in list order.
    fn forget_original_parent(&mut self, father: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        let children = self.children(father);
        let mut victims = Vec::new();
        if children.is_empty() {
            return victims;
        }
        let found = self.find_new_reaper(father);
        let cfg = self.config();
        for child in children {
            // Described before the move, as the walk saw the world.
            reasons.add_reason(|| {
                let (rule, text) = self.describe(father, &found);
                Reason::new(self.name(child), rule, "find_new_reaper()", text)
            });
            let mut reaper = found.reaper;
            let c = &self[child];
            if cfg.mutated(Mutation::ChildReaperOfOrphan) && !found.threaded && !c.is_init && c.ns != self[father].ns {
                // The deliberate bug: the orphan's own namespace decides.
                reaper = self[c.ns].alive_thread(c.ns).unwrap_or(Tid { pid: c.ns, thread: 0 });
            }
            let by_extra_thread = c.real_parent.is_some_and(|t| t.thread != 0);
            self.update(child, |c| c.real_parent = Some(reaper));
            if cfg.mutated(Mutation::AdoptedStoppedResumed) && !found.threaded {
                self.update(child, |c| {
                    if c.state == ProcState::Stopped {
                        c.state = ProcState::Running;
                    }
                });
            }
            let no_pdeath = (found.threaded && cfg.mutated(Mutation::ThreadedHopNoPdeath))
                || (by_extra_thread && cfg.mutated(Mutation::PdeathMainThreadChildrenOnly));
            if !no_pdeath {
                victims.extend(self.send_pdeath(child, reasons));
            }
            if !found.threaded {
                victims.extend(self.reparent_leader(child, father, reaper.pid, reasons));
            }
        }
        victims
    }

    /// R4.2: for each thread of a child that moved, its `pdeath_signal`. Only
    /// the main thread of a node has one (see `Proc::pdeath`).
    fn send_pdeath(&mut self, child: Pid, reasons: &mut Reasons) -> Option<Victim> {
        let sig = self[child].pdeath?;
        if self[child].state == ProcState::Zombie {
            return None;
        }
        if self.config().mutated(Mutation::PdeathOnce) {
            self.update(child, |c| c.pdeath = None);
        }
        if self.config().mutated(Mutation::PdeathNoDefaultAction) && !self[child].catch.has(sig) {
            return None;
        }
        reasons.add(self.name(child), "R4.2", "forget_original_parent()", || {
            format!("its parent thread died: the kernel sends it its parent-death signal, {sig}")
        });
        self.send_signal(child, sig, Sender::ParentDeath, reasons)
    }

    /// `find_new_reaper(father, child_reaper)` (R1.3), for the last thread of
    /// `father`: no sibling thread is living any more, so (a) finds nothing.
    fn find_new_reaper(&self, father: Pid) -> NewReaper {
        let dying = &self[father];
        let child_reaper = self.child_reaper(father);
        if let Some(t) = dying.alive_thread(father) {
            return NewReaper {
                reaper: t,
                threaded: true,
                by_walk: false,
                passed: Vec::new(),
                skipped_walk: None,
                stopped_at_level: None,
            };
        }
        // (b) The walk, gated by has_child_subreaper (R1.6). It climbs
        // real_parent while the pid level stays that of the father (R1.5):
        // it never leaves the father's namespace, and the harness above the
        // scenario's init ends it.
        let farthest = self.config().mutation == Some(Mutation::FarthestSubreaper);
        let level = self.level(father);
        let mut stopped_at_level = None;
        let mut walk = |passed: &mut Vec<Pid>| {
            let mut r = dying.parent_pid();
            let mut found = None;
            while let Some(pid) = r {
                if self.level(pid) != level && self.config().mutation != Some(Mutation::WalkCrossesNamespaces) {
                    stopped_at_level = Some(pid);
                    break;
                }
                let p = &self[pid];
                if p.is_child_subreaper {
                    let fatal_pending =
                        p.pending_fatal.is_some() && self.config().mutated(Mutation::PendingFatalNotLiving);
                    if p.is_living() && !fatal_pending {
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
                r = p.parent_pid();
            }
            found
        };
        let mut passed = Vec::new();
        let skipped_walk = if dying.has_child_subreaper && !self.config().mutated(Mutation::NoSubreaperWalk) {
            if let Some(reaper) = walk(&mut passed) {
                let t = self[reaper].alive_thread(reaper).unwrap_or(Tid { pid: reaper, thread: 0 });
                return NewReaper {
                    reaper: t,
                    threaded: false,
                    by_walk: true,
                    passed,
                    skipped_walk: None,
                    stopped_at_level: None,
                };
            }
            None
        } else {
            Some(walk(&mut Vec::new()))
        };
        // (c) child_reaper: the init of the father's namespace, through a
        // living thread of it (R6.2), even if it is exiting itself (R6.3).
        let grandparent = dying.parent_pid().filter(|&p| self[p].is_living());
        let child_reaper = match grandparent {
            Some(p) if self.config().mutated(Mutation::OrphanToGrandparent) => p,
            _ => child_reaper,
        };
        let t = self[child_reaper].alive_thread(child_reaper).unwrap_or(Tid { pid: child_reaper, thread: 0 });
        NewReaper { reaper: t, threaded: false, by_walk: false, passed, skipped_walk, stopped_at_level }
    }

    /// The rule and the words for a `find_new_reaper()` decision.
    fn describe(&self, father: Pid, found: &NewReaper) -> (&'static str, String) {
        let f = self.name(father);
        let rp = found.reaper.pid;
        let r = self.name(rp);
        if found.threaded {
            return (
                "R1.7",
                format!(
                    "parent {f}'s thread died; find_alive_thread() hands it to {f}'s thread {}: same \
                     process",
                    thread_label(found.reaper.thread)
                ),
            );
        }
        let ns_note = match found.stopped_at_level {
            Some(b) if self.level(b) < self.level(father) => format!(
                "; the walk stops at {}, which is at another pid level (outside {f}'s namespace, R1.5)",
                self.name(b)
            ),
            _ => String::new(),
        };
        let to_init = if self[rp].exiting || self[rp].state == ProcState::Exiting {
            format!("it goes to {r}, the child reaper of {f}'s namespace, which is exiting too{ns_note}")
        } else {
            format!("it goes to {r}, the child reaper of {f}'s namespace{ns_note}")
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
                let rule = if found.stopped_at_level.is_some() { "R1.5" } else { "R1.3" };
                (rule, format!("parent {f} died; no living subreaper above {f} at its pid level, so {to_init}"))
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
    /// nodes), a zombie is re-notified to its new parent (R3.2), which reaps
    /// it at once if it ignores SIGCHLD (R3.3), and the child's process group
    /// is checked for being newly orphaned (R5.3).
    fn reparent_leader(&mut self, child: Pid, father: Pid, reaper: Pid, reasons: &mut Reasons) -> Vec<Victim> {
        if self[child].state != ProcState::Zombie {
            return self.kill_orphaned_pgrp_on_reparent(child, father, reasons);
        }
        // The child's group is checked before the notification, which may
        // release it.
        let victims = self.kill_orphaned_pgrp_on_reparent(child, father, reasons);
        if self.config().mutated(Mutation::MovedZombieNotRenotified) {
            self.update(child, |c| c.unnotified = true);
            return victims;
        }
        let notified = self.do_notify_parent(child);
        let (name, r) = (self.name(child), self.name(reaper));
        match notified {
            Notified::AutoReaped => reasons.add(name, "R3.3", "do_notify_parent()", || {
                format!(
                    "a zombie, re-notified to {r}, which ignores SIGCHLD (SIG_IGN, or set so by \
                     zap_pid_ns_processes()): the kernel reaps it at once"
                )
            }),
            Notified::Queued => reasons.add(name, "R3.2", "reparent_leader()", || {
                format!("a zombie, re-notified to {r} with SIGCHLD; {}", self.waiter_note(reaper))
            }),
        }
        victims
    }

    /// `zap_pid_ns_processes()` (R6.3), run by the last thread of a
    /// namespace's init from `find_child_reaper()`: pid allocation stops,
    /// init's SIGCHLD becomes `SIG_IGN`, every other task whose pid lives in
    /// the namespace — nested namespaces and `setns()`-injected processes
    /// included (R6.9) — gets SIGKILL, and init waits until every other pid
    /// of the namespace is freed. Those whose parent is in the namespace are
    /// reaped by the kernel (their parents die too and hand them to the
    /// dying init, which ignores SIGCHLD); one whose parent is outside waits
    /// for that parent (R6.4). Returns whether the namespace emptied, so
    /// that init goes on to become a zombie; otherwise it stays `Exiting`.
    fn zap_pid_ns_processes(&mut self, init: Pid, reasons: &mut Reasons) -> (bool, Vec<Victim>) {
        self.update(init, |p| p.state = ProcState::Exiting);
        let mut members = self.ns_members(init);
        if self.config().mutated(Mutation::ZapSparesNestedNamespaces) {
            members.retain(|&m| self[m].ns == init);
        }
        // The killed members' exits run kill_orphaned_pgrp() (R5.2) one by
        // one, in an order the kernel does not fix; whatever the order, a
        // group that one of them kept connected to its session is orphaned
        // when the last such member has exited (tested below, once the
        // members have).
        let mut groups: Vec<Option<Pid>> = Vec::new();
        for &m in &members {
            let g = self[m].pgrp;
            if !groups.contains(&g) && !self.is_pgrp_orphaned(g) {
                groups.push(g);
            }
        }
        for &pid in &members {
            let text = if self[pid].state == ProcState::Zombie {
                "already a zombie as its namespace's init exits"
            } else {
                "killed with SIGKILL by zap_pid_ns_processes() as its namespace's init exits: nothing \
                 outlives its namespace's init"
            };
            reasons.add(self.name(pid), "R6.3", "zap_pid_ns_processes()", || text.into());
            // A nested namespace's init runs its own zap as it dies (R6.9).
            let state = if self[pid].is_init && self[pid].state != ProcState::Zombie {
                ProcState::Exiting
            } else {
                ProcState::Zombie
            };
            self.update(pid, |p| {
                p.state = state;
                p.exiting = true;
                p.main_alive = false;
                p.threads_alive = 0;
                p.got = Default::default();
            });
        }
        // Reaping, until nothing changes: a zombie whose parent is in the
        // dying namespace is collected (its parent dies too and hands it to
        // an init that ignores SIGCHLD, or an init's kernel_wait4() takes
        // it); one whose parent is outside waits for that parent (R6.4); a
        // nested init finishes once its own namespace is empty.
        let inside = |q: Option<Pid>| q.is_some_and(|q| q == init || members.contains(&q));
        let mut told: Vec<Pid> = Vec::new();
        loop {
            let mut changed = false;
            for &pid in &members {
                if !self.exists(pid) {
                    continue;
                }
                match self[pid].state {
                    ProcState::Exiting if self.ns_members(pid).is_empty() => {
                        self.update(pid, |p| p.state = ProcState::Zombie);
                        changed = true;
                    }
                    // The deliberate bug: the zombie waits for its parent,
                    // which is dying too and never reaps it.
                    ProcState::Zombie
                        if inside(self[pid].parent_pid())
                            && self.config().mutated(Mutation::ZapWaitsForInsideZombies) => {}
                    ProcState::Zombie if inside(self[pid].parent_pid()) => {
                        reasons.add(self.name(pid), "R6.3", "zap_pid_ns_processes()", || {
                            "reaped: its parent is in the dying namespace, and everything there ends with \
                             the init, which ignores SIGCHLD"
                                .into()
                        });
                        // What it leaves behind (a nested init still in its
                        // own zap) went to the child reaper, the dying init,
                        // when it exited (R6.3: "may be a dying init").
                        for c in self.children(pid) {
                            self.update(c, |c| c.real_parent = Some(Tid { pid: init, thread: 0 }));
                        }
                        self.release_task(pid);
                        changed = true;
                    }
                    ProcState::Zombie if !told.contains(&pid) => {
                        told.push(pid);
                        let Some(q) = self[pid].parent_pid() else { continue };
                        if self.config().mutated(Mutation::ZapReleasesInjectedZombies) {
                            self.release_task(pid);
                            changed = true;
                        } else if let Notified::AutoReaped = self.do_notify_parent(pid) {
                            reasons.add(self.name(pid), "R3.3", "do_notify_parent()", || {
                                format!(
                                    "its parent {}, outside the namespace, ignores SIGCHLD: reaped at once",
                                    self.name(q)
                                )
                            });
                            changed = true;
                        } else {
                            reasons.add(self.name(pid), "R6.4", "zap_pid_ns_processes()", || {
                                format!(
                                    "a zombie whose parent {} is outside the dying namespace: only {} can \
                                     reap it, and the namespace's init waits for that; {}",
                                    self.name(q),
                                    self.name(q),
                                    self.waiter_note(q)
                                )
                            });
                        }
                    }
                    _ => {}
                }
            }
            if !changed {
                break;
            }
        }
        // Now that every killed member that could has run exit_notify() —
        // a nested init only once its own namespace is empty (R6.9), so it
        // keeps its group connected until then — the groups they kept
        // connected are tested (R5.2).
        let mut victims = Vec::new();
        if self.config().mutated(Mutation::ZapNoOrphanedPgrpCheck) {
            groups.clear();
        }
        for g in groups {
            let why = "the namespace's processes that kept it connected to its session were killed".to_string();
            victims.extend(self.kill_orphaned_pgrp_after_zap(g, &why, reasons));
        }
        let empty = self.ns_members(init).is_empty();
        if !empty {
            for pid in self.ns_members(init).into_iter().chain([init]) {
                if self[pid].state == ProcState::Exiting {
                    reasons.add(self.name(pid), "R6.4", "zap_pid_ns_processes()", || {
                        "exiting: waits in zap_pid_ns_processes() until every pid of its namespace is freed".into()
                    });
                }
            }
        }
        (empty, victims)
    }

    /// A namespace init left waiting in `zap_pid_ns_processes()` finishes its
    /// exit once the last other pid of its namespace is freed (R6.4).
    pub(super) fn finish_zaps(&mut self, reasons: &mut Reasons) -> Vec<Victim> {
        let waiting: Vec<Pid> = self.pids().filter(|&p| self[p].state == ProcState::Exiting).collect();
        let mut victims = Vec::new();
        for init in waiting {
            if self.ns_members(init).is_empty() {
                reasons.add(self.name(init), "R6.4", "zap_pid_ns_processes()", || {
                    "the last other pid of its namespace was freed: it finishes exiting".into()
                });
                victims.extend(self.finish_exit(init, reasons));
            }
        }
        victims
    }
}

/// `main` or the thread's number.
pub(super) fn thread_label(thread: u8) -> String {
    if thread == 0 {
        "main".into()
    } else {
        thread.to_string()
    }
}
