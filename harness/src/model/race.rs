//! Processes that die together: every order in which their deaths can reach
//! the kernel (R1.8).
//!
//! A `kill` with several targets sends its signals one by one, and the
//! deaths race. Each victim goes through two events, in order:
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
//! the step. A fifth, also of a multi-threaded victim: its `group_dead`
//! thread may run the R5.2 orphaned-group check before a sibling has
//! handed the children on ([`World::may_check_orphans_early`]), one
//! optional event between its `exit_signals()` and its `exit_notify()`. A
//! sixth: a victim that was stopped is a stopped job (R5.1) until its
//! SIGKILL is sent, which may be after the deaths of the victims named
//! before it; the orphaned-group checks of those deaths (R5.2, R5.3) then
//! see it stopped. Its sending is an event ([`Event::Send`]), and the
//! victims named after it die only after it. A seventh: a living process
//! that reaps promptly may reap, mid-step, the last pid a dying namespace
//! init waits for ([`Event::ReapLive`]); the init then finishes exiting,
//! and a parent of it not yet signalled may reap it first. A world with threads,
//! parent-death signals or process groups gets the plain search (see
//! `is_plain`), so the reductions below never meet a hop, an early check
//! or a late signal.
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
//! The search is bounded by design ([`Limits`]): the memo keeps a 128-bit
//! hash per state, the walk runs on its own stack (a state with one move
//! left hands its world on), and the work (states times processes), the
//! outcomes listed and the bytes on the stack have limits. Past them the
//! prediction keeps the outcomes found first and what it takes to search
//! again ([`RaceCheck`]): the driver then asks whether the tree the kernel
//! left is reachable ([`Prediction::check`]), and that search, guided by
//! the observed tree, prunes every state that already contradicts it in a
//! way no later event undoes (see [`Target::contradicts`]) and stops at the
//! first order that leads there.
//!
//! Each final state is settled (the nodes reap, `wait.rs`); the distinct
//! worlds are the outcomes. The search runs the rules without words, and
//! each outcome's reasons come from replaying the first order found to reach
//! it. Orders are tried in the order the step names its targets, so the
//! first outcome is the one where each death completes before the next
//! starts.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::prediction::{Outcome, Prediction, Reason, Reasons};
use super::world::{Pid, Proc, ProcState, SigSet, World};
use crate::scenario::Node;

/// A process whose death a step has started.
#[derive(Clone, Copy, Debug)]
pub(super) struct Victim {
    pub(super) pid: Pid,
    /// Its node was running when the step began, so its wait loop may reap
    /// a zombie child that was signalled before it (see the module doc).
    /// False for a process that was stopped, or that dies by its own
    /// `exit()`.
    pub(super) may_reap_first: bool,
    /// It was stopped, and dies of the harness's SIGKILL: until that
    /// signal is sent it is still a stopped job (see [`Event::Send`]).
    pub(super) stopped: bool,
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
    /// The multi-threaded victim's R5.2 orphaned-group check runs before its
    /// children have moved out (see [`World::may_check_orphans_early`]).
    EarlyOrphanCheck(Pid),
    /// `parent`, a living process that no death of the step has reached and
    /// that reaps promptly, reaps `zombie` in the middle of the deaths: the
    /// last pid a dying namespace's init waits for, which then finishes
    /// exiting (R6.4) while the other deaths are still to come.
    ReapLive { parent: Pid, zombie: Pid },
    /// The harness sends its SIGKILL to a victim that was stopped: until
    /// then it is a stopped job (R5.1), which the orphaned-group checks of
    /// the deaths before it see (R5.2, R5.3). The signals go out one by one
    /// in the order the step names its targets, and a victim signalled
    /// earlier can die whole in between (on one CPU, by preempting the
    /// harness). Only for the victims after the first, and only outside
    /// the plain search, where no group can be orphaned.
    Send(Pid),
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
    /// The stopped victims whose SIGKILL the harness has yet to send, in
    /// sending order (see [`Event::Send`]).
    unsent: Vec<Pid>,
}

impl State {
    /// What the memo keeps of a state: a 128-bit hash of every process, the
    /// events left and the hops made (the names and the kernel are the same
    /// in every state of one search). A hash rather than the state itself,
    /// so that the memo costs 16 bytes a state whatever the world's size;
    /// two of a million states share one with odds near 2^-88.
    fn key(&self) -> u128 {
        let mut h = Mix::default();
        self.world.procs.hash(&mut h);
        self.pending.hash(&mut h);
        self.hopped.hash(&mut h);
        self.unsent.hash(&mut h);
        h.key()
    }

    /// What holding this state on the search's stack costs, roughly.
    fn bytes(&self) -> usize {
        std::mem::size_of::<State>()
            + self.world.procs.len() * std::mem::size_of::<Option<Proc>>()
            + (self.pending.len() + self.hopped.len() + self.unsent.len()) * 8
    }
}

/// A world's processes, hashed as [`State::key`] hashes them: the leaves
/// are told apart by it.
fn world_key(world: &World) -> u128 {
    let mut h = Mix::default();
    world.procs.hash(&mut h);
    h.key()
}

/// A fast 128-bit hash for the memo: two lanes, each a bijective mix of
/// the words written, finished by splitmix64. Not for hostile input (there
/// is none: the states are the model's own); SipHash, word by word, took
/// most of the search's time.
#[derive(Default)]
struct Mix {
    a: u64,
    b: u64,
}

impl Mix {
    fn word(&mut self, x: u64) {
        self.a = (self.a ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        self.b = (self.b.wrapping_add(x) ^ 0xD6E8_FEB8_6659_FD93).wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(31);
    }

    fn key(&self) -> u128 {
        fn fin(mut z: u64) -> u64 {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        (u128::from(fin(self.a)) << 64) | u128::from(fin(self.b ^ self.a.rotate_left(17)))
    }
}

impl Hasher for Mix {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word) ^ ((chunk.len() as u64) << 60));
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.word(u64::from(x));
    }
    fn write_u16(&mut self, x: u16) {
        self.word(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.word(u64::from(x));
    }
    fn write_u64(&mut self, x: u64) {
        self.word(x);
    }
    fn write_usize(&mut self, x: usize) {
        self.word(x as u64);
    }
    fn finish(&self) -> u64 {
        self.key() as u64
    }
}

/// How far the search goes. The number of orders grows exponentially with
/// the victims, and so can the number of states and outcomes: past these
/// bounds the model stops listing outcomes, and the driver asks instead
/// whether the tree the kernel left is one of them ([`Prediction::check`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// The most distinct outcomes listed.
    pub(super) outcomes: usize,
    /// The most work: every state visited costs the number of its processes
    /// (it is copied and hashed once), so the time is bounded whatever the
    /// world's size.
    pub(super) work: usize,
    /// The most bytes the worlds on the search's stack may hold; past it,
    /// a state keeps only its first move.
    pub(super) stack_bytes: usize,
}

impl Limits {
    /// Listing the outcomes of a step: at most 64, and about 50,000 states
    /// of a 40-process world (a fraction of a second, a few MB).
    pub(super) const LIST: Limits = Limits { outcomes: 64, work: 2_000_000, stack_bytes: 64 << 20 };
    /// Checking one observed tree, guided by it: about 250,000 states of a
    /// 40-process world (a few seconds, some 20 MB).
    pub(super) const CHECK: Limits = Limits { outcomes: 1, work: 10_000_000, stack_bytes: 128 << 20 };
    /// No bound: the tests that compare the reductions with the plain search.
    #[cfg(test)]
    pub(super) const NONE: Limits = Limits { outcomes: usize::MAX, work: usize::MAX, stack_bytes: usize::MAX };
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
    fn new(world: &World, victims: Vec<Victim>) -> Victims {
        let mut family = families(world, &victims);
        let (sensitive, reaps_first) = order_sensitive(world, &victims, &family);
        if reaps_first {
            // Whether a victim can still wait depends on how far the signals
            // have got, which every family's deaths move on: no family may
            // be left behind.
            family.values_mut().for_each(|f| *f = 0);
        }
        Victims {
            sensitive: if reaps_first { HashSet::from([0]) } else { sensitive },
            family,
            init_dies: victims.iter().any(|v| world[v.pid].is_init && world[v.pid].outer_ns.is_none()),
            list: victims,
        }
    }

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

/// A state on the search's stack, with the moves from it not yet taken.
struct Frame {
    state: State,
    moves: Vec<(usize, Event)>,
    next: usize,
    /// The length of the path that leads to `state`.
    depth: usize,
    bytes: usize,
}

struct Search<'t> {
    victims: Victims,
    /// Use the reductions of the module doc. Off only in the tests that
    /// check them against the plain search.
    reduce: bool,
    limits: Limits,
    /// Checking one observed tree: the search keeps only the leaf that is
    /// that tree, and prunes every state that can no longer lead to it.
    target: Option<&'t Target>,
    seen: HashSet<u128>,
    /// Work done so far (see [`Limits::work`]).
    work: usize,
    /// Bytes held by the worlds on the stack.
    stack_bytes: usize,
    /// Each distinct settled world, with the first order found to reach it.
    leaves: Vec<(World, Vec<Event>)>,
    leaf_keys: HashSet<u128>,
    /// The search stopped at a limit before it had seen every state.
    stopped: bool,
    /// A state on a stack past its byte bound kept only its first move.
    pruned_moves: bool,
}

/// The racing deaths of a step whose outcomes passed [`Limits::LIST`]: what
/// it takes to search again, guided by the tree the kernel left.
#[derive(Clone, Debug)]
pub(crate) struct RaceCheck {
    start: World,
    victims: Vec<Victim>,
    /// The reasons of the step before the deaths.
    reasons: Vec<Reason>,
    reduce: bool,
    /// How many outcomes, and states, the listing saw before it stopped.
    pub(crate) listed: usize,
    pub(crate) states: usize,
}

impl RaceCheck {
    /// Searches the orders of the deaths for one that leaves `observed`.
    /// `Ok(outcome)`, with the reasons along that order; `Err(true)` if the
    /// search hit [`Limits::CHECK`] first (undecided), `Err(false)` if no
    /// order leads there.
    pub(crate) fn check(&self, observed: &[Node]) -> Result<Outcome, bool> {
        let Some(target) = Target::new(&self.start, observed) else { return Err(false) };
        let victims = Victims::new(&self.start, self.victims.clone());
        let mut search = Search::new(victims, self.reduce, Limits::CHECK, Some(&target));
        let start = start_state(&self.start, &self.victims, self.reduce);
        let start_world = start.world.clone();
        search.run(start);
        let Some((_, path)) = search.leaves.into_iter().next() else {
            return Err(search.stopped || search.pruned_moves);
        };
        let text = format!(
            "the racing deaths have more than {} possible outcomes (the listing stopped after {} states): \
             too many to list, so the kernel's outcome was checked against the rules instead, by a search \
             guided by the observed tree ({} states); the reasons below follow one order that leads here",
            self.listed,
            self.states,
            search.seen.len()
        );
        let names = victim_names(&self.start, &self.victims);
        let note = Reason::new(&names, "R1.8", "exit_notify()", text);
        Ok(replay(&start_world, &path, self.victims.len() > 1, Some(note), &self.reasons))
    }
}

/// The tree a guided search looks for, by pid, with what can never be
/// undone on the way there.
#[derive(Debug)]
struct Target {
    observed: Vec<Node>,
    /// Every observed process: its pid, its observed parent, whether it is
    /// observed living (neither a zombie nor exiting), and its `got=`.
    procs: Vec<(Pid, Option<Pid>, bool, SigSet)>,
    /// By pid index: observed living.
    living: Vec<bool>,
}

impl Target {
    /// `None` if the observed tree names a process the world does not have:
    /// no order of deaths creates one.
    fn new(world: &World, observed: &[Node]) -> Option<Target> {
        let mut procs = Vec::new();
        let mut living = vec![false; world.procs.len()];
        let mut stack: Vec<(&Node, Option<Pid>)> = observed.iter().rev().map(|n| (n, None)).collect();
        while let Some((node, parent)) = stack.pop() {
            let pid = world.find(&node.name)?;
            let alive = !node.markers.zombie && !node.markers.exiting;
            living[pid.0 as usize] = alive;
            procs.push((pid, parent, alive, SigSet::of(&node.markers.got)));
            stack.extend(node.children.iter().rev().map(|c| (c, Some(pid))));
        }
        Some(Target { observed: observed.to_vec(), procs, living })
    }

    /// Whether no order from `world` can reach the observed tree. Only what
    /// a step never undoes counts: a process released (none comes back), a
    /// process that has begun to die observed living (no death is undone),
    /// a process under a parent other than the observed one while that
    /// parent is observed living (a process leaves its parent only when the
    /// parent dies, R1.2, R1.7), and a signal got by a process observed
    /// living without it (`got=` is cleared only by death). A victim whose
    /// death is pending has begun to die: every pending event runs.
    fn contradicts(&self, state: &State) -> bool {
        let world = &state.world;
        if state.pending.iter().any(|&(pid, _)| self.living[pid.0 as usize]) {
            return true;
        }
        self.procs.iter().any(|&(pid, parent, alive, got)| {
            if !world.exists(pid) {
                return true;
            }
            let p = &world[pid];
            let dying = p.exiting || matches!(p.state, ProcState::Zombie | ProcState::Exiting);
            let moved_away = match p.parent_pid() {
                Some(q) => Some(q) != parent && self.living[q.0 as usize],
                None => parent.is_some(),
            };
            let lost_got = alive
                && p.got != got
                && p.got.list().into_iter().any(|s| s != crate::scenario::Signal::CHLD && !got.has(s));
            (alive && dying) || moved_away || lost_got
        })
    }
}

/// The victims' names, for the reason that says the deaths race.
fn victim_names(world: &World, victims: &[Victim]) -> String {
    let names: Vec<&str> = victims.iter().map(|v| world.name(v.pid)).collect();
    names.join(", ")
}

/// Where the search of `victims`' deaths starts: every victim's signal
/// sent, except — outside the plain search — the SIGKILLs of the stopped
/// victims after the first, which may still be on their way while earlier
/// deaths run (see [`Event::Send`]): those are stopped again until their
/// `Send`.
fn start_state(world: &World, victims: &[Victim], reduce: bool) -> State {
    let mut world = world.clone();
    let mut unsent = Vec::new();
    if !reduce {
        for v in victims.iter().skip(1).filter(|v| v.stopped) {
            if world.exists(v.pid) && world[v.pid].state == ProcState::Running {
                world.update(v.pid, |p| p.state = ProcState::Stopped);
                unsent.push(v.pid);
            }
        }
    }
    let pending = victims.iter().map(|v| (v.pid, Phase::Signalled)).collect();
    State { world, pending, hopped: Vec::new(), unsent }
}

/// The outcome one order leads to, with its reasons: `note` first (it
/// explains everything else), then the step's, then those of the order.
fn replay(start: &World, path: &[Event], racing: bool, note: Option<Reason>, reasons: &[Reason]) -> Outcome {
    let mut world = start.clone();
    let mut why = Reasons::new();
    for &event in path {
        world.run(event, racing, &mut why);
    }
    let mut all: Vec<Reason> = note.into_iter().collect();
    all.extend(reasons.iter().cloned());
    all.extend(why.into_vec());
    Outcome { world, reasons: all }
}

impl World {
    /// Runs the deaths of `victims`, in every order the kernel allows, and
    /// settles each resulting world. `reasons` are those of the step so far.
    pub(super) fn settle_deaths(self, mut victims: Vec<Victim>, reasons: Reasons) -> Prediction {
        if self.config().mutated(super::world::Mutation::RaceDropsVictims) {
            victims.truncate(1);
        }
        self.settle_deaths_with(victims, reasons, true, Limits::LIST)
    }

    fn settle_deaths_with(self, victims: Vec<Victim>, reasons: Reasons, reduce: bool, limits: Limits) -> Prediction {
        let reasons = reasons.into_vec();
        let racing = victims.len() > 1;
        let names = victim_names(&self, &victims);
        // The reductions rest on a world where deaths send no signals and
        // every process is single-threaded in one namespace and group; a
        // world with more than that gets the plain search.
        let reduce = reduce && self.is_plain();
        let mut search = Search::new(Victims::new(&self, victims.clone()), reduce, limits, None);
        let start = start_state(&self, &victims, reduce);
        let start_world = start.world.clone();
        search.run(start);
        let complete = !search.stopped && !search.pruned_moves;
        let n = search.leaves.len();
        let states = search.seen.len();
        let outcomes = search.leaves.iter().enumerate().map(|(k, (_, path))| {
            let note = (n > 1 || !complete).then(|| {
                let hops = if path.iter().any(|e| matches!(e, Event::ThreadedHop { .. })) {
                    ", and on which threads of a dying multi-threaded process exit first (R1.9)"
                } else {
                    ""
                };
                let of = if complete { format!("{n}") } else { format!("more than {n} (too many to list)") };
                let text = format!(
                    "outcome {} of {of}: the result depends on the order in which the racing deaths reach \
                     exit_notify(){hops}; the reasons below follow one order that leads here",
                    k + 1
                );
                Reason::new(&names, "R1.8", "exit_notify()", text)
            });
            replay(&start_world, path, racing, note, &reasons)
        });
        let outcomes = outcomes.collect();
        let race = (!complete).then(|| {
            let check = RaceCheck { start: self.clone(), victims, reasons, reduce, listed: n, states };
            std::sync::Arc::new(check)
        });
        Prediction { outcomes, race }
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
            Event::EarlyOrphanCheck(pid) => self.early_orphan_check(pid, reasons),
            Event::ReapLive { zombie, .. } => {
                self.wait_task_zombie(zombie, reasons);
                self.finish_zaps(reasons)
            }
            Event::Send(pid) => {
                // complete_signal() replaces a stopped group's flags with
                // SIGNAL_GROUP_EXIT, as `fatal_default()` did at the step.
                if self.exists(pid) && self[pid].state == ProcState::Stopped {
                    self.update(pid, |p| p.state = ProcState::Running);
                    if racing {
                        reasons.add(self.name(pid), "R1.8", "complete_signal()", || {
                            "its SIGKILL goes out here: the harness sends the step's signals one by one, in \
                             the order the step names them, and until then it is a stopped job (R5.1); \
                             complete_signal() makes it a group exit"
                                .into()
                        });
                    }
                }
                Vec::new()
            }
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

impl<'t> Search<'t> {
    fn new(victims: Victims, reduce: bool, limits: Limits, target: Option<&'t Target>) -> Search<'t> {
        Search {
            victims,
            reduce,
            limits,
            target,
            seen: HashSet::new(),
            work: 0,
            stack_bytes: 0,
            leaves: Vec::new(),
            leaf_keys: HashSet::new(),
            stopped: false,
            pruned_moves: false,
        }
    }

    /// Nothing more to look for.
    fn done(&self) -> bool {
        self.stopped || (!self.leaves.is_empty() && (self.victims.init_dies || self.target.is_some()))
    }

    /// A depth-first walk from `start`, on a stack of its own (no recursion:
    /// a chain of thousands of deaths is as deep). A state with one move left
    /// hands its world on rather than copying it, so a chain of forced
    /// events holds one world.
    fn run(&mut self, start: State) {
        let mut path: Vec<Event> = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut next = Some(start);
        loop {
            if let Some(state) = next.take() {
                if let Some(frame) = self.enter(state, &mut path) {
                    self.stack_bytes += frame.bytes;
                    stack.push(frame);
                }
            }
            if self.done() {
                return;
            }
            let Some(top) = stack.last_mut() else { return };
            if top.next >= top.moves.len() {
                let frame = stack.pop().expect("a frame");
                self.stack_bytes -= frame.bytes;
                continue;
            }
            let (i, event) = top.moves[top.next];
            top.next += 1;
            path.truncate(top.depth);
            let state = if top.next == top.moves.len() {
                let frame = stack.pop().expect("a frame");
                self.stack_bytes -= frame.bytes;
                frame.state
            } else {
                top.state.clone()
            };
            path.push(event);
            next = Some(self.advance(state, i, event));
        }
    }

    /// Arrives at `state` by `path`: a leaf, a state seen before or pruned
    /// (`None`), or a frame to explore.
    fn enter(&mut self, mut state: State, path: &mut Vec<Event>) -> Option<Frame> {
        loop {
            // zap_pid_ns_processes() (R6.3) takes victims whose own events
            // are still to come: nothing is left of them to run.
            state.pending.retain(|&(pid, _)| {
                state.world.exists(pid) && !matches!(state.world[pid].state, ProcState::Zombie | ProcState::Exiting)
            });
            let pending = &state.pending;
            state.unsent.retain(|u| pending.iter().any(|(p, _)| p == u));
            if self.done() || !self.seen.insert(state.key()) {
                return None;
            }
            self.work += state.world.procs.len() + state.pending.len() + 1;
            // The first outcome is always found: its path is never longer
            // than the events of the step.
            let first_found = !self.leaves.is_empty() || self.target.is_some();
            if first_found && self.work > self.limits.work {
                self.stopped = true;
                return None;
            }
            if self.target.is_some_and(|t| t.contradicts(&state)) {
                return None;
            }
            if !state.pending.is_empty() {
                break;
            }
            // Every death has run: the nodes reap, and namespaces that
            // emptied let their init finish. That can start deaths again.
            let more = state.world.run(Event::Settle, false, &mut Reasons::quiet());
            path.push(Event::Settle);
            if more.is_empty() {
                self.leaf(state.world, path);
                return None;
            }
            state.pending = more.into_iter().map(|v| (v.pid, Phase::Signalled)).collect();
        }
        let mut moves = self.moves(&state);
        let bytes = state.bytes();
        let first_found = !self.leaves.is_empty() || self.target.is_some();
        if moves.len() > 1 && first_found && self.stack_bytes + bytes > self.limits.stack_bytes {
            moves.truncate(1);
            self.pruned_moves = true;
        }
        Some(Frame { state, moves, next: 0, depth: path.len(), bytes })
    }

    /// A settled world.
    fn leaf(&mut self, world: World, path: &[Event]) {
        if let Some(target) = self.target {
            if world.render() == target.observed {
                self.leaves.push((world, path.to_vec()));
            }
            return;
        }
        if !self.leaf_keys.insert(world_key(&world)) {
            return;
        }
        if self.leaves.len() >= self.limits.outcomes {
            self.stopped = true;
            return;
        }
        self.leaves.push((world, path.to_vec()));
    }

    /// The state after `event` (of the victim at `i` in `pending`).
    fn advance(&self, mut next: State, i: usize, event: Event) -> State {
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
            Event::Send(pid) => next.unsent.retain(|&u| u != pid),
            Event::ReapFirst { .. } | Event::ReapLive { .. } | Event::EarlyOrphanCheck(_) | Event::Settle => {}
        }
        for v in more {
            let dying = next.world.exists(v.pid) && next.world[v.pid].state != ProcState::Zombie;
            if dying && !next.pending.iter().any(|(p, _)| *p == v.pid) {
                next.pending.push((v.pid, Phase::Signalled));
            }
        }
        next
    }

    /// The events to try from `state`, each with the index of its victim in
    /// `pending`: those of the family of the first victim with events left.
    fn moves(&self, state: &State) -> Vec<(usize, Event)> {
        let family = |pid: Pid| self.victims.family.get(&pid).copied();
        let moving = family(state.pending[0].0);
        let mut moves = Vec::new();
        // The next SIGKILL to a stopped victim first, so that the first
        // order found sends every signal before any death runs. A victim
        // named after it has not been signalled either: its death waits.
        let order = |pid: Pid| self.victims.list.iter().position(|v| v.pid == pid);
        let unsent_from = state.unsent.first().and_then(|&u| order(u));
        if let Some(&u) = state.unsent.first() {
            moves.push((usize::MAX, Event::Send(u)));
        }
        let unsent = |pid: Pid| unsent_from.is_some_and(|k| order(pid).is_some_and(|o| o >= k));
        for (i, &(pid, phase)) in state.pending.iter().enumerate() {
            if self.reduce && family(pid) != moving {
                continue;
            }
            if unsent(pid) {
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
                if phase != Phase::Signalled || unsent(father) || !state.world.may_hop_inside(father) {
                    continue;
                }
                for child in state.world.children(father) {
                    if !state.hopped.contains(&child) && state.world.hop_matters(child) {
                        moves.push((usize::MAX, Event::ThreadedHop { father, child }));
                    }
                }
            }
            // A multi-threaded victim's orphaned-group check may run before
            // a sibling thread has handed its children on (R5.2, R1.9).
            for (i, &(pid, phase)) in state.pending.iter().enumerate() {
                if phase == Phase::Exiting && state.world.may_check_orphans_early(pid) {
                    moves.push((i, Event::EarlyOrphanCheck(pid)));
                }
            }
            // A process that a death in this step may yet kill — through its
            // parent-death signal, or an orphaned group's SIGHUP — runs its
            // wait loop until its signal arrives, so it may reap a child that
            // died earlier in the step before it dies itself.
            let w = &state.world;
            // A living process that reaps promptly reaps a zombie as soon
            // as it is one, deaths of the step still to come or not; that
            // matters only for the last pid a dying namespace's init waits
            // for, whose reap lets the init finish exiting (R6.4) — and then
            // a parent that is yet to be signalled may reap it first.
            for pid in w.pids() {
                if state.pending.iter().any(|(p, _)| *p == pid) || !w.reaps_promptly(pid) {
                    continue;
                }
                for zombie in w.zombie_children(pid) {
                    let holds = w.pids().any(|i| w[i].state == ProcState::Exiting && w.ns_members(i) == [zombie]);
                    if holds {
                        moves.push((usize::MAX, Event::ReapLive { parent: pid, zombie }));
                    }
                }
            }
            let stopped_groups: HashSet<Option<Pid>> =
                w.pids().filter(|&m| w[m].state == ProcState::Stopped).map(|m| w[m].pgrp).collect();
            for pid in w.pids() {
                let may_die = w[pid].pdeath.is_some() || stopped_groups.contains(&w[pid].pgrp);
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
    use crate::model::{ModelConfig, Unmatched};
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
                .map(|pid| Victim { pid, may_reap_first: world[pid].state == ProcState::Running, stopped: false })
                .collect();
            let reduced = world.clone().settle_deaths_with(victims.clone(), Reasons::new(), true, Limits::NONE);
            let plain = world.clone().settle_deaths_with(victims, Reasons::new(), false, Limits::NONE);
            prop_assert_eq!(worlds(&reduced), worlds(&plain));
        }
    }

    /// Victims of a chain killed bottom up: every p_i may be reaped by its
    /// parent first, so 2^(n-1) outcomes, past the listing's 64 for n = 8.
    fn chain_bottom_up(n: usize) -> (World, Vec<Victim>, Step) {
        let mut node = Node::new("leaf");
        for i in (0..n).rev() {
            let mut p = Node::new(format!("p{i}"));
            p.attrs.subreaper = true;
            p.children.push(node);
            node = p;
        }
        let mut init = Node::new("init");
        init.attrs.noreap = true;
        init.children.push(node);
        let world = World::new(&init, ModelConfig::default()).unwrap();
        let names: Vec<String> = (0..n).rev().map(|i| format!("p{i}")).collect();
        let victims = names
            .iter()
            .map(|v| Victim { pid: world.find(v).unwrap(), may_reap_first: true, stopped: false })
            .collect();
        (world, victims, Step::Kill { targets: names, signal: Signal::KILL })
    }

    #[test]
    fn past_the_limit_every_outcome_is_accepted_and_no_other() {
        let (world, victims, step) = chain_bottom_up(8);
        let all = worlds(&world.clone().settle_deaths_with(victims, Reasons::new(), true, Limits::NONE));
        assert_eq!(all.len(), 128);
        let prediction = world.apply(&step).unwrap();
        assert_eq!(prediction.too_many().map(|(listed, _)| listed), Some(Limits::LIST.outcomes));
        for tree in &all {
            let outcome = prediction.check(tree).unwrap();
            assert_eq!(&outcome.world.render(), tree);
        }
        // leaf is never killed, and init never reaps: these are no outcome.
        let mut wrong = all[0].clone();
        wrong[0].children.retain(|c| c.name != "leaf");
        assert_eq!(prediction.check(&wrong).unwrap_err(), Unmatched::Unreachable);
        let mut alive = all[0].clone();
        alive[0].children.iter_mut().for_each(|c| c.markers = Default::default());
        assert_eq!(prediction.check(&alive).unwrap_err(), Unmatched::Unreachable);
    }
}
