//! The gate against the fixture inits of `tests/fixtures/inits/`: the
//! correct one passes every hard check, and each broken one fails exactly
//! the hard checks its header names — no more (a gate that blamed
//! everything would pass a weaker test) and no fewer. The inits that leave
//! adopted orphans unreaped also fail RT, the random trees of
//! init-gate.md section 4, whose shrunk file fails again with the command
//! the verdict names.

#[path = "support/inits.rs"]
mod inits;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use reparent_harness::gate::{Gate, Kind, Report, Verdict};

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn gate(name: &str, failures: &Path) -> Report {
    let init = inits::fixture_init(name);
    Gate::new([init.to_string_lossy().into_owned(), "--".into()])
        .workload(EXE)
        .patience(Duration::from_millis(300))
        .failures_dir(failures)
        .run()
        .unwrap_or_else(|e| panic!("the gate could not run {name}: {e}"))
}

fn failed_hard(r: &Report) -> BTreeSet<&str> {
    r.checks
        .iter()
        .filter(|c| c.kind == Kind::Hard && matches!(c.verdict, Verdict::Fail { .. }))
        .map(|c| c.id.as_ref())
        .collect()
}

#[test]
fn each_fixture_fails_exactly_its_hard_checks() {
    let cases: [(&str, &[&str]); 6] = [
        ("correct", &[]),
        // RT too: its random trees leave zombies past the reap deadline.
        ("reaps-main-only", &["R1", "R2", "RT"]),
        ("one-wait", &["R2"]),
        ("no-forward", &["F1"]),
        ("wrong-status", &["X2"]),
        ("sigchld-ignored-hangs", &["R7"]),
    ];
    let failures = tempfile::tempdir().unwrap();
    for (name, expected) in cases {
        let report = gate(name, failures.path());
        let want: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(failed_hard(&report), want, "{name}:\n{}", report.table());
        assert_eq!(report.passed(), expected.is_empty(), "{name}:\n{}", report.table());
        if expected.is_empty() || name != "reaps-main-only" {
            let rt = report.check("RT").expect("RT");
            assert_eq!(rt.verdict, Verdict::Pass, "{name}: RT\n{}", report.table());
            assert!(rt.evidence.starts_with("20/20 cases (seed 1)"), "{name}: {}", rt.evidence);
        }
    }
}

#[test]
fn rt_names_the_shrunk_file_and_a_command_that_fails_again() {
    let failures = tempfile::tempdir().unwrap();
    let report = gate("reaps-main-only", failures.path());
    let rt = report.check("RT").expect("RT");
    let table = report.table();
    let Verdict::Fail { seen, .. } = &rt.verdict else { panic!("RT must fail:\n{table}") };
    assert!(seen.contains("(seed 1;") && seen.contains("the init under test did not reap"), "{table}");
    assert!(rt.evidence.starts_with("the init's failure; shrunk to "), "{table}");
    let (_, replay) = rt.evidence.split_once("it fails again with: ").expect("a replay command");
    let replay = replay.split("; ").next().unwrap();
    let file = replay.rsplit(' ').next().unwrap();
    assert!(Path::new(file).starts_with(failures.path()) && Path::new(file).is_file(), "{replay}");
    assert!(replay.contains("--init") && replay.contains("--reap-deadline-ms 300"), "{replay}");
    let again = std::process::Command::new("sh").arg("-c").arg(replay).output().expect("sh");
    let out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{replay}:\n{out}");
    assert!(out.contains("the init under test did not reap"), "{out}");
}

#[test]
fn a_pid_1_that_never_waits_fails_r1_with_its_zombies() {
    // The seed's "irresponsible PID 1": it never waits at all, so beyond
    // R1 and R2 it also never learns its main child's status.
    let failures = tempfile::tempdir().unwrap();
    let report = gate("never-reaps", failures.path());
    let table = report.table();
    let failed = failed_hard(&report);
    for id in ["R1", "R2", "X1", "RT"] {
        assert!(failed.contains(id), "{id} should fail:\n{table}");
    }
    let r1 = report.check("R1").expect("R1");
    assert!(r1.evidence.contains("zombie pids"), "R1 names the zombies it left:\n{table}");
}
