//! Processes that die together: every order in which their deaths can reach
//! the kernel (R1.8).
//!
//! A `kill` with several targets sends every signal before any death has
//! run, so the deaths race. Each victim goes through two events, in order:
//! `exit_signals()` sets `PF_EXITING`, after which the reaper walk passes it
//! by (R1.4), and later `exit_notify()` hands its children on, atomically
//! under `tasklist_lock` (R1.2). Across victims these events interleave in
//! any order, and the order can matter: a victim that still lacks
//! `PF_EXITING` adopts orphans and hands them on later (possibly through a
//! parent that ignores SIGCHLD, which reaps a zombie on the way), while one
//! that has it is skipped. A third kind of event can matter too: a victim
//! whose node was running may reap a zombie child, another victim that died
//! first, before its own death starts — its wait loop can run before its
//! own signal arrives, since the harness sends the signals one by one — and
//! then that zombie is not handed on to a parent that would keep it.
//!
//! The search is a depth-first walk of all interleavings, memoised on the
//! (world, events left) state: two orders that reach the same state share
//! the rest of the walk, which keeps six or more victims cheap. Each leaf is
//! settled (the nodes reap, `wait.rs`) and the distinct worlds are the
//! outcomes, each with the reasons of the first order found to reach it.
//! Orders are tried in the order the step names its targets, so the first
//! outcome is the one where each death completes before the next starts.

use std::collections::HashSet;

use super::prediction::{Outcome, Prediction, Reason};
use super::world::{Pid, World};

/// A process whose death a step has started.
#[derive(Clone, Copy, Debug)]
pub(super) struct Victim {
    pub(super) pid: Pid,
    /// Its node was running when the step began, so its wait loop may reap
    /// a zombie child before its own death starts. False for a process that
    /// was stopped, or that dies by its own `exit()`.
    pub(super) may_reap_first: bool,
}

/// Where a victim is in `do_exit()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// Its fatal signal is pending: still living, it adopts orphans (R1.4).
    Signalled,
    /// `PF_EXITING` is set; `exit_notify()` has yet to run.
    Exiting,
}

/// One step of one victim's death, or a wait that can slip in before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Event {
    /// `exit_signals()`: the victim stops counting as living (R1.4).
    ExitSignals(Pid),
    /// `exit_notify()`: the victim hands its children on and is a zombie.
    ExitNotify(Pid),
    /// `parent`, a victim whose death has not started, reaps `zombie`.
    ReapFirst { parent: Pid, zombie: Pid },
}

/// A point of the search: the world, and the events each victim has left.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    world: World,
    pending: Vec<(Pid, Phase)>,
}

struct Search {
    victims: Vec<Victim>,
    seen: HashSet<State>,
    /// Each distinct settled world, with the first order found to reach it.
    leaves: Vec<(World, Vec<Event>)>,
}

impl World {
    /// Runs the deaths of `victims`, in every order the kernel allows, and
    /// settles each resulting world. `reasons` are those of the step so far.
    pub(super) fn settle_deaths(self, victims: Vec<Victim>, reasons: Vec<Reason>) -> Prediction {
        let pending = victims.iter().map(|v| (v.pid, Phase::Signalled)).collect();
        let racing = victims.len() > 1;
        let mut search = Search { victims, seen: HashSet::new(), leaves: Vec::new() };
        let start = State { world: self, pending };
        search.visit(start.clone(), &mut Vec::new());
        eprintln!("STATES {}", search.seen.len());
        // The search runs without words; replay each distinct outcome's
        // order to say why.
        let n = search.leaves.len();
        let names: Vec<&str> = search.victims.iter().map(|v| start.world.name(v.pid)).collect();
        let names = names.join(", ");
        let outcomes = search.leaves.iter().enumerate().map(|(k, (_, path))| {
            let mut world = start.world.clone();
            let mut reasons = reasons.clone();
            if n > 1 {
                let text = format!(
                    "outcome {} of {n}: the result depends on the order in which the racing \
                     deaths reach exit_notify(); the reasons below follow one order that leads \
                     here",
                    k + 1
                );
                reasons.insert(0, Reason::new(&names, "R1.8", "exit_notify()", text));
            }
            for &event in path {
                world.run(event, racing, &mut reasons);
            }
            world.reap_promptly(&mut reasons);
            Outcome { world, reasons }
        });
        Prediction { outcomes: outcomes.collect() }
    }

    fn run(&mut self, event: Event, racing: bool, reasons: &mut Vec<Reason>) {
        match event {
            Event::ExitSignals(pid) => {
                self.exit_signals(pid);
                if racing {
                    let text = "sets PF_EXITING: from now on the reaper walk passes it by";
                    reasons.push(Reason::new(self.name(pid), "R1.4", "exit_signals()", text));
                }
            }
            Event::ExitNotify(pid) => self.exit_notify(pid, reasons),
            Event::ReapFirst { parent, zombie } => {
                let text = format!(
                    "reaped by its parent {}, whose wait loop ran before its own death started",
                    self.name(parent)
                );
                reasons.push(Reason::new(self.name(zombie), "R3.8", "wait_task_zombie()", text));
                self.release_task(zombie);
            }
        }
    }
}

impl Search {
    fn visit(&mut self, mut state: State, path: &mut Vec<Event>) {
        // zap_pid_ns_processes() (R6.3) takes victims whose own events are
        // still to come: nothing is left of them to run.
        state.pending.retain(|(pid, _)| state.world.procs.contains_key(pid));
        if self.seen.contains(&state) {
            return;
        }
        self.seen.insert(state.clone());
        if state.pending.is_empty() {
            let mut world = state.world;
            world.reap_promptly(&mut Vec::new());
            if !self.leaves.iter().any(|(w, _)| *w == world) {
                self.leaves.push((world, path.clone()));
            }
            return;
        }
        let mut moves = Vec::new();
        for (i, &(pid, phase)) in state.pending.iter().enumerate() {
            // PF_EXITING is read only by the walk, and only on subreapers:
            // for any other victim it may as well be set by exit_notify().
            let event = match phase {
                Phase::Signalled if state.world.procs[&pid].is_child_subreaper => {
                    Event::ExitSignals(pid)
                }
                _ => Event::ExitNotify(pid),
            };
            moves.push((i, event));
            let may_reap = self.victims.iter().any(|v| v.pid == pid && v.may_reap_first);
            if phase == Phase::Signalled && may_reap && state.world.reaps_promptly(pid) {
                for zombie in state.world.zombie_children(pid) {
                    moves.push((i, Event::ReapFirst { parent: pid, zombie }));
                }
            }
        }
        for (i, event) in moves {
            let mut next = state.clone();
            next.world.run(event, false, &mut Vec::new());
            match event {
                Event::ExitSignals(_) => next.pending[i].1 = Phase::Exiting,
                Event::ExitNotify(_) => {
                    next.pending.remove(i);
                }
                Event::ReapFirst { .. } => {}
            }
            path.push(event);
            self.visit(next, path);
            path.pop();
        }
    }
}
