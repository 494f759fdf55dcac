//! Checked rows and the table they make: the text `reparent kernel` prints
//! and the JSON it writes (`--json`, `--json-out`), which is read back to
//! compare tables (`reparent diff`, `--baseline`, a matrix over kernels).
//!
//! The JSON compares across days and machines: each row has a key that
//! stays the same when rows are added or reordered (`R6.6g:probe:…`), and
//! the table says which kernel it was made on, which model judged it (the
//! kernel version it predicted for and the build traits it was fitted to),
//! which binary made it, and which rows were left out. Its format has a
//! version ([`FORMAT_VERSION`]); a table of another format is refused, not
//! misread.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::catalogue::{Check, Expectation, Kernels, Rule, RULES};
use crate::scenario::escape;

/// The version of the JSON format. Raise it when a field changes meaning
/// or goes; adding a field does not need it.
pub const FORMAT_VERSION: u32 = 1;

/// A row's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

impl Verdict {
    /// `pass`, `FAIL`, `skipped`, as the text shows them.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "skipped",
        }
    }
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

/// `X.Y` in JSON.
mod version_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(s: &str) -> Option<(u32, u32)> {
        let (a, b) = s.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    pub fn serialize<S: Serializer>(v: &(u32, u32), s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}.{}", v.0, v.1))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(u32, u32), D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("expected a version X.Y, found {text:?}")))
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &Option<(u32, u32)>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u32, u32)>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => super::parse(&text)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("expected a version X.Y or null, found {text:?}"))),
            }
        }
    }
}

/// What one range of kernels should give for a row, as the JSON carries
/// it (from [`Expectation`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The kernels, in words: `>= 6.13`, `>= 5.3, < 6.9`, or a kind of
    /// build.
    pub kernels: String,
    /// First version of the range (inclusive); `null`: from the oldest,
    /// or a range of builds.
    #[serde(with = "version_text::option")]
    pub from: Option<(u32, u32)>,
    /// First version after the range (exclusive); `null`: to the newest,
    /// or a range of builds.
    #[serde(with = "version_text::option")]
    pub until: Option<(u32, u32)>,
    /// For a kind of build (any version may be either): which, in words;
    /// `null` for a version range.
    pub build: Option<String>,
    /// What the row gives there: `pass`, `fail` or `skipped`.
    pub result: Verdict,
    /// For a build-dependent row: the word it records on such builds.
    pub recorded: Option<String>,
    /// The result in words.
    pub text: String,
}

impl Expected {
    /// Whether kernel version `v` falls in this version range (a range of
    /// builds holds no version).
    pub fn holds(&self, v: (u32, u32)) -> bool {
        self.build.is_none() && !matches!(self.from, Some(f) if v < f) && !matches!(self.until, Some(u) if v >= u)
    }
}

impl From<&Expectation> for Expected {
    fn from(e: &Expectation) -> Expected {
        let (from, until, build) = match e.kernels {
            Kernels::Versions { from, until } => (from, until, None),
            Kernels::Builds(which) => (None, None, Some(which.to_string())),
        };
        Expected {
            kernels: e.kernels.to_string(),
            from,
            until,
            build,
            result: e.result,
            recorded: e.recorded.map(str::to_string),
            text: e.text.to_string(),
        }
    }
}

/// A checked row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Stable across tables: the rule id, how it is checked and by what
    /// (`R6.6g:probe:mt-init-leader-blocks`, `R1.3:scenario:deep-chain.tree`,
    /// `R5.2:build:orphan-hup`). Rows are compared by it.
    pub key: String,
    /// The rule's number in kernel-rules.md (several rows may share it).
    pub id: String,
    pub rule: String,
    pub function: String,
    /// `probe NAME`, `build NAME` or the scenario file.
    pub check: String,
    /// `probe`, `scenario` or `build`.
    pub kind: String,
    /// The probe, scenario file or build behaviour.
    pub name: String,
    pub result: Verdict,
    /// For a row that records a behaviour in which builds differ: which
    /// one it saw (`killed`/`survives`, `all`/`stopped-only`).
    pub recorded: Option<String>,
    /// What was seen (pass), seen against expected (fail), or why not
    /// checked (skipped).
    pub detail: String,
    /// How long the row took, in milliseconds (0 when it was not run).
    pub duration_ms: u64,
    /// For version- and build-dependent rules: what each range of kernels
    /// should give.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_by_version: Vec<Expected>,
}

/// The stable key of a rule's row: `ID:KIND:NAME`.
pub fn key(rule: &Rule) -> String {
    let (kind, name) = kind_and_name(rule.check);
    format!("{}:{kind}:{name}", rule.id)
}

fn kind_and_name(check: Check) -> (&'static str, &'static str) {
    match check {
        Check::Probe(n) => ("probe", n),
        Check::Scenario(n) => ("scenario", n),
        Check::Build(n) => ("build", n),
    }
}

impl Row {
    /// Whether the row runs a scenario file (and so has a replay command),
    /// rather than a probe or a build case.
    pub fn runs_a_scenario(&self) -> bool {
        self.kind == "scenario"
    }

    /// The result column: `pass`, `pass, recorded: WORD`, `FAIL (…)` or
    /// `skipped (…)`, on one line.
    pub fn result_text(&self) -> String {
        let first = self.detail.lines().next().unwrap_or("").trim();
        match (self.result, &self.recorded) {
            (Verdict::Pass, Some(v)) => format!("pass, recorded: {v}"),
            (Verdict::Pass, None) => "pass".into(),
            (Verdict::Fail, _) => format!("FAIL ({first})"),
            (Verdict::Skipped, _) => format!("skipped ({first})"),
        }
    }

    /// What the row's version ranges say it gives on kernel version `v`,
    /// if one holds it (a build-dependent row has none: either recorded
    /// value is expected on any version).
    pub fn expected_on(&self, v: (u32, u32)) -> Option<&Expected> {
        self.expected_by_version.iter().find(|e| e.holds(v))
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

/// The model that judged a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The kernel version the model predicted for (`--model-kernel`).
    #[serde(with = "version_text")]
    pub kernel: (u32, u32),
    /// The build trait it was fitted to: `all` or `stopped-only`.
    pub orphan_hup: String,
    /// A deliberate bug of the model (`--model-mutation`), if any: such a
    /// table is no evidence about the kernel.
    pub mutation: Option<String>,
}

/// The binary that made a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryVersion {
    /// The crate's version.
    pub version: String,
    /// `git describe` of the source at build time, when it was built from
    /// a git checkout.
    pub git: Option<String>,
}

/// Rows left out of a table (`--only`, `--skip`): both empty for a full
/// table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    pub fn is_full(&self) -> bool {
        self.only.is_empty() && self.skip.is_empty()
    }
}

/// Where a table comes from, besides the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub model: ModelVersion,
    pub binary: BinaryVersion,
    pub selection: Selection,
}

/// The whole table, as the JSON holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// `uname -r`.
    pub kernel: String,
    /// `X.Y`, as the version ranges are written.
    pub version: String,
    pub uid: u32,
    /// Whether the probes' sandboxes had a user namespace.
    pub userns: Option<bool>,
    pub model: ModelVersion,
    pub binary: BinaryVersion,
    pub selection: Selection,
    /// The whole run, in milliseconds.
    pub duration_ms: u64,
    pub summary: Summary,
    pub rows: Vec<Row>,
}

/// The table a saved JSON file holds (the same type: kept for callers).
pub type SavedTable = Table;
/// A row of a [`SavedTable`].
pub type SavedRow = Row;

impl Table {
    /// 0 when nothing failed (skips are listed and counted, but are not
    /// failures), 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.summary.fail > 0)
    }

    /// The kernel's `(major, minor)`, from [`Table::version`].
    pub fn kernel_version(&self) -> Option<(u32, u32)> {
        version_text::parse(&self.version)
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
        if !self.selection.is_full() {
            let list = |v: &[String]| v.join(", ");
            out.push_str(&match (self.selection.only.is_empty(), self.selection.skip.is_empty()) {
                (false, true) => format!("(only {})\n", list(&self.selection.only)),
                (true, false) => format!("(all but {})\n", list(&self.selection.skip)),
                _ => format!("(only {}, but {})\n", list(&self.selection.only), list(&self.selection.skip)),
            });
        }
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
            out.push_str(&format!("\nversion- and build-dependent rows (this kernel: {}):\n", self.version));
            for r in versioned {
                out.push_str(&format!("  {:<w$}  {}: {}\n", r.id, r.check, r.result_text()));
                for e in &r.expected_by_version {
                    let result = match &e.recorded {
                        Some(v) => format!("{}, recorded: {v}", e.result.word()),
                        None => e.result.word().to_string(),
                    };
                    let on = if e.build.is_some() { "" } else { "Linux " };
                    out.push_str(&format!("  {:<w$}    {on}{}: {result} ({})\n", "", e.kernels, e.text));
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
                    out.push_str(&format!("    replay: {}\n", replay(&scenarios_dir.join(&r.name))));
                }
            }
        }
        out
    }
}

/// Reads the output of `reparent kernel --json`. Errors say where (line
/// and column) and what; `parse_json_file` adds the file.
pub fn parse_json(text: &str) -> Result<SavedTable, String> {
    read_json(text).map_err(|e| e.to_string())
}

/// Why a file is not a table this binary can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or JSON of another shape: where, and what.
    Invalid { line: usize, column: usize, message: String },
    /// JSON without a `format_version`: not a table, or one from before
    /// format 1.
    NoFormat,
    /// A table of another format.
    Format(u64),
    /// A `format_version` that is no whole number: as the file has it.
    BadFormat(String),
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Invalid { line, column, message } => {
                write!(f, "{line}:{column}: not a `reparent kernel --json` table: {}", escape(message))
            }
            JsonError::NoFormat => write!(
                f,
                "not a `reparent kernel --json` table of format {FORMAT_VERSION}: it has no format_version (tables \
                 written before format 1 cannot be compared; make it again)"
            ),
            JsonError::BadFormat(v) => {
                write!(
                    f,
                    "its format_version is {}, not a whole number: not a `reparent kernel --json` table",
                    escape(v)
                )
            }
            JsonError::Format(v) => write!(
                f,
                "a table of format version {v}; this reparent reads format {FORMAT_VERSION} (make both tables with \
                 the same reparent)"
            ),
        }
    }
}

/// Reads a table: the format version first, so that a table of another
/// format is named as such rather than misread.
pub fn read_json(text: &str) -> Result<Table, JsonError> {
    let invalid = |e: serde_json::Error| {
        // serde_json's message ends with the place, which the error holds.
        let place = format!(" at line {} column {}", e.line(), e.column());
        let text = e.to_string();
        let message = text.strip_suffix(&place).unwrap_or(&text).to_string();
        JsonError::Invalid { line: e.line(), column: e.column(), message }
    };
    #[derive(Deserialize)]
    struct Header {
        format_version: Option<serde_json::Value>,
    }
    let header: Header = serde_json::from_str(text).map_err(invalid)?;
    match header.format_version {
        None => return Err(JsonError::NoFormat),
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(v) => return Err(v.as_u64().map_or_else(|| JsonError::BadFormat(v.to_string()), JsonError::Format)),
    }
    serde_json::from_str(text).map_err(invalid)
}

/// Reads a table from a file: errors name it (`FILE:LINE:COLUMN: …`).
pub fn read_json_file(path: &Path) -> Result<Table, String> {
    let shown = escape(&path.display().to_string()).into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    read_json(&text).map_err(|e| match e {
        JsonError::Invalid { .. } => format!("{shown}:{e}"),
        other => format!("{shown}: {other}"),
    })
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
    row_text_parts(&row.id, &row.rule, &row.function, &row.check, &row.result_text())
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

/// Whether `name` names `rule`'s row: its rule id (`R1.3`, every row of
/// that rule), its key, or its check (`deep-chain.tree`,
/// `mt-init-leader-blocks`, `orphan-hup`).
pub fn names_row(name: &str, rule: &Rule) -> bool {
    let (_, check) = kind_and_name(rule.check);
    name == rule.id || name == key(rule) || name == check
}

/// The rows of `rules` that `only` (if not empty) and `skip` leave, in
/// order. A name that matches no row is an error naming it.
pub fn select(rules: &[Rule], only: &[String], skip: &[String]) -> Result<Vec<Rule>, String> {
    for (flag, names) in [("--only", only), ("--skip", skip)] {
        for n in names {
            if !rules.iter().any(|r| names_row(n, r)) {
                return Err(format!(
                    "{flag} {}: no row has that name (name a row by its rule id, e.g. R6.6g; its check, e.g. \
                     deep-chain.tree or mt-init-leader-blocks; or its key, e.g. R6.6g:probe:mt-init-leader-blocks)",
                    escape(n)
                ));
            }
        }
    }
    Ok(rules
        .iter()
        .filter(|r| only.is_empty() || only.iter().any(|n| names_row(n, r)))
        .filter(|r| !skip.iter().any(|n| names_row(n, r)))
        .copied()
        .collect())
}

/// Checks every rule of `rules` with `check` (which also says how long the
/// check took), except those this kernel predates, which are skipped.
/// `progress` sees each row as it is done. Stops at the first
/// [`Outcome::Unavailable`]: without a sandbox nothing can be checked, and
/// the reason (with its fix) is returned.
pub fn evaluate(
    rules: &[Rule],
    kernel: (u32, u32),
    mut check: impl FnMut(&Rule) -> (Outcome, Duration),
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::with_capacity(rules.len());
    for rule in rules {
        let (outcome, took) = match predates(rule, kernel) {
            Some(why) => (Outcome::Skipped(why), Duration::ZERO),
            None => check(rule),
        };
        let (result, detail, recorded) = match outcome {
            Outcome::Pass(d) => (Verdict::Pass, d, None),
            Outcome::Recorded { value, detail } => (Verdict::Pass, detail, Some(value)),
            Outcome::Fail(d) => (Verdict::Fail, d, None),
            Outcome::Skipped(d) => (Verdict::Skipped, d, None),
            Outcome::Unavailable(why) => return Err(why),
        };
        let (kind, name) = kind_and_name(rule.check);
        let row = Row {
            key: key(rule),
            id: rule.id.to_string(),
            rule: rule.what.to_string(),
            function: rule.function.to_string(),
            check: rule.check.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            result,
            recorded,
            detail,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            expected_by_version: rule.by_version.iter().map(Expected::from).collect(),
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

/// Sums up checked rows as a table of `machine`'s kernel, made by `from`
/// in `took`.
pub fn table(rows: Vec<Row>, machine: &Machine, userns: Option<bool>, from: Provenance, took: Duration) -> Table {
    let count = |v: Verdict| rows.iter().filter(|r| r.result == v).count();
    let summary = Summary {
        rules: rows.len(),
        pass: count(Verdict::Pass),
        fail: count(Verdict::Fail),
        skipped: count(Verdict::Skipped),
    };
    let (major, minor) = machine.version;
    Table {
        format_version: FORMAT_VERSION,
        kernel: machine.release.clone(),
        version: format!("{major}.{minor}"),
        uid: machine.uid,
        userns,
        model: from.model,
        binary: from.binary,
        selection: from.selection,
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        summary,
        rows,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernel::Check;

    /// Where the test tables come from.
    pub(crate) fn provenance() -> Provenance {
        Provenance {
            model: ModelVersion { kernel: (6, 18), orphan_hup: "all".into(), mutation: None },
            binary: BinaryVersion { version: "0.1.0".into(), git: Some("v0.1.0-12-gabcdef0".into()) },
            selection: Selection::default(),
        }
    }

    fn rows(kernel: (u32, u32), mut check: impl FnMut(&Rule) -> Outcome) -> Table {
        let machine = Machine { release: format!("{}.{}.0", kernel.0, kernel.1), version: kernel, uid: 0 };
        let rows = evaluate(RULES, kernel, |r| (check(r), Duration::from_millis(3)), |_| {}).expect("no Unavailable");
        table(rows, &machine, Some(true), provenance(), Duration::from_millis(250))
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
        let r = evaluate(
            RULES,
            (6, 18),
            |_| (Outcome::Unavailable("unshare failed — enable them".into()), Duration::ZERO),
            |_| {},
        );
        assert_eq!(r.unwrap_err(), "unshare failed — enable them");
    }

    #[test]
    fn json_has_the_rows_and_version_ranges_and_reads_back_the_same() {
        let t = rows((6, 18), |_| Outcome::Pass("fine".into()));
        let saved = parse_json(&t.to_json()).unwrap();
        assert_eq!(saved, t);
        assert_eq!(saved.rows.len(), RULES.len());
        let mt = saved.rows.iter().find(|r| r.key == "R6.6g:probe:mt-init-leader-blocks").unwrap();
        assert_eq!(mt.result, Verdict::Pass);
        assert!(mt.expected_by_version.iter().all(|e| e.build.is_some() && e.recorded.is_some()), "{mt:?}");
        assert_eq!(mt.duration_ms, 3);
        let r110 = saved.rows.iter().find(|r| r.key == "R1.10:probe:pidfd-info-ppid").unwrap();
        assert_eq!(r110.expected_on((6, 12)).map(|e| e.result), Some(Verdict::Skipped));
        assert_eq!(r110.expected_on((6, 13)).map(|e| e.result), Some(Verdict::Pass));
        assert_eq!(saved.kernel_version(), Some((6, 18)));
        assert_eq!(saved.duration_ms, 250);
    }

    #[test]
    fn every_key_is_unique() {
        let mut keys: Vec<String> = RULES.iter().map(key).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "two rows share a key");
        assert_eq!(
            key(RULES.iter().find(|r| r.id == "R5.2" && matches!(r.check, Check::Build(_))).unwrap()),
            "R5.2:build:orphan-hup"
        );
    }

    #[test]
    fn a_file_that_is_no_table_says_where_and_why() {
        let e = read_json("{\n  \"format_version\": 1,\n  \"kernel\": 7\n}").unwrap_err();
        assert!(matches!(&e, JsonError::Invalid { line: 3, .. }), "{e:?}");
        assert!(e.to_string().starts_with("3:"), "{e}");
        let e = read_json("{\n  \"format_version\": 1,").unwrap_err();
        assert!(
            matches!(&e, JsonError::Invalid { line: 2, column: 22, message } if message == "EOF while parsing a value"),
            "{e:?}"
        );
        assert_eq!(read_json("{\"kernel\": \"6.1\"}").unwrap_err(), JsonError::NoFormat);
        let t = rows((6, 18), |_| Outcome::Pass("fine".into()));
        let other = t.to_json().replacen("\"format_version\": 1", "\"format_version\": 2", 1);
        assert_eq!(read_json(&other).unwrap_err(), JsonError::Format(2));
        let text = t.to_json().replacen("\"format_version\": 1", "\"format_version\": \"1\"", 1);
        assert_eq!(read_json(&text).unwrap_err(), JsonError::BadFormat("\"1\"".into()));
        assert!(JsonError::Format(2).to_string().contains("format version 2; this reparent reads format 1"));
        // Text from the file shown back is escaped.
        let e = read_json("{\"format_version\": 1, \"kernel\": \"\\u001b[2J\", \"version\": 5}").unwrap_err();
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }

    #[test]
    fn only_and_skip_pick_rows_by_id_check_or_key() {
        let names = |only: &[&str], skip: &[&str]| {
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            select(RULES, &s(only), &s(skip)).map(|rs| rs.iter().map(key).collect::<Vec<_>>())
        };
        assert_eq!(names(&["R6.6g"], &[]).unwrap(), ["R6.6g:probe:mt-init-leader-blocks"]);
        assert_eq!(names(&["deep-chain.tree"], &[]).unwrap(), ["R1.3:scenario:deep-chain.tree"]);
        assert_eq!(names(&["R5.2:build:orphan-hup"], &[]).unwrap(), ["R5.2:build:orphan-hup"]);
        let r13 = names(&["R1.3"], &[]).unwrap();
        assert!(r13.len() >= 3 && r13.iter().all(|k| k.starts_with("R1.3:")), "{r13:?}");
        let but = names(&["R1.3"], &["deep-chain.tree"]).unwrap();
        assert_eq!(but.len(), r13.len() - 1);
        assert_eq!(names(&[], &["R9.2"]).unwrap().len(), RULES.len() - 1);
        let e = names(&["R99"], &[]).unwrap_err();
        assert!(e.starts_with("--only R99: no row has that name"), "{e}");
        assert!(names(&[], &["\u{1b}x"]).unwrap_err().starts_with("--skip \\x1bx:"));
    }
}
