//! What changed between two tables of `reparent kernel`: `reparent diff
//! OLD.json NEW.json`, and `reparent kernel --baseline OLD.json`.
//!
//! Rows are matched by their key (`R6.6g:probe:mt-init-leader-blocks`),
//! which stays the same when rows are added or reordered, so tables from
//! different days, machines and versions of this suite compare. A row
//! that passed or was skipped and now fails is a **regression** — unless
//! the row's own version ranges predict that failure for the new table's
//! kernel, which is then shown as expected. Everything else that changed is
//! shown but is no regression: a row newly passing or newly skipped, a row
//! that appeared or disappeared, and a recorded value that changed
//! (R5.2's `all` → `stopped-only`, R6.6g's `survives` → `killed`: a
//! difference between kernel builds, which is what those rows are for).
//! Rows that `--only`/`--skip` left out of a table are not compared.
//!
//! Pure: the caller reads the files.

use super::table::{Row, Table, Verdict};
use crate::scenario::escape;

/// How a row changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// It passed or was skipped (or is new), and now fails.
    Regression,
    /// It now fails, as its version ranges predict for the new kernel.
    ExpectedFail,
    /// It failed or was skipped, and now passes.
    NewlyPassing,
    /// It passed or failed, and is now skipped.
    NewlySkipped,
    /// It passes in both, recording another behaviour.
    RecordedChanged,
    /// Only the new table has it (and it does not fail).
    Appeared,
    /// Only the old table has it.
    Disappeared,
}

impl Change {
    /// The heading of its section.
    pub fn heading(self) -> &'static str {
        match self {
            Change::Regression => "regressions (newly failing)",
            Change::ExpectedFail => "newly failing, as the row predicts for this kernel",
            Change::NewlyPassing => "newly passing",
            Change::NewlySkipped => "newly skipped",
            Change::RecordedChanged => "recorded value changed (a difference between builds, not a regression)",
            Change::Appeared => "rows only in NEW",
            Change::Disappeared => "rows only in OLD",
        }
    }
}

/// A row as one table has it: its result, what it recorded, and its
/// evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    pub result: Verdict,
    pub recorded: Option<String>,
    pub detail: String,
}

impl Side {
    fn of(r: &Row) -> Side {
        Side { result: r.result, recorded: r.recorded.clone(), detail: r.detail.clone() }
    }

    /// `pass`, `pass (recorded: killed)`, `FAIL`, `skipped`.
    fn short(&self) -> String {
        match &self.recorded {
            Some(v) if self.result == Verdict::Pass => format!("pass (recorded: {})", escape(v)),
            _ => self.result.word().to_string(),
        }
    }
}

/// One changed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    pub change: Change,
    pub key: String,
    pub id: String,
    pub check: String,
    pub old: Option<Side>,
    pub new: Option<Side>,
}

/// The rows that changed between two tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// In the order of the new table, then rows only in the old one.
    pub changes: Vec<RowChange>,
    /// Rows in both tables that did not change.
    pub unchanged: usize,
    /// Keys of rows that fail in both (no change, but no pass either).
    pub still_failing: Vec<String>,
    /// Rows one table has and the other left out with `--only`/`--skip`.
    pub not_compared: usize,
}

impl Diff {
    pub fn count(&self, c: Change) -> usize {
        self.changes.iter().filter(|r| r.change == c).count()
    }

    /// 1 on a regression, else 0.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.count(Change::Regression) > 0)
    }
}

/// Compares `old` with `new`, row by row.
pub fn diff(old: &Table, new: &Table) -> Diff {
    let kernel = new.kernel_version();
    let mut d = Diff { changes: Vec::new(), unchanged: 0, still_failing: Vec::new(), not_compared: 0 };
    let change = |c: Change, r: &Row, o: Option<&Row>, n: Option<&Row>| RowChange {
        change: c,
        key: r.key.clone(),
        id: r.id.clone(),
        check: r.check.clone(),
        old: o.map(Side::of),
        new: n.map(Side::of),
    };
    for n in &new.rows {
        let Some(o) = old.rows.iter().find(|o| o.key == n.key) else {
            if !old.selection.is_full() {
                d.not_compared += 1;
            } else if n.result == Verdict::Fail && !predicted_fail(n, kernel) {
                d.changes.push(change(Change::Regression, n, None, Some(n)));
            } else {
                d.changes.push(change(Change::Appeared, n, None, Some(n)));
            }
            continue;
        };
        let c = match (o.result, n.result) {
            (Verdict::Fail, Verdict::Fail) => {
                d.still_failing.push(n.key.clone());
                None
            }
            (_, Verdict::Fail) if predicted_fail(n, kernel) => Some(Change::ExpectedFail),
            (_, Verdict::Fail) => Some(Change::Regression),
            (Verdict::Pass, Verdict::Pass) if o.recorded != n.recorded => Some(Change::RecordedChanged),
            (a, b) if a == b => None,
            (_, Verdict::Pass) => Some(Change::NewlyPassing),
            (_, Verdict::Skipped) => Some(Change::NewlySkipped),
        };
        match c {
            Some(c) => d.changes.push(change(c, n, Some(o), Some(n))),
            None => d.unchanged += 1,
        }
    }
    for o in old.rows.iter().filter(|o| !new.rows.iter().any(|n| n.key == o.key)) {
        if new.selection.is_full() {
            d.changes.push(change(Change::Disappeared, o, Some(o), None));
        } else {
            d.not_compared += 1;
        }
    }
    d
}

/// Whether the row's version ranges say it fails on kernel version `v`.
fn predicted_fail(row: &Row, v: Option<(u32, u32)>) -> bool {
    v.and_then(|v| row.expected_on(v)).is_some_and(|e| e.result == Verdict::Fail)
}

/// One table in a line: the kernel, the model, the binary.
pub fn table_line(t: &Table) -> String {
    let m = &t.model;
    let mutation = m.mutation.as_ref().map_or(String::new(), |x| format!(", mutation {}", escape(x)));
    let git = t.binary.git.as_ref().map_or(String::new(), |g| format!(" ({})", escape(g)));
    let partial = if t.selection.is_full() { "" } else { ", some rows left out" };
    format!(
        "Linux {} as uid {}; model of Linux {}.{} (orphan-hup {}{mutation}); reparent {}{git}; {}{partial}",
        escape(&t.kernel),
        t.uid,
        m.kernel.0,
        m.kernel.1,
        escape(&m.orphan_hup),
        escape(&t.binary.version),
        t.summary_line()
    )
}

/// The comparison as text: both tables, every changed row with its
/// evidence from both, and a summary. `old_name` and `new_name` are how
/// the user named them.
pub fn diff_text(old_name: &str, old: &Table, new_name: &str, new: &Table, d: &Diff) -> String {
    let mut out = format!("OLD {}: {}\n", escape(old_name), table_line(old));
    out += &format!("NEW {}: {}\n", escape(new_name), table_line(new));
    let order = [
        Change::Regression,
        Change::ExpectedFail,
        Change::NewlyPassing,
        Change::NewlySkipped,
        Change::RecordedChanged,
        Change::Appeared,
        Change::Disappeared,
    ];
    for c in order {
        let rows: Vec<&RowChange> = d.changes.iter().filter(|r| r.change == c).collect();
        if rows.is_empty() {
            continue;
        }
        out += &format!("\n{} ({}):\n", c.heading(), rows.len());
        for r in rows {
            let arrow = match (&r.old, &r.new) {
                (Some(o), Some(n)) => format!("{} -> {}", o.short(), n.short()),
                (None, Some(n)) => format!("(none) -> {}", n.short()),
                (Some(o), None) => format!("{} -> (none)", o.short()),
                (None, None) => String::new(),
            };
            out += &format!("  {} {}: {arrow}\n", escape(&r.id), escape(&r.check));
            out += &format!("    key {}\n", escape(&r.key));
            for (which, side) in [("OLD", &r.old), ("NEW", &r.new)] {
                if let Some(s) = side {
                    let mut lines = s.detail.lines();
                    out += &format!("    {which}: {}\n", escape(lines.next().unwrap_or("")));
                    for l in lines {
                        out += &format!("         {}\n", escape(l));
                    }
                }
            }
        }
    }
    if !d.still_failing.is_empty() {
        out += &format!("\nfailing in both ({}): {}\n", d.still_failing.len(), escape(&d.still_failing.join(", ")));
    }
    let mut summary = format!(
        "\nsummary: {} regression(s), {} expected failure(s), {} newly passing, {} newly skipped, {} recorded \
         value(s) changed, {} row(s) only in NEW, {} only in OLD; {} unchanged",
        d.count(Change::Regression),
        d.count(Change::ExpectedFail),
        d.count(Change::NewlyPassing),
        d.count(Change::NewlySkipped),
        d.count(Change::RecordedChanged),
        d.count(Change::Appeared),
        d.count(Change::Disappeared),
        d.unchanged,
    );
    if d.not_compared > 0 {
        summary += &format!(", {} not compared (left out with --only/--skip)", d.not_compared);
    }
    out + &summary + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::table::{self, Expected, Machine, Outcome, Selection};
    use crate::kernel::{evaluate, Check, Rule, RULES};
    use std::time::Duration;

    /// A table of the whole catalogue on `kernel`, every row passing with
    /// `fine` (build rows record `all`, R6.6g `survives`) unless `tweak`
    /// says otherwise.
    fn make(kernel: (u32, u32), tweak: impl Fn(&Rule) -> Option<Outcome>) -> Table {
        let rows = evaluate(
            RULES,
            kernel,
            |r| {
                let o = tweak(r).unwrap_or_else(|| match r.check {
                    Check::Build(_) => Outcome::Recorded { value: "all".into(), detail: "orphan-hup all: …".into() },
                    Check::Probe("mt-init-leader-blocks") => {
                        Outcome::Recorded { value: "survives".into(), detail: "survives: …".into() }
                    }
                    _ => Outcome::Pass("fine".into()),
                });
                (o, Duration::from_millis(1))
            },
            |_| {},
        )
        .unwrap();
        let machine = Machine { release: format!("{}.{}.0", kernel.0, kernel.1), version: kernel, uid: 0 };
        table::table(rows, &machine, Some(true), table::tests::provenance(), Duration::ZERO)
    }

    fn only(r: &Rule, check: Check, o: Outcome) -> Option<Outcome> {
        (r.check == check).then_some(o)
    }

    #[test]
    fn the_same_table_has_no_change() {
        let t = make((6, 18), |_| None);
        let d = diff(&t, &t);
        assert_eq!((d.changes.len(), d.unchanged, d.exit_status()), (0, RULES.len(), 0));
    }

    #[test]
    fn a_pass_turned_fail_is_a_regression_with_both_sides_evidence() {
        let old = make((6, 18), |_| None);
        let readback = Check::Probe("subreaper-readback");
        let new = make((6, 18), |r| only(r, readback, Outcome::Fail("saw 0; expected 1 (R2.1)".into())));
        let d = diff(&old, &new);
        assert_eq!(d.exit_status(), 1);
        assert_eq!(d.count(Change::Regression), 1);
        let c = &d.changes[0];
        assert_eq!(c.key, "R2.1:probe:subreaper-readback");
        assert_eq!(c.old.as_ref().unwrap().detail, "fine");
        assert_eq!(c.new.as_ref().unwrap().result, Verdict::Fail);
        let text = diff_text("a.json", &old, "b.json", &new, &d);
        assert!(
            text.contains("regressions (newly failing) (1):\n  R2.1 probe subreaper-readback: pass -> FAIL\n"),
            "{text}"
        );
        assert!(text.contains("    OLD: fine\n    NEW: saw 0; expected 1 (R2.1)\n"), "{text}");
        assert!(text.contains("summary: 1 regression(s)"), "{text}");
        // The other way round it is a fix, not a regression.
        let back = diff(&new, &old);
        assert_eq!((back.exit_status(), back.count(Change::NewlyPassing)), (0, 1));
    }

    #[test]
    fn a_skip_turned_fail_is_a_regression_and_fail_to_fail_is_not() {
        let readback = Check::Probe("subreaper-readback");
        let skipped = make((6, 18), |r| only(r, readback, Outcome::Skipped("no".into())));
        let failed = make((6, 18), |r| only(r, readback, Outcome::Fail("bad (R2.1)".into())));
        assert_eq!(diff(&skipped, &failed).count(Change::Regression), 1);
        let same = diff(&failed, &failed);
        assert_eq!((same.exit_status(), same.still_failing.len()), (0, 1));
        let d = diff(&failed, &skipped);
        assert_eq!((d.exit_status(), d.count(Change::NewlySkipped)), (0, 1));
    }

    #[test]
    fn a_changed_recorded_value_is_shown_and_no_regression() {
        let old = make((6, 18), |_| None);
        let new = make((6, 18), |r| {
            only(
                r,
                Check::Probe("mt-init-leader-blocks"),
                Outcome::Recorded { value: "killed".into(), detail: "killed: …".into() },
            )
            .or_else(|| {
                only(
                    r,
                    Check::Build("orphan-hup"),
                    Outcome::Recorded { value: "stopped-only".into(), detail: "orphan-hup stopped-only: …".into() },
                )
            })
        });
        let d = diff(&old, &new);
        assert_eq!((d.exit_status(), d.count(Change::RecordedChanged)), (0, 2));
        let text = diff_text("a", &old, "b", &new, &d);
        assert!(
            text.contains("R6.6g probe mt-init-leader-blocks: pass (recorded: survives) -> pass (recorded: killed)"),
            "{text}"
        );
        assert!(
            text.contains("R5.2 build orphan-hup: pass (recorded: all) -> pass (recorded: stopped-only)"),
            "{text}"
        );
    }

    #[test]
    fn newly_skipped_on_an_older_kernel_and_rows_that_come_and_go() {
        let new = make((6, 18), |_| None);
        let old = make((6, 1), |_| None);
        let d = diff(&old, &new);
        // R1.10 (6.13) and R9.1 (6.9) are skipped on 6.1.
        assert_eq!((d.count(Change::NewlyPassing), d.exit_status()), (2, 0));
        assert_eq!(diff(&new, &old).count(Change::NewlySkipped), 2);
        let mut fewer = new.clone();
        let gone = fewer.rows.remove(0);
        let d = diff(&fewer, &new);
        assert_eq!((d.count(Change::Appeared), d.exit_status()), (1, 0));
        assert_eq!(d.changes[0].key, gone.key);
        assert_eq!(diff(&new, &fewer).count(Change::Disappeared), 1);
        // A row that appears failing is a regression.
        let mut failing = new.clone();
        failing.rows[0].result = Verdict::Fail;
        assert_eq!(diff(&fewer, &failing).count(Change::Regression), 1);
        // Rows left out with --only are not compared.
        fewer.selection = Selection { only: vec![], skip: vec![gone.id.clone()] };
        let d = diff(&fewer, &new);
        assert_eq!((d.changes.len(), d.not_compared), (0, 1));
    }

    #[test]
    fn a_fail_the_row_predicts_for_the_kernel_is_expected_not_a_regression() {
        let old = make((6, 18), |_| None);
        let readback = Check::Probe("subreaper-readback");
        let mut new = make((6, 18), |r| only(r, readback, Outcome::Fail("as on such kernels".into())));
        let row = new.rows.iter_mut().find(|r| r.key == "R2.1:probe:subreaper-readback").unwrap();
        row.expected_by_version = vec![Expected {
            kernels: ">= 6.18".into(),
            from: Some((6, 18)),
            until: None,
            build: None,
            result: Verdict::Fail,
            recorded: None,
            text: "fails there".into(),
        }];
        let d = diff(&old, &new);
        assert_eq!((d.exit_status(), d.count(Change::ExpectedFail)), (0, 1));
        // The same failure on a kernel the range does not hold is one.
        new.version = "6.17".into();
        assert_eq!(diff(&old, &new).exit_status(), 1);
    }

    #[test]
    fn text_from_the_files_is_escaped() {
        let old = make((6, 18), |_| None);
        let new = make((6, 18), |r| only(r, Check::Probe("subreaper-readback"), Outcome::Fail("\u{1b}[2Jgone".into())));
        let text = diff_text("a", &old, "b", &new, &diff(&old, &new));
        assert!(!text.contains('\u{1b}') && text.contains("\\x1b[2Jgone"), "{text}");
    }
}
