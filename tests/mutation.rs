//! The suite checks itself: with a deliberate bug in the model, the random
//! cases must fail, shrink the failure to a few processes, write it out as a
//! `.tree` file and print the command that replays it (the file holds it
//! too). Replayed as printed, with the bug, the file fails again;
//! replayed with the real model it passes. The cases run two at a time, so
//! this also shows that a failure found by one of several workers is still
//! shrunk and written out.

use std::process::Command;

use reparent_harness::scenario;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn caught(mutation: &str, max_nodes: usize) {
    caught_within(mutation, max_nodes, 500)
}

/// `cases`: how many random cases the bug gets to show itself in; rules
/// that need a rarer shape of tree get more.
fn caught_within(mutation: &str, max_nodes: usize, cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-scenarios");
    std::fs::create_dir(&empty).unwrap();
    let failures = dir.path().join("failures");
    let out = Command::new(EXE)
        .args(["--model-mutation", mutation, "check", "--cases", &cases.to_string(), "--seed", "1", "--jobs", "2"])
        .args(["--scenarios", empty.to_str().unwrap(), "--failures-dir", failures.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "the bug went unnoticed:\n{text}");
    let file = std::fs::read_dir(&failures).unwrap().next().expect("a shrunk case was written").unwrap().path();
    let shown = file.display().to_string();
    let replay = format!("{EXE} --model-mutation {mutation} run {shown}");
    assert!(text.contains(&format!("replay: {replay}\n")), "{text}");

    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains(&format!("\n# replay: {replay}\n")), "the file says how to replay it:\n{written}");
    let s = scenario::parse(&shown, &written).expect("the shrunk case is a valid scenario");
    let nodes = s.tree.preorder().len();
    assert!(nodes <= max_nodes, "shrunk to {nodes} processes, more than {max_nodes}:\n{written}");

    let printed = Command::new("sh").arg("-c").arg(&replay).output().unwrap().status.code();
    assert_eq!(printed, Some(1), "replaying as printed, with the bug, fails again");
    let real = Command::new(EXE).args(["run", "-q", &shown]).output().unwrap().status.code();
    assert_eq!(real, Some(0), "the real model passes the shrunk case:\n{written}");
}

#[test]
fn a_model_taking_the_farthest_subreaper_is_caught_and_shrunk() {
    caught("farthest-subreaper", 5);
}

#[test]
fn a_model_where_fork_inherits_the_subreaper_flag_is_caught_and_shrunk() {
    caught("subreaper-inherited", 4);
}

#[test]
fn a_model_whose_threaded_hop_sends_no_pdeath_signal_is_caught_and_shrunk() {
    caught("threaded-hop-no-pdeath", 5);
}

#[test]
fn a_model_whose_reaper_walk_leaves_the_namespace_is_caught_and_shrunk() {
    caught("walk-crosses-namespaces", 6);
}

#[test]
fn a_model_that_never_signals_an_orphaned_group_is_caught_and_shrunk() {
    // It needs a process group whose last link to its session dies while
    // a member is stopped, and a new parent outside the session.
    caught_within("no-orphaned-pgrp-signal", 7, 1000);
}

#[test]
fn a_model_where_fork_inherits_the_pdeath_signal_is_caught_and_shrunk() {
    caught("pdeath-inherited", 5);
}
