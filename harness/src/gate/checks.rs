//! The checks of `shared/init-gate.md` §3 and their judgement: pure
//! functions from what the trials saw ([`TrialResult`]) to a verdict with
//! its evidence. Nothing here touches a process; the unit tests feed them
//! made-up observations, violating ones included.
//!
//! The judgement never charges the init with what the kernel does: an
//! orphan's adoption is the kernel's (R1.3), so R1 grades only the reap;
//! a signal an init leaves at `SIG_DFL` is dropped by the kernel (R6.6),
//! and the workload reports READY only after it blocked what it records,
//! so a missing signal is the init's; X5 (the namespace is empty when the
//! init's wait returns) is the kernel's or the gate's, and says so.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use super::wire::{Got, Mode, Ready, Status, TrialResult};
use crate::scenario::Signal;

/// Whether a check decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A bug when it fails.
    Hard,
    /// Describes the init; may still fail a rule it must keep (X3:
    /// non-zero), and may be pinned with `--expect`.
    Policy,
}

/// A check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    Pass,
    Fail {
        seen: String,
        expected: String,
    },
    /// A policy check's value, e.g. `immediate`, `own-group`, `127/126`.
    Value {
        value: String,
    },
    /// The gate never got to see it (the init exited, hung, or never
    /// started its child before).
    NotReached {
        why: String,
    },
    /// Not applicable here, with the reason.
    Skipped {
        why: String,
    },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Pass => write!(f, "pass"),
            Verdict::Fail { seen, expected } => write!(f, "FAIL: {seen} vs expected {expected}"),
            Verdict::Value { value } => write!(f, "{value}"),
            Verdict::NotReached { why } => write!(f, "not reached: {why}"),
            Verdict::Skipped { why } => write!(f, "skipped: {why}"),
        }
    }
}

/// One check of the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct CheckDef {
    pub id: &'static str,
    pub kind: Kind,
    pub title: &'static str,
}

const fn def(id: &'static str, kind: Kind, title: &'static str) -> CheckDef {
    CheckDef { id, kind, title }
}

/// Every check, in the order of the spec.
pub const CATALOGUE: &[CheckDef] = &[
    def("R1", Kind::Hard, "an orphan of the main child is adopted by the init and reaped"),
    def("R2", Kind::Hard, "a burst of orphans exiting at once are all reaped"),
    def("R3", Kind::Hard, "main child and an orphan exit together: the init exits with the main child's status"),
    def("R4", Kind::Policy, "reap latency: prompt (< 100 ms), periodic, never"),
    def("R5", Kind::Hard, "the main child stopped and continued: the init neither exits early nor loses the exit"),
    def("R6", Kind::Hard, "a child the init's process had before its exec is not taken for the main child"),
    def("R7", Kind::Hard, "started with SIGCHLD ignored, the init still exits with the main child's status"),
    def("S1", Kind::Policy, "not PID 1: orphans go to the init (its subreaper option) and are reaped"),
    def("S2", Kind::Policy, "not PID 1: where orphans go without a subreaper, and whether the init warns"),
    def("S3", Kind::Policy, "not PID 1: does the init run at all"),
    def("X1", Kind::Hard, "main child exits k: the init exits k"),
    def("X2", Kind::Hard, "main child killed by signal s: the init exits 128+s"),
    def("X3", Kind::Policy, "the command cannot be executed (missing / not executable): non-zero status"),
    def("X4", Kind::Hard, "the init SIGKILLed from outside: the gate sees CLD_KILLED"),
    def("X5", Kind::Hard, "when the init's wait returns, every process of its tree is reaped (kernel/gate invariant)"),
    def("F1", Kind::Hard, "signals from outside reach the main child exactly once, sent by the init"),
    def("F2", Kind::Policy, "signals sent to the init from inside (kill(1, S)) reach the main child"),
    def("F3", Kind::Policy, "forwarding to the main child's process group (a bystander orphan in it)"),
    def("F4", Kind::Policy, "signals not forwarded (of those sent)"),
    def("F5", Kind::Policy, "escalation: SIGKILL to a child that ignores SIGTERM"),
    def("F6", Kind::Policy, "startup window: signals sent before READY"),
    def("T1", Kind::Policy, "the main child exits while a descendant lives: the init exits at once, waits, or never"),
    def("T2", Kind::Policy, "survivors get SIGTERM from the init before the kernel's SIGKILL"),
    def("T3", Kind::Policy, "not PID 1: which processes are alive after the init exited"),
    def("P1", Kind::Policy, "the main child's process group and session"),
    def("P2", Kind::Policy, "under a pseudo-terminal: the main child is the foreground group"),
    def("H1", Kind::Policy, "the main child's signal mask and ignored signals"),
    def("H2", Kind::Policy, "the main child's open descriptors besides the gate's channel"),
    def("H3", Kind::Policy, "the init's working directory"),
    def("H4", Kind::Policy, "the init's CPU time and wake-ups over the main trial"),
    def(
        "RT",
        Kind::Hard,
        "random trees under the init (section 4): orphans land where the model says, every adopted zombie is reaped",
    ),
];

/// The catalogue entry of `id`.
pub fn def_of(id: &str) -> Option<&'static CheckDef> {
    CATALOGUE.iter().find(|d| d.id == id)
}

/// A judged check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub evidence: String,
    /// The value pinned with `--expect`, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
}

impl Check {
    /// Whether this check makes the gate fail: a hard check that did not
    /// pass (skipped only as not applicable to the mode), any `FAIL`, or a
    /// pinned value that does not hold — except a *known failure*: a `FAIL`
    /// pinned as `FAIL` (see [`Check::known_failure`]).
    pub fn fails(&self) -> bool {
        if self.known_failure() {
            return false;
        }
        let bad = match &self.verdict {
            Verdict::Fail { .. } => true,
            Verdict::NotReached { .. } => self.kind == Kind::Hard,
            Verdict::Pass | Verdict::Value { .. } | Verdict::Skipped { .. } => false,
        };
        bad || !self.pin_holds()
    }

    /// A `FAIL` pinned with `--expect` as `ID FAIL`: a finding about the
    /// init that its CI has recorded, so the gate fails only when it
    /// changes — when the check passes (the pin no longer holds) or when
    /// another check fails. Still a failure in the table ("known") and a
    /// JUnit skip, never a pass.
    pub fn known_failure(&self) -> bool {
        matches!(self.verdict, Verdict::Fail { .. }) && self.pinned.as_deref() == Some("FAIL")
    }

    /// The value a pin is compared with: the policy value, or `pass`.
    pub fn value(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "pass".into(),
            Verdict::Value { value } => value.clone(),
            Verdict::Fail { .. } => "FAIL".into(),
            Verdict::NotReached { .. } => "not-reached".into(),
            Verdict::Skipped { .. } => "skipped".into(),
        }
    }

    pub fn pin_holds(&self) -> bool {
        self.pinned.as_ref().is_none_or(|p| *p == self.value())
    }
}

/// The observations the checks are judged from: one trial result (or why
/// it has none) per trial the gate ran.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    pub mode: Option<Mode>,
    /// The PID 1 (or subreaper) mode's main trial.
    pub main: Option<Result<TrialResult, String>>,
    pub exits: Vec<(i32, Result<TrialResult, String>)>,
    pub deaths: Vec<(i32, Result<TrialResult, String>)>,
    /// (missing file, not executable).
    pub bad_command: Vec<(&'static str, Result<TrialResult, String>)>,
    /// (code, order, result).
    pub together: Vec<(i32, u8, Result<TrialResult, String>)>,
    pub teardown: Option<Result<TrialResult, String>>,
    pub kill: Option<Result<TrialResult, String>>,
    pub escalation: Option<Result<TrialResult, String>>,
    /// F6: the fresh starts, the signal and its witness, or why none ran.
    pub startup: Vec<Result<TrialResult, String>>,
    pub startup_sigs: Option<(i32, Option<i32>)>,
    pub startup_not_run: Option<String>,
    /// P2: the run on a pseudo-terminal.
    pub terminal: Option<Result<TrialResult, String>>,
    /// T2: the run whose survivor SIGTERM kills.
    pub teardown_term: Option<Result<TrialResult, String>>,
    pub prechild: Option<(i32, Result<TrialResult, String>)>,
    pub sigchld_ignored: Option<(i32, Result<TrialResult, String>)>,
    /// The main trial's exit code and burst size, and the signals the init
    /// must forward (F1).
    pub main_code: i32,
    pub forward_hard: Vec<i32>,
    pub patience_ms: u64,
    /// Why trials were not run (the main trial never got to READY).
    pub not_run: Option<String>,
    /// The random trees under the init (RT), or why they could not run;
    /// `None` when none were asked for (`--cases 0`).
    pub random: Option<Result<RandomTrees, String>>,
}

/// What the random trees under the init (init-gate.md section 4, check RT)
/// came to: plain data from `driver::under_init::random_trees`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomTrees {
    /// Cases run (a run stops at its first failure) and passed.
    pub cases: u32,
    pub passed: u32,
    /// Steps checked, shrinking included.
    pub steps: usize,
    pub seed: u64,
    /// The init's policy the model took, and how it was observed.
    pub policy: String,
    /// The reap deadline every adopted zombie had (the gate's patience).
    pub reap_deadline_ms: u64,
    pub failure: Option<RandomTreesFailure>,
}

/// The first failing random case, shrunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomTreesFailure {
    /// Its number in case order (0-based).
    pub case: u32,
    pub shrunk: bool,
    /// The explanation: a mismatch with the model, or the zombies the
    /// init left past the reap deadline.
    pub message: String,
    /// Where the `.tree` file was written, or why it could not be.
    pub file: Result<String, String>,
    /// The exact command that fails again.
    pub replay: Option<String>,
}

impl RandomTreesFailure {
    /// Whether the failure is the init's for certain: it left a zombie
    /// it adopted unreaped past the deadline (else the kernel, the model
    /// and the init disagree about where a process went).
    pub fn not_reaped(&self) -> bool {
        self.message.contains("the init under test did not reap")
    }
}

fn names(sigs: &[i32]) -> String {
    if sigs.is_empty() {
        return "none".into();
    }
    sigs.iter().map(|s| Signal(*s).name().trim_start_matches("SIG").to_string()).collect::<Vec<_>>().join(",")
}

/// How a trial ended, in words.
fn ending(r: &TrialResult) -> String {
    let mut s = match (&r.init_status, r.init_killed_by_gate) {
        (Some(st), true) => format!("the init was killed by the gate ({st})"),
        (Some(st), false) => format!("the init ended: {st}"),
        (None, _) => "the init's status is unknown".into(),
    };
    if let Some(w) = &r.timed_out {
        s = format!("timed out waiting for {w}; {s}");
    }
    if let Some(step) = &r.init_exited_during {
        s = format!("{s} during `{step}`");
    }
    if let Some(e) = &r.error {
        s = format!("{s}; trial error: {e}");
    }
    let out = r.output.trim();
    if !out.is_empty() {
        let first: String = out.lines().next().unwrap_or("").chars().take(120).collect();
        s = format!("{s}; it said: {}", crate::scenario::escape(&first).into_owned());
    }
    s
}

/// The trial's result if the workload got to READY, else why not.
fn reached(r: &Result<TrialResult, String>) -> Result<&TrialResult, String> {
    match r {
        Err(e) => Err(format!("the trial broke: {e}")),
        Ok(r) if r.exec_error.is_some() => {
            Err(format!("the init could not be executed: {}", r.exec_error.as_deref().unwrap_or("")))
        }
        Ok(r) if r.ready.is_none() => Err(format!("the main child never reported READY: {}", ending(r))),
        Ok(r) => Ok(r),
    }
}

fn status_text(s: Option<Status>) -> String {
    s.map_or("no status".into(), |s| s.to_string())
}

/// Every check, judged.
pub fn judge(o: &Observations) -> Vec<Check> {
    CATALOGUE
        .iter()
        .map(|d| {
            let (verdict, evidence) = judge_one(d.id, o);
            Check { id: d.id.into(), kind: d.kind, title: d.title.into(), verdict, evidence, pinned: None }
        })
        .collect()
}

fn pass(e: impl Into<String>) -> (Verdict, String) {
    (Verdict::Pass, e.into())
}
fn fail(seen: impl Into<String>, expected: impl Into<String>, e: impl Into<String>) -> (Verdict, String) {
    (Verdict::Fail { seen: seen.into(), expected: expected.into() }, e.into())
}
fn value(v: impl Into<String>, e: impl Into<String>) -> (Verdict, String) {
    (Verdict::Value { value: v.into() }, e.into())
}
fn not_reached(why: impl Into<String>) -> (Verdict, String) {
    (Verdict::NotReached { why: why.into() }, String::new())
}
fn skipped(why: impl Into<String>) -> (Verdict, String) {
    (Verdict::Skipped { why: why.into() }, String::new())
}

fn judge_one(id: &str, o: &Observations) -> (Verdict, String) {
    let no_run = || not_reached(o.not_run.clone().unwrap_or_else(|| "no run".into()));
    let pid1 = o.mode != Some(Mode::Subreaper);
    let only_pid1 = || skipped("PID 1 mode only (this run is --subreaper)");
    let only_sub = || skipped("subreaper mode only (run with --subreaper)");
    let main = || match &o.main {
        None => Err("no main trial was run".to_string()),
        Some(r) => reached(r),
    };
    match id {
        "R1" | "R2" if !pid1 => only_pid1(),
        "R1" | "R2" => {
            let k = if id == "R1" { 0 } else { 1 };
            let r = match main() {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            let Some(round) = r.reaping.get(k) else {
                return not_reached(format!("the main trial stopped first: {}", ending(r)));
            };
            let max = round.latencies_ms.iter().cloned().fold(0.0, f64::max);
            if round.reaped == round.orphans {
                pass(format!(
                    "{}/{} orphans adopted by {} and reaped, slowest {max:.2} ms after its exit",
                    round.reaped,
                    round.orphans,
                    round.adopted_by.first().map_or("?", String::as_str)
                ))
            } else {
                let z: Vec<String> = round.zombies.iter().take(8).map(|p| p.to_string()).collect();
                fail(
                    format!(
                        "{} of {} orphans still zombies {} ms after they exited",
                        round.zombies.len(),
                        round.orphans,
                        o.patience_ms
                    ),
                    "all reaped",
                    format!(
                        "zombie pids (in the init's namespace): {}{}",
                        z.join(" "),
                        if round.zombies.len() > 8 { " …" } else { "" }
                    ),
                )
            }
        }
        "R3" if !pid1 => only_pid1(),
        "R3" => {
            if o.together.is_empty() {
                return no_run();
            }
            let mut bad = Vec::new();
            let mut not = Vec::new();
            for (code, order, r) in &o.together {
                let order_name =
                    ["orphan first", "main child first", "orphan on the main child's death"][*order as usize % 3];
                match reached(r) {
                    Err(e) => not.push(format!("{order_name}: {e}")),
                    Ok(r) if r.init_status == Some(Status::Exited(*code)) => {}
                    Ok(r) => bad.push(format!(
                        "{order_name}: {} (expected exit {code}); {}",
                        status_text(r.init_status),
                        ending(r)
                    )),
                }
            }
            let n = o.together.len();
            if !bad.is_empty() {
                fail(format!("{} of {n} runs wrong", bad.len()), "the main child's status every time", bad.join("; "))
            } else if !not.is_empty() {
                not_reached(not.join("; "))
            } else {
                pass(format!("{n}/{n} runs exited with the main child's status (orders: orphan first, main first, orphan on main's death)"))
            }
        }
        "R4" if !pid1 => only_pid1(),
        "R4" => {
            let r = match main() {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            if r.reaping.is_empty() {
                return not_reached(format!("no orphan was released: {}", ending(r)));
            }
            let mut lat: Vec<f64> = r.reaping.iter().flat_map(|x| x.latencies_ms.iter().cloned()).collect();
            let orphans: usize = r.reaping.iter().map(|x| x.orphans).sum();
            lat.sort_by(|a, b| a.total_cmp(b));
            if lat.is_empty() {
                return value(
                    "never",
                    format!("none of {orphans} orphans reaped within {} ms of its exit", o.patience_ms),
                );
            }
            let p50 = lat[lat.len() / 2];
            let max = lat[lat.len() - 1];
            let ev = format!(
                "{} of {orphans} reaped; p50 {p50:.2} ms, max {max:.2} ms (bound for never: {} ms)",
                lat.len(),
                o.patience_ms
            );
            if lat.len() < orphans {
                value("never", ev)
            } else if max < 100.0 {
                value("prompt", ev)
            } else {
                value("periodic", ev)
            }
        }
        "R5" if !pid1 => only_pid1(),
        "R5" => {
            let r = match main() {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            match r.alive_after_stop {
                None => not_reached(format!("the main trial stopped first: {}", ending(r))),
                Some(false) => {
                    fail("the init exited when its main child stopped or continued", "it waits on", ending(r))
                }
                Some(true) if r.init_status == Some(Status::Exited(o.main_code)) => pass(format!(
                    "alive while the main child was stopped and after SIGCONT; then exit {} came through",
                    o.main_code
                )),
                Some(true) => fail(
                    format!("the later exit came through as {}", status_text(r.init_status)),
                    format!("exit {}", o.main_code),
                    ending(r),
                ),
            }
        }
        "R6" if !pid1 => only_pid1(),
        "R6" => {
            let Some((code, r)) = &o.prechild else { return no_run() };
            let r = match reached(r) {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            let reaped = match r.prechild_reaped {
                Some(true) => "reaped by the init",
                Some(false) => "left a zombie",
                None => "?",
            };
            match (r.alive_after_prechild, r.init_status) {
                (Some(true), Some(Status::Exited(c))) if c == *code => pass(format!(
                    "the pre-exec child exited 7 ({reaped}); the init lived on and exited {code} with its main child"
                )),
                (Some(false), st) => fail(
                    format!("the init ended ({}) when its pre-exec child exited 7", status_text(st)),
                    format!("wait for the main child (exit {code})"),
                    ending(r),
                ),
                (_, st) => fail(status_text(st), format!("exit {code}"), ending(r)),
            }
        }
        "R7" if !pid1 => only_pid1(),
        "R7" => {
            let Some((code, r)) = &o.sigchld_ignored else { return no_run() };
            let r = match reached(r) {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            match r.init_status {
                Some(Status::Exited(c)) if c == *code && !r.init_killed_by_gate => {
                    pass(format!("started with SIGCHLD ignored, exited {code} with its main child"))
                }
                _ if r.init_killed_by_gate => {
                    fail("the init hung after its main child exited", format!("exit {code}"), ending(r))
                }
                st => fail(status_text(st), format!("exit {code}"), ending(r)),
            }
        }
        "S1" | "S2" | "S3" if pid1 => only_sub(),
        "S1" | "S2" => {
            let r = match main() {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            let Some(round) = r.reaping.first() else {
                return not_reached(format!("the main trial stopped first: {}", ending(r)));
            };
            let to = round.adopted_by.first().cloned().unwrap_or_default();
            let warned = ["subreaper", "PID 1", "pid 1", "zombie"].iter().any(|w| r.output.contains(w));
            let said = r.output.trim().lines().next().unwrap_or("").chars().take(100).collect::<String>();
            let said = crate::scenario::escape(&said).into_owned();
            if id == "S1" {
                match to.as_str() {
                    "init" if round.reaped == round.orphans => value(
                        "reaps",
                        format!(
                            "the orphan went to the init (a subreaper) and was reaped: {}/{}",
                            round.reaped, round.orphans
                        ),
                    ),
                    "init" => fail(
                        "the orphan went to the init and stayed a zombie",
                        "reaped",
                        format!("zombies {:?}", round.zombies),
                    ),
                    _ => value(
                        "no-subreaper",
                        format!("the orphan went to the {to}, not the init (no subreaper option given?)"),
                    ),
                }
            } else {
                value(
                    if to == "gate" { "to-gate" } else { "to-init" },
                    format!(
                        "orphans went to the {to}; {}",
                        if warned { format!("the init warned: {said}") } else { "no warning".into() }
                    ),
                )
            }
        }
        "S3" => match &o.main {
            None => not_reached("no main trial"),
            Some(Err(e)) => not_reached(e.clone()),
            Some(Ok(r)) if r.ready.is_some() => value("runs", "runs as an ordinary child and starts its command"),
            Some(Ok(r)) => value("refuses", ending(r)),
        },
        "X1" | "X2" => {
            let runs = if id == "X1" { &o.exits } else { &o.deaths };
            if runs.is_empty() {
                return no_run();
            }
            let mut good = Vec::new();
            let mut bad = Vec::new();
            let mut not = Vec::new();
            for (k, r) in runs {
                let (what, want) = if id == "X1" {
                    (format!("exit {k}"), Status::Exited(*k))
                } else {
                    (Signal(*k).name().to_string(), Status::Exited(128 + k))
                };
                match reached(r) {
                    Err(e) => not.push(format!("{what}: {e}")),
                    Ok(r) if r.init_status == Some(want) && !r.init_killed_by_gate => {
                        good.push(format!("{what}→{}", status_text(r.init_status)))
                    }
                    Ok(r) => bad.push(format!(
                        "{what}→{}",
                        if r.init_killed_by_gate {
                            format!("hang ({})", ending(r))
                        } else {
                            status_text(r.init_status)
                        }
                    )),
                }
            }
            let expected = if id == "X1" { "exit k" } else { "exit 128+s" };
            if !bad.is_empty() {
                fail(bad.join(", "), expected, format!("right: {}", good.join(", ")))
            } else if !not.is_empty() {
                not_reached(not.join("; "))
            } else {
                pass(good.join(", "))
            }
        }
        "X3" => {
            if o.bad_command.is_empty() {
                return no_run();
            }
            let mut codes = Vec::new();
            let mut ev = Vec::new();
            let mut zero = false;
            for (what, r) in &o.bad_command {
                match r {
                    Err(e) => return not_reached(format!("{what}: the trial broke: {e}")),
                    Ok(r) => {
                        match r.init_status {
                            Some(Status::Exited(0)) => zero = true,
                            None => return not_reached(format!("{what}: {}", ending(r))),
                            _ => {}
                        }
                        codes.push(match r.init_status {
                            Some(Status::Exited(c)) => c.to_string(),
                            Some(Status::Killed(s)) => Signal(s).name(),
                            None => "?".into(),
                        });
                        ev.push(format!("{what}: {}", ending(r)));
                    }
                }
            }
            if zero {
                fail(codes.join("/"), "non-zero for both", ev.join("; "))
            } else {
                value(codes.join("/"), ev.join("; "))
            }
        }
        "X5" if !pid1 => {
            skipped("PID 1 mode only: an init that is no namespace's PID 1 takes no tree with it (see T3)")
        }
        "X4" | "X5" => {
            let Some(r) = &o.kill else { return no_run() };
            let r = match reached(r) {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            if r.init_exited_during.is_some() || r.timed_out.is_some() {
                return not_reached(ending(r));
            }
            if id == "X4" {
                match r.init_status {
                    Some(Status::Killed(9)) => pass("waitid(P_PIDFD): CLD_KILLED, SIGKILL"),
                    st => fail(status_text(st), "killed by SIGKILL", ending(r)),
                }
            } else if r.unreaped_at_init_exit.is_empty() {
                pass("the main child and 2 orphans were all reaped when the init's wait returned")
            } else {
                fail(
                    format!("still unreaped: {}", r.unreaped_at_init_exit.join(", ")),
                    "none (R6.3: the namespace is empty when its init is reaped)",
                    "this is the kernel's or the gate's failure, not the init's",
                )
            }
        }
        "F1" | "F2" | "F3" | "F4" => judge_forwarding(id, o),
        "F5" => judge_escalation(o),
        "F6" => judge_startup(o),
        "T1" | "T2" | "T3" => {
            if id == "T3" && pid1 {
                return only_sub();
            }
            let Some(r) = &o.teardown else { return no_run() };
            let r = match reached(r) {
                Ok(r) => r,
                Err(e) => return not_reached(e),
            };
            let Some(td) = &r.teardown else { return not_reached(ending(r)) };
            let ready = r.ready.clone().unwrap_or_default();
            match id {
                "T1" => {
                    if let Some(t) = td.exit_while_survivors_ms {
                        value(
                            "immediate",
                            format!(
                                "exited ({}) {t:.2} ms after its main child, a descendant still alive",
                                status_text(r.init_status)
                            ),
                        )
                    } else if td.exit_after_release {
                        value(
                            "waits",
                            format!(
                                "still running {} ms after its main child; exited once the last descendant did",
                                o.patience_ms
                            ),
                        )
                    } else {
                        value(
                            "never",
                            format!("still running after its main child and every descendant exited; {}", ending(r)),
                        )
                    }
                }
                "T2" => {
                    let term: Vec<&Got> = r
                        .signals
                        .iter()
                        .filter(|g| g.by != ready.pid && g.from == ready.ppid && g.signo == libc::SIGTERM)
                        .collect();
                    if let Some(v) = judge_survivor(o) {
                        return v;
                    }
                    match term.first() {
                        Some(g) => value(
                            "sigterm",
                            format!("a survivor got SIGTERM from the init at {:.2} ms into the run", g.at_ms),
                        ),
                        None if pid1 => value(
                            "no",
                            "no signal from the init to survivors seen: the kernel's SIGKILL ends them (racy: \
                             without PIDFD_INFO_EXIT, a SIGTERM the survivor had no time to report is not seen)",
                        ),
                        None => value("no", "no signal from the init to survivors"),
                    }
                }
                _ => value(
                    td.survivors_after_exit.to_string(),
                    format!(
                        "{} survivor(s) alive after the init exited (now the gate's children, killed by it)",
                        td.survivors_after_exit
                    ),
                ),
            }
        }
        "P1" => match main() {
            Err(e) => not_reached(e),
            Ok(r) => {
                let w = r.ready.clone().unwrap_or_default();
                let v = if w.sid == w.pid {
                    "own-session"
                } else if w.pgrp == w.pid {
                    "own-group"
                } else {
                    "inherited"
                };
                value(v, format!("main child pid {}, pgrp {}, session {}", w.pid, w.pgrp, w.sid))
            }
        },
        "P2" => judge_terminal(o),
        "RT" if !pid1 => {
            skipped("PID 1 mode only: section 4's trees hang below the init as PID 1 (this run is --subreaper)")
        }
        "RT" => judge_random(o),
        "H1" => match main() {
            Err(e) => not_reached(e),
            Ok(r) => {
                let w = r.ready.clone().unwrap_or_default();
                hygiene_signals(&w)
            }
        },
        "H2" => match main() {
            Err(e) => not_reached(e),
            Ok(r) => {
                let w = r.ready.clone().unwrap_or_default();
                let extra: Vec<String> =
                    w.fds.iter().filter(|(n, _)| *n > 2).map(|(n, l)| format!("{n}→{l}")).collect();
                let std: Vec<String> = w.fds.iter().filter(|(n, _)| *n <= 2).map(|(n, l)| format!("{n}→{l}")).collect();
                if extra.is_empty() {
                    value("clean", format!("only the gate's channel and {}", std.join(" ")))
                } else {
                    value("extra", format!("besides the gate's channel and 0-2: {}", extra.join(" ")))
                }
            }
        },
        "H3" => match main() {
            Err(e) => not_reached(e),
            Ok(r) => match &r.init_cwd {
                Some(c) => {
                    value(crate::scenario::escape(c).into_owned(), "/proc/<init>/cwd; the gate starts it in its own")
                }
                None => not_reached("could not read /proc/<init>/cwd"),
            },
        },
        "H4" => match main() {
            Err(e) => not_reached(e),
            Ok(r) => match (r.init_cpu_ticks, r.init_wakeups) {
                (Some(t), Some(w)) => value(
                    format!("{t} ticks"),
                    format!(
                        "{w} voluntary context switches over {:.0} ms of the main trial",
                        r.init_exit_ms.unwrap_or(r.elapsed_ms)
                    ),
                ),
                _ => not_reached(format!("the main trial stopped first: {}", ending(r))),
            },
        },
        _ => skipped("unknown check"),
    }
}

/// F5: after SIGTERM from outside, does the init SIGKILL a main child
/// that ignores it, and after how long?
fn judge_escalation(o: &Observations) -> (Verdict, String) {
    let Some(r) = &o.escalation else {
        return not_reached(o.not_run.clone().unwrap_or_else(|| "no run".into()));
    };
    let r = match reached(r) {
        Ok(r) => r,
        Err(e) => return not_reached(e),
    };
    let Some(e) = &r.escalation else { return not_reached(ending(r)) };
    let term = match e.term_reached_ms {
        Some(t) => format!("SIGTERM reached it {t:.2} ms after it was sent"),
        None => format!("SIGTERM did not reach it within {} ms (not forwarded)", o.patience_ms),
    };
    match e.child_died_ms {
        Some(t) => value(
            "sigkill",
            format!(
                "the main child, which ignores SIGTERM, was killed {t:.2} ms after SIGTERM was sent to the init; {term}; \
                 then {}",
                ending(r)
            ),
        ),
        None if e.term_reached_ms.is_none() => {
            not_reached(format!("{term}: nothing to escalate; the main child lived on for {} ms", e.bound_ms))
        }
        None => value(
            "no",
            format!(
                "the main child, which ignores SIGTERM, still ran {} ms after it was sent (time-based: --escalation); {term}",
                e.bound_ms
            ),
        ),
    }
}

/// F6's signal and its witness, from the main trial's F1: the signal is
/// SIGUSR1 when the init forwarded it (else the lowest it forwarded), the
/// witness the lowest forwarded signal above it (CONT is neither: it is
/// not one F1 requires).
pub fn startup_signals(main: &TrialResult) -> Result<(i32, Option<i32>), String> {
    let Some(w) = &main.ready else { return Err("the main trial never got to READY".into()) };
    let phase = phase_of(main);
    let once = |s: i32| {
        main.signals
            .iter()
            .zip(&phase)
            .filter(|(g, p)| **p == 1 && g.by == w.pid && g.signo == s && g.code <= 0 && g.from == w.ppid)
            .count()
            == 1
    };
    let mut forwarded: Vec<i32> =
        main.sent_outside.iter().copied().filter(|&s| s != libc::SIGCONT && once(s)).collect();
    forwarded.sort();
    let sig = if forwarded.contains(&libc::SIGUSR1) {
        libc::SIGUSR1
    } else {
        *forwarded.first().ok_or("the init forwarded none of F1's signals (CONT aside) from outside")?
    };
    Ok((sig, forwarded.iter().copied().find(|&s| s > sig)))
}

/// F6: how often the early signal was lost, over the fresh starts.
fn judge_startup(o: &Observations) -> (Verdict, String) {
    if let Some(why) = &o.startup_not_run {
        if let Some(why) = why.strip_prefix("skipped: ") {
            return skipped(why.to_string());
        }
        return not_reached(why.clone());
    }
    if o.startup.is_empty() {
        return not_reached(o.not_run.clone().unwrap_or_else(|| "no run".into()));
    }
    let Some((sig, witness)) = o.startup_sigs else { return not_reached("no signal was chosen") };
    let (mut reached, mut lost, mut child_died, mut init_died, mut held) = (0, 0, 0, 0, 0);
    let mut other = Vec::new();
    for r in &o.startup {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                other.push(format!("the trial broke: {e}"));
                continue;
            }
        };
        if let Some(e) = r.startup.as_ref().and_then(|s| s.send_error.as_ref()) {
            other.push(format!("pidfd_send_signal failed: {e}"));
            continue;
        }
        let pid = r.ready.as_ref().map(|w| w.pid);
        let got = pid.is_some_and(|p| r.signals.iter().any(|g| g.by == p && g.signo == sig));
        let is_held = r.startup.as_ref().is_some_and(|s| s.held_by_init);
        match r.init_status {
            _ if got => reached += 1,
            _ if is_held => held += 1,
            Some(Status::Killed(s)) if s == sig && !r.init_killed_by_gate => init_died += 1,
            Some(Status::Exited(c)) if c == 128 + sig && !got => child_died += 1,
            _ if r.ready.is_some() && r.startup.as_ref().is_some_and(|s| !s.waited_out) && witness.is_some() => {
                lost += 1
            }
            _ if r.ready.is_some() && witness.is_none() && r.startup.as_ref().is_some_and(|s| s.waited_out) => {
                lost += 1
            }
            _ => other.push(ending(r)),
        }
    }
    let n = o.startup.len();
    let name = Signal(sig).name();
    let how = match witness {
        Some(w) => format!(
            "lost: the main child had {} (sent after READY, forwarded, taken after {name}) but not {name}",
            Signal(w).name()
        ),
        None => format!(
            "lost: not reported within {} ms of READY (time-based: no higher signal is forwarded)",
            o.patience_ms
        ),
    };
    let mut parts = Vec::new();
    if lost > 0 {
        parts.push(format!("lost-{lost}/{n}"));
    }
    if held > 0 {
        parts.push(format!("held-{held}/{n}"));
    }
    if init_died > 0 {
        parts.push(format!("init-died-{init_died}/{n}"));
    }
    let ev = format!(
        "{name} through the init's pidfd as soon as the gate held it (the init started with it blocked, so that \
         none is dropped before its first instruction), {n} fresh starts: {reached} reached the main child, \
         {child_died} killed it before it blocked the signal (the init exited 128+{sig}), {init_died} killed the \
         init, {held} held (still pending for the init after the wait: it kept blocked what it was started with), \
         {lost} lost ({how}){}",
        if other.is_empty() { String::new() } else { format!("; not judged: {}", other.join("; ")) }
    );
    if !other.is_empty() && reached + lost + child_died + init_died + held == 0 {
        return not_reached(ev);
    }
    if parts.is_empty() {
        value("never-lost", ev)
    } else {
        value(parts.join(","), ev)
    }
}

/// P2: on a pseudo-terminal, is the main child the foreground group?
fn judge_terminal(o: &Observations) -> (Verdict, String) {
    let Some(r) = &o.terminal else { return not_reached(o.not_run.clone().unwrap_or_else(|| "no run".into())) };
    // No pseudo-terminal to be had here (no /dev/ptmx, no devpts): said
    // so, never a verdict about the init.
    if let Ok(TrialResult { error: Some(e), ready: None, .. }) = r {
        if e.contains("openpty") {
            return skipped(format!("no pseudo-terminal could be opened: {e}"));
        }
    }
    let r = match reached(r) {
        Ok(r) => r,
        Err(e) => return not_reached(e),
    };
    let w = r.ready.clone().unwrap_or_default();
    let ids = format!("main child pid {}, pgrp {}, session {}", w.pid, w.pgrp, w.sid);
    let setup =
        "the init ran with a pseudo-terminal as its standard streams and the controlling terminal of its own session";
    match w.tty_fg {
        _ if !w.stdin_tty => value("no-tty", format!("{setup}; the main child's stdin is not a terminal ({ids})")),
        None => value(
            "no-ctty",
            format!(
                "{setup}; the main child's stdin is the terminal, but not its controlling terminal \
                 (tcgetpgrp: ENOTTY; {ids})"
            ),
        ),
        Some(fg) if fg == w.pgrp => {
            value("foreground", format!("{setup}; tcgetpgrp(0) is the main child's group ({ids})"))
        }
        Some(fg) => {
            value("not-foreground", format!("{setup}; tcgetpgrp(0) is pgrp {fg}, not the main child's ({ids})"))
        }
    }
}

/// T2, from the run whose survivor SIGTERM kills: which signal ended it,
/// as the kernel kept it (or waitid() gave it, where it came to the
/// gate). None when the kernel could not say (the caller then falls back
/// on the survivor's own reports).
fn judge_survivor(o: &Observations) -> Option<(Verdict, String)> {
    let r = match reached(o.teardown_term.as_ref()?) {
        Ok(r) => r,
        Err(e) => return Some(not_reached(e)),
    };
    let Some(sv) = &r.survivor else { return Some(not_reached(ending(r))) };
    let pid1 = o.mode != Some(Mode::Subreaper);
    let when = sv.died_ms.map_or(String::new(), |t| format!(", {t:.2} ms after the main child exited"));
    let how = if sv.reaped_by_gate {
        "a survivor with SIGTERM at its default action; its status from waitid() (it had come to the gate, which reaped it)"
    } else {
        "a survivor with SIGTERM at its default action; its status as the kernel kept it (PIDFD_INFO_EXIT)"
    };
    Some(match sv.status {
        None => return None,
        Some(Status::Killed(s)) if s == libc::SIGTERM => value(
            "sigterm",
            format!(
                "{how}: killed by SIGTERM{when} — the init's{}",
                if pid1 { ", before the kernel's SIGKILL" } else { "" }
            ),
        ),
        Some(Status::Killed(s)) if s == libc::SIGKILL => value(
            "no",
            format!("{how}: killed by SIGKILL{when} — the kernel's, when the init exited; no SIGTERM came first"),
        ),
        Some(Status::Killed(s)) => value(
            format!("other:{}", Signal(s).name().trim_start_matches("SIG")),
            format!("{how}: killed by {}{when}", Signal(s).name()),
        ),
        Some(st) if sv.released => value("no", format!("{how}: {st} once the gate released it: no signal ended it")),
        Some(st) => value("no", format!("{how}: {st}{when}")),
    })
}

/// RT: the random trees under the init, with the seed, and on a failure
/// the shrunk file and the command that fails again.
fn judge_random(o: &Observations) -> (Verdict, String) {
    let rt = match &o.random {
        None if o.not_run.is_some() => return not_reached(o.not_run.clone().unwrap_or_default()),
        None => return skipped("no random trees were asked for (--cases 0)"),
        Some(Err(e)) => return not_reached(format!("the random trees could not run: {e}")),
        Some(Ok(rt)) => rt,
    };
    let Some(f) = &rt.failure else {
        return pass(format!(
            "{}/{} cases (seed {}), {} steps checked, every adopted zombie reaped within {} ms; {}",
            rt.passed, rt.cases, rt.seed, rt.steps, rt.reap_deadline_ms, rt.policy
        ));
    };
    let file = match &f.file {
        Ok(p) => format!("shrunk{} to {p}", if f.shrunk { "" } else { " (shrinking lost it: as generated)" }),
        Err(e) => format!("not written: {e}"),
    };
    let replay = f.replay.as_deref().map_or(String::new(), |r| format!("; it fails again with: {r}"));
    let mut lines = f.message.lines();
    let first = lines.next().unwrap_or("").to_string();
    let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    let case = format!("case {} (seed {}; {} passed before it)", f.case + 1, rt.seed, rt.passed);
    let (seen, expected, whose) = if f.not_reaped() {
        (
            format!("{case}: {first}"),
            format!("every zombie the init adopts reaped within {} ms", rt.reap_deadline_ms),
            "the init's failure",
        )
    } else {
        (
            format!("{case} does not match the model: {first}"),
            "orphans where the kernel's rules put them, under the init's observed policy".to_string(),
            "a mismatch: the kernel, the model or the init (one that moves its processes) is wrong; see the file",
        )
    };
    let rest = if rest.is_empty() { String::new() } else { format!("; {}", rest.join(" | ")) };
    fail(seen, expected, format!("{whose}; {file}{replay}{rest}"))
}

fn hygiene_signals(w: &Ready) -> (Verdict, String) {
    // The workload is a Rust program: its runtime sets SIGPIPE to SIG_IGN
    // before `main`, so SIGPIPE's disposition at exec cannot be seen.
    let pipe = 1u64 << (libc::SIGPIPE - 1);
    let ign = w.sigign & !pipe;
    let sigs = |m: u64| names(&Signal::from_mask(m).iter().map(|s| s.0).collect::<Vec<_>>());
    let ev = format!(
        "blocked: {}; ignored: {} (SIGPIPE not observable: the workload's runtime ignores it); the gate starts the init with none",
        sigs(w.sigblk),
        sigs(ign)
    );
    if w.sigblk == 0 && ign == 0 {
        value("unchanged", ev)
    } else {
        value("changed", ev)
    }
}

fn judge_forwarding(id: &str, o: &Observations) -> (Verdict, String) {
    let r = match &o.main {
        None => return not_reached("no main trial"),
        Some(r) => match reached(r) {
            Ok(r) => r,
            Err(e) => return not_reached(e),
        },
    };
    let w = r.ready.clone().unwrap_or_default();
    let sent = if id == "F2" { &r.sent_inside } else { &r.sent_outside };
    if sent.is_empty() {
        return not_reached(format!("no signal was sent: {}", ending(r)));
    }
    let phase = phase_of(r);
    let arrivals = |phase_want: u8, by: i32, s: i32| -> Vec<&Got> {
        r.signals
            .iter()
            .zip(&phase)
            .filter(|(g, p)| **p == phase_want && g.by == by && g.signo == s && g.code <= 0)
            .map(|(g, _)| g)
            .collect()
    };
    match id {
        "F1" | "F2" => {
            let ph = if id == "F1" { 1 } else { 2 };
            let waited = if id == "F1" { r.f1_waited_out } else { r.f2_waited_out };
            let mut ok = Vec::new();
            let mut missing = Vec::new();
            let mut wrong = Vec::new();
            for &s in sent {
                let a = arrivals(ph, w.pid, s);
                match a.as_slice() {
                    [g] if g.from == w.ppid => ok.push(s),
                    [] => missing.push(s),
                    many => wrong.push(format!(
                        "{}×{} from {}",
                        Signal(s).name(),
                        many.len(),
                        many.iter().map(|g| g.from.to_string()).collect::<Vec<_>>().join(",")
                    )),
                }
            }
            let how = if waited && !missing.is_empty() {
                let highest = ok.iter().max().copied().unwrap_or(0);
                if missing.iter().all(|m| *m < highest) {
                    format!("event-based: {} arrived after them", Signal(highest).name())
                } else {
                    format!("time-based: waited {} ms", o.patience_ms)
                }
            } else {
                String::new()
            };
            let ev = format!(
                "reached once from the init (pid {}): {}; not: {}{}{}",
                w.ppid,
                names(&ok),
                names(&missing),
                if wrong.is_empty() { String::new() } else { format!("; wrong: {}", wrong.join(" ")) },
                if how.is_empty() { String::new() } else { format!(" ({how})") }
            );
            if id == "F2" {
                let v = if missing.is_empty() && wrong.is_empty() {
                    "all"
                } else if ok.is_empty() {
                    "none"
                } else {
                    "some"
                };
                return value(v, ev);
            }
            let hard_bad: Vec<i32> = o.forward_hard.iter().copied().filter(|s| !ok.contains(s)).collect();
            if hard_bad.is_empty() {
                pass(ev)
            } else {
                fail(
                    format!("{} not delivered exactly once by the init", names(&hard_bad)),
                    "each once, from the init",
                    ev,
                )
            }
        }
        "F3" => {
            let bystander: Vec<&Got> = r
                .signals
                .iter()
                .zip(&phase)
                .filter(|(g, p)| **p >= 1 && g.by != w.pid && g.from == w.ppid && g.code <= 0)
                .map(|(g, _)| g)
                .collect();
            let mut got: Vec<i32> = bystander.iter().map(|g| g.signo).collect();
            got.sort();
            got.dedup();
            if got.is_empty() {
                value("child", "a bystander in the main child's process group got nothing")
            } else {
                value("group", format!("a bystander in the main child's process group got {}", names(&got)))
            }
        }
        _ => {
            let missing: Vec<i32> = sent.iter().copied().filter(|&s| arrivals(1, w.pid, s).is_empty()).collect();
            let v = if missing.is_empty() { "none".to_string() } else { names(&missing) };
            value(v, format!("of {} sent from outside; SIGCHLD is never sent", names(sent)))
        }
    }
}

/// The phase of each recorded signal, from its arrival time: 0 before
/// F1, 1 during F1 (up to F2's start, after a ping that every F1 signal
/// came before), 2 during F2 (up to its closing ping), 3 after (R5's own
/// SIGCONT).
fn phase_of(r: &TrialResult) -> Vec<u8> {
    let at = |t: Option<f64>| t.unwrap_or(f64::INFINITY);
    r.signals
        .iter()
        .map(|g| {
            if g.at_ms >= at(r.f2_end_ms) {
                3
            } else if g.at_ms >= at(r.f2_start_ms) {
                2
            } else if g.at_ms >= at(r.f1_start_ms) {
                1
            } else {
                0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(o: &Observations) -> (Verdict, String) {
        judge_one("RT", o)
    }

    fn trees(failure: Option<RandomTreesFailure>) -> RandomTrees {
        RandomTrees {
            cases: 3,
            passed: 2,
            steps: 9,
            seed: 7,
            policy: "the model took its policy: p".into(),
            reap_deadline_ms: 300,
            failure,
        }
    }

    #[test]
    fn escalation_is_sigkill_no_or_not_reached() {
        use crate::gate::wire::{Escalation, Ready};
        let trial = |e: Escalation, status: Option<Status>| -> Observations {
            let r = TrialResult {
                ready: Some(Ready::default()),
                escalation: Some(e),
                init_status: status,
                ..TrialResult::default()
            };
            Observations {
                mode: Some(Mode::Pid1),
                escalation: Some(Ok(r)),
                patience_ms: 500,
                ..Observations::default()
            }
        };
        let f5 = |o: &Observations| judge_one("F5", o);
        let killed = Escalation { term_reached_ms: Some(0.2), child_died_ms: Some(1000.5), bound_ms: 3000 };
        let (v, e) = f5(&trial(killed, Some(Status::Exited(137))));
        assert_eq!(v, Verdict::Value { value: "sigkill".into() });
        assert!(e.contains("was killed 1000.50 ms after SIGTERM") && e.contains("exit 137"), "{e}");
        let stays = Escalation { term_reached_ms: Some(0.2), child_died_ms: None, bound_ms: 3000 };
        let (v, e) = f5(&trial(stays, Some(Status::Exited(0))));
        assert_eq!(v, Verdict::Value { value: "no".into() });
        assert!(e.contains("still ran 3000 ms") && e.contains("time-based"), "{e}");
        let unforwarded = Escalation { term_reached_ms: None, child_died_ms: None, bound_ms: 3000 };
        let (v, _) = f5(&trial(unforwarded, Some(Status::Exited(0))));
        assert!(v.to_string().starts_with("not reached: SIGTERM did not reach it within 500 ms"), "{v}");
    }

    #[test]
    fn startup_window_counts_reached_lost_held_and_deaths() {
        use crate::gate::wire::{Ready, Startup};
        let ready = Ready { pid: 2, ppid: 1, ..Ready::default() };
        let start = |got: bool, waited_out: bool, held: bool, status: Status, ready_seen: bool| -> TrialResult {
            TrialResult {
                ready: ready_seen.then(|| ready.clone()),
                signals: if got {
                    vec![Got { by: 2, signo: libc::SIGUSR1, from: 1, code: 0, at_ms: 1.0 }]
                } else {
                    Vec::new()
                },
                startup: Some(Startup {
                    sig: libc::SIGUSR1,
                    witness: Some(libc::SIGUSR2),
                    send_error: None,
                    waited_out,
                    held_by_init: held,
                }),
                init_status: Some(status),
                ..TrialResult::default()
            }
        };
        let f6 = |runs: Vec<TrialResult>| {
            let o = Observations {
                mode: Some(Mode::Pid1),
                startup: runs.into_iter().map(Ok).collect(),
                startup_sigs: Some((libc::SIGUSR1, Some(libc::SIGUSR2))),
                patience_ms: 500,
                ..Observations::default()
            };
            judge_one("F6", &o)
        };
        let ok = || start(true, false, false, Status::Exited(0), true);
        let (v, e) = f6(vec![ok(), ok()]);
        assert_eq!(v, Verdict::Value { value: "never-lost".into() });
        assert!(e.contains("2 fresh starts: 2 reached the main child"), "{e}");
        // The main child dying of it (the init exits 128+10) is no loss.
        let (v, _) = f6(vec![ok(), start(false, false, false, Status::Exited(138), false)]);
        assert_eq!(v, Verdict::Value { value: "never-lost".into() });
        let lost = start(false, false, false, Status::Exited(0), true);
        let held = start(false, false, true, Status::Exited(0), true);
        let died = start(false, false, false, Status::Killed(libc::SIGUSR1), false);
        let (v, e) = f6(vec![ok(), lost, held, died]);
        assert_eq!(v, Verdict::Value { value: "lost-1/4,held-1/4,init-died-1/4".into() });
        assert!(e.contains("had SIGUSR2") && e.contains("but not SIGUSR1"), "{e}");
        // A witness that never came judges nothing.
        let (v, _) = f6(vec![start(false, true, false, Status::Exited(0), true)]);
        assert!(matches!(v, Verdict::NotReached { .. }), "{v}");
        // Nothing forwarded: nothing to send.
        let o = Observations { startup_not_run: Some("the init forwarded none".into()), ..Observations::default() };
        assert!(matches!(judge_one("F6", &o).0, Verdict::NotReached { .. }));
    }

    #[test]
    fn terminal_foreground_or_not_and_survivor_signal() {
        use crate::gate::wire::{Ready, Survivor};
        let p2 = |stdin_tty: bool, tty_fg: Option<i32>| {
            let w = Ready { pid: 2, pgrp: 2, sid: 1, stdin_tty, tty_fg, ..Ready::default() };
            let r = TrialResult { ready: Some(w), ..TrialResult::default() };
            let o = Observations { terminal: Some(Ok(r)), ..Observations::default() };
            judge_one("P2", &o).0.to_string()
        };
        assert_eq!(p2(true, Some(2)), "foreground");
        assert_eq!(p2(true, Some(1)), "not-foreground");
        assert_eq!(p2(true, None), "no-ctty");
        assert_eq!(p2(false, None), "no-tty");

        let t2 = |status: Option<Status>| {
            let ready = Ready { pid: 2, ppid: 1, ..Ready::default() };
            let td = TrialResult {
                ready: Some(ready.clone()),
                teardown: Some(crate::gate::wire::Teardown::default()),
                ..TrialResult::default()
            };
            let term = TrialResult {
                ready: Some(ready),
                survivor: Some(Survivor { status, died_ms: Some(0.5), ..Survivor::default() }),
                ..TrialResult::default()
            };
            let o = Observations {
                mode: Some(Mode::Pid1),
                teardown: Some(Ok(td)),
                teardown_term: Some(Ok(term)),
                ..Observations::default()
            };
            judge_one("T2", &o)
        };
        let (v, e) = t2(Some(Status::Killed(libc::SIGTERM)));
        assert_eq!(v.to_string(), "sigterm");
        assert!(e.contains("PIDFD_INFO_EXIT"), "{e}");
        assert_eq!(t2(Some(Status::Killed(libc::SIGKILL))).0.to_string(), "no");
        assert_eq!(t2(Some(Status::Killed(libc::SIGHUP))).0.to_string(), "other:HUP");
        // No exit information (before 6.15): the survivor's own reports,
        // and the verdict says it races.
        let (v, e) = t2(None);
        assert_eq!(v.to_string(), "no");
        assert!(e.contains("racy"), "{e}");
    }

    #[test]
    fn random_trees_pass_fail_and_say_why_not() {
        let mut o = Observations { mode: Some(Mode::Pid1), ..Observations::default() };
        assert!(matches!(rt(&o).0, Verdict::Skipped { .. }), "no cases asked for");
        o.not_run = Some("never READY".into());
        assert_eq!(rt(&o).0, Verdict::NotReached { why: "never READY".into() });
        o.not_run = None;
        o.random = Some(Err("no namespaces".into()));
        assert!(rt(&o).0.to_string().contains("could not run: no namespaces"));
        o.random = Some(Ok(RandomTrees { passed: 3, ..trees(None) }));
        let (v, e) = rt(&o);
        assert_eq!(v, Verdict::Pass);
        assert!(e.starts_with("3/3 cases (seed 7), 9 steps checked"), "{e}");

        // The init left a zombie: its failure, with the file and the replay.
        let zombie = RandomTreesFailure {
            case: 2,
            shrunk: true,
            message: "step 1 `kill p2`: the init under test did not reap 1 zombie(s) it adopted".into(),
            file: Ok("f/seed-7-x.tree".into()),
            replay: Some("reparent --init 'i --' run f/seed-7-x.tree".into()),
        };
        o.random = Some(Ok(trees(Some(zombie.clone()))));
        let (v, e) = rt(&o);
        let Verdict::Fail { seen, expected } = v else { panic!("RT must fail") };
        assert!(seen.starts_with("case 3 (seed 7; 2 passed before it): step 1 `kill p2`"), "{seen}");
        assert!(expected.contains("within 300 ms"), "{expected}");
        assert!(e.starts_with("the init's failure; shrunk to f/seed-7-x.tree; it fails again with: reparent"), "{e}");

        // A mismatch with the model is not charged to the init alone.
        let mismatch = RandomTreesFailure {
            message: "mismatch after step 1 `kill p2`\n  model  kernel\n".into(),
            file: Err("read-only".into()),
            replay: None,
            ..zombie
        };
        o.random = Some(Ok(trees(Some(mismatch))));
        let (v, e) = rt(&o);
        assert!(v.to_string().contains("does not match the model"), "{v}");
        assert!(e.starts_with("a mismatch: the kernel, the model or the init") && e.contains("not written: read-only"));

        o.mode = Some(Mode::Subreaper);
        assert!(matches!(rt(&o).0, Verdict::Skipped { .. }));
    }
}
