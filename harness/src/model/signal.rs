//! What a `kill` does to each target, and how an exiting child tells its
//! parent: kernel/signal.c `send_signal_locked()`, `prepare_signal()`,
//! `sig_task_ignored()`, `complete_signal()`, `get_signal()` and
//! `do_notify_parent()`.
//!
//! The harness sends every signal from outside the namespace, so for init
//! the kernel sets `force` (R6.6b): only SIGKILL and SIGSTOP get past
//! `SIGNAL_UNKILLABLE`, and SIGCONT's side effect of resuming happens before
//! the drop (R6.6d). For every other process a signal does its default
//! action (`signal(7)`; no node catches signals), with two twists that decide
//! what a stopped process does:
//!
//! - a stopped process dies at once only of SIGKILL: `wants_signal()` skips
//!   a stopped task for every other signal, so `complete_signal()` never
//!   turns it into a group exit, and a fatal signal waits, pending, until a
//!   SIGCONT lets the task reach `get_signal()` (core dumps are off in the
//!   sandbox, so a Core-default one then just kills);
//! - `get_signal()` discards SIGTSTP, SIGTTIN and SIGTTOU, because the
//!   sandbox's one process group is orphaned (R5.7); SIGSTOP still stops.
//!
//! A signal that kills only starts the death here: the target becomes a
//! [`Victim`], and `race.rs` runs the deaths.

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use super::race::Victim;
use super::world::{Pid, ProcState, World};
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
/// termination for the rest (real-time signals included). Tested against
/// [`Signal::kills_by_default`] so the two tables cannot drift apart.
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
    pub(super) fn kill_step(&self, targets: &[Name], sig: Signal) -> Result<Prediction, ModelError> {
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
        let mut world = self.clone();
        let mut reasons = Reasons::new();
        let victims = pids.into_iter().filter_map(|p| world.send_signal(p, sig, &mut reasons));
        let victims: Vec<Victim> = victims.collect();
        Ok(world.settle_deaths(victims, reasons))
    }

    /// One signal from an ancestor namespace to `pid`. Returns the victim if
    /// the signal starts its death.
    fn send_signal(&mut self, pid: Pid, sig: Signal, reasons: &mut Reasons) -> Option<Victim> {
        let p = self[pid];
        let name = self.name(pid).to_string();
        let state = p.state;
        if state == ProcState::Zombie {
            // prepare_signal(): SIGNAL_GROUP_EXIT is set, the signal goes nowhere.
            let text = format!("{sig} changes nothing: it is already a zombie");
            reasons.add(&name, DEFAULT_ACTION, "prepare_signal()", move || text);
            return None;
        }
        if p.is_init {
            return self.send_signal_to_ns_init(pid, sig, reasons);
        }
        let victim = |may_reap_first| Some(Victim { pid, may_reap_first });
        match default_action(sig) {
            // wants_signal() refuses a stopped task for every signal but
            // SIGKILL, so complete_signal() returns before its fatal-signal
            // shortcut: the signal stays queued until a SIGCONT lets the task
            // reach get_signal(). (Observed on 6.18: SIGTERM to a stopped
            // process leaves it stopped; SIGCONT then kills it.)
            DefaultAction::Term | DefaultAction::Core if state == ProcState::Stopped && sig != Signal::KILL => {
                let text = format!(
                    "stays stopped with {sig} pending: wants_signal() skips a stopped task for \
                     every signal but SIGKILL, so complete_signal() does not make it a group \
                     exit; {sig} waits for get_signal() after a SIGCONT"
                );
                self.update(pid, |p| {
                    p.pending_fatal.get_or_insert(sig);
                });
                reasons.add(&name, DEFAULT_ACTION, "complete_signal()", move || text);
                None
            }
            DefaultAction::Term | DefaultAction::Core => {
                let text = if state == ProcState::Stopped {
                    "killed by SIGKILL, although stopped: complete_signal() turns it into a group \
                     exit and wakes the stopped task to die"
                        .to_string()
                } else if default_action(sig) == DefaultAction::Core {
                    format!(
                        "killed by {sig}, whose default action is to dump core (core dumps are off \
                         in the sandbox)"
                    )
                } else {
                    format!("killed by {sig}, whose default action is to terminate")
                };
                let kernel_fn =
                    if default_action(sig) == DefaultAction::Core { "get_signal()" } else { "complete_signal()" };
                reasons.add(&name, DEFAULT_ACTION, kernel_fn, move || text);
                victim(state == ProcState::Running)
            }
            DefaultAction::Stop if sig == Signal::STOP => {
                if state == ProcState::Running {
                    self.update(pid, |p| p.state = ProcState::Stopped);
                    let text = "stopped by SIGSTOP, which stops even in an orphaned process group";
                    reasons.add(&name, "R5.7", "do_signal_stop()", || text.into());
                }
                None
            }
            DefaultAction::Stop => {
                let text = format!(
                    "{sig} is discarded: its default action is to stop, but its process group is \
                     orphaned (every member's parent is inside the group)"
                );
                reasons.add(&name, "R5.7", "get_signal()", move || text);
                None
            }
            DefaultAction::Cont => {
                if state != ProcState::Stopped {
                    return None;
                }
                self.update(pid, |p| p.state = ProcState::Running);
                let text = "resumed by SIGCONT";
                reasons.add(&name, DEFAULT_ACTION, "prepare_signal()", || text.into());
                let fatal = self[pid].pending_fatal?;
                let text = format!("then killed by the {fatal} it got while stopped");
                reasons.add(&name, DEFAULT_ACTION, "get_signal()", move || text);
                // It dies on its way out of do_signal_stop(), without
                // returning to the node's code: it cannot wait first.
                victim(false)
            }
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

    /// A signal from the parent namespace to the namespace's init (R6.6).
    fn send_signal_to_ns_init(&mut self, pid: Pid, sig: Signal, reasons: &mut Reasons) -> Option<Victim> {
        let name = self.name(pid).to_string();
        let state = self[pid].state;
        if sig == Signal::KILL {
            let text = "SIGKILL from the parent namespace is forced past SIGNAL_UNKILLABLE: init dies";
            reasons.add(&name, "R6.6b", "send_signal_locked()", || text.into());
            return Some(Victim { pid, may_reap_first: state == ProcState::Running });
        }
        if sig == Signal::STOP {
            if state == ProcState::Running {
                self.update(pid, |p| p.state = ProcState::Stopped);
                let text = "SIGSTOP from the parent namespace is forced past SIGNAL_UNKILLABLE: \
                            init stops";
                reasons.add(&name, "R6.6b", "send_signal_locked()", || text.into());
            }
            return None;
        }
        if sig == Signal::CONT {
            if state == ProcState::Stopped {
                self.update(pid, |p| p.state = ProcState::Running);
                let text = "resumed: prepare_signal() wakes stopped threads before init's \
                            SIGNAL_UNKILLABLE drops SIGCONT itself";
                reasons.add(&name, "R6.6d", "prepare_signal()", || text.into());
            }
            return None;
        }
        if sig == Signal::CHLD {
            let text = "SIGCHLD is blocked, so it is queued rather than dropped; init's signalfd \
                        reads it and nothing else happens";
            reasons.add(&name, "R6.6e", "sig_ignored()", || text.into());
            return None;
        }
        let text = format!(
            "{sig} is dropped: init has no handler for it, and from the parent namespace force \
             lets only SIGKILL and SIGSTOP past SIGNAL_UNKILLABLE"
        );
        reasons.add(&name, "R6.6b", "sig_task_ignored()", move || text);
        None
    }

    /// `do_notify_parent(tsk, SIGCHLD)` for an exited, untraced, single-
    /// threaded child (R3.3): if the parent's SIGCHLD is `SIG_IGN`, the child
    /// is reaped by the kernel on the spot. init's parent, the harness, is
    /// outside the model and waits for it (`wait.rs`).
    pub(super) fn do_notify_parent(&mut self, tsk: Pid) -> Notified {
        let parent = self[tsk].real_parent;
        if parent.is_some_and(|p| self[p].sigchld_ignore) {
            self.release_task(tsk);
            Notified::AutoReaped
        } else {
            Notified::Queued
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions_agree_with_the_scenario_signal_table() {
        for sig in Signal::all() {
            let kills = matches!(default_action(sig), DefaultAction::Term | DefaultAction::Core);
            assert_eq!(kills, sig.kills_by_default(), "{sig}");
        }
        assert_eq!(default_action(Signal::STOP), DefaultAction::Stop);
        assert_eq!(default_action(Signal::TSTP), DefaultAction::Stop);
        assert_eq!(default_action(Signal::CONT), DefaultAction::Cont);
        assert_eq!(default_action(Signal::CHLD), DefaultAction::Ign);
        assert_eq!(default_action(Signal(3)), DefaultAction::Core);
        assert_eq!(default_action(Signal::TERM), DefaultAction::Term);
        assert_eq!(default_action(Signal(Signal::RTMIN)), DefaultAction::Term);
    }
}
