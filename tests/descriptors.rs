//! `reparent check` in 64 descriptors, alone in its test binary: the
//! kernel counts the descriptors in flight on unix sockets per user, against
//! the same `RLIMIT_NOFILE` (`too_many_unix_fds()`: ETOOMANYREFS past it),
//! so the sandboxes of tests running beside it would count against its
//! limit. Cargo runs test binaries one after another.

use std::process::Command;

/// Trees that fit in 64 descriptors run in 64 descriptors: the helper's
/// kept `/proc` stat files (a cache of up to a quarter of the limit) give
/// way when the nodes' pidfds and channels need the room. They did not:
/// a thread's stat could not be opened, the process read as having no
/// threads, and the case failed as a disagreement with the model (seed 3,
/// case 3).
#[test]
fn random_trees_that_fit_in_64_descriptors_pass_in_64() {
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().join("f").display().to_string();
    let script = "ulimit -n 64 && exec \"$0\" check --jobs 1 --cases 100 --seed 3 --max-nodes 20 --failures-dir \"$1\"";
    let out = Command::new("sh").args(["-c", script, env!("CARGO_BIN_EXE_reparent"), &failures]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("random cases 100/100 passed"), "{text}");
}
