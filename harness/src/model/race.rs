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
//! that has it is skipped.
//!
//! A third kind of event matters too. The harness sends the signals one by
//! one, in the order the step lists its targets, so a victim whose node was
//! running can reap a child that was signalled before it and has already
//! died, in the gap before its own signal arrives; that zombie is then not
//! handed on to a parent that would keep it. A child signalled after its
//! parent cannot be reaped that way: the parent's fatal signal is already
//! pending when the child dies, so it never runs its wait loop again.
//!
//! A fourth kind belongs to a multi-threaded victim (R1.9): while not all
//! its threads have `PF_EXITING`, a thread that exits first hands its
//! children to a living sibling, sending their parent-death signals (R1.7,
//! R4.3). The search takes that as one optional event per child with a
//! parent-death signal, before the victim's `exit_signals()`; the child may
//! die of it still under the victim, and its death is one more victim of
//! the step. A world with threads or parent-death signals gets the plain
//! search (see `is_plain`), so the reductions below never meet a hop.
//!
//! The search is a depth-first walk of the interleavings, memoised on the
//! state (each process's parent, state and `PF_EXITING`, the events left,
//! and which children have hopped, so that a hop too moves the search on)
//! so that orders reaching the same state share the rest of the walk. Two
//! reductions keep it small without losing an outcome, both sound because
//! every event moves the search forward (the state graph is acyclic, so
//! exploring a persistent set of events at each state reaches every final
//! state):
//!
//! - `PF_EXITING` is read only on subreapers, so for other victims the two
//!   events are one;
//! - victims fall into families that cannot affect each other (see
//!   [`families`]), and only one family moves at a time.
//!
//! Each final state is settled (the nodes reap, `wait.rs`); the distinct
//! worlds are the outcomes. The search runs the rules without words, and
//! each outcome's reasons come from replaying the first order found to reach
//! it. Orders are tried in the order the step names its targets, so the
//! first outcome is the one where each death completes before the next
//! starts.

use std::collections::{HashMap, HashSet};

use super::prediction::{Outcome, Prediction, Reason, Reasons};
use super::world::{Pid, Proc, ProcState, SigSet, World};

/// A process whose death a step has started.
#[derive(Clone, Copy, Debug)]
pub(super) struct Victim {
    pub(super) pid: Pid,
    /// Its node was running when the step began, so its wait loop may reap
    /// a zombie child that was signalled before it (see the module doc).
    /// False for a process that was stopped, or that dies by its own
    /// `exit()`.
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

/// One step of one victim's death, or a wait that slips in before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Event {
    /// `exit_signals()`: the victim stops counting as living (R1.4).
    ExitSignals(Pid),
    /// `exit_notify()`: the victim hands its children on and is a zombie.
    ExitNotify(Pid),
    /// `parent`, a victim whose death has not started, reaps `zombie`.
    ReapFirst { parent: Pid, zombie: Pid },
    /// `child`, a child of the multi-threaded victim `father`, hops to a
    /// sibling thread that still lacks `PF_EXITING` as its parent thread
    /// exits first (R1.7, R1.9), and gets its parent-death signal while its
    /// parent is still `father` (R4.3, R4.4).
    ThreadedHop { father: Pid, child: Pid },
    /// Every death has run: the reaping parents reap (`wait.rs`) and
    /// namespace inits whose namespace emptied finish exiting.
    Settle,
}

/// A point of the search: the world, and the events each victim has left,
/// in the order the step names the victims.
#[derive(Clone, Debug)]
struct State {
    world: World,
    pending: Vec<(Pid, Phase)>,
    /// The children that have made their one threaded hop (see
    /// [`Event::ThreadedHop`]), so that every event moves the search on.
    hopped: Vec<Pid>,
}

/// A point of the search as the memo sees it.
type Key = (Vec<Option<Proc>>, Vec<(Pid, Phase)>, Vec<Pid>);

impl State {
    /// What the memo compares: every process, the events left and the hops
    /// made. (The names and the kernel are the same in every state of one
    /// search.)
    fn key(&self) -> Key {
        (self.world.procs.clone(), self.pending.clone(), self.hopped.clone())
    }
}

/// The victims, as the search sees them.
struct Victims {
    /// In the order the step names them, which is the order the harness
    /// sends their signals.
    list: Vec<Victim>,
    /// Which family each victim is in (see [`families`]).
    family: HashMap<Pid, usize>,
    /// The families whose outcome may depend on the order of their events
    /// (see [`order_sensitive`]); the others need only one order.
    sensitive: HashSet<usize>,
    /// init is among them: every order empties the namespace (R6.3), so the
    /// first order found is the only one needed.
    init_dies: bool,
}

impl Victims {
    fn may_reap_first(&self, pid: Pid) -> bool {
        self.list.iter().any(|v| v.pid == pid && v.may_reap_first)
    }

    /// How far the harness has got in sending the signals, at the latest:
    /// the last victim (in sending order) whose death has started. A victim
    /// after it may not have been signalled yet, and may still run its wait
    /// loop.
    fn signalled_up_to(&self, state: &State) -> Option<usize> {
        let started = |pid: Pid| match state.pending.iter().find(|(p, _)| *p == pid) {
            Some(&(_, phase)) => phase == Phase::Exiting,
            None => true,
        };
        self.list.iter().rposition(|v| started(v.pid))
    }
}

struct Search {
    victims: Victims,
    /// Use the reductions of the module doc. Off only in the tests that
    /// check them against the plain search.
    reduce: bool,
    seen: HashSet<Key>,
    /// Each distinct settled world, with the first order found to reach it.
    leaves: Vec<(World, Vec<Event>)>,
}

impl World {
    /// Runs the deaths of `victims`, in every order the kernel allows, and
    /// settles each resulting world. `reasons` are those of the step so far.
    pub(super) fn settle_deaths(self, mut victims: Vec<Victim>, reasons: Reasons) -> Prediction {
        if self.config().mutated(super::world::Mutation::RaceDropsVictims) {
            victims.truncate(1);
        }
        self.settle_deaths_with(victims, reasons, true)
    }

    fn settle_deaths_with(self, victims: Vec<Victim>, reasons: Reasons, reduce: bool) -> Prediction {
        let reasons = reasons.into_vec();
        let pending = victims.iter().map(|v| (v.pid, Phase::Signalled)).collect();
        let mut family = families(&self, &victims);
        let (sensitive, reaps_first) = order_sensitive(&self, &victims, &family);
        if reaps_first {
            // Whether a victim can still wait depends on how far the signals
            // have got, which every family's deaths move on: no family may
            // be left behind.
            family.values_mut().for_each(|f| *f = 0);
        }
        let victims = Victims {
            sensitive: if reaps_first { HashSet::from([0]) } else { sensitive },
            family,
            init_dies: victims.iter().any(|v| self[v.pid].is_init && self[v.pid].outer_ns.is_none()),
            list: victims,
        };
        let racing = victims.list.len() > 1;
        let names: Vec<&str> = victims.list.iter().map(|v| self.name(v.pid)).collect();
        let names = names.join(", ");
        // The reductions rest on a world where deaths send no signals and
        // every process is single-threaded in one namespace and group; a
        // world with more than that gets the plain search.
        let reduce = reduce && self.is_plain();
        let mut search = Search { victims, reduce, seen: HashSet::new(), leaves: Vec::new() };
        search.visit(State { world: self.clone(), pending, hopped: Vec::new() }, &mut Vec::new());
        let n = search.leaves.len();
        let outcomes = search.leaves.into_iter().enumerate().map(|(k, (_, path))| {
            let mut all = Vec::new();
            if n > 1 {
                // It explains everything else, so it comes first.
                let hops = if path.iter().any(|e| matches!(e, Event::ThreadedHop { .. })) {
                    ", and on which threads of a dying multi-threaded process exit first (R1.9)"
                } else {
                    ""
                };
                all.push(Reason::new(
                    &names,
                    "R1.8",
                    "exit_notify()",
                    format!(
                        "outcome {} of {n}: the result depends on the order in which the racing \
                         deaths reach exit_notify(){hops}; the reasons below follow one order that \
                         leads here",
                        k + 1
                    ),
                ));
            }
            let mut world = self.clone();
            let mut why = Reasons::new();
            for event in path {
                world.run(event, racing, &mut why);
            }
            all.extend(reasons.iter().cloned());
            all.extend(why.into_vec());
            Outcome { world, reasons: all }
        });
        Prediction { outcomes: outcomes.collect() }
    }

    /// Applies one event of the search. Returns the deaths it started.
    fn run(&mut self, event: Event, racing: bool, reasons: &mut Reasons) -> Vec<Victim> {
        match event {
            Event::ExitSignals(pid) => {
                self.exit_signals(pid);
                if racing {
                    reasons.add(self.name(pid), "R1.4", "exit_signals()", || {
                        "sets PF_EXITING: from now on the reaper walk passes it by".into()
                    });
                }
                Vec::new()
            }
            Event::ExitNotify(pid) => self.exit_notify(pid, reasons),
            Event::ThreadedHop { father, child } => self.threaded_hop(father, child, reasons),
            Event::Settle => self.settle(reasons),
            Event::ReapFirst { parent, zombie } => {
                reasons.add(self.name(zombie), "R3.8", "wait_task_zombie()", || {
                    format!(
                        "reaped by its parent {}, whose wait loop ran before its own signal \
                         arrived",
                        self.name(parent)
                    )
                });
                self.release_task(zombie);
                Vec::new()
            }
        }
    }

    /// Whether the world has nothing but what the reductions were proven
    /// for: no parent-death signals, handlers, threads, process groups or
    /// nested namespaces.
    fn is_plain(&self) -> bool {
        self.pids().all(|pid| {
            let p = &self[pid];
            p.pdeath.is_none()
                && p.catch == SigSet::default()
                && p.threads_alive == 0
                && p.main_alive != (p.state == ProcState::Zombie)
                && p.pgrp.is_none()
                && p.session.is_none()
                && (!p.is_init || p.outer_ns.is_none())
                && self.level(pid) == 0
        })
    }
}

impl Search {
    fn visit(&mut self, mut state: State, path: &mut Vec<Event>) {
        // zap_pid_ns_processes() (R6.3) takes victims whose own events are
        // still to come: nothing is left of them to run.
        state.pending.retain(|&(pid, _)| {
            state.world.exists(pid) && !matches!(state.world[pid].state, ProcState::Zombie | ProcState::Exiting)
        });
        if (self.victims.init_dies && !self.leaves.is_empty()) || !self.seen.insert(state.key()) {
            return;
        }
        if state.pending.is_empty() {
            // Every death has run: the nodes reap, and namespaces that
            // emptied let their init finish. That can start deaths again.
            let mut world = state.world;
            let more = world.run(Event::Settle, false, &mut Reasons::quiet());
            path.push(Event::Settle);
            if more.is_empty() {
                if !self.leaves.iter().any(|(w, _)| *w == world) {
                    self.leaves.push((world, path.clone()));
                }
            } else {
                let pending = more.into_iter().map(|v| (v.pid, Phase::Signalled)).collect();
                self.visit(State { world, pending, hopped: state.hopped }, path);
            }
            path.pop();
            return;
        }
        for (i, event) in self.moves(&state) {
            let mut next = state.clone();
            let more = next.world.run(event, false, &mut Reasons::quiet());
            match event {
                Event::ExitSignals(_) => next.pending[i].1 = Phase::Exiting,
                Event::ExitNotify(_) => {
                    next.pending.remove(i);
                }
                Event::ThreadedHop { child, .. } => {
                    next.hopped.push(child);
                    next.hopped.sort();
                }
                Event::ReapFirst { .. } | Event::Settle => {}
            }
            for v in more {
                let dying = next.world.exists(v.pid) && next.world[v.pid].state != ProcState::Zombie;
                if dying && !next.pending.iter().any(|(p, _)| *p == v.pid) {
                    next.pending.push((v.pid, Phase::Signalled));
                }
            }
            path.push(event);
            self.visit(next, path);
            path.pop();
        }
    }

    /// The events to try from `state`, each with the index of its victim in
    /// `pending`: those of the family of the first victim with events left.
    fn moves(&self, state: &State) -> Vec<(usize, Event)> {
        let family = |pid: Pid| self.victims.family.get(&pid).copied();
        let moving = family(state.pending[0].0);
        let mut moves = Vec::new();
        for (i, &(pid, phase)) in state.pending.iter().enumerate() {
            if self.reduce && family(pid) != moving {
                continue;
            }
            // PF_EXITING is read only by the walk, and only on subreapers:
            // for any other victim it may as well be set by exit_notify().
            let event = match phase {
                Phase::Signalled if state.world[pid].is_child_subreaper || !self.reduce => Event::ExitSignals(pid),
                _ => Event::ExitNotify(pid),
            };
            moves.push((i, event));
            if self.reduce && !moving.is_some_and(|f| self.victims.sensitive.contains(&f)) {
                // Any one order will do: take the first victim's next event.
                return moves;
            }
            let order = self.victims.list.iter().position(|v| v.pid == pid);
            let unsignalled = match self.victims.signalled_up_to(state) {
                None => true,
                Some(last) => order > Some(last),
            };
            if phase == Phase::Signalled
                && unsignalled
                && self.victims.may_reap_first(pid)
                && state.world.reaps_promptly(pid)
            {
                for zombie in state.world.zombie_children(pid) {
                    moves.push((i, Event::ReapFirst { parent: pid, zombie }));
                }
            }
        }
        if !self.reduce {
            // A multi-threaded victim dies one thread at a time (R1.9). A
            // thread that is not the last hands its children to a sibling
            // still lacking PF_EXITING (find_alive_thread(), R1.3a, R1.7),
            // which sends their parent-death signals (R4.3, R4.4): a child
            // may get its signal, and die of it, while its parent is still
            // the dying process (see `World::threaded_hop`). Victims with
            // threads make `is_plain()` false, so this is never reduced.
            for &(father, phase) in &state.pending {
                if phase != Phase::Signalled || !state.world.may_hop_inside(father) {
                    continue;
                }
                for child in state.world.children(father) {
                    if !state.hopped.contains(&child) && state.world.hop_matters(child) {
                        moves.push((usize::MAX, Event::ThreadedHop { father, child }));
                    }
                }
            }
            // A process that a death in this step may yet kill — through its
            // parent-death signal, or an orphaned group's SIGHUP — runs its
            // wait loop until its signal arrives, so it may reap a child that
            // died earlier in the step before it dies itself.
            for pid in state.world.pids() {
                let w = &state.world;
                let may_die = w[pid].pdeath.is_some()
                    || w.pgrp_members(w[pid].pgrp).into_iter().any(|m| w[m].state == ProcState::Stopped);
                if may_die && !state.pending.iter().any(|(p, _)| *p == pid) && w.reaps_promptly(pid) {
                    for zombie in w.zombie_children(pid) {
                        moves.push((usize::MAX, Event::ReapFirst { parent: pid, zombie }));
                    }
                }
            }
        }
        moves
    }
}

/// The families whose outcome can depend on the order of their events.
///
/// Since 4.11 a family's live orphans always end with the nearest surviving
/// subreaper above them, or init, whatever the order: every walk from below
/// stops at that subreaper, which lives throughout, and `has_child_subreaper`
/// is set wherever a subreaper is above (R2.7), so the gate never bites
/// (R1.6). The victims' zombies end there too, unless they are reaped on the
/// way, and that is where the order matters: a zombie may be handed to a
/// victim that ignores SIGCHLD and reaps it at once (R3.3), or be reaped by
/// a victim parent's wait loop before that parent's own signal arrives,
/// which needs a victim below it that is signalled before it. A family with
/// neither, on a kernel that propagates the flag, has one outcome.
///
/// Also says whether any victim may reap before its signal arrives.
fn order_sensitive(world: &World, victims: &[Victim], family: &HashMap<Pid, usize>) -> (HashSet<usize>, bool) {
    let is_ancestor = |above: Pid, below: Pid| {
        let mut r = world[below].parent_pid();
        while let Some(p) = r {
            if p == above {
                return true;
            }
            r = world[p].parent_pid();
        }
        false
    };
    let mut sensitive = HashSet::new();
    let mut any_reaps_first = false;
    for (i, v) in victims.iter().enumerate() {
        let relatives = victims.iter().enumerate().filter(|(_, u)| family[&u.pid] == family[&v.pid]);
        let below: Vec<(usize, Pid)> =
            relatives.filter(|(_, u)| is_ancestor(v.pid, u.pid)).map(|(j, u)| (j, u.pid)).collect();
        let reaps_first = v.may_reap_first && world.reaps_promptly(v.pid) && below.iter().any(|&(j, _)| j < i);
        any_reaps_first |= reaps_first;
        if !world.config.propagates_has_child_subreaper()
            || (world[v.pid].sigchld_ignore && !below.is_empty())
            || reaps_first
        {
            sensitive.insert(family[&v.pid]);
        }
    }
    (sensitive, any_reaps_first)
}

/// Splits the victims into families whose deaths can affect each other, and
/// labels each victim with its family.
///
/// Two victims are in one family when one is an ancestor of the other with
/// no surviving subreaper between them. A surviving subreaper is a wall: it
/// lives through the whole step, so no walk from below passes it (R1.3) and
/// nothing from above moves anything below it; and a process's ancestors only
/// ever shrink, as orphans move up to an ancestor. So the events of different
/// families touch disjoint processes (or only add children to the same
/// parent) and commute, and the search need not interleave them. Before 4.11
/// a victim without `has_child_subreaper` sends its orphans past the wall to
/// init; that only adds children to init, which commutes too.
fn families(world: &World, victims: &[Victim]) -> HashMap<Pid, usize> {
    let mut family: Vec<usize> = (0..victims.len()).collect();
    for (j, below) in victims.iter().enumerate() {
        let mut r = world[below.pid].parent_pid();
        while let Some(p) = r {
            if let Some(i) = victims.iter().position(|v| v.pid == p) {
                let (keep, merge) = (family[i], family[j]);
                family.iter_mut().filter(|f| **f == merge).for_each(|f| *f = keep);
            } else if world[p].is_child_subreaper {
                break;
            }
            r = world[p].parent_pid();
        }
    }
    victims.iter().zip(family).map(|(v, f)| (v.pid, f)).collect()
}

#[cfg(test)]
mod tests {
    //! The reductions against the plain search, on random trees.

    use proptest::prelude::*;

    use super::*;
    use crate::model::ModelConfig;
    use crate::scenario::{Node, Signal, Step};

    /// A random tree of up to eight processes under init: each node's
    /// parent, attributes, whether it is stopped or already a zombie first,
    /// and the victims of one SIGKILL, in the order the step names them.
    #[derive(Clone, Debug)]
    struct Case {
        kernel: (u32, u32),
        nodes: Vec<(usize, u8)>,
        init_attrs: u8,
        stopped: Vec<usize>,
        exited: Vec<usize>,
        victims: Vec<usize>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (2usize..9).prop_flat_map(|n| {
            let nodes = (1..n).map(|i| (0..i, any::<u8>())).collect::<Vec<_>>();
            (
                prop_oneof![Just((6, 18)), Just((4, 10))],
                nodes,
                any::<u8>(),
                proptest::collection::vec(1..n, 0..2),
                proptest::collection::vec(1..n, 0..3),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                1..n.min(6) + 1,
            )
                .prop_map(|(kernel, nodes, init_attrs, stopped, exited, order, k)| Case {
                    kernel,
                    nodes,
                    init_attrs,
                    stopped,
                    exited,
                    victims: order.into_iter().filter(|&v| v != 0 || k % 5 == 0).take(k).collect(),
                })
        })
    }

    fn attrs(bits: u8) -> crate::scenario::Attrs {
        crate::scenario::Attrs {
            subreaper: bits & 1 == 0,
            noreap: bits & 0x10 != 0,
            sigchld_ignore: bits & 0x60 == 0x60,
            ..Default::default()
        }
    }

    fn name(i: usize) -> String {
        if i == 0 {
            "init".into()
        } else {
            format!("n{i}")
        }
    }

    fn build(case: &Case) -> Option<World> {
        fn node(i: usize, case: &Case) -> Node {
            let mut n = Node::new(name(i));
            n.attrs = if i == 0 { attrs(case.init_attrs) } else { attrs(case.nodes[i - 1].1) };
            for (j, &(parent, _)) in case.nodes.iter().enumerate() {
                if parent == i {
                    n.children.push(node(j + 1, case));
                }
            }
            n
        }
        let cfg = ModelConfig { kernel: case.kernel, ..ModelConfig::default() };
        let mut world = World::new(&node(0, case), cfg).ok()?;
        let only = |w: &World, step: Step| w.apply(&step).ok().map(|p| p.outcomes[0].world.clone());
        for &i in &case.exited {
            let step = Step::Exit { target: name(i), code: 0 };
            if let Some(w) = only(&world, step) {
                world = w;
            }
        }
        for &i in &case.stopped {
            let step = Step::Kill { targets: vec![name(i)], signal: Signal::STOP };
            if let Some(w) = only(&world, step) {
                world = w;
            }
        }
        Some(world)
    }

    fn worlds(prediction: &Prediction) -> Vec<Vec<Node>> {
        let mut trees: Vec<Vec<Node>> = prediction.worlds().map(World::render).collect();
        trees.sort_by_key(|t| format!("{t:?}"));
        trees
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_reductions_lose_no_outcome(case in case()) {
            let Some(world) = build(&case) else { return Ok(()) };
            let victims: Vec<Victim> = case
                .victims
                .iter()
                .filter_map(|&i| world.find(&name(i)))
                .filter(|&pid| world[pid].state != ProcState::Zombie)
                .map(|pid| Victim { pid, may_reap_first: world[pid].state == ProcState::Running })
                .collect();
            let reduced = world.clone().settle_deaths_with(victims.clone(), Reasons::new(), true);
            let plain = world.clone().settle_deaths_with(victims, Reasons::new(), false);
            prop_assert_eq!(worlds(&reduced), worlds(&plain));
        }
    }
}
