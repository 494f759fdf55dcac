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

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reparent_harness::kernel::{self, Verdict};

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
    assert!(text.contains("version-dependent rows"), "{text}");
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
