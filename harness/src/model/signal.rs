//! What a `kill` does to each target, and how an exiting child tells its
//! parent: kernel/signal.c `send_signal_locked()`, `prepare_signal()`,
//! `sig_task_ignored()`, `complete_signal()`, `get_signal()` and
//! `do_notify_parent()`.
//!
//! Signals reach processes from three senders: the harness (`kill` steps,
//! from outside every namespace), a dying parent (`pdeathsig`, R4.2) and
//! `kill_orphaned_pgrp()` (R5.2, R5.3). All three are outside a namespace
//! init's namespace or privileged, so for an init the kernel sets `force`
//! (R6.6b, R6.10): only SIGKILL and SIGSTOP get past `SIGNAL_UNKILLABLE`, and
//! SIGCONT's side effect of resuming happens before the drop (R6.6d). A
//! signal the node catches (`catch=`) runs its handler, from any sender and
//! for an init too (R6.6c), and is recorded for `got=`. Otherwise a signal
//! does its default action (`signal(7)`), with two twists that decide what a
//! stopped process does:
//!
//! - a stopped process dies at once only of SIGKILL: `wants_signal()` skips
//!   a stopped task for every other signal, so `complete_signal()` never
//!   turns it into a group exit, and a fatal signal waits, pending, until a
//!   SIGCONT lets the task reach `get_signal()` (core dumps are off in the
//!   sandbox, so a Core-default one then just kills); a caught signal waits
//!   the same way for its handler;
//! - `get_signal()` discards SIGTSTP, SIGTTIN and SIGTTOU when the process
//!   group is orphaned (R5.7) — as the harness's own group always is — and
//!   stops the process otherwise; SIGSTOP always stops.
//!
//! A signal that kills only starts the death here: the target becomes a
//! [`Victim`], and `race.rs` runs the deaths.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::race::Victim;
use super::world::{MtInitSignal, Mutation, Pid, ProcState, SigSet, World};
use crate::scenario::{Name, Signal};

/// What `do_notify_parent()` did with an exited child.
pub(super) enum Notified {
    /// The parent ignores SIGCHLD: the child is `EXIT_DEAD` and released.
    AutoReaped,
    /// The child stays a zombie until its parent waits for it.
    Queued,
}

/// What `SIG_DFL` does with a signal, as include/linux/signal.h sorts them:
/// `sig_kernel_coredump()`, `sig_kernel_stop()`, `sig_kernel_ignore()`, and
/// termination for the rest (real-time signals included). The model owns
/// this table: nothing else in the crate decides what a signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultAction {
    Term,
    Core,
    Ign,
    Stop,
    Cont,
}

fn default_action(sig: Signal) -> DefaultAction {
    // SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV SIGXCPU SIGXFSZ SIGSYS
    const SIG_KERNEL_COREDUMP: [i32; 10] = [3, 4, 5, 6, 7, 8, 11, 24, 25, 31];
    // SIGSTOP SIGTSTP SIGTTIN SIGTTOU
    const SIG_KERNEL_STOP: [i32; 4] = [19, 20, 21, 22];
    // SIGCHLD SIGURG SIGWINCH (SIGCONT is in the kernel's mask too)
    const SIG_KERNEL_IGNORE: [i32; 3] = [17, 23, 28];
    match sig.0 {
        n if SIG_KERNEL_COREDUMP.contains(&n) => DefaultAction::Core,
        n if SIG_KERNEL_STOP.contains(&n) => DefaultAction::Stop,
        n if SIG_KERNEL_IGNORE.contains(&n) => DefaultAction::Ign,
        _ if sig == Signal::CONT => DefaultAction::Cont,
        _ => DefaultAction::Term,
    }
}

/// `signal(7)`'s default actions are taken as given by `kernel-rules.md`,
/// which numbers only the rules that are specific to reparenting.
const DEFAULT_ACTION: &str = "signal(7)";

impl World {
    /// `kill A [B ...] SIG`: every signal is sent before any death is run, so
    /// several victims race (R1.8).
    pub(super) fn kill_step(mut self, targets: &[Name], sig: Signal) -> Result<Prediction, ModelError> {
        if targets.is_empty() {
            return Err(ModelError::NoTargets);
        }
        let mut pids: Vec<Pid> = Vec::new();
        for target in targets {
            let pid = self.lookup(target)?;
            // A standard signal sent twice before it is handled coalesces.
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        let mut reasons = Reasons::new();
        let mut victims = Vec::new();
        for p in pids {
            if let Some(v) = self.send_signal(p, sig, Sender::Outside, &mut reasons) {
                victims.push(v);
            }
        }
        Ok(self.settle_deaths(victims, reasons))
    }

    /// One signal to the process `pid` (process-directed). Returns the
    /// victim if the signal starts its death. In the kernel's order:
    /// `prepare_signal()` (an exiting target, SIGCONT waking a stopped one),
    /// a handler, the namespace init's shield, then the default action.
    pub(super) fn send_signal(&mut self, pid: Pid, sig: Signal, from: Sender, reasons: &mut Reasons) -> Option<Victim> {
        let p = self[pid];
        let name = self.name(pid).to_string();
        if matches!(p.state, ProcState::Zombie | ProcState::Exiting) || p.exiting {
            // prepare_signal(): SIGNAL_GROUP_EXIT is set, the signal goes nowhere.
            let text = format!("{sig}{} changes nothing: it is already exiting", from.describe());
            reasons.add(&name, DEFAULT_ACTION, "prepare_signal()", move || text);
            return None;
        }
        if sig == Signal::CONT && p.state == ProcState::Stopped {
            return self.continue_stopped(pid, from, reasons);
        }
        if p.catch.has(sig) {
            if p.state == ProcState::Stopped {
                self.update(pid, |p| p.pending_caught.add(sig));
                let text =
                    format!("{sig}{} waits: it is stopped, its handler runs once it is continued", from.describe());
                reasons.add(&name, DEFAULT_ACTION, "get_signal()", move || text);
            } else {
                self.deliver(pid, sig, from, reasons);
            }
            return None;
        }
        if p.is_init && !self.config().mutated(Mutation::InitUnshielded) {
            return self.send_signal_to_ns_init(pid, sig, from, reasons);
        }
        match default_action(sig) {
            DefaultAction::Term | DefaultAction::Core => self.fatal_default(pid, sig, from, reasons),
            DefaultAction::Stop => {
                self.stop_default(pid, sig, from, reasons);
                None
            }
            DefaultAction::Cont => None,
            DefaultAction::Ign => {
                let (kernel_fn, text) = if sig == Signal::CHLD {
                    (
                        "prepare_signal()",
                        "SIGCHLD is queued, as the node blocks it; its signalfd reads it and \
                         nothing else happens"
                            .to_string(),
                    )
                } else {
                    ("sig_ignored()", format!("{sig} is dropped: its default action is to ignore it"))
                };
                reasons.add(&name, DEFAULT_ACTION, kernel_fn, move || text);
                None
            }
        }
    }

    /// SIGCONT to a stopped process: `prepare_signal()` wakes the stopped
    /// threads whatever the disposition, before any ignore test (R6.6d);
    /// then what waited while it was stopped runs.
    fn continue_stopped(&mut self, pid: Pid, from: Sender, reasons: &mut Reasons) -> Option<Victim> {
        let p = self[pid];
        self.update(pid, |p| p.state = ProcState::Running);
        let (rule, text) = if p.is_init {
            ("R6.6d", "resumed: prepare_signal() wakes stopped threads before SIGNAL_UNKILLABLE drops SIGCONT")
        } else {
            (DEFAULT_ACTION, "resumed by SIGCONT")
        };
        reasons.add(self.name(pid), rule, "prepare_signal()", || format!("{text}{}", from.describe()));
        let victim = self.resumed(pid, reasons);
        if p.catch.has(Signal::CONT) {
            self.deliver(pid, Signal::CONT, from, reasons);
        }
        victim
    }

    /// A signal whose default action terminates (or dumps core).
    fn fatal_default(&mut self, pid: Pid, sig: Signal, from: Sender, reasons: &mut Reasons) -> Option<Victim> {
        let state = self[pid].state;
        let name = self.name(pid).to_string();
        if state == ProcState::Stopped && sig != Signal::KILL {
            // wants_signal() refuses a stopped task for every signal but
            // SIGKILL, so complete_signal() returns before its fatal-signal
            // shortcut: the signal stays queued until a SIGCONT lets the task
            // reach get_signal(). (Observed on 6.18: SIGTERM to a stopped
            // process leaves it stopped; SIGCONT then kills it.)
            let text = format!(
                "stays stopped with {sig}{} pending: wants_signal() skips a stopped task for \
                 every signal but SIGKILL, so complete_signal() does not make it a group \
                 exit; {sig} waits for get_signal() after a SIGCONT",
                from.describe()
            );
            self.update(pid, |p| {
                p.pending_fatal.get_or_insert(sig);
            });
            reasons.add(&name, DEFAULT_ACTION, "complete_signal()", move || text);
            return None;
        }
        let core = default_action(sig) == DefaultAction::Core;
        let text = if state == ProcState::Stopped {
            "killed by SIGKILL, although stopped: complete_signal() turns it into a group \
             exit and wakes the stopped task to die"
                .to_string()
        } else if core {
            format!(
                "killed by {sig}{}, whose default action is to dump core (core dumps are \
                 off in the sandbox)",
                from.describe()
            )
        } else {
            format!("killed by {sig}{}, whose default action is to terminate", from.describe())
        };
        let (rule, kernel_fn) = match from {
            Sender::ParentDeath => ("R4.2", "forget_original_parent()"),
            Sender::OrphanedPgrp => ("R5.6", "kill_orphaned_pgrp()"),
            Sender::Outside if core => (DEFAULT_ACTION, "get_signal()"),
            Sender::Outside => (DEFAULT_ACTION, "complete_signal()"),
        };
        reasons.add(&name, rule, kernel_fn, move || text);
        // complete_signal() replaces the group's flags with
        // SIGNAL_GROUP_EXIT: it is no longer a stopped job (R5.1).
        if !self.config().mutated(Mutation::SigkillKeepsStoppedJob) {
            self.update(pid, |p| {
                if p.state == ProcState::Stopped {
                    p.state = ProcState::Running;
                }
            });
        }
        Some(Victim {
            pid,
            may_reap_first: state == ProcState::Running && from == Sender::Outside,
            stopped: state == ProcState::Stopped && from == Sender::Outside,
        })
    }

    /// A signal whose default action stops: SIGSTOP always; SIGTSTP,
    /// SIGTTIN and SIGTTOU only outside an orphaned process group (R5.7).
    fn stop_default(&mut self, pid: Pid, sig: Signal, from: Sender, reasons: &mut Reasons) {
        let p = self[pid];
        let name = self.name(pid).to_string();
        if sig == Signal::STOP {
            if p.state == ProcState::Running {
                self.update(pid, |p| p.state = ProcState::Stopped);
                let text = format!("stopped by SIGSTOP{}", from.describe());
                reasons.add(&name, "R5.7", "do_signal_stop()", move || text);
            }
        } else if self.is_pgrp_orphaned(p.pgrp) && !self.config().mutated(Mutation::TstpStopsInOrphanedPgrp) {
            let text = format!(
                "{sig}{} is discarded: its default action is to stop, but its process \
                 group is orphaned (no member has a parent in another group of its session)",
                from.describe()
            );
            reasons.add(&name, "R5.7", "get_signal()", move || text);
        } else if p.state == ProcState::Running {
            self.update(pid, |p| p.state = ProcState::Stopped);
            let text = format!(
                "stopped by {sig}{}: its process group is not orphaned (a member's parent is \
                 in another group of the same session)",
                from.describe()
            );
            reasons.add(&name, "R5.7", "do_signal_stop()", move || text);
        }
    }

    /// A handler of the node runs for `sig` (`catch=`): recorded in `got=`.
    fn deliver(&mut self, pid: Pid, sig: Signal, from: Sender, reasons: &mut Reasons) {
        self.update(pid, |p| p.got.add(sig));
        let text = format!("its handler runs for {sig}{}", from.describe());
        let rule = if self[pid].is_init { "R6.6c" } else { DEFAULT_ACTION };
        reasons.add(self.name(pid), rule, "get_signal()", move || text);
    }

    /// A stopped process was continued: the handlers of signals that waited
    /// run, and a fatal signal that waited kills it.
    fn resumed(&mut self, pid: Pid, reasons: &mut Reasons) -> Option<Victim> {
        let p = self[pid];
        if p.pending_caught != SigSet::default() {
            self.update(pid, |p| {
                p.got.0 |= p.pending_caught.0;
                p.pending_caught = SigSet::default();
            });
            let list: Vec<String> = p.pending_caught.list().iter().map(|s| s.to_string()).collect();
            let text = format!("its handlers run for {}, which waited while it was stopped", list.join(", "));
            reasons.add(self.name(pid), DEFAULT_ACTION, "get_signal()", move || text);
        }
        let fatal = p.pending_fatal?;
        let text = format!("then killed by the {fatal} it got while stopped");
        reasons.add(self.name(pid), DEFAULT_ACTION, "get_signal()", move || text);
        // It dies on its way out of do_signal_stop(), without returning to
        // the node's code: it cannot wait first.
        Some(Victim { pid, may_reap_first: false, stopped: false })
    }

    /// A signal without a handler to a namespace init (R6.6). Every sender
    /// the sandbox has is outside the init's namespace or privileged (the
    /// harness, a parent in the outer namespace, `kill_orphaned_pgrp()`), so
    /// `force` is set: only SIGKILL and SIGSTOP get past
    /// `SIGNAL_UNKILLABLE` (R6.6b, R6.10).
    fn send_signal_to_ns_init(&mut self, pid: Pid, sig: Signal, from: Sender, reasons: &mut Reasons) -> Option<Victim> {
        let name = self.name(pid).to_string();
        let state = self[pid].state;
        let who = if self[pid].outer_ns.is_some() { "this namespace init" } else { "init" };
        if sig == Signal::KILL {
            let text = format!(
                "SIGKILL{} comes from outside its namespace and is forced past SIGNAL_UNKILLABLE: \
                 {who} dies",
                from.describe()
            );
            reasons.add(
                &name,
                if from == Sender::ParentDeath { "R6.10" } else { "R6.6b" },
                "send_signal_locked()",
                move || text,
            );
            self.update(pid, |p| {
                if p.state == ProcState::Stopped {
                    p.state = ProcState::Running;
                }
            });
            return Some(Victim {
                pid,
                may_reap_first: state == ProcState::Running && from == Sender::Outside,
                stopped: state == ProcState::Stopped && from == Sender::Outside,
            });
        }
        if sig == Signal::STOP {
            if state == ProcState::Running {
                self.update(pid, |p| p.state = ProcState::Stopped);
                let text = format!("SIGSTOP{} is forced past SIGNAL_UNKILLABLE: {who} stops", from.describe());
                reasons.add(&name, "R6.6b", "send_signal_locked()", move || text);
            }
            return None;
        }
        if sig == Signal::CHLD {
            let text = "SIGCHLD is blocked, so it is queued rather than dropped; the node's signalfd \
                        reads it and nothing else happens";
            reasons.add(&name, "R6.6e", "sig_ignored()", || text.into());
            return None;
        }
        if sig == Signal::CONT {
            return None;
        }
        if !self[pid].main_alive
            && state == ProcState::Running
            && default_action(sig) == DefaultAction::Term
            && self.config().build.mt_init == MtInitSignal::Killed
        {
            // The exited main thread blocks every signal, so sig_ignored()
            // does not drop it; a live thread takes it and complete_signal()
            // starts a group exit (R6.6g; this kernel build is "killed").
            let text = format!(
                "killed by {sig}{}: its exited main thread blocks every signal, so the signal is \
                 queued, not dropped, and a live thread's complete_signal() makes it a group exit \
                 (this build: mt-init killed)",
                from.describe()
            );
            reasons.add(&name, "R6.6g", "complete_signal()", move || text);
            return Some(Victim { pid, may_reap_first: from == Sender::Outside, stopped: false });
        }
        let text = format!(
            "{sig}{} is dropped: {who} has no handler for it, and force lets only SIGKILL and \
             SIGSTOP past SIGNAL_UNKILLABLE",
            from.describe()
        );
        let rule = match from {
            Sender::ParentDeath => "R6.10",
            Sender::OrphanedPgrp => "R5.6",
            Sender::Outside => "R6.6b",
        };
        reasons.add(&name, rule, "sig_task_ignored()", move || text);
        None
    }

    /// `do_notify_parent(tsk, SIGCHLD)` for an exited, untraced child whose
    /// thread group is empty (R3.3): if the parent's SIGCHLD is `SIG_IGN` —
    /// or the parent is a namespace init in `zap_pid_ns_processes()`, which
    /// set it so (R6.3) — the child is reaped by the kernel on the spot.
    /// init's parent, the harness, is outside the model and waits for it
    /// (`wait.rs`).
    pub(super) fn do_notify_parent(&mut self, tsk: Pid) -> Notified {
        let parent = self[tsk].parent_pid();
        let ignores = |p: Pid| self[p].sigchld_ignore && !self.config().mutated(Mutation::SigchldIgnoreNoAutoreap);
        if parent.is_some_and(|p| ignores(p) || self[p].state == ProcState::Exiting) {
            self.release_task(tsk);
            Notified::AutoReaped
        } else {
            Notified::Queued
        }
    }
}

/// Who sends a signal, as far as the receiver can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sender {
    /// A `kill` step: the harness, outside every namespace.
    Outside,
    /// `forget_original_parent()`: a parent-death signal (R4.2).
    ParentDeath,
    /// `kill_orphaned_pgrp()`: SIGHUP and SIGCONT to a newly orphaned
    /// process group (R5.2, R5.3).
    OrphanedPgrp,
}

impl Sender {
    fn describe(self) -> &'static str {
        match self {
            Sender::Outside => "",
            Sender::ParentDeath => " (its parent-death signal)",
            Sender::OrphanedPgrp => " (its process group was orphaned with a stopped member)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions_match_signal_7() {
        // signal(7), "Standard signals": every Term and Core signal by number.
        let fatal: Vec<i32> = Signal::all()
            .filter(|&s| matches!(default_action(s), DefaultAction::Term | DefaultAction::Core))
            .map(|s| s.0)
            .collect();
        let expected: Vec<i32> = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31]
            .into_iter()
            .chain(Signal::RTMIN..=Signal::RTMAX)
            .collect();
        assert_eq!(fatal, expected);
        assert_eq!(default_action(Signal::STOP), DefaultAction::Stop);
        assert_eq!(default_action(Signal::TSTP), DefaultAction::Stop);
        assert_eq!(default_action(Signal::CONT), DefaultAction::Cont);
        assert_eq!(default_action(Signal::CHLD), DefaultAction::Ign);
        assert_eq!(default_action(Signal(3)), DefaultAction::Core);
        assert_eq!(default_action(Signal::TERM), DefaultAction::Term);
        assert_eq!(default_action(Signal(Signal::RTMIN)), DefaultAction::Term);
    }
}
