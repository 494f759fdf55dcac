//! The world the rules act on: every process of the sandbox's PID namespace,
//! with just the kernel state that decides where orphans go and which zombies
//! are reaped.
//!
//! A [`World`] is a value: [`World::apply`] never changes it, it returns the
//! worlds the step can lead to. That is what lets the racing-death search
//! (`race.rs`) fork the world at every point where the kernel's order is not
//! fixed, and keep only the distinct worlds it ends with; and it is cheap to
//! clone, since the names, which never change, are shared.
//!
//! Processes are kept in creation order, indexed by a model pid that counts
//! forks. A child's `real_parent` is a *thread* (R1.1): the process and the
//! thread's number. The kernel keeps each thread's children in a list in
//! adoption order (`list_splice_tail_init()` in `forget_original_parent()`);
//! the model lists them in creation order, as `expect:` blocks do, and walks
//! them in that order when it sends parent-death signals and checks process
//! groups — which only changes the order of signals, never where anything
//! ends. Worlds that differ only in list order are then equal, as they
//! should be.
//!
//! Namespaces are named by their init's pid; each init records the
//! namespace its own is nested in. Process groups and sessions are named by
//! their leader's pid, `None` standing for the harness's own, which the
//! scenario's init starts in.

use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use super::error::ModelError;
use super::prediction::{Prediction, Reasons};
use crate::scenario::{Attrs, Markers, Need, Node, OrphanHup, Scenario, Signal, Step, INIT};

/// The kernel the model predicts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelConfig {
    /// `(major, minor)`. Before 4.11, `has_child_subreaper` is inherited
    /// only at fork (R2.6) and not propagated to existing descendants (R2.7),
    /// and it still gates the reaper walk (R1.6).
    pub kernel: (u32, u32),
    /// A deliberate bug, to show that the suite catches it (mutation
    /// testing). `None` for every real use.
    pub mutation: Option<Mutation>,
    /// What this kernel *build* does where builds of one version differ
    /// (observed, not derived from the version).
    pub build: BuildTraits,
    /// PID 1 is an init under test (`--init`), not the built-in init node,
    /// with the policies the harness observed it to follow. `None`: the
    /// built-in init.
    pub init: Option<InitPolicy>,
}

/// What an init under test chose to do where the kernel leaves the choice
/// to PID 1, as the harness observed it (`driver::under_init`). The model
/// takes these as given rather than counting them as failures: they are
/// the init's policy (shared/init-gate.md §3, P1 and T1), not a rule of the
/// kernel. Everything else PID 1 does in the model — reaping every zombie
/// it adopts at once — is the init's job, which the sandbox checks within
/// the reap deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InitPolicy {
    /// Where the init puts its main child (the one command it runs).
    pub main_group: MainGroup,
    /// The init exits once it has reaped its main child (tini, dumb-init
    /// and catatonit do), which ends the namespace (R6.3).
    pub exits_with_main_child: bool,
}

/// The process group and session of an init's main child (check P1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MainGroup {
    /// It stays in the init's group and session.
    Inherited,
    /// `setpgid(0, 0)`: a group of its own in the init's session (tini,
    /// catatonit).
    OwnGroup,
    /// `setsid()`: a session of its own (dumb-init).
    OwnSession,
}

impl MainGroup {
    /// As the policy reads in a report.
    pub fn text(self) -> &'static str {
        match self {
            MainGroup::Inherited => "inherited",
            MainGroup::OwnGroup => "own-group",
            MainGroup::OwnSession => "own-session",
        }
    }

    /// The main child's process group as a tree shows it: `pgrp`, `session`
    /// or neither.
    pub fn from_attrs(a: &Attrs) -> MainGroup {
        match (a.pgrp, a.session) {
            (_, true) => MainGroup::OwnSession,
            (true, false) => MainGroup::OwnGroup,
            _ => MainGroup::Inherited,
        }
    }

    /// `a` with the main child's group set to this policy.
    pub fn apply(self, a: &Attrs) -> Attrs {
        Attrs { pgrp: self == MainGroup::OwnGroup, session: self == MainGroup::OwnSession, ..a.clone() }
    }
}

impl InitPolicy {
    /// The policy in a few words, for a report header.
    pub fn text(&self) -> String {
        let group = match self.main_group {
            MainGroup::Inherited => "main child in the init's own process group",
            MainGroup::OwnGroup => "main child in a process group of its own",
            MainGroup::OwnSession => "main child in a session of its own",
        };
        let exit = if self.exits_with_main_child {
            "exits when its main child exits"
        } else {
            "stays when its main child exits"
        };
        format!("{group}; {exit}")
    }
}

/// Behaviours that differ between kernel builds of the same version. The
/// model cannot derive them from `kernel`; the driver observes them once
/// on the running kernel (`driver::calibrate`), or a flag pins them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BuildTraits {
    /// Who gets the SIGHUP that `kill_orphaned_pgrp()` sends a newly
    /// orphaned process group with a stopped member (R5.2, R5.3).
    pub orphan_hup: OrphanHup,
    /// What a namespace init whose main thread exited (and blocks every
    /// signal, as a node's exiting main thread does) does with a signal
    /// that terminates by default and that it does not catch, sent from
    /// outside (R6.6g).
    pub mt_init: MtInitSignal,
}

/// R6.6g: a namespace init's signal that one of its threads blocks is
/// queued instead of dropped; then another thread takes it. Mainline's
/// `complete_signal()` (since 4.15) makes that a group exit — every Debian
/// kernel from 5.10 to 7.3.4 kills the init — while some builds
/// (6.18.44-fc-v1252) let `get_signal()` drop it and the init survives.
/// Observed once per command on the running kernel (`driver::calibrate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MtInitSignal {
    /// The init is killed by the signal (mainline).
    #[default]
    Killed,
    /// The signal is dropped; the init lives on.
    Survives,
}

impl MtInitSignal {
    /// The word the R6.6g row records.
    pub fn word(self) -> &'static str {
        match self {
            MtInitSignal::Killed => "killed",
            MtInitSignal::Survives => "survives",
        }
    }
}

/// Deliberate bugs the model can be asked to make, so that a test can prove
/// the random cases find and shrink them, and that each scenario row of
/// `reparent kernel` can fail (`kernel::proof`). Each breaks one rule of
/// kernel-rules.md, named in its doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// `find_new_reaper()` takes the farthest living subreaper instead of
    /// the nearest.
    FarthestSubreaper,
    /// A forked child inherits its parent's subreaper flag (R2.4 says it
    /// does not).
    SubreaperInherited,
    /// A threaded reparent (R1.7) does not send the parent-death signal
    /// (R4.3 says it does).
    ThreadedHopNoPdeath,
    /// The reaper walk ignores pid levels and climbs out of the dying
    /// process's namespace (R1.5 says it never does).
    WalkCrossesNamespaces,
    /// A newly orphaned process group with a stopped member gets no SIGHUP
    /// and SIGCONT (R5.2, R5.3 say it does).
    NoOrphanedPgrpSignal,
    /// A forked child inherits its parent's parent-death signal (R4.7 says
    /// fork clears it).
    PdeathInherited,
    /// With no subreaper above, an orphan goes to its dying parent's own
    /// parent instead of the namespace's init (R1.3 (c) says `child_reaper`).
    OrphanToGrandparent,
    /// `find_new_reaper()` never walks up to a subreaper: every orphan goes
    /// to its namespace's init (R1.3 (b) says the nearest living subreaper,
    /// then the next one up).
    NoSubreaperWalk,
    /// A subreaper with a fatal signal pending is not living, so the walk
    /// passes it by (R1.4 says it still counts as living and adopts until
    /// it really exits).
    PendingFatalNotLiving,
    /// An orphaned process injected with `setns()` goes to the init of its
    /// own namespace rather than to its dying parent's reaper (R1.5.2 says
    /// the level and the child reaper come from the dying father).
    ChildReaperOfOrphan,
    /// Of the processes one step kills together, only the first dies; the
    /// others stay alive (R1.8: every death of the step runs, in some order).
    RaceDropsVictims,
    /// When a process dies, the children forked by its extra threads get no
    /// parent-death signal (R1.9 says each thread's children get theirs,
    /// and R4.4 on every hop).
    PdeathMainThreadChildrenOnly,
    /// An adopted stopped process is resumed by the move (R1.12 says
    /// reparenting changes only the parent).
    AdoptedStoppedResumed,
    /// `PR_SET_CHILD_SUBREAPER(0)` leaves the flag set (R2.3 says it clears
    /// it, and the walk then skips the process).
    SubreaperOffIgnored,
    /// `PR_SET_CHILD_SUBREAPER(1)` does not give `has_child_subreaper` to
    /// existing descendants, as before 4.11 (R2.7 says it does since 4.11).
    NoSubreaperPropagation,
    /// A zombie that moves to a new parent is not re-notified: the new
    /// parent gets no SIGCHLD and never reaps it, and one that ignores
    /// SIGCHLD does not release it (R3.2 says `reparent_leader()` notifies).
    MovedZombieNotRenotified,
    /// A parent that sets SIGCHLD to SIG_IGN gets zombie children like any
    /// other (R3.3 says the kernel reaps them at once).
    SigchldIgnoreNoAutoreap,
    /// A parent-death signal is sent only on the first hop: the kernel
    /// forgets it once sent (R4.4 says it is sent again on every hop and
    /// `pdeath_signal` stays set).
    PdeathOnce,
    /// A parent-death signal never takes its default action: it is
    /// delivered only to a handler (R4.6 says it follows the receiver's
    /// signal rules, so `pdeathsig=SIGKILL` kills).
    PdeathNoDefaultAction,
    /// `execve()` clears the caller's parent-death signal (R4.7 says a plain
    /// exec keeps it).
    ExecClearsPdeath,
    /// A stopped process killed by SIGKILL stays a stopped job until it has
    /// exited (R5.1 says `complete_signal()` makes it a group exit at once,
    /// so it is no stopped job).
    SigkillKeepsStoppedJob,
    /// A child moving to a new parent orphans its process group whenever
    /// its old parent connected it, whatever the new parent is (R5.4 says a
    /// reaper in the same session, subreaper or namespace init, keeps it
    /// connected).
    ReparentSkipsOrphanTest,
    /// SIGTSTP, SIGTTIN and SIGTTOU stop a process of an orphaned process
    /// group (R5.7 says `get_signal()` discards them).
    TstpStopsInOrphanedPgrp,
    /// A newly orphaned process group gets SIGHUP and SIGCONT even with no
    /// stopped member (R5.9 says `has_stopped_jobs()` must find one).
    HupWithoutStoppedJobs,
    /// The main thread of a namespace init exiting ends the namespace,
    /// although other threads live (R6.2 says a live thread becomes the
    /// child reaper).
    InitMainExitEndsNamespace,
    /// A dying init waits for every zombie of its namespace to be reaped by
    /// its parent, as if each were injected (R6.3 says the kernel reaps
    /// those whose parent is in the namespace).
    ZapWaitsForInsideZombies,
    /// After `zap_pid_ns_processes()` killed the namespace, no process group
    /// those deaths orphaned is signalled (R6.3, R5.2 say it is).
    ZapNoOrphanedPgrpCheck,
    /// A dying init releases an injected zombie whose parent is outside,
    /// without waiting for that parent (R6.4 says it waits, `exiting`).
    ZapReleasesInjectedZombies,
    /// A namespace init has no shield: signals from outside do their
    /// default action (R6.6, R6.10 say only SIGKILL and SIGSTOP get past
    /// `SIGNAL_UNKILLABLE`).
    InitUnshielded,
    /// A dying init kills only the processes of its own namespace level,
    /// not those of nested namespaces (R6.9 says nested ones die too).
    ZapSparesNestedNamespaces,
    /// `CLONE_PARENT` is ignored: the child's parent is the forker (R8.1
    /// says it is the forker's own parent).
    CloneParentIgnored,
    /// The parent-death signal dies with the main thread (R8.3 says a
    /// main-exited process still gets the one its main thread set).
    MainExitClearsPdeath,
    /// `execve()` in a multi-threaded process leaves the other threads
    /// alive (R8.4 says `de_thread()` kills them, and their children move).
    ExecSparesThreads,
}

impl Mutation {
    /// Every mutation, with its command-line name.
    pub const ALL: [(&'static str, Mutation); 33] = [
        ("farthest-subreaper", Mutation::FarthestSubreaper),
        ("subreaper-inherited", Mutation::SubreaperInherited),
        ("threaded-hop-no-pdeath", Mutation::ThreadedHopNoPdeath),
        ("walk-crosses-namespaces", Mutation::WalkCrossesNamespaces),
        ("no-orphaned-pgrp-signal", Mutation::NoOrphanedPgrpSignal),
        ("pdeath-inherited", Mutation::PdeathInherited),
        ("orphan-to-grandparent", Mutation::OrphanToGrandparent),
        ("no-subreaper-walk", Mutation::NoSubreaperWalk),
        ("pending-fatal-not-living", Mutation::PendingFatalNotLiving),
        ("child-reaper-of-orphan", Mutation::ChildReaperOfOrphan),
        ("race-drops-victims", Mutation::RaceDropsVictims),
        ("pdeath-main-thread-children-only", Mutation::PdeathMainThreadChildrenOnly),
        ("adopted-stopped-resumed", Mutation::AdoptedStoppedResumed),
        ("subreaper-off-ignored", Mutation::SubreaperOffIgnored),
        ("no-subreaper-propagation", Mutation::NoSubreaperPropagation),
        ("moved-zombie-not-renotified", Mutation::MovedZombieNotRenotified),
        ("sigchld-ignore-no-autoreap", Mutation::SigchldIgnoreNoAutoreap),
        ("pdeath-once", Mutation::PdeathOnce),
        ("pdeath-no-default-action", Mutation::PdeathNoDefaultAction),
        ("exec-clears-pdeath", Mutation::ExecClearsPdeath),
        ("sigkill-keeps-stopped-job", Mutation::SigkillKeepsStoppedJob),
        ("reparent-skips-orphan-test", Mutation::ReparentSkipsOrphanTest),
        ("tstp-stops-in-orphaned-pgrp", Mutation::TstpStopsInOrphanedPgrp),
        ("hup-without-stopped-jobs", Mutation::HupWithoutStoppedJobs),
        ("init-main-exit-ends-namespace", Mutation::InitMainExitEndsNamespace),
        ("zap-waits-for-inside-zombies", Mutation::ZapWaitsForInsideZombies),
        ("zap-no-orphaned-pgrp-check", Mutation::ZapNoOrphanedPgrpCheck),
        ("zap-releases-injected-zombies", Mutation::ZapReleasesInjectedZombies),
        ("init-unshielded", Mutation::InitUnshielded),
        ("zap-spares-nested-namespaces", Mutation::ZapSparesNestedNamespaces),
        ("clone-parent-ignored", Mutation::CloneParentIgnored),
        ("main-exit-clears-pdeath", Mutation::MainExitClearsPdeath),
        ("exec-spares-threads", Mutation::ExecSparesThreads),
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        Mutation::ALL.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }
}

impl Default for ModelConfig {
    /// Linux 6.18, the kernel `kernel-rules.md` was checked against.
    fn default() -> Self {
        ModelConfig { kernel: (6, 18), mutation: None, build: BuildTraits::default(), init: None }
    }
}

impl ModelConfig {
    /// This config with the build traits a scenario's `needs:` names: a
    /// scenario for one kind of kernel build is checked, without a kernel,
    /// against that build.
    pub fn for_needs(mut self, s: &Scenario) -> ModelConfig {
        for need in &s.needs {
            if let Need::OrphanHup(v) = need {
                self.build.orphan_hup = *v;
            }
        }
        self
    }

    /// The model is asked to make this deliberate bug.
    pub(super) fn mutated(self, m: Mutation) -> bool {
        self.mutation == Some(m)
    }

    /// `PR_SET_CHILD_SUBREAPER` exists (v3.4, `ebec18a6d3aa`; R2.9).
    pub(super) fn has_subreapers(self) -> bool {
        self.kernel >= (3, 4)
    }

    /// `PR_SET_CHILD_SUBREAPER` walks the existing descendants (v4.11,
    /// `749860ce2427`; R2.7).
    pub(super) fn propagates_has_child_subreaper(self) -> bool {
        self.kernel >= (4, 11)
    }
}

/// What `/proc/<pid>/stat` would show, reduced to what scenarios mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcState {
    /// Alive and not stopped (`R`/`S`).
    Running,
    /// Stopped by a signal (`T`).
    Stopped,
    /// A namespace init that has begun to exit and waits in
    /// `zap_pid_ns_processes()` for its namespace to empty (R6.4): not a
    /// zombie yet, and no longer living.
    Exiting,
    /// Exited, not reaped yet (`Z`).
    Zombie,
}

impl fmt::Display for ProcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcState::Running => "running",
            ProcState::Stopped => "stopped",
            ProcState::Exiting => "exiting",
            ProcState::Zombie => "a zombie",
        })
    }
}

/// The model's pid: the process's place in the global creation sequence.
/// Not the pid the kernel gives; it only orders and names processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Pid(pub(super) u32);

/// A thread: the process and its number, 0 for the main thread (the group
/// leader) and `K` for extra thread K of `threads=N`. The kernel links a
/// child to the *thread* that forked it (R1.1), so `real_parent` is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Tid {
    pub(super) pid: Pid,
    pub(super) thread: u8,
}

/// A set of signals 1..=64, as the kernel's `sigset_t`: bit n-1 for
/// signal n ([`Signal::mask_bit`]), so that `SIGRTMAX` (64) has a bit too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct SigSet(pub(super) u64);

impl SigSet {
    pub(super) fn of(list: &[Signal]) -> SigSet {
        SigSet(list.iter().fold(0, |m, s| m | s.mask_bit()))
    }
    pub(super) fn has(self, sig: Signal) -> bool {
        self.0 & sig.mask_bit() != 0
    }
    pub(super) fn add(&mut self, sig: Signal) {
        self.0 |= sig.mask_bit();
    }
    pub(super) fn list(self) -> Vec<Signal> {
        Signal::from_mask(self.0)
    }
}

/// One process: the parts of its `task_struct`s and `signal_struct` that the
/// rules read, plus what the node running in it does. Its name is kept in
/// [`World`], by pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Proc {
    /// `real_parent` of its threads: the thread that forked it or adopted
    /// it. `None` for the scenario's init, whose parent is the harness,
    /// outside every namespace of the scenario.
    pub(super) real_parent: Option<Tid>,
    /// `signal->is_child_subreaper` (R2.1).
    pub(super) is_child_subreaper: bool,
    /// `signal->has_child_subreaper` (R2.6, R2.7): gates the walk (R1.6).
    pub(super) has_child_subreaper: bool,
    /// The node never waits for its children (`noreap`).
    pub(super) noreap: bool,
    /// SIGCHLD is `SIG_IGN`: the kernel reaps its children (R3.3).
    pub(super) sigchld_ignore: bool,
    /// Signals the node has handlers for (`catch=`).
    pub(super) catch: SigSet,
    /// The main thread's `pdeath_signal` (R4.1). Extra threads are created
    /// with `clone()`, which clears it (R4.7), so only the main thread has
    /// one; it stays on the thread list, and keeps firing, after the main
    /// thread exits while others live (a delayed group leader is released
    /// only with the group, R8.3).
    pub(super) pdeath: Option<Signal>,
    /// The main thread has not exited.
    pub(super) main_alive: bool,
    /// Extra threads still alive: bit K for thread K.
    pub(super) threads_alive: u16,
    pub(super) state: ProcState,
    /// `PF_EXITING` on every thread (R1.4): the whole process has begun to
    /// die. Only a process in the middle of a racing death has it without
    /// being a zombie or `Exiting`.
    pub(super) exiting: bool,
    /// A fatal signal other than SIGKILL that arrived while the process was
    /// stopped: it kills when SIGCONT lets `get_signal()` run.
    pub(super) pending_fatal: Option<Signal>,
    /// Caught signals that arrived while it was stopped: the handlers run
    /// once it is continued.
    pub(super) pending_caught: SigSet,
    /// Caught signals whose handlers ran during the current step (`got=`).
    pub(super) got: SigSet,
    /// Process group and session: the leader's pid, `None` for the
    /// harness's own group and session, which init starts in (the sandbox
    /// helper calls `setsid()` before it forks init).
    pub(super) pgrp: Option<Pid>,
    pub(super) session: Option<Pid>,
    /// Its active PID namespace, named by that namespace's init.
    pub(super) ns: Pid,
    /// PID 1 of its namespace: `ns->child_reaper`, `SIGNAL_UNKILLABLE` (R6.1).
    pub(super) is_init: bool,
    /// For an init: the namespace its namespace is nested in (`None` for the
    /// scenario's own namespace).
    pub(super) outer_ns: Option<Pid>,
    /// Only with [`Mutation::MovedZombieNotRenotified`]: a moved zombie whose
    /// new parent was never told, so its wait loop never reaps it.
    pub(super) unnotified: bool,
    /// Its R5.2 orphaned-group check has run already, early, in a dying
    /// thread that was `group_dead` before a sibling thread had handed its
    /// children on ([`World::early_orphan_check`]): `exit_notify()` does not
    /// run it again.
    pub(super) orphan_checked: bool,
}

impl Proc {
    /// R1.4, `find_alive_thread()` finds a thread: one without
    /// `PF_EXITING`. Stopped counts as living; zombies never do.
    pub(super) fn is_living(&self) -> bool {
        !self.exiting
            && matches!(self.state, ProcState::Running | ProcState::Stopped)
            && (self.main_alive || self.threads_alive != 0)
    }

    /// `find_alive_thread()`: the first living thread in `for_each_thread()`
    /// order, the leader first.
    pub(super) fn alive_thread(&self, me: Pid) -> Option<Tid> {
        if !self.is_living() {
            return None;
        }
        if self.main_alive {
            return Some(Tid { pid: me, thread: 0 });
        }
        (1..16u8).find(|k| self.threads_alive & (1 << k) != 0).map(|thread| Tid { pid: me, thread })
    }

    pub(super) fn thread_alive(&self, k: u8) -> bool {
        if k == 0 {
            self.main_alive
        } else {
            self.threads_alive & (1 << k) != 0
        }
    }

    pub(super) fn living_threads(&self) -> u32 {
        u32::from(self.main_alive) + self.threads_alive.count_ones()
    }

    pub(super) fn parent_pid(&self) -> Option<Pid> {
        self.real_parent.map(|t| t.pid)
    }
}

/// Every process of the scenario, in every namespace, as the kernel would
/// have it after a step has settled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    pub(super) config: ModelConfig,
    /// The name of every process ever created, by pid, so that a name is
    /// never reused and a step naming a reaped process says "gone" rather
    /// than "unknown". Shared between the worlds a step forks.
    names: Arc<Names>,
    /// Every process by pid; `None` once reaped (`release_task()`).
    pub(super) procs: Vec<Option<Proc>>,
}

/// Every name ever given, by pid, and the pid of each name: a step's names
/// are found without a scan of the world.
#[derive(Clone, Debug, Default)]
struct Names {
    list: Vec<String>,
    index: std::collections::HashMap<String, Pid>,
}

impl PartialEq for Names {
    fn eq(&self, other: &Names) -> bool {
        self.list == other.list
    }
}

impl Eq for Names {}

impl std::hash::Hash for Names {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.list.hash(state);
    }
}

impl Index<Pid> for World {
    type Output = Proc;

    /// The process `pid`, which the caller knows to exist: the rules only
    /// ever follow pids they have just read from the world.
    fn index(&self, pid: Pid) -> &Proc {
        match self.procs.get(pid.index()) {
            Some(Some(p)) => p,
            _ => panic!("model invariant broken: {pid:?} is gone"),
        }
    }
}

impl Pid {
    fn index(self) -> usize {
        self.0 as usize
    }
}

impl World {
    /// Builds the starting tree: init first, then every node top down in
    /// file order, each forked by its parent's main thread, which has
    /// already applied its own attributes — exactly as the sandbox builds it.
    pub fn new(tree: &Node, cfg: ModelConfig) -> Result<World, ModelError> {
        if tree.name != INIT {
            return Err(ModelError::RootNotInit { found: tree.name.clone() });
        }
        if let Some(marked) = tree.preorder().into_iter().find(|n| n.markers != Markers::default()) {
            let markers = marked.markers.words();
            return Err(ModelError::MarkersInTree { name: marked.name.clone(), markers: markers.join(" ") });
        }
        let mut world = World { config: cfg, names: Arc::new(Names::default()), procs: Vec::new() };
        // The reasons for building the start tree are not part of any step.
        let mut reasons = Reasons::quiet();
        let init = world.copy_process(None, &tree.name, &tree.attrs, Fork::default(), &mut reasons)?;
        match (cfg.init, tree.children.first()) {
            // The init under test forked its main child and put it in the
            // group its policy says; the node agent then applied the rest.
            (Some(policy), Some(main)) => {
                let main = Node { attrs: policy.main_group.apply(&main.attrs), ..main.clone() };
                let wrapper = Node { children: vec![main], ..tree.clone() };
                world.create_children(init, &wrapper, &mut reasons)?;
            }
            _ => world.create_children(init, tree, &mut reasons)?,
        }
        Ok(world)
    }

    /// Forks `node`'s descendants in file order (depth first, children in
    /// order), with an explicit stack: a tree can be deeper than the
    /// thread's stack.
    fn create_children(&mut self, parent: Pid, node: &Node, reasons: &mut Reasons) -> Result<(), ModelError> {
        let mut stack: Vec<(Pid, &Node)> = node.children.iter().rev().map(|c| (parent, c)).collect();
        while let Some((parent, child)) = stack.pop() {
            let forker = Tid { pid: parent, thread: 0 };
            let pid = self.copy_process(Some(forker), &child.name, &child.attrs, Fork::default(), reasons)?;
            stack.extend(child.children.iter().rev().map(|c| (pid, c)));
        }
        Ok(())
    }

    /// Predicts the worlds after `step`, once the kernel has settled and the
    /// reaping parents have reaped. Pure: `self` is unchanged.
    pub fn apply(&self, step: &Step) -> Result<Prediction, ModelError> {
        if !self.namespace_alive() {
            return Err(ModelError::NamespaceDead { action: step.kind().to_string() });
        }
        // got= says what a step delivered: start each step with none.
        let mut world = self.clone();
        for p in world.procs.iter_mut().flatten() {
            p.got = SigSet::default();
        }
        match step {
            Step::Kill { targets, signal } => world.kill_step(targets, *signal),
            Step::Exit { target, .. } => world.exit_step(target),
            Step::Subreaper { target, on } => world.subreaper_step(target, *on),
            Step::Spawn { child, parent, thread, clone_parent, into, attrs } => {
                let how = SpawnHow { thread: *thread, clone_parent: *clone_parent, into: into.as_deref() };
                world.spawn_step(child, parent, how, attrs)
            }
            Step::Reap { target } => world.reap_step(target),
            Step::ThreadExit { target, thread } => world.thread_exit_step(target, *thread),
            Step::Exec { target } => world.exec_step(target),
            Step::Setpgid { target } => world.setpgid_step(target),
            Step::Setsid { target } => world.setsid_step(target),
        }
    }

    /// The tree as an `expect:` block shows it: `[init subtree]`, or nothing
    /// once the namespace is gone. Children in creation order; attributes as
    /// they are now; markers.
    pub fn render(&self) -> Vec<Node> {
        // One pass for the children of every process, and a stack rather
        // than recursion: linear in the processes, whatever the depth.
        let mut kids: Vec<Vec<Pid>> = vec![Vec::new(); self.procs.len()];
        let mut roots = Vec::new();
        for pid in self.pids() {
            match self[pid].parent_pid() {
                Some(q) => kids[q.index()].push(pid),
                None => roots.push(pid),
            }
        }
        let mut built: Vec<Option<Node>> = (0..self.procs.len()).map(|_| None).collect();
        let mut stack: Vec<(Pid, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((pid, expanded)) = stack.pop() {
            if expanded {
                let children = kids[pid.index()].iter().filter_map(|c| built[c.index()].take()).collect();
                built[pid.index()] = Some(self.render_node(pid, children));
            } else {
                stack.push((pid, true));
                stack.extend(kids[pid.index()].iter().rev().map(|&c| (c, false)));
            }
        }
        roots.iter().filter_map(|r| built[r.index()].take()).collect()
    }

    fn render_node(&self, pid: Pid, children: Vec<Node>) -> Node {
        let p = &self[pid];
        let zombie = p.state == ProcState::Zombie;
        Node {
            name: self.name(pid).to_string(),
            attrs: self.attrs_of(pid),
            markers: Markers {
                main_exited: !p.main_alive && !zombie && p.state != ProcState::Exiting,
                exiting: p.state == ProcState::Exiting,
                zombie,
                stopped: p.state == ProcState::Stopped,
                got: p.got.list().into_iter().filter(|&s| s != Signal::CHLD).collect(),
            },
            children,
        }
    }

    /// The attributes a process shows now (see [`Attrs`]).
    fn attrs_of(&self, pid: Pid) -> Attrs {
        let p = &self[pid];
        let dead = matches!(p.state, ProcState::Zombie | ProcState::Exiting);
        Attrs {
            subreaper: p.is_child_subreaper,
            noreap: p.noreap,
            sigchld_ignore: p.sigchld_ignore,
            threads: if dead { 0 } else { p.threads_alive.count_ones() },
            pdeathsig: p.pdeath,
            catch: p.catch.list(),
            pgrp: p.pgrp == Some(pid) && p.session != Some(pid),
            session: p.session == Some(pid),
            pidns: p.is_init && p.outer_ns.is_some(),
        }
    }

    /// The state of a process; `None` once it is gone (reaped) or if it
    /// never existed.
    pub fn state(&self, name: &str) -> Option<ProcState> {
        self.find(name).map(|pid| self[pid].state)
    }

    /// The parent's name; `None` for init (its parent is the harness,
    /// outside the namespace) and for a process that is gone.
    pub fn parent(&self, name: &str) -> Option<String> {
        let parent = self[self.find(name)?].parent_pid()?;
        Some(self.name(parent).to_string())
    }

    /// Every process that exists (alive, stopped, exiting or zombie), in
    /// creation order.
    pub fn names(&self) -> Vec<String> {
        self.pids().map(|pid| self.name(pid).to_string()).collect()
    }

    /// The attributes a process has now: `subreaper` is its
    /// `is_child_subreaper`.
    pub fn attrs(&self, name: &str) -> Option<Attrs> {
        self.find(name).map(|pid| self.attrs_of(pid))
    }

    /// Its `has_child_subreaper` flag, which no `expect:` block shows but
    /// which decides the reaper walk on kernels before 4.11 (R1.6).
    pub fn has_child_subreaper(&self, name: &str) -> Option<bool> {
        self.find(name).map(|pid| self[pid].has_child_subreaper)
    }

    /// The numbers of the extra threads still alive, and whether the main
    /// thread is, for a process that exists.
    pub fn threads(&self, name: &str) -> Option<(bool, Vec<u32>)> {
        let p = &self[self.find(name)?];
        let extra = (1..16u32).filter(|&k| p.threads_alive & (1 << k) != 0).collect();
        Some((p.main_alive, extra))
    }

    /// Whether the process is PID 1 of a namespace: the scenario's init, or
    /// a `pidns` node.
    pub fn is_ns_init(&self, name: &str) -> bool {
        self.find(name).is_some_and(|pid| self[pid].is_init)
    }

    /// The `pidns` nodes whose namespace a process named `actor` may join
    /// with `setns()` and fork into: its own namespace's descendants that
    /// are still alive.
    pub fn joinable_namespaces(&self, actor: &str) -> Vec<String> {
        let Some(a) = self.find(actor) else { return Vec::new() };
        let own = self[a].ns;
        self.pids()
            .filter(|&n| self[n].is_init && self[n].outer_ns.is_some() && self.ns_within(n, own))
            .filter(|&n| matches!(self[n].state, ProcState::Running | ProcState::Stopped))
            .map(|n| self.name(n).to_string())
            .collect()
    }

    /// Whether the scenario's init is still there and not dying. Once it
    /// dies, `zap_pid_ns_processes()` takes every other process with it
    /// (R6.3).
    pub fn namespace_alive(&self) -> bool {
        self.child_reaper_of_top().is_some_and(|i| !matches!(self[i].state, ProcState::Zombie | ProcState::Exiting))
    }

    /// The kernel the world is modelled for.
    pub fn config(&self) -> ModelConfig {
        self.config
    }

    pub(super) fn find(&self, name: &str) -> Option<Pid> {
        self.names.index.get(name).copied().filter(|&pid| self.exists(pid))
    }

    /// Whether a process of this name exists or ever existed.
    pub(super) fn name_used(&self, name: &str) -> bool {
        self.names.index.contains_key(name)
    }

    /// The process a step names, which must still exist.
    pub(super) fn lookup(&self, name: &str) -> Result<Pid, ModelError> {
        match self.find(name) {
            Some(pid) => Ok(pid),
            None if self.name_used(name) => Err(ModelError::Gone { name: name.to_string() }),
            None => Err(ModelError::UnknownProcess { name: name.to_string() }),
        }
    }

    /// The process a step asks to run code itself (`exit`, `prctl`, `fork`,
    /// `wait`): it must exist and be running.
    pub(super) fn lookup_actor(&self, name: &str, action: &'static str) -> Result<Pid, ModelError> {
        let pid = self.lookup(name)?;
        match self[pid].state {
            ProcState::Running => Ok(pid),
            state => Err(ModelError::NotRunning { name: name.to_string(), action, state }),
        }
    }

    /// The name of a process, even one that is gone.
    pub(super) fn name(&self, pid: Pid) -> &str {
        self.names.list.get(pid.index()).map_or("?", String::as_str)
    }

    /// Every process that exists, in creation order.
    pub(super) fn pids(&self) -> impl Iterator<Item = Pid> + '_ {
        let existing = self.procs.iter().enumerate().filter(|(_, p)| p.is_some());
        existing.map(|(i, _)| Pid(i as u32))
    }

    pub(super) fn exists(&self, pid: Pid) -> bool {
        matches!(self.procs.get(pid.index()), Some(Some(_)))
    }

    /// Adds a newly forked process; its pid comes next in creation order.
    pub(super) fn add(&mut self, name: &str, proc: Proc) -> Pid {
        let pid = Pid(self.procs.len() as u32);
        let names = Arc::make_mut(&mut self.names);
        names.list.push(name.to_string());
        names.index.entry(name.to_string()).or_insert(pid);
        self.procs.push(Some(proc));
        pid
    }

    /// The pid the next [`World::add`] will hand out.
    pub(super) fn next_pid(&self) -> Pid {
        Pid(self.procs.len() as u32)
    }

    /// Changes one process in place; a pid that is gone is left alone.
    pub(super) fn update(&mut self, pid: Pid, change: impl FnOnce(&mut Proc)) {
        if let Some(Some(p)) = self.procs.get_mut(pid.index()) {
            change(p);
        }
    }

    /// `release_task()`: the process is gone; its name stays used.
    pub(super) fn release_task(&mut self, pid: Pid) {
        if let Some(slot) = self.procs.get_mut(pid.index()) {
            *slot = None;
        }
    }

    /// The children of every thread of `father`, in creation order (see
    /// the module doc).
    pub(super) fn children(&self, father: Pid) -> Vec<Pid> {
        self.pids().filter(|&pid| self[pid].parent_pid() == Some(father)).collect()
    }

    /// The children of one thread.
    pub(super) fn thread_children(&self, thread: Tid) -> Vec<Pid> {
        self.pids().filter(|&pid| self[pid].real_parent == Some(thread)).collect()
    }

    /// The main child of an init under test: the first process the
    /// scenario's init forked (model pids count forks), while it is its
    /// child. `None` with the built-in init.
    pub(super) fn main_child(&self) -> Option<Pid> {
        self.config.init?;
        let main = Pid(1);
        (self.exists(main) && self[main].parent_pid() == Some(Pid(0))).then_some(main)
    }

    /// The scenario's init, while it exists.
    pub(super) fn child_reaper_of_top(&self) -> Option<Pid> {
        self.pids().find(|&pid| self[pid].is_init && self[pid].outer_ns.is_none())
    }

    /// `task_active_pid_ns(p)->child_reaper`: the init of `p`'s namespace.
    pub(super) fn child_reaper(&self, p: Pid) -> Pid {
        self[p].ns
    }

    /// `task_pid(p)->level`: how deep `p`'s namespace is nested (0 for the
    /// scenario's own).
    pub(super) fn level(&self, p: Pid) -> u32 {
        let mut ns = self[p].ns;
        let mut level = 0;
        while let Some(outer) = self.procs.get(ns.index()).copied().flatten().and_then(|i| i.outer_ns) {
            ns = outer;
            level += 1;
        }
        level
    }

    /// Whether namespace `inner` is `outer` or nested somewhere below it.
    /// Namespaces are named by their init, which may already be gone.
    pub(super) fn ns_within(&self, inner: Pid, outer: Pid) -> bool {
        let mut ns = Some(inner);
        while let Some(n) = ns {
            if n == outer {
                return true;
            }
            ns = self.procs.get(n.index()).copied().flatten().and_then(|i| i.outer_ns);
        }
        false
    }

    /// The processes whose pid lives in `init`'s namespace: its own and
    /// every namespace nested in it, `init` excluded.
    pub(super) fn ns_members(&self, init: Pid) -> Vec<Pid> {
        self.pids().filter(|&p| p != init && self.ns_within(self[p].ns, init)).collect()
    }

    /// The process group `g` (`None`: the harness's): its members.
    pub(super) fn pgrp_members(&self, g: Option<Pid>) -> Vec<Pid> {
        self.pids().filter(|&p| self[p].pgrp == g).collect()
    }

    /// pgrp and session of the parent of `p`; the harness (init's parent)
    /// is in its own group and session.
    pub(super) fn parent_group(&self, p: Pid) -> (Option<Pid>, Option<Pid>) {
        match self[p].parent_pid() {
            Some(q) => (self[q].pgrp, self[q].session),
            None => (None, None),
        }
    }
}

/// How a `spawn` forks, besides the attributes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SpawnHow<'a> {
    pub(super) thread: Option<u32>,
    pub(super) clone_parent: bool,
    pub(super) into: Option<&'a str>,
}

/// What `copy_process()` needs besides the parent thread: whose pgrp and
/// session the child inherits (the forking process, even with
/// `CLONE_PARENT`) and which namespace it is born in.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Fork {
    /// The forking process, when it is not the parent (`CLONE_PARENT`).
    pub(super) forker: Option<Pid>,
    /// `pid_ns_for_children` when it is not the forker's active namespace
    /// (`setns()` into a `pidns` node's namespace).
    pub(super) into_ns: Option<Pid>,
}

#[cfg(test)]
mod sigset_tests {
    use super::*;
    use crate::scenario::{parse, render};

    /// Every signal 1..=64 has its own place in the model's set: SIGRTMAX
    /// (64) was once shifted out of a `1 << n` mask.
    #[test]
    fn every_signal_round_trips_through_the_set() {
        let all: Vec<Signal> = (1..=64).map(Signal).collect();
        for &s in &all {
            assert_eq!(SigSet::of(&[s]).list(), vec![s], "{s}");
        }
        assert_eq!(SigSet::of(&all).list(), all);
    }

    /// Every signal `catch=` can name goes through the parser, the model's
    /// set and the renderer, and comes back under its one canonical name.
    #[test]
    fn every_catchable_signal_round_trips_through_catch() {
        let catchable: Vec<Signal> =
            Signal::all().filter(|&s| ![Signal::KILL, Signal::STOP, Signal::CHLD].contains(&s)).collect();
        assert_eq!(catchable.len(), 59);
        let names: Vec<String> = catchable.iter().map(|s| s.name()).collect();
        let text = format!("tree:\n  init\n    a catch={}\n", names.join(","));
        let s = parse("t.tree", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.tree.children[0].attrs.catch, catchable);
        assert_eq!(render(&s), text);
        let world = World::new(&s.tree, ModelConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(world.attrs("a").map(|a| a.catch), Some(catchable));
        let forest = world.render();
        assert_eq!(
            crate::scenario::render_forest(&forest),
            "  init\n    a catch=".to_string() + &names.join(",") + "\n"
        );
    }
}
