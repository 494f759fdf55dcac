//! The fixture inits under `run --init` and the random trees under an init
//! (`driver::under_init`): the correct minimal init passes, and the one
//! that never reaps fails the reap check with the zombies it left — by the
//! CLI, by the library function the gate calls, and by the replay command
//! of the failure file it writes. The per-check verdicts of the other
//! broken fixtures are `reparent gate`'s to give.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reparent_harness::driver::under_init::{self, UnderInitParams};
use reparent_harness::model::MainGroup;
use reparent_harness::sys::SandboxOptions;

#[path = "support/inits.rs"]
mod inits;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

fn opts(init: &Path, reap_ms: u64) -> SandboxOptions {
    let mut o = SandboxOptions::new(EXE).expect("options");
    o.init = Some(vec![init.display().to_string(), "--".into()]);
    o.reap_deadline = Duration::from_millis(reap_ms);
    o
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(EXE).args(args).output().expect("run reparent");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn every_fixture_init_compiles() {
    for name in inits::FIXTURES {
        let p = inits::fixture_init(name);
        assert!(p.is_file(), "{name}: {}", p.display());
    }
}

#[test]
fn the_correct_init_passes_run_init() {
    let init = inits::fixture_init("correct");
    let init_arg = format!("{} --", init.display());
    let files = [repo("tests/fixtures/inits/orphan-exits.tree"), repo("scenarios/container-init-adopts.tree")];
    let (code, out) = run(&["run", "-q", "--init", &init_arg, &files[0], &files[1]]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 scenario(s): 2 passed, 0 failed, 0 skipped"), "{out}");
    assert!(out.contains("stays in its process group and session; it exited once its main child had exited"), "{out}");
    // `{}` marks the place of the node agent's command, as in `reparent
    // gate`; a `{}` left unreplaced would be executed and fail (127).
    let placed = format!("{} -- {{}}", init.display());
    let (code, out) = run(&["run", "-q", "--init", &placed, &files[0]]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 scenario(s): 1 passed"), "{out}");
}

#[test]
fn the_non_reaping_init_fails_the_reap_check_with_the_zombie_it_left() {
    let init = inits::fixture_init("never-reaps");
    let init_arg = format!("{} --", init.display());
    let file = repo("tests/fixtures/inits/orphan-exits.tree");
    let (code, out) = run(&["--reap-deadline-ms", "200", "run", "-q", "--init", &init_arg, &file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "step 2 `exit c`: the init under test did not reap 1 zombie(s) it adopted within the reap deadline \
             of 200 ms"
        ),
        "{out}"
    );
    assert!(out.contains("`c` (pid "), "the zombie left is named: {out}");
    assert!(out.contains("stays when its main child exits"), "it never reaped its main child either: {out}");
}

#[test]
fn random_trees_pass_under_the_correct_init() {
    let init = inits::fixture_init("correct");
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&init, 1000);
    let out = under_init::random_trees(&o, &UnderInitParams::new(30, 7, dir.path())).expect("random trees");
    assert!(out.passed(), "{:?}", out.failure.map(|f| f.message));
    assert_eq!((out.cases, out.passed), (30, 30));
    assert!(out.steps >= 30, "every case ends with the main child's exit at least: {}", out.steps);
    assert_eq!(out.policy.policy.main_group, MainGroup::Inherited);
    assert!(out.policy.policy.exits_with_main_child, "{}", out.policy.evidence);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no failure file");
}

#[test]
fn random_trees_under_the_non_reaper_fail_shrink_and_replay() {
    let init = inits::fixture_init("never-reaps");
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&init, 200);
    let params = UnderInitParams { exe: EXE.into(), ..UnderInitParams::new(20, 7, dir.path()) };
    let out = under_init::random_trees(&o, &params).expect("random trees");
    let f = out.failure.as_ref().expect("the non-reaper fails");
    assert!(f.message.contains("the init under test did not reap"), "{}", f.message);
    assert!(!out.policy.policy.exits_with_main_child, "{}", out.policy.evidence);
    let path = f.path.as_ref().expect("written");
    let replay = out.replay.clone().expect("a replay command");
    assert!(replay.contains("--init") && replay.contains("--reap-deadline-ms 200"), "{replay}");
    assert!(replay.ends_with(&format!("run {}", path.display())), "{replay}");
    // The exact command fails again, on the same check.
    let again = Command::new("sh").arg("-c").arg(&replay).output().expect("sh");
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(text.contains("the init under test did not reap"), "{text}");
}
