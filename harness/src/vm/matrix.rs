//! `reparent matrix`: the tables of many kernels side by side.
//!
//! One column per kernel, one row per rule of `reparent kernel`'s table
//! (plus one for the guest's `check`), each cell `pass`, `FAIL`, `skip`, or
//! a recorded value. A FAIL that the row's own version expectations predict
//! for that kernel (an expectation whose range holds the kernel and whose
//! result starts with "fail") is shown as expected (`xfail`), not as a
//! regression. Pure: the guests are run by the caller, this module only
//! reads their tables, which it parses leniently (unknown fields are
//! ignored; a row's key is its `key` when the table has one, else its id
//! and check, since an id alone is not unique).

use serde::{Deserialize, Serialize};

/// A row as `reparent kernel --json` writes it, read leniently.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TableRow {
    #[serde(default)]
    pub key: Option<String>,
    pub id: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub function: String,
    #[serde(default)]
    pub check: String,
    /// `pass`, `fail`, `skipped`, or whatever a newer table records.
    pub result: String,
    #[serde(default)]
    pub detail: String,
    /// For a row that records a build's behaviour (R5.2, R6.6g), the word
    /// it saw (`killed`, `survives`, `all`, `stopped-only`).
    #[serde(default)]
    pub recorded: Option<String>,
    #[serde(default)]
    pub expected_by_version: Vec<VersionExpectation>,
}

impl TableRow {
    pub fn key(&self) -> String {
        self.key.clone().unwrap_or_else(|| format!("{} {}", self.id, self.check))
    }
}

/// What a range of kernels should give.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionExpectation {
    pub kernels: String,
    pub result: String,
}

/// A table as `reparent kernel --json` writes it, read leniently.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KernelTable {
    pub kernel: String,
    #[serde(default)]
    pub rows: Vec<TableRow>,
}

/// Reads a `reparent kernel --json` table.
pub fn parse_table(text: &str) -> Result<KernelTable, String> {
    serde_json::from_str(text.trim()).map_err(|e| format!("not a `reparent kernel --json` table: {e}"))
}

/// What one kernel's guest gave.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KernelRun {
    /// The image booted.
    pub image: String,
    /// The guest's `uname -r`.
    pub release: Option<String>,
    /// `KVM` or `TCG`.
    pub accel: String,
    #[serde(skip)]
    pub table: Option<KernelTable>,
    /// `reparent kernel`'s exit status in the guest.
    pub kernel_status: Option<String>,
    /// `reparent check`'s outcome: pass, and its summary line, or why not.
    pub check_passed: Option<bool>,
    pub check_summary: String,
    /// Why the run is incomplete, with the console's last lines.
    pub problem: Option<String>,
    pub times: Times,
}

/// Seconds per phase of a kernel's run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Times {
    pub boot: f64,
    pub kernel: f64,
    pub check: f64,
    pub wall: f64,
}

/// A cell of the grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Pass,
    Fail,
    /// A FAIL the row's version expectations predict for this kernel.
    Xfail,
    Skip,
    /// Another recorded result, as the table gave it.
    Recorded(String),
    /// The kernel's table has no such row (or no table at all).
    Missing,
}

impl Cell {
    pub fn text(&self) -> &str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "FAIL",
            Cell::Xfail => "xfail",
            Cell::Skip => "skip",
            Cell::Recorded(v) => v,
            Cell::Missing => "-",
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "fail",
            Cell::Xfail => "xfail",
            Cell::Skip => "skip",
            Cell::Recorded(_) => "rec",
            Cell::Missing => "none",
        }
    }
}

/// A row of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct MatrixRow {
    pub key: String,
    pub id: String,
    pub check: String,
    pub rule: String,
    pub cells: Vec<Cell>,
    /// Per kernel, the cell's detail (what was seen, or why not).
    pub details: Vec<String>,
    /// Per kernel, what the row's version expectations say for it.
    pub expected: Vec<Option<String>>,
}

/// A failure shown in full.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The anchor the HTML cell links to.
    pub anchor: String,
    pub row: String,
    pub kernel: String,
    pub expected: bool,
    pub evidence: String,
}

/// The whole matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    /// Column headers: each kernel's release, shortened.
    pub columns: Vec<String>,
    pub runs: Vec<KernelRun>,
    pub rows: Vec<MatrixRow>,
    pub failures: Vec<Failure>,
    /// Unexpected FAILs, kernels that could not be checked, failed checks.
    pub unexpected: usize,
}

/// The release written as `X.Y` numbers: `(6, 12)` of `6.12.118+deb12-cloud-amd64`.
pub fn version_of(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether an expectation's range (`< 6.13`, `>= 6.13`, `4.15 - 6.17`,
/// `6.18`) holds a kernel; `None` for a range named otherwise (a build).
pub fn range_holds(range: &str, v: (u32, u32)) -> Option<bool> {
    let r = range.trim();
    if let Some(x) = r.strip_prefix(">=") {
        return Some(v >= version_of(x.trim())?);
    }
    if let Some(x) = r.strip_prefix("<=") {
        return Some(v <= version_of(x.trim())?);
    }
    if let Some(x) = r.strip_prefix('<') {
        return Some(v < version_of(x.trim())?);
    }
    if let Some(x) = r.strip_prefix('>') {
        return Some(v > version_of(x.trim())?);
    }
    if let Some((a, b)) = r.split_once(" - ") {
        return Some(version_of(a.trim())? <= v && v <= version_of(b.trim())?);
    }
    if r.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Some(version_of(r)? == v);
    }
    None
}

/// What `expectations` say for `release`: the ranges that hold it, or that
/// name it (a build's release).
pub fn expected_for(expectations: &[VersionExpectation], release: &str) -> Option<String> {
    let v = version_of(release)?;
    let hits: Vec<String> = expectations
        .iter()
        .filter(|e| range_holds(&e.kernels, v).unwrap_or_else(|| release.contains(e.kernels.trim())))
        .map(|e| format!("{}: {}", e.kernels, e.result))
        .collect();
    (!hits.is_empty()).then(|| hits.join("; "))
}

fn predicts_fail(expected: &Option<String>) -> bool {
    expected.as_deref().is_some_and(|e| {
        e.split("; ").any(|part| part.split_once(": ").is_some_and(|(_, r)| r.to_ascii_lowercase().starts_with("fail")))
    })
}

/// The shortest distinct names for the columns: the releases without the
/// suffix they all share (`-cloud-amd64`).
pub fn short_names(releases: &[String]) -> Vec<String> {
    if releases.len() < 2 {
        return releases.to_vec();
    }
    let first = &releases[0];
    let mut common = first.len();
    for r in &releases[1..] {
        common = common.min(first.chars().rev().zip(r.chars().rev()).take_while(|(a, b)| a == b).count());
    }
    // Cut at a '-' or '+' so that a version is never split.
    let suffix = &first[first.len() - common..];
    let cut = suffix.find(['-', '+']).map_or(0, |i| common - i);
    releases.iter().map(|r| r[..r.len() - cut].to_string()).collect()
}

/// The key of the row of the guest's `check`.
pub const CHECK_ROW: &str = "check";

/// Builds the matrix of `runs` (in column order).
pub fn build(runs: Vec<KernelRun>) -> Matrix {
    let releases: Vec<String> =
        runs.iter().map(|r| r.release.clone().unwrap_or_else(|| format!("({})", r.image))).collect();
    let columns = short_names(&releases);
    // Rows in the order of the first table that has them.
    let mut keys: Vec<(String, TableRow)> = Vec::new();
    for r in &runs {
        for row in r.table.iter().flat_map(|t| &t.rows) {
            if !keys.iter().any(|(k, _)| *k == row.key()) {
                keys.push((row.key(), row.clone()));
            }
        }
    }
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut unexpected = 0;
    for (key, proto) in &keys {
        let mut cells = Vec::new();
        let mut details = Vec::new();
        let mut expected = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            let row = r.table.as_ref().and_then(|t| t.rows.iter().find(|x| x.key() == *key));
            let exp = expected_for(row.map_or(&proto.expected_by_version, |x| &x.expected_by_version), &releases[i]);
            let cell = match row.map(|x| (x.result.as_str(), x.recorded.as_deref())) {
                None => Cell::Missing,
                // A row that records a build's behaviour shows what it saw,
                // side by side across kernels, never as a failure.
                Some(("pass", Some(word))) => Cell::Recorded(word.to_string()),
                Some(("pass", None)) => Cell::Pass,
                Some(("skipped", _)) => Cell::Skip,
                Some(("fail", _)) if predicts_fail(&exp) => Cell::Xfail,
                Some(("fail", _)) => Cell::Fail,
                Some((other, _)) => Cell::Recorded(other.to_string()),
            };
            if matches!(cell, Cell::Fail | Cell::Xfail) {
                let expected_fail = cell == Cell::Xfail;
                unexpected += usize::from(!expected_fail);
                failures.push(Failure {
                    anchor: format!("f{}", failures.len() + 1),
                    row: key.clone(),
                    kernel: releases[i].clone(),
                    expected: expected_fail,
                    evidence: row.map(|x| x.detail.clone()).unwrap_or_default(),
                });
            }
            details.push(row.map(|x| x.detail.clone()).unwrap_or_default());
            expected.push(exp);
            cells.push(cell);
        }
        rows.push(MatrixRow {
            key: key.clone(),
            id: proto.id.clone(),
            check: proto.check.clone(),
            rule: proto.rule.clone(),
            cells,
            details,
            expected,
        });
    }
    // The guest's `check`, and kernels that could not be checked at all.
    let mut cells = Vec::new();
    let mut details = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let (cell, detail) = match (&r.problem, r.check_passed) {
            (Some(p), _) => (Cell::Fail, p.clone()),
            (None, Some(true)) => (Cell::Pass, r.check_summary.clone()),
            (None, Some(false)) => (Cell::Fail, r.check_summary.clone()),
            (None, None) => (Cell::Missing, String::new()),
        };
        if cell == Cell::Fail {
            unexpected += 1;
            failures.push(Failure {
                anchor: format!("f{}", failures.len() + 1),
                row: CHECK_ROW.into(),
                kernel: releases[i].clone(),
                expected: false,
                evidence: detail.clone(),
            });
        }
        cells.push(cell);
        details.push(detail);
    }
    rows.push(MatrixRow {
        key: CHECK_ROW.into(),
        id: CHECK_ROW.into(),
        check: "scenarios and random cases".into(),
        rule: "reparent check in the guest".into(),
        expected: vec![None; runs.len()],
        cells,
        details,
    });
    Matrix { columns, runs, rows, failures, unexpected }
}

impl Matrix {
    /// 1 on any unexpected FAIL (or a kernel not checked), else 0.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.unexpected > 0)
    }

    fn label(r: &MatrixRow) -> String {
        if r.key == CHECK_ROW {
            return CHECK_ROW.into();
        }
        let check = r.check.strip_prefix("probe ").unwrap_or(&r.check);
        format!("{} {}", r.id, check.strip_suffix(".tree").unwrap_or(check))
    }

    /// The grid, the version-dependent rows, every failure in full, and the
    /// time per kernel, as text.
    pub fn text(&self) -> String {
        let lw = self.rows.iter().map(|r| Self::label(r).chars().count()).max().unwrap_or(4).min(48);
        let widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count().max(5)).collect();
        let mut out = format!("{:<lw$}", "ROW");
        for (c, w) in self.columns.iter().zip(&widths) {
            out += &format!("  {c:<w$}");
        }
        out.push('\n');
        for r in &self.rows {
            let label: String = Self::label(r).chars().take(lw).collect();
            out += &format!("{label:<lw$}");
            for (c, w) in r.cells.iter().zip(&widths) {
                let t: String = c.text().chars().take(*w).collect();
                out += &format!("  {t:<w$}");
            }
            out.push('\n');
        }
        let versioned: Vec<&MatrixRow> = self.rows.iter().filter(|r| r.expected.iter().any(Option::is_some)).collect();
        if !versioned.is_empty() {
            out += "\nversion-dependent rows, what each kernel should give:\n";
            let cw = widths.iter().copied().max().unwrap_or(5);
            for r in versioned {
                out += &format!("  {}:\n", Self::label(r));
                for (i, e) in r.expected.iter().enumerate() {
                    let e = e.as_deref().unwrap_or("(no expectation names this kernel)");
                    out += &format!("    {:<w$}  {:<5}  {e}\n", self.columns[i], r.cells[i].text(), w = cw);
                }
            }
        }
        if !self.failures.is_empty() {
            out += "\nfailures:\n";
            for f in &self.failures {
                let tag = if f.expected { " (expected for this kernel)" } else { "" };
                out += &format!("  {} on Linux {}{tag}:\n", f.row, f.kernel);
                for l in f.evidence.lines() {
                    out += &format!("    {l}\n");
                }
            }
        }
        out += "\ntime per kernel (s):\n";
        for (i, r) in self.runs.iter().enumerate() {
            let t = r.times;
            out += &format!(
                "  {:<w$}  {}  boot {:>5.1}  kernel {:>6.1}  check {:>6.1}  total {:>6.1}\n",
                self.columns[i],
                r.accel,
                t.boot,
                t.kernel,
                t.check,
                t.wall,
                w = widths.iter().copied().max().unwrap_or(5)
            );
        }
        let n = self.failures.iter().filter(|f| !f.expected).count();
        out += &format!(
            "\n{} kernel(s), {} row(s): {n} unexpected failure(s), {} expected\n",
            self.columns.len(),
            self.rows.len(),
            self.failures.len() - n
        );
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The grid as Markdown, with the failures below it.
    pub fn markdown(&self) -> String {
        let md = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = String::from("# reparent matrix\n\n| row |");
        for c in &self.columns {
            out += &format!(" {} |", md(c));
        }
        out += "\n|---|";
        out += &"---|".repeat(self.columns.len());
        out.push('\n');
        for r in &self.rows {
            out += &format!("| {} |", md(&Self::label(r)));
            for c in &r.cells {
                let t = match c {
                    Cell::Fail => "**FAIL**".to_string(),
                    other => md(other.text()),
                };
                out += &format!(" {t} |");
            }
            out.push('\n');
        }
        if !self.failures.is_empty() {
            out += "\n## Failures\n";
            for f in &self.failures {
                let tag = if f.expected { " (expected for this kernel)" } else { "" };
                out += &format!(
                    "\n### {} on Linux {}{tag}\n\n```\n{}\n```\n",
                    md(&f.row),
                    md(&f.kernel),
                    f.evidence.replace("```", "'''")
                );
            }
        }
        out
    }

    /// A self-contained page: a coloured grid, each failing cell linking to
    /// its evidence below; no script, no network.
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>reparent matrix</title>\n<style>\n\
             body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\n\
             table{border-collapse:collapse;font-size:13px}\n\
             th,td{border:1px solid #ccc;padding:3px 7px;text-align:center;white-space:nowrap}\n\
             th.row,td.row{text-align:left;font-family:monospace}\n\
             th.k{writing-mode:vertical-rl;transform:rotate(180deg);font-family:monospace}\n\
             td.pass{background:#c8ecc8}td.fail{background:#f28b82;font-weight:bold}td.xfail{background:#fde293}\n\
             td.skip{background:#e8eaed;color:#555}td.rec{background:#aecbfa}td.none{background:#fff;color:#999}\n\
             td a{color:inherit}\npre{background:#f6f6f6;padding:.6em;overflow:auto}\n\
             .legend span{display:inline-block;padding:2px 8px;margin-right:6px;border:1px solid #ccc}\n\
             </style></head><body>\n<h1>reparent matrix</h1>\n",
        );
        let n = self.failures.iter().filter(|f| !f.expected).count();
        out += &format!(
            "<p>{} kernel(s), {} row(s): <b>{n} unexpected failure(s)</b>, {} expected.</p>\n",
            self.columns.len(),
            self.rows.len(),
            self.failures.len() - n
        );
        out += "<p class=\"legend\"><span class=\"\" style=\"background:#c8ecc8\">pass</span>\
                <span style=\"background:#f28b82\">FAIL</span><span style=\"background:#fde293\">xfail: a FAIL this kernel's version predicts</span>\
                <span style=\"background:#e8eaed\">skip</span><span style=\"background:#aecbfa\">recorded value</span></p>\n";
        out += "<table>\n<tr><th class=\"row\">row</th>";
        for c in &self.columns {
            out += &format!("<th class=\"k\">{}</th>", html_escape(c));
        }
        out += "</tr>\n";
        for r in &self.rows {
            out += &format!(
                "<tr><td class=\"row\" title=\"{}\">{}</td>",
                html_escape(&r.rule),
                html_escape(&Self::label(r))
            );
            for (i, c) in r.cells.iter().enumerate() {
                let title = html_escape(&format!(
                    "{}{}",
                    r.details[i].lines().next().unwrap_or(""),
                    r.expected[i].as_ref().map(|e| format!("\nexpected: {e}")).unwrap_or_default()
                ));
                let text = html_escape(c.text());
                let inner = match self.failures.iter().find(|f| f.row == r.key && f.kernel == self.release(i)) {
                    Some(f) => format!("<a href=\"#{}\">{text}</a>", f.anchor),
                    None => text,
                };
                out += &format!("<td class=\"{}\" title=\"{title}\">{inner}</td>", c.class());
            }
            out += "</tr>\n";
        }
        out += "</table>\n<h2>Time per kernel</h2>\n<table><tr><th>kernel</th><th>accel</th><th>boot s</th><th>kernel s</th><th>check s</th><th>total s</th></tr>\n";
        for (i, r) in self.runs.iter().enumerate() {
            let t = r.times;
            out += &format!(
                "<tr><td class=\"row\">{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>\n",
                html_escape(&self.columns[i]),
                html_escape(&r.accel),
                t.boot,
                t.kernel,
                t.check,
                t.wall
            );
        }
        out += "</table>\n";
        if !self.failures.is_empty() {
            out += "<h2>Failures</h2>\n";
            for f in &self.failures {
                let tag = if f.expected { " (expected for this kernel)" } else { "" };
                out += &format!(
                    "<h3 id=\"{}\">{} on Linux {}{tag}</h3>\n<pre>{}</pre>\n",
                    f.anchor,
                    html_escape(&f.row),
                    html_escape(&f.kernel),
                    html_escape(&f.evidence)
                );
            }
        }
        out += "</body></html>\n";
        out
    }

    fn release(&self, i: usize) -> String {
        self.runs[i].release.clone().unwrap_or_else(|| format!("({})", self.runs[i].image))
    }
}

/// Text made safe inside HTML elements and attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(release: &str, rows: &[(&str, &str, &str, &str)]) -> KernelTable {
        KernelTable {
            kernel: release.into(),
            rows: rows
                .iter()
                .map(|(id, check, result, detail)| TableRow {
                    id: id.to_string(),
                    check: check.to_string(),
                    result: result.to_string(),
                    detail: detail.to_string(),
                    expected_by_version: vec![
                        VersionExpectation { kernels: "< 6.13".into(), result: "fail: no such thing".into() },
                        VersionExpectation { kernels: ">= 6.13".into(), result: "pass".into() },
                    ],
                    ..TableRow::default()
                })
                .collect(),
        }
    }

    fn run(release: &str, t: KernelTable, check: bool) -> KernelRun {
        KernelRun {
            image: format!("vmlinuz-{release}"),
            release: Some(release.into()),
            accel: "TCG".into(),
            table: Some(t),
            check_passed: Some(check),
            check_summary: "summary: fine".into(),
            ..KernelRun::default()
        }
    }

    #[test]
    fn a_predicted_fail_is_expected_and_an_unpredicted_one_is_a_regression() {
        let old =
            table("6.1.0-57-cloud-amd64", &[("R1", "probe a", "fail", "saw <old>"), ("R2", "b.tree", "pass", "")]);
        let new = table(
            "6.18.15+deb13-cloud-amd64",
            &[("R1", "probe a", "fail", "saw new"), ("R2", "b.tree", "skipped", "")],
        );
        let m = build(vec![run("6.1.0-57-cloud-amd64", old, true), run("6.18.15+deb13-cloud-amd64", new, true)]);
        assert_eq!(m.columns, vec!["6.1.0-57", "6.18.15+deb13"]);
        assert_eq!(m.rows[0].cells, vec![Cell::Xfail, Cell::Fail]);
        assert_eq!(m.rows[1].cells, vec![Cell::Pass, Cell::Skip]);
        assert_eq!(m.rows[2].cells, vec![Cell::Pass, Cell::Pass], "the check row");
        assert_eq!(m.unexpected, 1);
        assert_eq!(m.exit_status(), 1);
        let text = m.text();
        assert!(text.contains("R1 probe a on Linux 6.18.15+deb13-cloud-amd64:\n    saw new"), "{text}");
        assert!(text.contains("(expected for this kernel)"), "{text}");
        assert!(text.contains("< 6.13: fail: no such thing"), "{text}");
        let html = m.html();
        assert!(html.contains("<a href=\"#f2\">FAIL</a>") && html.contains("<h3 id=\"f2\">"), "{html}");
        assert!(html.contains("saw &lt;old&gt;") && !html.contains("<old>"), "evidence is escaped");
        assert!(!html.contains("http"), "no network");
        assert!(m.markdown().contains("| R1 a | xfail | **FAIL** |"), "{}", m.markdown());
    }

    #[test]
    fn all_pass_is_status_0_and_a_failed_check_or_a_lost_kernel_is_not() {
        let t = || table("6.12.1", &[("R1", "probe a", "pass", "")]);
        assert_eq!(build(vec![run("6.12.1", t(), true)]).exit_status(), 0);
        assert_eq!(build(vec![run("6.12.1", t(), false)]).exit_status(), 1);
        let lost = KernelRun { problem: Some("the guest stopped".into()), table: None, ..run("7.0.1", t(), true) };
        let m = build(vec![run("6.12.1", t(), true), lost]);
        assert_eq!(m.rows[0].cells, vec![Cell::Pass, Cell::Missing]);
        assert_eq!(m.exit_status(), 1);
        assert!(m.text().contains("check on Linux 7.0.1:\n    the guest stopped"), "{}", m.text());
    }

    #[test]
    fn ranges_and_lenient_tables() {
        assert_eq!(range_holds("4.15 - 6.17", (6, 8)), Some(true));
        assert_eq!(range_holds("4.15 - 6.17", (6, 18)), Some(false));
        assert_eq!(range_holds(">= 6.18", (7, 0)), Some(true));
        assert_eq!(range_holds("< 6.13", (6, 13)), Some(false));
        assert_eq!(range_holds("mainline builds", (6, 1)), None);
        assert_eq!(version_of("6.12.118+deb12-cloud-amd64"), Some((6, 12)));
        let t = parse_table(r#"{"kernel":"x","format":3,"rows":[{"id":"R1","check":"probe a","result":"recorded","detail":"killed","duration_ms":5}]}"#).unwrap();
        assert_eq!(t.rows[0].key(), "R1 probe a");
        let m = build(vec![run("6.1.0", t, true)]);
        assert_eq!(m.rows[0].cells, vec![Cell::Recorded("recorded".into())]);
        assert_eq!(m.exit_status(), 0);
        assert!(parse_table("[]").is_err());
    }

    #[test]
    fn recorded_rows_show_their_word_side_by_side_without_failing() {
        let rec = |release: &str, word: &str| {
            let mut t = table(release, &[("R6.6g", "probe mt-init-leader-blocks", "pass", "")]);
            t.rows[0].recorded = Some(word.into());
            t.rows[0].detail = format!("{word}: what was seen");
            run(release, t, true)
        };
        let m = build(vec![rec("6.1.0-57-cloud-amd64", "killed"), rec("6.18.44-fc-v1252", "survives")]);
        assert_eq!(m.rows[0].cells, vec![Cell::Recorded("killed".into()), Cell::Recorded("survives".into())]);
        assert_eq!(m.exit_status(), 0, "a recorded difference is no failure");
        let text = m.text();
        let line = text.lines().find(|l| l.starts_with("R6.6g")).unwrap();
        assert!(line.contains("killed") && line.contains("survives") && !line.contains("pass"), "{line}");
        assert!(m.markdown().contains("| R6.6g mt-init-leader-blocks | killed | survives |"), "{}", m.markdown());
        let html = m.html();
        assert!(html.contains(">killed</td>") && html.contains(">survives</td>"), "{html}");
        assert!(html.contains("class=\"rec\""), "{html}");
        // The parser reads the field from a real table's JSON.
        let t = parse_table(
            r#"{"kernel":"x","rows":[{"id":"R5.2","check":"build orphan-hup","result":"pass","recorded":"all"}]}"#,
        )
        .unwrap();
        assert_eq!(build(vec![run("6.1.0", t, true)]).rows[0].cells, vec![Cell::Recorded("all".into())]);
    }
}
