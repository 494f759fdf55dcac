//! The gate's report: every check with its verdict and evidence, shown as
//! a table for a terminal, JSON, or JUnit XML (one testcase per check,
//! written by `quick-junit`, nextest's writer), and `--expect` files that
//! pin an init's policy values so that its CI sees when one changes.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checks::{def_of, Check, Kind, Verdict};
use super::wire::Mode;
use crate::scenario::escape;

/// What the gate found for one init.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub init: Vec<String>,
    pub mode: Mode,
    pub kernel: String,
    pub uid: u32,
    /// The gate's own time, every trial included.
    pub elapsed_ms: u64,
    pub checks: Vec<Check>,
}

impl Report {
    /// The check `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The checks that make the gate fail (a hard check that did not
    /// pass, a `FAIL`, a pin that does not hold).
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.fails()).collect()
    }

    /// Every hard check passed and every pinned value held.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// Panics with the table unless [`Report::passed`].
    #[track_caller]
    pub fn assert_hard_checks_pass(&self) {
        if !self.passed() {
            let ids: Vec<&str> = self.failures().iter().map(|c| c.id.as_str()).collect();
            panic!("the init failed the gate on {}:\n{}", ids.join(", "), self.table());
        }
    }

    /// The table for a terminal: ID, kind, verdict, evidence; then the
    /// summary with the gate's own time.
    pub fn table(&self) -> String {
        let mut out = format!(
            "gate: {} ({}, kernel {}, uid {})\n",
            escape(&self.init.join(" ")),
            match self.mode {
                Mode::Pid1 => "as PID 1",
                Mode::Subreaper => "as a child of a subreaper, not PID 1",
            },
            self.kernel,
            self.uid
        );
        let width = self.checks.iter().map(|c| verdict_text(c).chars().count()).max().unwrap_or(7).clamp(7, 40);
        out.push_str(&format!("{:<3} {:<6} {:<width$}  evidence\n", "ID", "kind", "verdict"));
        for c in &self.checks {
            let v = verdict_text(c);
            let kind = match c.kind {
                Kind::Hard => "hard",
                Kind::Policy => "policy",
            };
            let evidence = escape(&c.evidence).into_owned();
            if v.chars().count() > width && evidence.is_empty() {
                out.push_str(&format!("{:<3} {kind:<6} {v}\n", c.id));
            } else if v.chars().count() > width {
                out.push_str(&format!("{:<3} {kind:<6} {v}\n{:<11}{:<width$}  {evidence}\n", c.id, "", ""));
            } else {
                out.push_str(&format!("{:<3} {kind:<6} {v:<width$}  {evidence}\n", c.id));
            }
        }
        let applicable = |c: &&Check| c.kind == Kind::Hard && !matches!(c.verdict, Verdict::Skipped { .. });
        let hard = self.checks.iter().filter(applicable).count();
        let hard_ok = self.checks.iter().filter(applicable).filter(|c| c.verdict == Verdict::Pass).count();
        let skipped = self.checks.iter().filter(|c| c.kind == Kind::Hard).count() - hard;
        let failures = self.failures();
        let known: Vec<&str> = self.checks.iter().filter(|c| c.known_failure()).map(|c| c.id.as_str()).collect();
        out.push_str(&format!(
            "{}: {hard_ok}/{hard} hard checks passed{}{}{}; gate time {:.2} s\n",
            if failures.is_empty() { "PASS" } else { "FAIL" },
            if skipped > 0 { format!(" ({skipped} skipped: not for this mode)") } else { String::new() },
            if known.is_empty() {
                String::new()
            } else {
                format!(", known failures (pinned FAIL): {}", known.join(" "))
            },
            if failures.is_empty() {
                String::new()
            } else {
                format!(", failing: {}", failures.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(" "))
            },
            self.elapsed_ms as f64 / 1000.0
        ));
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as JUnit XML: one test suite, one testcase per check;
    /// a failing one carries its verdict and evidence, a skipped or
    /// unreached one is `skipped` with the reason.
    pub fn junit(&self) -> Result<String, String> {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let mut report = quick_junit::Report::new("reparent-gate");
        report.set_time(std::time::Duration::from_millis(self.elapsed_ms));
        let mut suite = TestSuite::new(format!("gate {}", self.init.join(" ")));
        suite.add_property(quick_junit::Property::new("mode", format!("{:?}", self.mode)));
        suite.add_property(quick_junit::Property::new("kernel", self.kernel.clone()));
        for c in &self.checks {
            let name = format!("{} {}", c.id, c.title);
            let status = if c.known_failure() {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("known failure, pinned with --expect: {}", verdict_text(c)));
                s
            } else if c.fails() {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(verdict_text(c));
                s.set_type(match c.kind {
                    Kind::Hard => "hard",
                    Kind::Policy => "policy",
                });
                s.set_description(format!("{}\nevidence: {}", verdict_text(c), c.evidence));
                s
            } else {
                match &c.verdict {
                    Verdict::Skipped { why } | Verdict::NotReached { why } => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(format!("{}: {why}", c.verdict_word()));
                        s
                    }
                    _ => TestCaseStatus::success(),
                }
            };
            let mut tc = TestCase::new(name, status);
            tc.set_classname(format!("gate.{}", c.id));
            tc.set_system_out(format!("{}\n{}", verdict_text(c), c.evidence));
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
        report.to_string().map_err(|e| e.to_string())
    }

    /// Pins the values of `expect` onto the checks (see [`Check::pinned`]).
    pub fn pin(&mut self, expect: &Expectations) {
        for c in &mut self.checks {
            if let Some(v) = expect.values.get(&c.id) {
                c.pinned = Some(v.clone());
            }
        }
    }
}

impl Check {
    fn verdict_word(&self) -> &'static str {
        match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Value { .. } => "value",
            Verdict::NotReached { .. } => "not reached",
            Verdict::Skipped { .. } => "skipped",
        }
    }
}

/// The verdict as shown, with a pin that does not hold.
fn verdict_text(c: &Check) -> String {
    let v = escape(&c.verdict.to_string()).into_owned();
    match &c.pinned {
        _ if c.known_failure() => format!("{v} (known: PINNED FAIL)"),
        Some(p) if !c.pin_holds() => format!("{v} (PINNED {} — does not hold)", escape(p)),
        _ => v,
    }
}

/// Pinned values: an `--expect` file, one `ID value` per line (`#`
/// comments, blank lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    pub values: BTreeMap<String, String>,
}

impl Expectations {
    /// Parses `text` (from `file`, for errors: `file:line:column: ...`).
    pub fn parse(file: &str, text: &str) -> Result<Expectations, String> {
        let mut values = BTreeMap::new();
        let file = escape(file).into_owned();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let body = line.split('#').next().unwrap_or("");
            let trimmed = body.trim_start();
            if trimmed.trim().is_empty() {
                continue;
            }
            let col = body.len() - trimmed.len() + 1;
            let mut parts = trimmed.split_whitespace();
            let id = parts.next().unwrap_or("");
            if def_of(id).is_none() {
                return Err(format!(
                    "{file}:{n}:{col}: `{}` is not a check of the gate (R1..R7, S1..S3, X1..X5, F1..F6, T1..T3, P1, P2, H1..H4, RT)",
                    escape(id)
                ));
            }
            let Some(value) = parts.next() else {
                return Err(format!("{file}:{n}:{}: `{id}` needs a value, e.g. `T1 immediate`", col + id.len()));
            };
            if let Some(extra) = parts.next() {
                let at = body.find(extra).map_or(col, |p| p + 1);
                return Err(format!("{file}:{n}:{at}: one value per check; unexpected `{}`", escape(extra)));
            }
            if values.insert(id.to_string(), value.to_string()).is_some() {
                return Err(format!("{file}:{n}:{col}: `{id}` is pinned twice"));
            }
        }
        Ok(Expectations { values })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Expectations, String> {
        let shown = path.to_string_lossy();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", escape(&shown)))?;
        Expectations::parse(&shown, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: Vec<Check>) -> Report {
        Report { init: vec!["/x".into()], mode: Mode::Pid1, kernel: "6.18".into(), uid: 0, elapsed_ms: 1, checks }
    }

    fn check(id: &str, kind: Kind, verdict: Verdict) -> Check {
        Check { id: id.into(), kind, title: "t".into(), verdict, evidence: "e".into(), pinned: None }
    }

    #[test]
    fn expectations_parse_and_errors_are_placed() {
        let e = Expectations::parse("f", "# pins\nT1 immediate\n  P1 own-group # comment\nX3 127/126\n").unwrap();
        assert_eq!(e.values.get("P1").map(String::as_str), Some("own-group"));
        assert_eq!(e.values.len(), 3);
        assert_eq!(Expectations::parse("f", "T1 immediate\n  Q9 x\n").unwrap_err().split(": ").next(), Some("f:2:3"));
        assert!(Expectations::parse("f", "T1\n").unwrap_err().starts_with("f:1:3: `T1` needs a value"));
        assert!(Expectations::parse("f", "T1 a b\n").unwrap_err().starts_with("f:1:6: one value"));
        assert!(Expectations::parse("f", "T1 a\nT1 b\n").unwrap_err().starts_with("f:2:1: `T1` is pinned twice"));
        // Input shown back is escaped.
        assert!(Expectations::parse("f", "\x1b[31m x\n").unwrap_err().contains("\\x1b"));
    }

    #[test]
    fn a_pin_that_does_not_hold_fails_the_report() {
        let mut r = report(vec![check("T1", Kind::Policy, Verdict::Value { value: "immediate".into() })]);
        assert!(r.passed());
        r.pin(&Expectations::parse("f", "T1 immediate\n").unwrap());
        assert!(r.passed());
        r.pin(&Expectations::parse("f", "T1 waits\n").unwrap());
        assert!(!r.passed());
        assert!(r.table().contains("PINNED waits"), "{}", r.table());
    }

    #[test]
    fn a_failure_pinned_as_fail_is_known_until_it_changes() {
        let fail = || Verdict::Fail { seen: "hung".into(), expected: "exit 4".into() };
        let mut r = report(vec![check("R7", Kind::Hard, fail()), check("R1", Kind::Hard, Verdict::Pass)]);
        assert!(!r.passed());
        r.pin(&Expectations::parse("f", "R7 FAIL\n").unwrap());
        assert!(r.passed(), "{}", r.table());
        let table = r.table();
        assert!(table.contains("FAIL: hung vs expected exit 4 (known: PINNED FAIL)"), "{table}");
        assert!(table.contains("PASS: 1/2 hard checks passed, known failures (pinned FAIL): R7"), "{table}");
        let xml = r.junit().unwrap();
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert!(matches!(back.test_suites[0].test_cases[0].status, quick_junit::TestCaseStatus::Skipped { .. }));
        // The init fixed: the pin no longer holds, and the gate says so.
        let mut fixed = report(vec![check("R7", Kind::Hard, Verdict::Pass)]);
        fixed.pin(&Expectations::parse("f", "R7 FAIL\n").unwrap());
        assert!(!fixed.passed());
        assert!(fixed.table().contains("pass (PINNED FAIL — does not hold)"), "{}", fixed.table());
        // Another check failing still fails the gate.
        let mut more = report(vec![check("R7", Kind::Hard, fail()), check("R1", Kind::Hard, fail())]);
        more.pin(&Expectations::parse("f", "R7 FAIL\n").unwrap());
        assert!(!more.passed());
    }

    #[test]
    fn hard_checks_decide_and_skips_are_not_failures() {
        let ok = report(vec![
            check("R1", Kind::Hard, Verdict::Pass),
            check("S1", Kind::Policy, Verdict::Skipped { why: "mode".into() }),
            check("T1", Kind::Policy, Verdict::NotReached { why: "x".into() }),
        ]);
        assert!(ok.passed());
        let bad = report(vec![check("R1", Kind::Hard, Verdict::NotReached { why: "init hung".into() })]);
        assert!(!bad.passed());
        let bad = report(vec![check("X3", Kind::Policy, Verdict::Fail { seen: "0/0".into(), expected: "x".into() })]);
        assert!(!bad.passed());
        let r = std::panic::catch_unwind(|| bad.assert_hard_checks_pass()).unwrap_err();
        let msg = r.downcast_ref::<String>().unwrap();
        assert!(msg.contains("failed the gate on X3") && msg.contains("FAIL: 0/0"), "{msg}");
    }

    #[test]
    fn junit_is_valid_and_carries_failures() {
        let r = report(vec![
            check("R1", Kind::Hard, Verdict::Fail { seen: "1 zombie <&>".into(), expected: "reaped".into() }),
            check("X1", Kind::Hard, Verdict::Pass),
            check("S1", Kind::Policy, Verdict::Skipped { why: "subreaper mode only".into() }),
        ]);
        let xml = r.junit().unwrap();
        let back = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
        let suite = &back.test_suites[0];
        assert_eq!(suite.test_cases.len(), 3);
        assert_eq!(suite.failures, 1);
        assert_eq!(suite.test_cases[0].name.as_str(), "R1 t");
        match &suite.test_cases[0].status {
            quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
                assert!(message.as_ref().unwrap().as_str().contains("1 zombie <&>"))
            }
            s => panic!("R1 should fail: {s:?}"),
        }
        assert!(matches!(suite.test_cases[2].status, quick_junit::TestCaseStatus::Skipped { .. }));
    }
}
