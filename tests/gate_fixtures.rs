//! The gate against the fixture inits of `tests/fixtures/inits/`: the
//! correct one passes every hard check, and each broken one fails exactly
//! the hard checks its header names — no more (a gate that blamed
//! everything would pass a weaker test) and no fewer.

#[path = "support/inits.rs"]
mod inits;

use std::collections::BTreeSet;
use std::time::Duration;

use reparent_harness::gate::{Gate, Kind, Report, Verdict};

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn gate(name: &str) -> Report {
    let init = inits::fixture_init(name);
    Gate::new([init.to_string_lossy().into_owned(), "--".into()])
        .workload(EXE)
        .patience(Duration::from_millis(300))
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
        ("reaps-main-only", &["R1", "R2"]),
        ("one-wait", &["R2"]),
        ("no-forward", &["F1"]),
        ("wrong-status", &["X2"]),
        ("sigchld-ignored-hangs", &["R7"]),
    ];
    for (name, expected) in cases {
        let report = gate(name);
        let want: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(failed_hard(&report), want, "{name}:\n{}", report.table());
        assert_eq!(report.passed(), expected.is_empty(), "{name}:\n{}", report.table());
    }
}

#[test]
fn a_pid_1_that_never_waits_fails_r1_with_its_zombies() {
    // The seed's "irresponsible PID 1": it never waits at all, so beyond
    // R1 and R2 it also never learns its main child's status.
    let report = gate("never-reaps");
    let table = report.table();
    let failed = failed_hard(&report);
    for id in ["R1", "R2", "X1"] {
        assert!(failed.contains(id), "{id} should fail:\n{table}");
    }
    let r1 = report.check("R1").expect("R1");
    assert!(r1.evidence.contains("zombie pids"), "R1 names the zombies it left:\n{table}");
}
