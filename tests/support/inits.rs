//! Test support: the fixture inits of `tests/fixtures/inits/`, compiled on
//! demand. Use it from a test file with
//! `#[path = "support/inits.rs"] mod inits;`.
//!
//! Each fixture is one C file taking `INIT [--] CMD ARGS...`; its header
//! says which check of shared/init-gate.md it breaks. [`fixture_init`]
//! compiles one with `cc -O2` into the test target's temporary directory,
//! once per test process (and, through an atomic rename, safely when
//! several test binaries compile the same one at once), and returns the
//! path of the binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The fixtures, by name (the C file without `.c`): a correct init (and
/// ones that differ from it only in policy: escalates SIGTERM to SIGKILL,
/// F5; loses a signal sent before it is set up, F6; leaves its child out
/// of the terminal's foreground and SIGTERMs survivors, P2 and T2), five
/// that break one hard check each (and the seed's non-waiting PID 1), and
/// four hostile ones the gate must survive.
pub const FIXTURES: [&str; 14] = [
    "correct",
    "escalates",
    "late-signals",
    "background-child",
    "never-reaps",
    "reaps-main-only",
    "one-wait",
    "no-forward",
    "wrong-status",
    "sigchld-ignored-hangs",
    "hang",
    "ignore-all",
    "exit-at-once",
    "fork-forever",
];

/// The compiled fixture `name` (one of [`FIXTURES`]). Panics, naming the
/// compiler's complaint, if it cannot be built.
pub fn fixture_init(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inits").join(format!("{name}.c"));
    assert!(src.is_file(), "no fixture init {name}: {} is missing", src.display());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-inits");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let out = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let cc = Command::new("cc").args(["-O2", "-Wall", "-o"]).arg(&tmp).arg(&src).output();
    let cc =
        cc.unwrap_or_else(|e| panic!("cannot run cc to build the fixture init {name}: {e} (install a C compiler)"));
    assert!(cc.status.success(), "cc {} failed:\n{}", src.display(), String::from_utf8_lossy(&cc.stderr));
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), out.display()));
    built.insert(name.to_string(), out.clone());
    out
}
