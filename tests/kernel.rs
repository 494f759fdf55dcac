//! `reparent kernel` as a user meets it: a table with a row per rule, every
//! probe passing on this kernel, the JSON form holding the same rows, a
//! failing scenario row shown as FAIL with its replay command and exit
//! status 1 — and no probe process left behind.
//!
//! The scenario rows are run against a copy of the bundled scenarios in
//! which one file is made wrong on purpose: its row must FAIL, and every
//! other scenario row must pass (or be skipped, saying why). Every scenario
//! the catalogue names must be bundled; what a row whose file is missing
//! shows is checked with a scenarios directory that does not exist.
//!
//! The JSON's shape is a snapshot (durations redacted), since other tools
//! (a matrix over kernels) read it; `--json-out`, `--only`, `--baseline`
//! and `reparent diff` are run as a user runs them, on tables doctored to
//! hold a regression, a changed recorded value and files that are no
//! table.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::Duration;

use reparent_harness::kernel::{self, Check, Outcome, Verdict};

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

/// The scenario made wrong on purpose, and what is done to it: its last
/// `expect:` block puts `leaf2` under `outer`, which is no subreaper any
/// more by then.
const BROKEN: &str = "subreaper-off-skipped.tree";

fn scenarios_with_one_broken() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for e in std::fs::read_dir(&bundled).unwrap().flatten() {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let p = dir.path().join(BROKEN);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.ends_with("\n    leaf2\n"), "{BROKEN} changed: update this test");
    std::fs::write(&p, format!("{}\n      leaf2\n", &text[..text.len() - "\n    leaf2\n".len()])).unwrap();
    dir
}

fn kernel(args: &[&str], dir: &Path) -> Output {
    Command::new(EXE).arg("kernel").args(args).arg("--scenarios").arg(dir).output().expect("run reparent kernel")
}

/// Processes of a `reparent` binary still running as probe helpers (no
/// other command uses that argument).
fn probe_helpers_alive() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmd.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a.ends_with("reparent"))
            && args.get(1).is_some_and(|a| a.starts_with("__probe"))
        {
            out.push(args.join(" "));
        }
    }
    out
}

#[test]
fn kernel_table_in_text_and_json() {
    let dir = scenarios_with_one_broken();
    let d = dir.path().to_path_buf();
    // Both forms at once: each takes a few seconds.
    let json_run = std::thread::spawn(move || kernel(&["--json"], &d));
    let text_out = kernel(&[], dir.path());
    let json_out = json_run.join().unwrap();
    assert!(probe_helpers_alive().is_empty(), "left behind: {:?}", probe_helpers_alive());

    // --- JSON
    let stderr = String::from_utf8_lossy(&json_out.stderr);
    let json = String::from_utf8_lossy(&json_out.stdout);
    let t = kernel::parse_json(&json).unwrap_or_else(|e| panic!("{e}: {json}{stderr}"));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(t.kernel, release.trim());
    assert!(t.rows.len() >= 25, "{} rows", t.rows.len());
    for r in &t.rows {
        assert!(!r.id.is_empty() && !r.rule.is_empty() && !r.function.is_empty(), "{r:?}");
        let versioned = !r.expected_by_version.is_empty();
        if let Some(probe) = r.check.strip_prefix("probe ") {
            // Every probe passes; only a feature this kernel predates may
            // skip it, with the reason.
            let ok = r.result == Verdict::Pass
                || (r.result == Verdict::Skipped && versioned && r.detail.contains("needs Linux"));
            assert!(ok, "probe {probe}: {:?}: {}", r.result, r.detail);
        } else if let Some(name) = r.check.strip_prefix("build ") {
            // A build row records what it saw and passes, unless its case
            // broke.
            assert_eq!(r.result, Verdict::Pass, "build {name}: {}", r.detail);
            assert!(r.detail.starts_with(&format!("{name} ")), "build {name}: {}", r.detail);
            let word = r.recorded.as_deref().unwrap_or_else(|| panic!("build {name} recorded nothing"));
            assert!(["all", "stopped-only"].contains(&word), "build {name}: {word}");
        } else if r.check == BROKEN {
            assert_eq!(r.result, Verdict::Fail, "{r:?}");
            assert!(r.detail.contains("the `expect:` block disagrees with the kernel"), "{}", r.detail);
        } else {
            assert!(dir.path().join(&r.check).exists(), "the catalogue names {}, which is not bundled", r.check);
            let ok = r.result == Verdict::Pass || (r.result == Verdict::Skipped && !r.detail.is_empty());
            assert!(ok, "{}: {:?}: {}", r.check, r.result, r.detail);
        }
    }
    let count = |v: Verdict| t.rows.iter().filter(|r| r.result == v).count();
    assert_eq!((t.summary.rules, t.summary.fail), (t.rows.len(), count(Verdict::Fail)));
    assert_eq!((t.summary.pass, t.summary.skipped), (count(Verdict::Pass), count(Verdict::Skipped)));
    assert_eq!(json_out.status.code(), Some(1), "a failed row makes the exit status 1");
    // R6.6g differs between builds: it records which behaviour it saw.
    let mt = t.rows.iter().find(|r| r.check == "probe mt-init-leader-blocks").expect("R6.6g row");
    assert!(mt.expected_by_version.len() >= 2, "{mt:?}");
    let word = mt.recorded.as_deref().unwrap_or_else(|| panic!("R6.6g recorded nothing: {mt:?}"));
    assert!(["killed", "survives"].contains(&word), "{mt:?}");
    assert!(mt.detail.starts_with(&format!("{word}: ")), "{mt:?}");
    for r in t.rows.iter().filter(|r| r.recorded.is_some()) {
        assert!(r.check == "probe mt-init-leader-blocks" || r.check.starts_with("build "), "{r:?}");
    }

    // --- text: the same rows, in the same order, with the same results
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert_eq!(text_out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&text_out.stderr));
    let lines: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("ID ")).skip(1).take(t.rows.len()).collect();
    assert_eq!(lines.len(), t.rows.len(), "{text}");
    for (line, r) in lines.iter().zip(&t.rows) {
        assert!(line.starts_with(&format!("{} ", r.id)), "{line} / {r:?}");
        assert!(line.contains(&format!("  {}  ", r.check)), "{line} / {r:?}");
        let first = r.detail.lines().next().unwrap_or("");
        let shown = match (r.result, &r.recorded) {
            (Verdict::Pass, Some(v)) => format!("pass, recorded: {v}"),
            (Verdict::Pass, None) => "pass".to_string(),
            (Verdict::Fail, _) => format!("FAIL ({first})"),
            (Verdict::Skipped, _) => format!("skipped ({first})"),
        };
        assert!(line.ends_with(&shown), "{line} / {shown}");
    }
    let s = t.summary;
    let summary = format!("{} rules: {} pass, {} fail, {} skipped", s.rules, s.pass, s.fail, s.skipped);
    assert!(text.contains(&format!("\n{summary}\n")), "{text}");
    let broken: PathBuf = dir.path().join(BROKEN);
    assert!(text.contains(&format!("replay: {EXE} run {}", broken.display())), "{text}");
    assert!(text.contains("what the probes and build cases saw:") && text.contains("stale at readiness"), "{text}");
    assert!(text.contains("version- and build-dependent rows"), "{text}");
}

#[test]
fn a_missing_scenarios_dir_fails_every_scenario_row_but_runs_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("none");
    let out = kernel(&["--json"], &empty);
    let t = kernel::parse_json(&String::from_utf8_lossy(&out.stdout)).expect("JSON");
    assert_eq!(out.status.code(), Some(1));
    for r in t.rows.iter().filter(|r| !r.check.starts_with("probe ") && !r.check.starts_with("build ")) {
        assert_eq!(r.result, Verdict::Fail, "{r:?}");
        assert!(r.detail.starts_with("scenario file missing"), "{r:?}");
    }
}

fn reparent(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run reparent")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A small table, as the JSON is written: every field a reader may use.
/// Durations are redacted; everything else is fixed.
#[test]
fn the_json_schema() {
    let names: Vec<String> =
        ["R1.10", "R5.2:build:orphan-hup", "R6.6g", "deep-chain.tree"].iter().map(|s| s.to_string()).collect();
    let rules = kernel::select(kernel::RULES, &names, &[]).unwrap();
    let rows = kernel::evaluate(
        &rules,
        (6, 12),
        |r| {
            let o = match r.check {
                Check::Build(_) => Outcome::Recorded { value: "all".into(), detail: "orphan-hup all: …".into() },
                Check::Probe("mt-init-leader-blocks") => {
                    Outcome::Recorded { value: "killed".into(), detail: "killed: …".into() }
                }
                Check::Probe(_) => Outcome::Pass("what the probe saw".into()),
                Check::Scenario(_) => Outcome::Fail("mismatch after step 1".into()),
            };
            (o, Duration::from_millis(17))
        },
        |_| {},
    )
    .unwrap();
    let machine = kernel::Machine { release: "6.12.118-cloud-amd64".into(), version: (6, 12), uid: 1000 };
    let from = kernel::Provenance {
        model: kernel::ModelVersion { kernel: (6, 12), orphan_hup: "all".into(), mutation: None },
        binary: kernel::BinaryVersion { version: "0.1.0".into(), git: Some("abcdef0".into()) },
        selection: kernel::Selection { only: names.clone(), skip: vec![] },
    };
    let t = kernel::table(rows, &machine, Some(true), from, Duration::from_millis(1234));
    // Durations vary from run to run: the snapshot holds 0 in their place.
    let mut shown = t.clone();
    shown.duration_ms = 0;
    shown.rows.iter_mut().for_each(|r| r.duration_ms = 0);
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/kernel"),
        prepend_module_to_snapshot => false,
        description => "reparent kernel --json: the format other tools read (durations redacted)",
        omit_expression => true,
    }, {
        insta::assert_snapshot!("json-schema", shown.to_json());
    });
    // What was redacted was there (a row the kernel predates is not run).
    assert_eq!(t.duration_ms, 1234);
    for r in &t.rows {
        assert_eq!(r.duration_ms, if r.result == Verdict::Skipped { 0 } else { 17 }, "{r:?}");
    }
}

#[test]
fn json_out_only_skip_and_a_bad_row_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.json");
    let o = reparent(&["kernel", "--only", "R2.1", "--only", "R6.6g", "--json-out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = kernel::read_json_file(&out).unwrap();
    let keys: Vec<&str> = t.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["R2.1:probe:subreaper-readback", "R6.6g:probe:mt-init-leader-blocks"]);
    assert_eq!(t.selection.only, ["R2.1", "R6.6g"]);
    assert_eq!(t.summary.rules, 2);
    assert!(t.rows[0].duration_ms < 60_000 && t.rows[1].recorded.is_some(), "{t:?}");
    assert_eq!(t.binary.version, env!("CARGO_PKG_VERSION"));
    // The text of the same run holds the same two rows.
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("\n2 rules: 2 pass, 0 fail, 0 skipped\n(only R2.1, R6.6g)\n"), "{shown}");
    let rows: Vec<&str> = shown.lines().filter(|l| l.starts_with("R2.1 ") || l.starts_with("R6.6g ")).collect();
    assert_eq!(rows.len(), 2, "{shown}");

    let o = reparent(&["kernel", "--skip", "R99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--skip R99: no row has that name"), "{}", text(&o));
}

/// Saves `t` with `change` applied to the row `key`.
fn doctored(dir: &Path, name: &str, t: &kernel::Table, key: &str, change: impl Fn(&mut kernel::Row)) -> PathBuf {
    let mut t = t.clone();
    change(t.rows.iter_mut().find(|r| r.key == key).unwrap_or_else(|| panic!("no row {key}")));
    let p = dir.join(name);
    std::fs::write(&p, t.to_json()).unwrap();
    p
}

#[test]
fn diff_of_doctored_tables_and_of_files_that_are_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let o = reparent(&["kernel", "--only", "R2.1", "--only", "R5.2", "--json-out", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = kernel::read_json_file(&good).unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_string();

    // A pass flipped to FAIL: a regression, exit 1, the row named with the
    // evidence of both tables.
    let failing = doctored(dir.path(), "failing.json", &t, "R2.1:probe:subreaper-readback", |r| {
        r.result = Verdict::Fail;
        r.detail = "saw prctl returned 0, PR_GET_CHILD_SUBREAPER read 0; expected 0 and 1 (R2.1)".into();
    });
    let o = reparent(&["diff", &p(&good), &p(&failing)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("regressions (newly failing) (1):\n  R2.1 probe subreaper-readback: pass -> FAIL\n"), "{out}");
    assert!(out.contains("    OLD: prctl returned 0, PR_GET_CHILD_SUBREAPER read 1\n"), "{out}");
    assert!(out.contains("    NEW: saw prctl returned 0, PR_GET_CHILD_SUBREAPER read 0;"), "{out}");
    // The other way round: newly passing, exit 0.
    let o = reparent(&["diff", &p(&failing), &p(&good)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("newly passing (1):\n  R2.1 probe subreaper-readback: FAIL -> pass\n"), "{}", text(&o));

    // A recorded value that changed is shown, and is no regression.
    let other = if t.rows.iter().any(|r| r.recorded.as_deref() == Some("all")) { "stopped-only" } else { "all" };
    let build = doctored(dir.path(), "build.json", &t, "R5.2:build:orphan-hup", |r| r.recorded = Some(other.into()));
    let o = reparent(&["diff", &p(&good), &p(&build)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("-> pass (recorded: {other})\n")), "{}", text(&o));
    assert!(text(&o).contains("recorded value changed"), "{}", text(&o));

    // Files that are no table: path, line and column; another format.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"format_version\": 1,\n  \"kernel\": 5\n}\n").unwrap();
    let o = reparent(&["diff", &p(&bad), &p(&good)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains(&format!("{}:3:13: not a `reparent kernel --json` table", bad.display())),
        "{}",
        text(&o)
    );
    let v2 = dir.path().join("v2.json");
    std::fs::write(
        &v2,
        std::fs::read_to_string(&good).unwrap().replacen("\"format_version\": 1", "\"format_version\": 2", 1),
    )
    .unwrap();
    let o = reparent(&["diff", &p(&good), &p(&v2)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("a table of format version 2; this reparent reads format 1"), "{}", text(&o));
    let o = reparent(&["diff", &p(&good), "/nonexistent/x.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/x.json: cannot read it"), "{}", text(&o));
}

#[test]
fn baseline_shows_a_regression_of_this_run_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let g = good.to_str().unwrap();
    let o = kernel(&["--only", BROKEN, "--json-out", g], &bundled);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The same row, its scenario made wrong: a regression against the
    // baseline.
    let broken = scenarios_with_one_broken();
    let o = kernel(&["--only", BROKEN, "--baseline", g], broken.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("regressions (newly failing) (1):\n  R2.3 {BROKEN}: pass -> FAIL\n")), "{out}");
    // With --json, stdout holds the JSON alone and the comparison goes to
    // stderr.
    let o = kernel(&["--only", BROKEN, "--json", "--baseline", g], broken.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = kernel::parse_json(&String::from_utf8_lossy(&o.stdout)).expect("JSON alone on stdout");
    assert_eq!(t.rows.len(), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("changes since the baseline:\n"), "{}", text(&o));
    // Against itself nothing changed: exit 0.
    let o = kernel(&["--only", BROKEN, "--baseline", g], &bundled);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("; 1 unchanged\n"), "{}", text(&o));
    // A baseline that is no table stops the run before it starts.
    let o = kernel(&["--baseline", "/nonexistent/old.json"], &bundled);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--baseline /nonexistent/old.json: cannot read it"), "{}", text(&o));
}
