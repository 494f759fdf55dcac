//! The conformance table of `reparent kernel`: one row per rule of
//! kernel-rules.md, each checked on the running kernel, so that two kernels
//! can be compared row by row.
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
//! of versions should give, and a row whose feature this kernel predates is
//! skipped with the reason, never passed. The driver owns no kernel
//! knowledge beyond this catalogue, and makes no syscalls of its own.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;
use crate::sys::probe::{self, ProbeOutcome};
use crate::sys::{os, SandboxOptions};

use super::scenario_run::{self, LoadError, Verdict as RunVerdict};

/// How a row is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A probe of `sys::probe`, by name.
    Probe(&'static str),
    /// A bundled scenario file, by name in the scenarios directory.
    Scenario(&'static str),
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Probe(n) => write!(f, "probe {n}"),
            Check::Scenario(n) => write!(f, "{n}"),
        }
    }
}

/// What one range of kernel versions should give for a version-dependent
/// row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub kernels: &'static str,
    pub result: &'static str,
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
}

const fn probe(id: &'static str, what: &'static str, function: &'static str, name: &'static str) -> Rule {
    Rule { id, what, function, check: Check::Probe(name), since: None, by_version: &[] }
}

const fn scenario(id: &'static str, what: &'static str, function: &'static str, file: &'static str) -> Rule {
    Rule { id, what, function, check: Check::Scenario(file), since: None, by_version: &[] }
}

/// Every row, in the order of kernel-rules.md.
pub const RULES: &[Rule] = &[
    scenario(
        "R1.3",
        "the nearest living subreaper adopts; then the next one up",
        "find_new_reaper() kernel/exit.c",
        "nested-subreapers-nearest-wins.tree",
    ),
    scenario(
        "R1.3",
        "the walk climbs any number of non-subreapers",
        "find_new_reaper() kernel/exit.c",
        "deep-chain.tree",
    ),
    scenario(
        "R1.3c",
        "no subreaper above: the namespace's init adopts",
        "find_child_reaper() kernel/exit.c",
        "container-init-adopts.tree",
    ),
    scenario(
        "R1.4",
        "an exiting subreaper is skipped, the walk goes on up",
        "find_alive_thread() kernel/exit.c",
        "dying-subreaper-race.tree",
    ),
    scenario(
        "R1.4",
        "a dead subreaper adopts nothing",
        "find_alive_thread() kernel/exit.c",
        "zombie-subreaper-adopts-nothing.tree",
    ),
    scenario(
        "R1.5",
        "an orphan in a nested namespace goes to its init",
        "find_new_reaper() kernel/exit.c",
        "nested-ns-orphan-to-inner-init.tree",
    ),
    scenario(
        "R1.5",
        "orphans of a setns-injected process go to the inner init",
        "find_new_reaper() kernel/exit.c",
        "setns-orphans-to-inner-init.tree",
    ),
    scenario(
        "R1.5",
        "an orphaned injected process goes to its parent's reaper",
        "find_new_reaper() kernel/exit.c",
        "setns-orphan-to-outer-reaper.tree",
    ),
    scenario(
        "R1.7",
        "a thread's exit: threaded reparent, pdeath signal sent",
        "forget_original_parent() kernel/exit.c",
        "thread-exit-pdeath.tree",
    ),
    scenario(
        "R1.8",
        "unrelated processes killed at once: one outcome",
        "exit_notify() kernel/exit.c",
        "racing-leaves.tree",
    ),
    scenario(
        "R1.9",
        "a multi-threaded parent dies: children hop threads",
        "forget_original_parent() kernel/exit.c",
        "threaded-parent-killed.tree",
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
            Expectation { kernels: "< 6.13", result: "skipped: no PIDFD_GET_INFO" },
            Expectation { kernels: ">= 6.13", result: "pass: ppid is the parent, then the adopting subreaper" },
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
            Expectation {
                kernels: "3.4 - 4.10",
                result: "skipped: orphans of descendants older than the prctl skip the new subreaper",
            },
            Expectation { kernels: ">= 4.11", result: "pass: the new subreaper adopts them" },
        ],
        ..scenario(
            "R2.7",
            "a new subreaper adopts orphans of older descendants [T2]",
            "propagate_has_child_subreaper() kernel/sys.c",
            "subreaper-on-existing-tree.tree",
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
    ),
    scenario(
        "R3.3",
        "a SIG_IGN namespace init never holds a zombie",
        "do_notify_parent() kernel/signal.c",
        "init-sigchld-ignore.tree",
    ),
    scenario(
        "R3.9",
        "a dying process never reaps its zombies; they move",
        "reparent_leader() kernel/exit.c",
        "noreap-parent-dies.tree",
    ),
    probe("R4.1", "PR_SET_PDEATHSIG takes 0..64, rejects 65 with EINVAL", "prctl() kernel/sys.c", "pdeathsig-range"),
    scenario(
        "R4.3",
        "the main thread exits: its children get their pdeath signal",
        "forget_original_parent() kernel/exit.c",
        "main-exit-pdeath.tree",
    ),
    scenario(
        "R4.4",
        "the pdeath signal is sent again on every hop",
        "forget_original_parent() kernel/exit.c",
        "pdeath-every-hop.tree",
    ),
    scenario(
        "R4.6",
        "pdeath signals follow the receiver's signal rules",
        "get_signal() kernel/signal.c",
        "pdeath-kill-cascade.tree",
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
    ),
    scenario(
        "R4.7",
        "the pdeath signal is kept across execve",
        "begin_new_exec() fs/exec.c",
        "pdeath-kept-across-exec.tree",
    ),
    scenario(
        "R5.1",
        "a stopped process killed by SIGKILL is no stopped job",
        "complete_signal() kernel/signal.c",
        "killed-stopped-no-stopped-job.tree",
    ),
    scenario(
        "R5.2",
        "init's own group orphaned while init is stopped: SIGCONT resumes",
        "kill_orphaned_pgrp() kernel/exit.c",
        "init-group-orphaned.tree",
    ),
    scenario(
        "R5.2",
        "an exit orphans a stopped pgrp: SIGHUP, SIGCONT [A]",
        "kill_orphaned_pgrp() kernel/exit.c",
        "orphaned-pgrp-exit.tree",
    ),
    scenario(
        "R5.3",
        "a reparent orphans a stopped pgrp: SIGHUP, SIGCONT [D]",
        "reparent_leader() kernel/exit.c",
        "orphaned-pgrp-reparent.tree",
    ),
    scenario(
        "R5.4",
        "a same-session subreaper keeps a pgrp connected [B]",
        "will_become_orphaned_pgrp() kernel/exit.c",
        "pgrp-subreaper-connects.tree",
    ),
    scenario(
        "R5.4",
        "a same-session namespace init keeps a pgrp connected [C]",
        "will_become_orphaned_pgrp() kernel/exit.c",
        "pgrp-ns-init-connects.tree",
    ),
    scenario(
        "R5.7",
        "SIGTSTP is discarded in an orphaned pgrp [TSTP]",
        "get_signal() kernel/signal.c",
        "tstp-discarded.tree",
    ),
    scenario(
        "R5.9",
        "an orphaned pgrp with no stopped member gets nothing [E]",
        "has_stopped_jobs() kernel/exit.c",
        "pgrp-no-stopped.tree",
    ),
    scenario(
        "R6.2",
        "after init's main thread exits, a live thread adopts [N2]",
        "find_child_reaper() kernel/exit.c",
        "ns-init-main-exited-adopts.tree",
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
    ),
    scenario(
        "R6.3",
        "the namespace's init exiting empties the namespace",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "init-exits.tree",
    ),
    scenario(
        "R6.3",
        "a namespace's death can orphan a process group outside it",
        "kill_orphaned_pgrp() kernel/exit.c",
        "zap-orphans-group.tree",
    ),
    scenario(
        "R6.4",
        "an unreaped injected zombie holds the dying init [N3]",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "ns-init-exiting-injected-zombie.tree",
    ),
    scenario(
        "R6.4",
        "a nested dying init waits, and the outer init waits for it",
        "zap_pid_ns_processes() kernel/pid_namespace.c",
        "nested-ns-exiting-chain.tree",
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
    ),
    scenario("R6.6", "a nested namespace init's shield", "sig_task_ignored() kernel/signal.c", "ns-init-shield.tree"),
    Rule {
        by_version: &[
            Expectation {
                kernels: "< 4.15",
                result: "pass: complete_signal() tests SIGNAL_UNKILLABLE, the init survives",
            },
            Expectation {
                kernels: "4.15 - 6.17",
                result: "pass expected (survives); a third-party analysis reports the init killed on 6.8, \
                         so a FAIL there is that kernel's behaviour, not the probe's",
            },
            Expectation { kernels: ">= 6.18", result: "pass: survives (observed on 6.18.44)" },
        ],
        ..probe(
            "R6.6g",
            "a 2-thread ns init survives signals its leader blocks [N5c]",
            "complete_signal() kernel/signal.c",
            "mt-init-survives",
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
    ),
    scenario(
        "R6.10",
        "pdeath SIGTERM to an init is dropped, SIGKILL kills [N6]",
        "send_signal_locked() kernel/signal.c",
        "ns-init-pdeath.tree",
    ),
    scenario(
        "R8.1",
        "CLONE_PARENT: the parent is the caller's parent",
        "copy_process() kernel/fork.c",
        "clone-parent.tree",
    ),
    scenario(
        "R8.3",
        "a main-exited process still gets its main thread's pdeath signal",
        "forget_original_parent() kernel/exit.c",
        "main-exited-keeps-pdeath.tree",
    ),
    scenario(
        "R8.4",
        "execve in a thread: the other threads' children move",
        "de_thread() fs/exec.c",
        "exec-kills-threads.tree",
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
            Expectation { kernels: "5.3 - 6.8", result: "skipped: a reaped process's pidfd polls POLLIN only" },
            Expectation { kernels: ">= 6.9", result: "pass: POLLIN for a zombie, POLLIN|POLLHUP once reaped" },
        ],
        ..probe("R9.1", "a reaped process's pidfd polls POLLHUP", "pidfd_poll() fs/pidfs.c", "pidfd-hup-after-reap")
    },
    Rule {
        since: Some(((5, 3), "pidfd polling (b191d6491be6)")),
        ..probe(
            "R9.2",
            "a pidfd is readable only once every child has moved [exp_pidfd]",
            "exit_notify() kernel/exit.c",
            "pidfd-readiness",
        )
    },
];

/// A row's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

/// What checking one row gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// What was seen.
    Pass(String),
    /// What was seen against what was expected.
    Fail(String),
    /// Why the row could not be checked here.
    Skipped(String),
    /// No sandbox can be created on this machine: nothing can be checked.
    Unavailable(String),
}

/// A checked row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub rule: &'static str,
    pub function: &'static str,
    /// `probe NAME` or the scenario file.
    pub check: String,
    pub result: Verdict,
    /// What was seen (pass), seen against expected (fail), or why not
    /// checked (skipped).
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected_by_version: Vec<Expectation>,
}

impl Row {
    /// The result column: `pass`, `FAIL (…)` or `skipped (…)`, on one line.
    pub fn result_text(&self) -> String {
        let first = self.detail.lines().next().unwrap_or("").trim();
        match self.result {
            Verdict::Pass => "pass".into(),
            Verdict::Fail => format!("FAIL ({first})"),
            Verdict::Skipped => format!("skipped ({first})"),
        }
    }
}

/// The counts of a table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub rules: usize,
    pub pass: usize,
    pub fail: usize,
    pub skipped: usize,
}

/// The whole table, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// `uname -r`.
    pub kernel: String,
    /// `X.Y`, as the version ranges are written.
    pub version: String,
    pub uid: u32,
    /// Whether the probes' sandboxes had a user namespace.
    pub userns: Option<bool>,
    pub summary: Summary,
    pub rows: Vec<Row>,
}

impl Table {
    /// 0 when nothing failed (skips are listed and counted, but are not
    /// failures), 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.summary.fail > 0)
    }

    /// `27 rules: 27 pass, 0 fail, 0 skipped`.
    pub fn summary_line(&self) -> String {
        let s = self.summary;
        format!("{} rules: {} pass, {} fail, {} skipped", s.rules, s.pass, s.fail, s.skipped)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// What follows the rows in the text output: the summary, what each
    /// probe saw, the version-dependent rows, and every failure in full
    /// (with the command that replays a failed scenario: `replay` is the
    /// command line up to the subcommand).
    pub fn footer_text(&self, scenarios_dir: &Path, replay: &str) -> String {
        let mut out = format!("{}\n", self.summary_line());
        let w = id_width();
        let probes: Vec<&Row> =
            self.rows.iter().filter(|r| r.check.starts_with("probe ") && r.result == Verdict::Pass).collect();
        if !probes.is_empty() {
            out.push_str("\nwhat the probes saw:\n");
            for r in probes {
                out.push_str(&format!("  {:<w$}  {}\n", r.id, r.detail));
            }
        }
        let versioned: Vec<&Row> = self.rows.iter().filter(|r| !r.expected_by_version.is_empty()).collect();
        if !versioned.is_empty() {
            out.push_str(&format!("\nversion-dependent rows (this kernel: {}):\n", self.version));
            for r in versioned {
                out.push_str(&format!("  {:<w$}  {}: {}\n", r.id, r.check, r.result_text()));
                for e in &r.expected_by_version {
                    out.push_str(&format!("  {:<w$}    Linux {}: {}\n", "", e.kernels, e.result));
                }
            }
        }
        let failed: Vec<&Row> = self.rows.iter().filter(|r| r.result == Verdict::Fail).collect();
        if !failed.is_empty() {
            out.push_str("\nfailures:\n");
            for r in failed {
                out.push_str(&format!("  {} {}:\n", r.id, r.check));
                for l in r.detail.lines() {
                    out.push_str(&format!("    {l}\n"));
                }
                if !r.check.starts_with("probe ") && !r.detail.starts_with("scenario file missing") {
                    out.push_str(&format!("    replay: {replay} run {}\n", scenarios_dir.join(&r.check).display()));
                }
            }
        }
        out
    }
}

/// A table read back from `reparent kernel --json`, to compare kernels.
#[derive(Clone, Debug, Deserialize)]
pub struct SavedTable {
    pub kernel: String,
    pub version: String,
    pub uid: u32,
    pub userns: Option<bool>,
    pub summary: Summary,
    pub rows: Vec<SavedRow>,
}

/// A row of a [`SavedTable`].
#[derive(Clone, Debug, Deserialize)]
pub struct SavedRow {
    pub id: String,
    pub rule: String,
    pub function: String,
    pub check: String,
    pub result: Verdict,
    pub detail: String,
    #[serde(default)]
    pub expected_by_version: Vec<SavedExpectation>,
}

/// An [`Expectation`] of a [`SavedRow`].
#[derive(Clone, Debug, Deserialize)]
pub struct SavedExpectation {
    pub kernels: String,
    pub result: String,
}

/// Reads the output of `reparent kernel --json`.
pub fn parse_json(text: &str) -> Result<SavedTable, String> {
    serde_json::from_str(text).map_err(|e| format!("not a `reparent kernel --json` table: {e}"))
}

fn id_width() -> usize {
    RULES.iter().map(|r| r.id.len()).max().unwrap_or(0)
}

/// The column header of the text output.
pub fn header_text() -> String {
    row_text_parts("ID", "RULE", "KERNEL FUNCTION", "CHECKED BY", "RESULT")
}

/// One row of the text output, in columns wide enough for every rule.
pub fn row_text(row: &Row) -> String {
    row_text_parts(row.id, row.rule, row.function, &row.check, &row.result_text())
}

fn row_text_parts(id: &str, what: &str, function: &str, check: &str, result: &str) -> String {
    let wi = id_width();
    let ww = RULES.iter().map(|r| r.what.chars().count()).max().unwrap_or(0);
    let wf = RULES.iter().map(|r| r.function.len()).max().unwrap_or(0);
    let wc = RULES.iter().map(|r| r.check.to_string().len()).max().unwrap_or(0);
    format!("{id:<wi$}  {what:<ww$}  {function:<wf$}  {check:<wc$}  {result}")
}

/// Checks every rule of `rules` with `check`, except those this kernel
/// predates, which are skipped. `progress` sees each row as it is done.
/// Stops at the first [`Outcome::Unavailable`]: without a sandbox nothing
/// can be checked, and the reason (with its fix) is returned.
pub fn evaluate(
    rules: &[Rule],
    kernel: (u32, u32),
    mut check: impl FnMut(&Rule) -> Outcome,
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::with_capacity(rules.len());
    for rule in rules {
        let outcome = match rule.since {
            Some((v, feature)) if kernel < v => {
                Outcome::Skipped(format!("needs Linux {}.{} ({feature}); this is {}.{}", v.0, v.1, kernel.0, kernel.1))
            }
            _ => check(rule),
        };
        let (result, detail) = match outcome {
            Outcome::Pass(d) => (Verdict::Pass, d),
            Outcome::Fail(d) => (Verdict::Fail, d),
            Outcome::Skipped(d) => (Verdict::Skipped, d),
            Outcome::Unavailable(why) => return Err(why),
        };
        let row = Row {
            id: rule.id,
            rule: rule.what,
            function: rule.function,
            check: rule.check.to_string(),
            result,
            detail,
            expected_by_version: rule.by_version.to_vec(),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Sums up checked rows as a table of the running kernel.
pub fn table(rows: Vec<Row>, userns: Option<bool>) -> Table {
    let count = |v: Verdict| rows.iter().filter(|r| r.result == v).count();
    let summary = Summary {
        rules: rows.len(),
        pass: count(Verdict::Pass),
        fail: count(Verdict::Fail),
        skipped: count(Verdict::Skipped),
    };
    let (major, minor) = os::kernel_version();
    Table { kernel: os::kernel_release(), version: format!("{major}.{minor}"), uid: os::uid(), userns, summary, rows }
}

/// Whether a probe sandbox can be created here: `Ok(userns)` (whether it
/// had a user namespace), or why not and how to fix it. One cheap probe,
/// so that a machine where no namespace can be made says so once, before
/// any row runs.
pub fn preflight(opts: &SandboxOptions) -> Result<Option<bool>, String> {
    let first = probe::run(opts, "init-may-be-subreaper");
    match first.outcome {
        ProbeOutcome::Unavailable(why) => Err(why),
        _ => Ok(first.userns),
    }
}

/// Checks every row of [`RULES`] on the running kernel: probes in their own
/// sandboxes, scenarios from `scenarios_dir` through the model (`cfg`) and
/// the kernel. `userns` is what [`preflight`] found. Should a sandbox
/// become impossible midway, the error says why.
pub fn run(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    scenarios_dir: &Path,
    userns: Option<bool>,
    progress: impl FnMut(&Row),
) -> Result<Table, String> {
    let mut userns = userns;
    let rows = evaluate(
        RULES,
        os::kernel_version(),
        |rule| match rule.check {
            Check::Probe(name) => {
                let report = probe::run(opts, name);
                userns = userns.or(report.userns);
                match report.outcome {
                    ProbeOutcome::Pass(d) => Outcome::Pass(d),
                    ProbeOutcome::Fail(d) => Outcome::Fail(d),
                    ProbeOutcome::Skipped(d) => Outcome::Skipped(d),
                    ProbeOutcome::Unavailable(d) => Outcome::Unavailable(d),
                }
            }
            Check::Scenario(file) => scenario_outcome(opts, cfg, scenarios_dir, file),
        },
        progress,
    )?;
    Ok(table(rows, userns))
}

/// Runs one bundled scenario as `reparent run` does.
fn scenario_outcome(opts: &SandboxOptions, cfg: ModelConfig, dir: &Path, file: &str) -> Outcome {
    let path = dir.join(file);
    let s = match scenario_run::load(&path, cfg) {
        Ok(s) => s,
        Err(LoadError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Fail(format!("scenario file missing: {}", path.display()));
        }
        Err(e) => return Outcome::Fail(format!("the scenario does not load: {e}")),
    };
    let report = scenario_run::run(opts, cfg, &s, |_| {});
    match report.verdict {
        RunVerdict::Passed => {
            let expects = s.steps.iter().filter(|e| e.expect.is_some()).count();
            Outcome::Pass(format!(
                "{} step(s) checked against the model and {expects} expect block(s)",
                report.steps.len()
            ))
        }
        RunVerdict::Skipped(why) => Outcome::Skipped(why),
        RunVerdict::Failed(e) => Outcome::Fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(kernel: (u32, u32), check: impl FnMut(&Rule) -> Outcome) -> Table {
        table(evaluate(RULES, kernel, check, |_| {}).expect("no Unavailable"), Some(true))
    }

    #[test]
    fn a_failing_probe_row_is_a_fail_and_exit_status_1() {
        let t = rows((6, 18), |r| match r.check {
            Check::Probe("subreaper-readback") => {
                Outcome::Fail("saw prctl returned 0, read 0; expected 0 and 1".into())
            }
            _ => Outcome::Pass("fine".into()),
        });
        let row = t.rows.iter().find(|r| r.check == "probe subreaper-readback").unwrap();
        assert_eq!(row.result, Verdict::Fail);
        assert_eq!(row.result_text(), "FAIL (saw prctl returned 0, read 0; expected 0 and 1)");
        assert!(row_text(row).starts_with("R2.1"), "{}", row_text(row));
        assert_eq!(t.summary.fail, 1);
        assert_eq!(t.exit_status(), 1);
        let footer = t.footer_text(Path::new("scenarios"), "reparent");
        assert!(footer.contains("fail"), "{footer}");
        assert!(footer.contains("failures:\n  R2.1 probe subreaper-readback:\n"), "{footer}");
    }

    #[test]
    fn a_failing_scenario_row_is_a_fail_with_its_replay_command() {
        let t = rows((6, 18), |r| match r.check {
            Check::Scenario("zombie-renotified.tree") => Outcome::Fail("mismatch after step 1\n  trees".into()),
            _ => Outcome::Pass("fine".into()),
        });
        assert_eq!(t.exit_status(), 1);
        let row = t.rows.iter().find(|r| r.check == "zombie-renotified.tree").unwrap();
        assert_eq!(row.result_text(), "FAIL (mismatch after step 1)");
        let footer = t.footer_text(Path::new("scenarios"), "reparent");
        assert!(footer.contains("    replay: reparent run scenarios/zombie-renotified.tree\n"), "{footer}");
        assert!(footer.contains("      trees\n"), "the whole failure is shown: {footer}");
    }

    #[test]
    fn all_pass_is_exit_status_0_and_skips_are_counted_not_passed() {
        let t = rows((6, 18), |r| match r.check {
            Check::Probe("reboot-restart") => Outcome::Skipped("no CAP_SYS_BOOT".into()),
            _ => Outcome::Pass("fine".into()),
        });
        assert_eq!(t.exit_status(), 0);
        assert_eq!(t.summary, Summary { rules: RULES.len(), pass: RULES.len() - 1, fail: 0, skipped: 1 });
        let row = t.rows.iter().find(|r| r.check == "probe reboot-restart").unwrap();
        assert_eq!(row.result_text(), "skipped (no CAP_SYS_BOOT)");
        assert!(t.summary_line().ends_with(" pass, 0 fail, 1 skipped"), "{}", t.summary_line());
    }

    #[test]
    fn a_kernel_too_old_for_a_feature_skips_its_row_without_checking_it() {
        let mut checked = Vec::new();
        let t = rows((6, 1), |r| {
            checked.push(r.check);
            Outcome::Pass("fine".into())
        });
        assert!(!checked.contains(&Check::Probe("pidfd-hup-after-reap")));
        assert!(!checked.contains(&Check::Probe("pidfd-info-ppid")));
        let row = t.rows.iter().find(|r| r.check == "probe pidfd-hup-after-reap").unwrap();
        assert_eq!(row.result, Verdict::Skipped);
        assert!(row.detail.contains("needs Linux 6.9") && row.detail.contains("this is 6.1"), "{}", row.detail);
        assert_eq!(row.expected_by_version.len(), 2);
        assert_eq!(t.exit_status(), 0);
    }

    #[test]
    fn no_sandbox_stops_the_table_with_the_reason() {
        let r = evaluate(RULES, (6, 18), |_| Outcome::Unavailable("unshare failed — enable them".into()), |_| {});
        assert_eq!(r.unwrap_err(), "unshare failed — enable them");
    }

    #[test]
    fn every_probe_has_a_row_and_every_row_a_known_probe() {
        let rows: Vec<&str> =
            RULES.iter().filter_map(|r| if let Check::Probe(n) = r.check { Some(n) } else { None }).collect();
        for name in probe::names() {
            assert!(rows.contains(&name), "probe {name} has no row");
        }
        for name in &rows {
            assert!(probe::names().any(|n| n == *name), "row names unknown probe {name}");
        }
        assert!(RULES.len() >= 25);
    }

    #[test]
    fn json_has_the_rows_and_version_ranges() {
        let t = rows((6, 18), |_| Outcome::Pass("fine".into()));
        let saved = parse_json(&t.to_json()).unwrap();
        assert_eq!(saved.rows.len(), RULES.len());
        let mt = saved.rows.iter().find(|r| r.check == "probe mt-init-survives").unwrap();
        assert_eq!(mt.result, Verdict::Pass);
        assert_eq!(mt.expected_by_version.len(), 3);
        assert_eq!(mt.expected_by_version[2].kernels, ">= 6.18");
        assert_eq!(saved.summary, t.summary);
        assert!(parse_json("{}").is_err());
    }
}
