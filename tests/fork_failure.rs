//! A node that cannot fork is reported as that node's failure, naming it
//! and the fork's error, across the helper boundary — not as a sandbox
//! that could not be created.
//!
//! `reparent run` grows a chain of 30 processes by `spawn` steps under an
//! RLIMIT_NPROC that allows only a few. The limit binds only a user without
//! CAP_SYS_RESOURCE and CAP_SYS_ADMIN, so as root the binary runs as an
//! otherwise unused uid (which also makes the count, and so the failing
//! fork, exact); as another user the limit is set just above the number of
//! tasks that user already runs. This file holds one test, so that no other
//! test's processes change that count.

use std::os::unix::process::CommandExt;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

/// Tasks (threads included, as RLIMIT_NPROC counts them) whose real uid
/// is `uid`.
fn tasks_of(uid: u32) -> u64 {
    let mut n = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else { continue };
        for t in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(t.path().join("status")) else { continue };
            let real = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next());
            if real == Some(uid.to_string().as_str()) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn a_node_that_cannot_fork_is_named_with_the_fork_error() {
    let dir = tempfile::tempdir().unwrap();
    // A small starting tree (the sandbox refuses a tree that cannot fit
    // before it forks anything), then forks one by one until one fails.
    let mut text = String::from("tree:\n  init\n    a1\n");
    for i in 2..=30 {
        text += &format!("spawn a{i} by a{}\n", i - 1);
    }
    let file = dir.path().join("chain.tree");
    std::fs::write(&file, text).unwrap();
    // Readable by the uid the binary runs as.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let mut cmd = Command::new(EXE);
    cmd.args(["run", "-q"]).arg(&file).current_dir("/");
    // SAFETY: getuid() cannot fail.
    let me = unsafe { libc::getuid() };
    let (limit, exact) = if me == 0 {
        let uid = (61_000..62_000).find(|&u| tasks_of(u) == 0).expect("a uid that runs no process");
        cmd.uid(uid).gid(uid);
        (8, true)
    } else {
        eprintln!("note: not root: the limit counts this user's other tasks, so the failing process may vary");
        (tasks_of(me) + 8, false)
    };
    // SAFETY: setrlimit() is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NPROC, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("cannot create the sandbox"), "a node's failure is not the sandbox's:\n{all}");
    let failure =
        stdout.lines().find(|l| l.contains("resource exhausted: process `")).unwrap_or_else(|| panic!("{all}"));
    assert!(
        failure.contains("EAGAIN") && failure.contains("RLIMIT_NPROC"),
        "EAGAIN from fork, the limit named:\n{all}"
    );
    if exact {
        // Under a fresh uid the count is the same every run: a4's fork of
        // a5 is the one that fails.
        assert!(failure.contains("process `a4`: forking `a5`: clone("), "{all}");
    } else {
        assert!(failure.contains(": forking `a"), "{all}");
    }
}
