//! Every row of `reparent kernel`, in the order of kernel-rules.md: the
//! rule, the kernel function it lives in, and how it is checked.
//!
//! A row is checked one of two ways. A **probe** (`sys::probe`) asks the
//! kernel one question that no tree shows — a `prctl()` read-back, an
//! errno, a wait status, a signal's fate — in a namespace of its own. A
//! **scenario** row runs a bundled `.tree` file through the model and the
//! real kernel, as `reparent run` does: both must agree at every step and
//! the file's `expect:` blocks must hold. A row whose scenario file is
//! missing fails (a missing check is not a pass); a scenario that this
//! machine cannot run (`needs:`) is skipped with the reason.
//!
//! Some rules depend on the kernel version. Their rows say what each range
//! of versions should give ([`Expectation`]), and a row whose feature this
//! kernel predates is skipped with the reason, never passed. Some depend on
//! the kernel *build* instead — two builds of one version differ (R5.2's
//! orphan-hup, R6.6g's multi-threaded init): those rows record which
//! behaviour they saw, pass with it, and say what each kind of build gives.
//! The ranges travel in the JSON, so that a matrix over kernels can tell a
//! result the row predicts for a kernel from a regression.

use super::table::Verdict;
use crate::model::Mutation;

/// How a row is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A probe of `sys::probe`, by name.
    Probe(&'static str),
    /// A bundled scenario file, by name in the scenarios directory.
    Scenario(&'static str),
    /// A behaviour that differs between kernel builds of one version
    /// ([`super::build`]): the row records which one it saw, and fails only
    /// if the case that tells them apart breaks. Scenario rows whose
    /// `needs:` name the other behaviour are skipped, their twins run.
    Build(&'static str),
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Probe(n) => write!(f, "probe {n}"),
            Check::Scenario(n) => write!(f, "{n}"),
            Check::Build(n) => write!(f, "build {n}"),
        }
    }
}

/// What one range of kernels should give for a version- or
/// build-dependent row. A matrix over kernels reads these (from the JSON)
/// to tell a result the row predicts for a kernel from a regression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub kernels: Kernels,
    /// `pass`, `fail` or `skipped`.
    pub result: Verdict,
    /// For a row that records a build's behaviour: the word it records
    /// on these builds.
    pub recorded: Option<&'static str>,
    /// The result in words.
    pub text: &'static str,
}

/// The kernels an [`Expectation`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Versions `from` (inclusive) up to `until` (exclusive); `None` is
    /// open on that side.
    Versions { from: Option<(u32, u32)>, until: Option<(u32, u32)> },
    /// A kind of build, in words: any version may be either kind.
    Builds(&'static str),
}

impl Kernels {
    /// Whether kernel version `v` is in the range (never, for builds).
    pub fn contains(&self, v: (u32, u32)) -> bool {
        match *self {
            Kernels::Versions { from, until } => {
                !matches!(from, Some(f) if v < f) && !matches!(until, Some(u) if v >= u)
            }
            Kernels::Builds(_) => false,
        }
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |(a, b): (u32, u32)| format!("{a}.{b}");
        match *self {
            Kernels::Versions { from: None, until: None } => write!(f, "every version"),
            Kernels::Versions { from: Some(a), until: None } => write!(f, ">= {}", v(a)),
            Kernels::Versions { from: None, until: Some(b) } => write!(f, "< {}", v(b)),
            Kernels::Versions { from: Some(a), until: Some(b) } => write!(f, ">= {}, < {}", v(a), v(b)),
            Kernels::Builds(which) => write!(f, "{which}"),
        }
    }
}

/// Versions `from` (inclusive) to `until` (exclusive) give `result`.
const fn versions(
    from: Option<(u32, u32)>,
    until: Option<(u32, u32)>,
    result: Verdict,
    text: &'static str,
) -> Expectation {
    Expectation { kernels: Kernels::Versions { from, until }, result, recorded: None, text }
}

/// Builds of kind `which` pass, recording `recorded`.
const fn builds(which: &'static str, recorded: &'static str, text: &'static str) -> Expectation {
    Expectation { kernels: Kernels::Builds(which), result: Verdict::Pass, recorded: Some(recorded), text }
}

/// A row of the table: a rule, where the kernel implements it, and how it
/// is checked.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The rule's number in kernel-rules.md, e.g. `R2.4`.
    pub id: &'static str,
    /// The rule in a few words, with the probe tag of kernel-rules.md.
    pub what: &'static str,
    /// The kernel function and file.
    pub function: &'static str,
    pub check: Check,
    /// The first kernel with the behaviour checked, and what arrived then;
    /// older kernels skip the row.
    pub since: Option<((u32, u32), &'static str)>,
    /// For version-dependent rows: what each range of kernels should give.
    pub by_version: &'static [Expectation],
    /// For a scenario row: a deliberate bug of the model that breaks this
    /// row's rule and that the scenario's `expect:` blocks catch with the
    /// model alone (see [`super::proof`]). A row that nothing can make fail
    /// would hide regressions. `None` for probe rows, which are proven by
    /// violating observation data instead.
    pub killed_by: Option<Mutation>,
}

const fn probe(id: &'static str, what: &'static str, function: &'static str, name: &'static str) -> Rule {
    Rule { id, what, function, check: Check::Probe(name), since: None, by_version: &[], killed_by: None }
}

const fn scenario(
    id: &'static str,
    what: &'static str,
    function: &'static str,
    file: &'static str,
    killed_by: Mutation,
) -> Rule {
    Rule { id, what, function, check: Check::Scenario(file), since: None, by_version: &[], killed_by: Some(killed_by) }
}

/// Every row, in the order of kernel-rules.md.
pub const RULES: &[Rule] = &[
    scenario(
        "R1.3",
        "the nearest living subreaper adopts; then the next one up",
        "find_new_reaper() kernel/exit.c",
        "nested-subreapers-nearest-wins.tree",
        Mutation::FarthestSubreaper,
    ),
    scenario(
        "R1.3",
        "the walk climbs any number of non-subreapers",
        "find_new_reaper() kernel/exit.c",
        "deep-chain.tree",
        Mutation::FarthestSubreaper,
    ),
    scenario(
        "R1.3c",
        "no subreaper above: the namespace's init adopts",
        "find_child_reaper() kernel/exit.c",
        "container-init-adopts.tree",
        Mutation::OrphanToGrandparent,
    ),
    // A subreaper's own children go to the next subreaper up when it dies.
    // That "a dead subreaper adopts nothing" (R1.4) no tree can show: a
    // zombie has no descendants left for an orphan to walk through.
    scenario(
        "R1.3",
        "a dying subreaper's children go to the next subreaper up",
        "find_new_reaper() kernel/exit.c",
        "zombie-subreaper-adopts-nothing.tree",
        Mutation::NoSubreaperWalk,
    ),
    // Skipping a subreaper that is exiting (R1.4) shows only in a race, and
    // no final tree can tell it from the order where the subreaper exits
    // first: the row checks the race itself (R1.8).
    scenario(
        "R1.8",
        "a subreaper and its child killed at once: the next one up adopts",
        "exit_notify() kernel/exit.c",
        "dying-subreaper-race.tree",
        Mutation::RaceDropsVictims,
    ),
    scenario(
        "R1.4",
        "a stopped subreaper with a fatal signal pending still adopts",
        "find_alive_thread() kernel/exit.c",
        "subreaper-fatal-pending-adopts.tree",
        Mutation::PendingFatalNotLiving,
    ),
    scenario(
        "R1.5",
        "an orphan in a nested namespace goes to its init",
        "find_new_reaper() kernel/exit.c",
        "nested-ns-orphan-to-inner-init.tree",
        Mutation::WalkCrossesNamespaces,
    ),
    scenario(
        "R1.5",
        "orphans of a setns-injected process go to the inner init",
        "find_new_reaper() kernel/exit.c",
        "setns-orphans-to-inner-init.tree",
        Mutation::WalkCrossesNamespaces,
    ),
    scenario(
        "R1.5",
        "an orphaned injected process goes to its parent's reaper",
        "find_new_reaper() kernel/exit.c",
        "setns-orphan-to-outer-reaper.tree",
        Mutation::ChildReaperOfOrphan,
    ),
    scenario(
        "R1.7",
        "a thread's exit: threaded reparent, pdeath signal sent",
        "forget_original_parent() kernel/exit.c",
        "thread-exit-pdeath.tree",
        Mutation::ThreadedHopNoPdeath,
    ),
    scenario(
        "R1.8",
        "unrelated processes killed at once: one outcome",
        "exit_notify() kernel/exit.c",
        "racing-leaves.tree",
        Mutation::RaceDropsVictims,
    ),
    scenario(
        "R1.9",
        "a multi-threaded parent dies: children hop threads",
        "forget_original_parent() kernel/exit.c",
        "threaded-parent-killed.tree",
        Mutation::PdeathMainThreadChildrenOnly,
    ),
    probe(
        "R1.10",
        "a child forked by a thread shows the tgid as PPid [N2]",
        "task_state() fs/proc/array.c",
        "ppid-is-tgid",
    ),
    Rule {
        since: Some(((6, 13), "PIDFD_GET_INFO")),
        by_version: &[
            versions(None, Some((6, 13)), Verdict::Skipped, "no PIDFD_GET_INFO"),
            versions(Some((6, 13)), None, Verdict::Pass, "ppid is the parent, then the adopting subreaper"),
        ],
        ..probe(
            "R1.10",
            "PIDFD_GET_INFO ppid: the parent, then the adopter",
            "pidfd_info() fs/pidfs.c",
            "pidfd-info-ppid",
        )
    },
    scenario(
        "R1.12",
        "a stopped orphan stays stopped when adopted",
        "forget_original_parent() kernel/exit.c",
        "stopped-adopted.tree",
        Mutation::AdoptedStoppedResumed,
    ),
    probe(
        "R2.1",
        "PR_SET_CHILD_SUBREAPER(42) returns 0, reads back as 1",
        "prctl() kernel/sys.c",
        "subreaper-readback",
    ),
    scenario(
        "R2.3",
        "PR_SET_CHILD_SUBREAPER(0): orphans skip the process [T4]",
        "find_new_reaper() kernel/exit.c",
        "subreaper-off-skipped.tree",
        Mutation::SubreaperOffIgnored,
    ),
    probe(
        "R2.4",
        "a subreaper's fork child reads the flag as 0 [T3]",
        "copy_signal() kernel/fork.c",
        "subreaper-not-inherited",
    ),
    scenario(
        "R2.4",
        "a subreaper's child is no subreaper itself",
        "copy_signal() kernel/fork.c",
        "subreaper-flag-not-inherited.tree",
        Mutation::SubreaperInherited,
    ),
    probe(
        "R2.5",
        "the subreaper flag survives the subreaper's execve [T3]",
        "begin_new_exec() fs/exec.c",
        "subreaper-kept-across-exec",
    ),
    Rule {
        since: Some(((4, 11), "propagation of has_child_subreaper (749860ce2427)")),
        by_version: &[
            versions(
                Some((3, 4)),
                Some((4, 11)),
                Verdict::Skipped,
                "orphans of descendants older than the prctl skip the new subreaper",
            ),
            versions(Some((4, 11)), None, Verdict::Pass, "the new subreaper adopts them"),
        ],
        ..scenario(
            "R2.7",
            "a new subreaper adopts orphans of older descendants [T2]",
            "propagate_has_child_subreaper() kernel/sys.c",
            "subreaper-on-existing-tree.tree",
            Mutation::NoSubreaperPropagation,
        )
    },
    probe(
        "R2.8",
        "a namespace init may set PR_SET_CHILD_SUBREAPER [T6]",
        "prctl() kernel/sys.c",
        "init-may-be-subreaper",
    ),
    probe(
        "R3.1",
        "SIGUSR1 clone child: ECHILD until adopted, then SIGCHLD [Z1]",
        "reparent_leader() kernel/exit.c",
        "exit-signal-reset",
    ),
    scenario(
        "R3.2",
        "a moved zombie is re-notified to its new parent [Z2]",
        "reparent_leader() kernel/exit.c",
        "zombie-renotified.tree",
        Mutation::MovedZombieNotRenotified,
    ),
    // That the dying parent does not reap them (R3.9) this tree cannot
    // show: init would reap them either way. It shows their move (R3.2).
    scenario(
        "R3.2",
        "a dying noreap parent's zombies move to init, which reaps them",
        "reparent_leader() kernel/exit.c",
        "noreap-parent-dies.tree",
        Mutation::MovedZombieNotRenotified,
    ),
    probe(
        "R3.3",
        "SIG_IGN adopter: zombie auto-reaped, no SIGCHLD [Z3]",
        "do_notify_parent() kernel/signal.c",
        "sigign-autoreap",
    ),
    probe(
        "R3.3",
        "SA_NOCLDWAIT adopter: auto-reaped, SIGCHLD sent [Z3b]",
        "do_notify_parent() kernel/signal.c",
        "nocldwait-autoreap",
    ),
    scenario(
        "R3.3",
        "a SIG_IGN subreaper never holds an adopted zombie",
        "do_notify_parent() kernel/signal.c",
        "sigchld-ignore-subreaper.tree",
        Mutation::SigchldIgnoreNoAutoreap,
    ),
    scenario(
        "R3.3",
        "a SIG_IGN namespace init never holds a zombie",
        "do_notify_parent() kernel/signal.c",
        "init-sigchld-ignore.tree",
        Mutation::SigchldIgnoreNoAutoreap,
    ),
    probe("R4.1", "PR_SET_PDEATHSIG takes 0..64, rejects 65 with EINVAL", "prctl() kernel/sys.c", "pdeathsig-range"),
    scenario(
        "R4.3",
        "the main thread exits: its children get their pdeath signal",
        "forget_original_parent() kernel/exit.c",
        "main-exit-pdeath.tree",
        Mutation::ThreadedHopNoPdeath,
    ),
    scenario(
        "R4.4",
        "the pdeath signal is sent again on every hop",
        "forget_original_parent() kernel/exit.c",
        "pdeath-every-hop.tree",
        Mutation::PdeathOnce,
    ),
    scenario(
        "R4.6",
        "pdeath signals follow the receiver's signal rules",
        "get_signal() kernel/signal.c",
        "pdeath-kill-cascade.tree",
        Mutation::PdeathNoDefaultAction,
    ),
    probe(
        "R4.7",
        "a fork child reads PR_GET_PDEATHSIG 0 [P3]",
        "copy_process() kernel/fork.c",
        "pdeathsig-cleared-on-fork",
    ),
    probe(
        "R4.7",
        "pdeath_signal is kept across a plain execve [P4]",
        "begin_new_exec() fs/exec.c",
        "pdeathsig-kept-across-exec",
    ),
    scenario(
        "R4.7",
        "the pdeath signal is not inherited by a fork child",
        "copy_process() kernel/fork.c",
        "pdeath-not-inherited.tree",
        Mutation::PdeathInherited,
    ),
    scenario(
        "R4.7",
        "the pdeath signal is kept across execve",
        "begin_new_exec() fs/exec.c",
        "pdeath-kept-across-exec.tree",
        Mutation::ExecClearsPdeath,
    ),
    scenario(
        "R5.1",
        "a stopped process killed by SIGKILL is no stopped job",
        "complete_signal() kernel/signal.c",
        "killed-stopped-no-stopped-job.tree",
        Mutation::SigkillKeepsStoppedJob,
    ),
    scenario(
        "R5.2",
        "init's own group orphaned while init is stopped: SIGCONT resumes",
        "kill_orphaned_pgrp() kernel/exit.c",
        "init-group-orphaned.tree",
        Mutation::NoOrphanedPgrpSignal,
    ),
    Rule {
        by_version: &[
            builds("mainline builds", "all", "every member gets SIGHUP then SIGCONT"),
            builds("6.18.44-fc-v1252", "stopped-only", "only stopped members get SIGHUP; all get SIGCONT"),
        ],
        ..Rule {
            id: "R5.2",
            what: "who gets an orphaned group's SIGHUP, recorded [A]",
            function: "kill_orphaned_pgrp() kernel/exit.c",
            check: Check::Build("orphan-hup"),
            since: None,
            by_version: &[],
            killed_by: None,
        }
    },
    scenario(
        "R5.2",
        "an exit orphans a stopped pgrp: SIGHUP, SIGCONT [A]",
        "kill_orphaned_pgrp() kernel/exit.c",
        "orphaned-pgrp-exit.tree",
        Mutation::NoOrphanedPgrpSignal,
    ),
    scenario(
        "R5.2",
        "the same, on an orphan-hup stopped-only build",
        "kill_orphaned_pgrp() kernel/exit.c",
        "orphaned-pgrp-exit-stopped-only.tree",
        Mutation::NoOrphanedPgrpSignal,
    ),
    scenario(
        "R5.3",
        "a reparent orphans a stopped pgrp: SIGHUP, SIGCONT [D]",
        "reparent_leader() kernel/exit.c",
        "orphaned-pgrp-reparent.tree",
        Mutation::NoOrphanedPgrpSignal,
    ),
    scenario(
        "R5.3",
        "the same, on an orphan-hup stopped-only build",
        "reparent_leader() kernel/exit.c",
        "orphaned-pgrp-reparent-stopped-only.tree",
        Mutation::NoOrphanedPgrpSignal,
    ),
    scenario(
        "R5.4",
        "a same-session subreaper keeps a pgrp connected [B]",
        "will_become_orphaned_pgrp() kernel/exit.c",
        "pgrp-subreaper-connects.tree",
        Mutation::ReparentSkipsOrphanTest,
    ),
    scenario(
        "R5.4",
        "the same, on an orphan-hup stopped-only build",
        "will_become_orphaned_pgrp() kernel/exit.c",
        "pgrp-subreaper-connects-stopped-only.tree",
        Mutation::ReparentSkipsOrphanTest,
    ),
    scenario(
        "R5.4",
        "a same-session namespace init keeps a pgrp connected [C]",
        "will_become_orphaned_pgrp() kernel/exit.c",
        "pgrp-ns-init-connects.tree",
        Mutation::ReparentSkipsOrphanTest,
    ),
    scenario(
        "R5.7",
        "SIGTSTP is discarded in an orphaned pgrp [TSTP]",
        "get_signal() kernel/signal.c",
        "tstp-discarded.tree",
        Mutation::TstpStopsInOrphanedPgrp,
    ),
    scenario(
        "R5.9",
        "an orphaned pgrp with no stopped member gets nothing [E]",
        "has_stopped_jobs() kernel/exit.c",
        "pgrp-no-stopped.tree",
        Mutation::HupWithoutStoppedJobs,
    ),
    scenario(
        "R6.2",
        "after init's main thread exits, a live thread adopts [N2]",
        "find_child_reaper() kernel/exit.c",
        "ns-init-main-exited-adopts.tree",
        Mutation::InitMainExitEndsNamespace,
    ),
    probe(
        "R6.3",
        "a killed init is readable only once its ns is empty [N1]",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "ns-empty-at-init-readiness",
    ),
    scenario(
        "R6.3",
        "killing the namespace's init empties the namespace",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "init-killed.tree",
        Mutation::ZapWaitsForInsideZombies,
    ),
    scenario(
        "R6.3",
        "the namespace's init exiting empties the namespace",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "init-exits.tree",
        Mutation::ZapWaitsForInsideZombies,
    ),
    scenario(
        "R6.3",
        "a namespace's death can orphan a process group outside it",
        "kill_orphaned_pgrp() kernel/exit.c",
        "zap-orphans-group.tree",
        Mutation::ZapNoOrphanedPgrpCheck,
    ),
    scenario(
        "R6.4",
        "an unreaped injected zombie holds the dying init [N3]",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "ns-init-exiting-injected-zombie.tree",
        Mutation::ZapReleasesInjectedZombies,
    ),
    scenario(
        "R6.4",
        "a nested dying init waits, and the outer init waits for it",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "nested-ns-exiting-chain.tree",
        Mutation::ZapReleasesInjectedZombies,
    ),
    probe(
        "R6.5",
        "reboot(RESTART) in a namespace: init killed by SIGHUP [N8]",
        "reboot_pid_ns() kernel/pid_namespace.c",
        "reboot-restart",
    ),
    probe(
        "R6.5",
        "reboot(POWER_OFF) by a ns init: killed by SIGINT [N8]",
        "reboot_pid_ns() kernel/pid_namespace.c",
        "reboot-power-off",
    ),
    probe(
        "R6.6",
        "inside: kill(1, TERM|KILL) = 0, no effect; handler runs [N5]",
        "sig_task_ignored() kernel/signal.c",
        "init-shield-inside",
    ),
    probe(
        "R6.6",
        "outside: TERM, INT, HUP dropped; SIGKILL kills [N5]",
        "send_signal_locked() kernel/signal.c",
        "init-shield-outside",
    ),
    scenario(
        "R6.6",
        "PID 1's shield from the parent namespace, STOP and CONT",
        "sig_task_ignored() kernel/signal.c",
        "init-shield.tree",
        Mutation::InitUnshielded,
    ),
    scenario(
        "R6.6",
        "a nested namespace init's shield",
        "sig_task_ignored() kernel/signal.c",
        "ns-init-shield.tree",
        Mutation::InitUnshielded,
    ),
    Rule {
        by_version: &[
            builds(
                "Debian builds 5.10 - 7.3.4",
                "killed",
                "the other thread takes the signal and starts a group exit, as mainline reads since 4.15",
            ),
            builds("6.18.44-fc-v1252", "survives", "get_signal() drops the signal the other thread dequeues"),
        ],
        ..probe(
            "R6.6g",
            "2-thread ns init, leader alone blocks: killed or survives [N5c]",
            "complete_signal() kernel/signal.c",
            "mt-init-leader-blocks",
        )
    },
    probe(
        "R6.7",
        "clone(CLONE_PARENT) from a namespace init: EINVAL [T6]",
        "copy_process() kernel/fork.c",
        "init-clone-parent",
    ),
    probe(
        "R6.8",
        "kill(-1, SIGKILL) in a namespace spares init and caller [M3]",
        "kill_something_info() kernel/signal.c",
        "kill-all-spares-init",
    ),
    scenario(
        "R6.9",
        "a nested namespace dies with the outer init [N7]",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "nested-ns-dies-with-init.tree",
        Mutation::ZapSparesNestedNamespaces,
    ),
    scenario(
        "R6.10",
        "pdeath SIGTERM to an init is dropped, SIGKILL kills [N6]",
        "send_signal_locked() kernel/signal.c",
        "ns-init-pdeath.tree",
        Mutation::InitUnshielded,
    ),
    scenario(
        "R8.1",
        "CLONE_PARENT: the parent is the caller's parent",
        "copy_process() kernel/fork.c",
        "clone-parent.tree",
        Mutation::CloneParentIgnored,
    ),
    scenario(
        "R8.3",
        "a main-exited process still gets its main thread's pdeath signal",
        "forget_original_parent() kernel/exit.c",
        "main-exited-keeps-pdeath.tree",
        Mutation::MainExitClearsPdeath,
    ),
    scenario(
        "R8.4",
        "execve in a thread: the other threads' children move",
        "de_thread() fs/exec.c",
        "exec-kills-threads.tree",
        Mutation::ExecSparesThreads,
    ),
    probe(
        "R8.5",
        "fork into a namespace whose init died: ENOMEM [N4]",
        "alloc_pid() kernel/pid.c",
        "fork-into-dead-ns",
    ),
    Rule {
        since: Some(((6, 9), "POLLHUP on a reaped process's pidfd (pidfs)")),
        by_version: &[
            versions(Some((5, 3)), Some((6, 9)), Verdict::Skipped, "a reaped process's pidfd polls POLLIN only"),
            versions(Some((6, 9)), None, Verdict::Pass, "POLLIN for a zombie, POLLIN|POLLHUP once reaped"),
        ],
        ..probe("R9.1", "a reaped process's pidfd polls POLLHUP", "pidfd_poll() fs/pidfs.c", "pidfd-hup-after-reap")
    },
    Rule {
        since: Some(((5, 3), "pidfd polling (b191d6491be6)")),
        by_version: &[
            versions(None, Some((5, 3)), Verdict::Skipped, "no pidfd polling"),
            versions(Some((5, 3)), None, Verdict::Pass, "every child has its new parent at readiness"),
        ],
        ..probe(
            "R9.2",
            "a pidfd is readable only once every child has moved [exp_pidfd]",
            "exit_notify() kernel/exit.c",
            "pidfd-readiness",
        )
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges_read_as_they_are_written() {
        let r = Kernels::Versions { from: Some((5, 3)), until: Some((6, 9)) };
        assert_eq!(r.to_string(), ">= 5.3, < 6.9");
        assert!(!r.contains((5, 2)) && r.contains((5, 3)) && r.contains((6, 8)) && !r.contains((6, 9)));
        assert_eq!(Kernels::Versions { from: None, until: Some((6, 13)) }.to_string(), "< 6.13");
        assert!(!Kernels::Builds("mainline builds").contains((6, 18)));
    }

    /// A row skipped before its `since` says so in its expectations, and
    /// its version ranges do not overlap: a matrix finds at most one
    /// expectation for any version.
    #[test]
    fn version_dependent_rows_cover_their_since_and_do_not_overlap() {
        for rule in RULES {
            if let Some((since, _)) = rule.since {
                let before = rule.by_version.iter().find(|e| e.kernels.contains((since.0, since.1.saturating_sub(1))));
                assert!(
                    matches!(before, Some(e) if e.result == Verdict::Skipped),
                    "{} {}: no skipped range before {since:?}",
                    rule.id,
                    rule.check
                );
                assert!(rule.by_version.iter().any(|e| e.kernels.contains(since) && e.result != Verdict::Skipped));
            }
            for major in 2..10 {
                for minor in 0..30 {
                    let n = rule.by_version.iter().filter(|e| e.kernels.contains((major, minor))).count();
                    assert!(n <= 1, "{} {}: {n} ranges hold {major}.{minor}", rule.id, rule.check);
                }
            }
            for e in rule.by_version {
                assert_eq!(matches!(e.kernels, Kernels::Builds(_)), e.recorded.is_some(), "{e:?}");
            }
        }
    }
}
