//! Checked rows and the table they make: the text `reparent kernel` prints
//! and the JSON it writes with `--json`, which is read back to compare
//! kernels.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::catalogue::{Expectation, Rule, RULES};

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
    /// A behaviour in which kernel builds differ: which one was seen
    /// (`value`, a word such as `survives` or `stopped-only`), and in full.
    /// The row passes, and tables of two kernels show the difference.
    Recorded { value: String, detail: String },
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
    /// For a row that records a behaviour in which builds differ: which
    /// one it saw.
    pub recorded: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected_by_version: Vec<Expectation>,
}

impl Row {
    /// Whether the row runs a scenario file (and so has a replay command),
    /// rather than a probe or a build case.
    pub fn runs_a_scenario(&self) -> bool {
        !self.check.starts_with("probe ") && !self.check.starts_with("build ")
    }

    /// The result column: `pass`, `FAIL (…)` or `skipped (…)`, on one line.
    pub fn result_text(&self) -> String {
        let first = self.detail.lines().next().unwrap_or("").trim();
        match (self.result, &self.recorded) {
            (Verdict::Pass, Some(v)) => format!("pass, recorded: {v}"),
            (Verdict::Pass, None) => "pass".into(),
            (Verdict::Fail, _) => format!("FAIL ({first})"),
            (Verdict::Skipped, _) => format!("skipped ({first})"),
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
    /// (with the command that replays a failed scenario: `replay` gives it
    /// for the scenario's file).
    pub fn footer_text(&self, scenarios_dir: &Path, replay: impl Fn(&Path) -> String) -> String {
        let mut out = format!("{}\n", self.summary_line());
        let w = id_width();
        let probes: Vec<&Row> =
            self.rows.iter().filter(|r| !r.runs_a_scenario() && r.result == Verdict::Pass).collect();
        if !probes.is_empty() {
            out.push_str("\nwhat the probes and build cases saw:\n");
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
                if r.runs_a_scenario() && !r.detail.starts_with("scenario file missing") {
                    out.push_str(&format!("    replay: {}\n", replay(&scenarios_dir.join(&r.check))));
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
    pub recorded: Option<String>,
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

/// Why `kernel` skips `rule` (it predates the behaviour), if it does:
/// [`evaluate`] does not `check` such a rule.
pub fn predates(rule: &Rule, kernel: (u32, u32)) -> Option<String> {
    match rule.since {
        Some((v, feature)) if kernel < v => {
            Some(format!("needs Linux {}.{} ({feature}); this is {}.{}", v.0, v.1, kernel.0, kernel.1))
        }
        _ => None,
    }
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
        let outcome = match predates(rule, kernel) {
            Some(why) => Outcome::Skipped(why),
            None => check(rule),
        };
        let (result, detail, recorded) = match outcome {
            Outcome::Pass(d) => (Verdict::Pass, d, None),
            Outcome::Recorded { value, detail } => (Verdict::Pass, detail, Some(value)),
            Outcome::Fail(d) => (Verdict::Fail, d, None),
            Outcome::Skipped(d) => (Verdict::Skipped, d, None),
            Outcome::Unavailable(why) => return Err(why),
        };
        let row = Row {
            id: rule.id,
            rule: rule.what,
            function: rule.function,
            check: rule.check.to_string(),
            result,
            detail,
            recorded,
            expected_by_version: rule.by_version.to_vec(),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// The machine a table was made on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// `uname -r`.
    pub release: String,
    /// The release's `(major, minor)`.
    pub version: (u32, u32),
    pub uid: u32,
}

/// Sums up checked rows as a table of `machine`'s kernel.
pub fn table(rows: Vec<Row>, machine: &Machine, userns: Option<bool>) -> Table {
    let count = |v: Verdict| rows.iter().filter(|r| r.result == v).count();
    let summary = Summary {
        rules: rows.len(),
        pass: count(Verdict::Pass),
        fail: count(Verdict::Fail),
        skipped: count(Verdict::Skipped),
    };
    let (major, minor) = machine.version;
    Table {
        kernel: machine.release.clone(),
        version: format!("{major}.{minor}"),
        uid: machine.uid,
        userns,
        summary,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Check;

    fn rows(kernel: (u32, u32), check: impl FnMut(&Rule) -> Outcome) -> Table {
        let machine = Machine { release: format!("{}.{}.0", kernel.0, kernel.1), version: kernel, uid: 0 };
        table(evaluate(RULES, kernel, check, |_| {}).expect("no Unavailable"), &machine, Some(true))
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
        let footer = t.footer_text(Path::new("scenarios"), |f| format!("reparent run {}", f.display()));
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
        let footer = t.footer_text(Path::new("scenarios"), |f| format!("reparent run {}", f.display()));
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
    fn json_has_the_rows_and_version_ranges() {
        let t = rows((6, 18), |_| Outcome::Pass("fine".into()));
        let saved = parse_json(&t.to_json()).unwrap();
        assert_eq!(saved.rows.len(), RULES.len());
        let mt = saved.rows.iter().find(|r| r.check == "probe mt-init-leader-blocks").unwrap();
        assert_eq!(mt.result, Verdict::Pass);
        assert!(mt.expected_by_version.len() >= 2);
        assert_eq!(saved.summary, t.summary);
        assert!(parse_json("{}").is_err());
    }
}
