//! The init gate against real and made-up inits: tini (installed here),
//! the fixture inits of `tests/fixtures/inits/` (a correct minimal init,
//! controls that break one thing each, and hostile inits — hang, ignore
//! every signal, exit at once, never start the child, fork without end —
//! that must still get a full report within the deadline and leave
//! nothing behind, also when the gate itself is killed), and the command
//! line's outputs. `tests/gate_fixtures.rs` holds each broken fixture to
//! its exact set of failing hard checks; `tests/gate_inits.rs` snapshots
//! the real inits' tables.

#[path = "support/inits.rs"]
mod fixtures;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reparent_harness::gate::{Check, Gate, Kind, Report, Verdict};
use reparent_harness::sys::os;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

/// Fixture inits copied into a directory of this test's own, whose path
/// marks every process they start (see [`leftovers`]): tests run at once,
/// and each must see only its own.
struct Inits {
    dir: tempfile::TempDir,
}

impl Inits {
    fn new() -> Inits {
        let dir = tempfile::Builder::new().prefix("reparent-gate-inits").tempdir().unwrap();
        // Readable by an unprivileged user running the tests as well.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Inits { dir }
    }

    /// The fixture `name`, compiled, in this directory.
    fn path(&self, name: &str) -> String {
        let to = self.dir.path().join(name);
        if !to.exists() {
            // Copied by a child, not here: a file this process held open
            // for writing while another test's thread forked would stay
            // open in that child until its exec, and exec'ing the copy
            // meanwhile fails (ETXTBSY).
            let copied = Command::new("cp").arg(fixtures::fixture_init(name)).arg(&to).status().unwrap();
            assert!(copied.success(), "cp {name}");
        }
        to.to_string_lossy().into_owned()
    }

    fn gate(&self, name: &str) -> Gate {
        Gate::new([self.path(name), "--".into()])
            .workload(EXE)
            .deadline(Duration::from_secs(2))
            .patience(Duration::from_millis(300))
            .escalation(Duration::from_secs(2))
            .failures_dir(self.dir.path().join("failures"))
    }
}

/// Every process whose command line names `marker`.
fn leftovers(marker: &Path) -> Vec<String> {
    let marker = marker.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            if pid.to_string() == me {
                return None;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(&marker).then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

fn verdict<'a>(r: &'a Report, id: &str) -> &'a Check {
    r.check(id).unwrap_or_else(|| panic!("no check {id}"))
}

fn is_fail(c: &Check) -> bool {
    matches!(c.verdict, Verdict::Fail { .. })
}

#[test]
fn tini_passes_every_hard_check_but_r7() {
    assert!(
        Path::new("/usr/bin/tini").exists(),
        "/usr/bin/tini is missing: install it (apt-get install tini) — this test gates a real init"
    );
    let failures = tempfile::tempdir().unwrap();
    let report = Gate::new(["/usr/bin/tini", "--"])
        .workload(EXE)
        .patience(Duration::from_millis(300))
        .failures_dir(failures.path())
        .run()
        .unwrap();
    let table = report.table();
    // A finding about tini 0.19: started with SIGCHLD ignored it never
    // learns its child's status (waitpid gives ECHILD) and hangs.
    let r7 = verdict(&report, "R7");
    assert!(is_fail(r7) && r7.verdict.to_string().contains("hung"), "{table}");
    for c in report.checks.iter().filter(|c| c.kind == Kind::Hard && c.id != "R7") {
        assert!(c.verdict == Verdict::Pass, "{} should pass:\n{table}", c.id);
    }
    assert_eq!(verdict(&report, "P1").value(), "own-group", "{table}");
    assert_eq!(verdict(&report, "T1").value(), "immediate", "{table}");
    assert_eq!(verdict(&report, "X3").value(), "127/126", "{table}");
    assert_eq!(verdict(&report, "R4").value(), "prompt", "{table}");
    assert!(!report.passed());
    let panic = std::panic::catch_unwind(|| report.assert_hard_checks_pass()).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("failed the gate on R7") && msg.contains("R1  hard   pass"), "{msg}");
}

#[test]
fn a_correct_init_passes_and_each_broken_one_fails_its_check() {
    let inits = Inits::new();
    let report = inits.gate("correct").run().unwrap();
    report.assert_hard_checks_pass();
    assert_eq!(verdict(&report, "P1").value(), "inherited", "{}", report.table());
    assert_eq!(verdict(&report, "F2").value(), "all", "{}", report.table());
    assert_eq!(verdict(&report, "RT").verdict, Verdict::Pass, "{}", report.table());

    // Waits for its main child only: the orphans stay zombies.
    let report = inits.gate("reaps-main-only").run().unwrap();
    let table = report.table();
    for id in ["R1", "R2"] {
        let c = verdict(&report, id);
        assert!(is_fail(c) && c.evidence.contains("zombie pids"), "{id}:\n{table}");
    }
    assert_eq!(verdict(&report, "R4").value(), "never", "{table}");
    assert_eq!(verdict(&report, "X1").verdict, Verdict::Pass, "{table}");

    // Never waits at all: as PID 1 at SIG_DFL it also forwards nothing
    // (the kernel drops the signals) and never learns the exit status.
    let report = inits.gate("never-reaps").run().unwrap();
    let table = report.table();
    for id in ["R1", "R2", "F1", "X1"] {
        assert!(is_fail(verdict(&report, id)), "{id}:\n{table}");
    }

    // Passes on the wrong status when its child is killed.
    let report = inits.gate("wrong-status").run().unwrap();
    let table = report.table();
    assert!(is_fail(verdict(&report, "X2")), "X2:\n{table}");
    assert_eq!(verdict(&report, "R1").verdict, Verdict::Pass, "{table}");
    assert!(leftovers(inits.dir.path()).is_empty(), "{:?}", leftovers(inits.dir.path()));
}

#[test]
fn f5_tells_an_init_that_escalates_from_one_that_does_not() {
    let inits = Inits::new();
    // SIGKILL one second after SIGTERM; F5's window here is 2 s.
    let report = inits.gate("escalates").random_trees(0, 1).run().unwrap();
    let f5 = verdict(&report, "F5");
    assert_eq!(f5.value(), "sigkill", "{}", report.table());
    assert!(f5.evidence.contains("was killed") && f5.evidence.contains("exit 137"), "{}", f5.evidence);
    let report = inits.gate("correct").random_trees(0, 1).run().unwrap();
    let f5 = verdict(&report, "F5");
    assert_eq!(f5.value(), "no", "{}", report.table());
    assert!(f5.evidence.contains("still ran 2000 ms") && f5.evidence.contains("time-based"), "{}", f5.evidence);
    // One that forwards nothing has nothing to escalate.
    let report = inits.gate("no-forward").random_trees(0, 1).run().unwrap();
    let f5 = verdict(&report, "F5").verdict.to_string();
    assert!(f5.starts_with("not reached: SIGTERM did not reach it"), "{f5}");
}

#[test]
fn f6_p2_t2_tell_a_correct_init_from_ones_that_differ() {
    let inits = Inits::new();
    let correct = inits.gate("correct").random_trees(0, 1).run().unwrap();
    let table = correct.table();
    assert_eq!(verdict(&correct, "F6").value(), "never-lost", "{table}");
    assert!(verdict(&correct, "F6").evidence.contains("SIGUSR1 through the init's pidfd"), "{table}");
    assert_eq!(verdict(&correct, "P2").value(), "foreground", "{table}");
    let t2 = verdict(&correct, "T2");
    assert_eq!(t2.value(), "no", "{table}");
    // The kernel keeps a reaped process's status for its pidfd since 6.15;
    // before, T2 falls back on the survivor's reports (and says it races).
    if os::kernel_version() >= (6, 15) {
        assert!(t2.evidence.contains("killed by SIGKILL") && t2.evidence.contains("PIDFD_INFO_EXIT"), "{table}");
    }

    // Unblocks everything first and sets up after its fork: the signal
    // sent as soon as the gate holds its pidfd is dropped (R6.6); F1,
    // after READY, still passes.
    let late = inits.gate("late-signals").random_trees(0, 1).run().unwrap();
    let table = late.table();
    assert!(verdict(&late, "F6").value().starts_with("lost-"), "{table}");
    assert_eq!(verdict(&late, "F1").verdict, Verdict::Pass, "{table}");

    // Its child in a group of its own, not given the terminal; survivors
    // get its SIGTERM before it exits.
    let bg = inits.gate("background-child").random_trees(0, 1).run().unwrap();
    let table = bg.table();
    let p2 = verdict(&bg, "P2");
    assert_eq!(p2.value(), "not-foreground", "{table}");
    assert!(p2.evidence.contains("not the main child's"), "{table}");
    let t2 = verdict(&bg, "T2");
    if os::kernel_version() >= (6, 15) {
        assert_eq!(t2.value(), "sigterm", "{table}");
        assert!(t2.evidence.contains("killed by SIGTERM"), "{table}");
    }
    bg.assert_hard_checks_pass();
    assert!(leftovers(inits.dir.path()).is_empty(), "{:?}", leftovers(inits.dir.path()));
}

#[test]
fn hostile_inits_get_a_full_report_in_time_and_leave_nothing() {
    let inits = Inits::new();
    let deadline = Duration::from_secs(1);
    for name in ["hang", "ignore-all", "exit-at-once", "fork-forever"] {
        let t = Instant::now();
        let report = inits.gate(name).deadline(deadline).run().unwrap();
        let took = t.elapsed();
        let table = report.table();
        // Without READY only X3's two trials follow the main one; with it
        // (ignore-all), the main trial waits out five patiences and a
        // deadline (F5's trial beside it), then the other 29 trials (F6's
        // fresh starts only where a signal is forwarded: not here) run 12
        // at a time, one deadline per round at most, with RT's random
        // trees beside them.
        assert!(took < deadline * 8, "{name}: the gate took {took:?}:\n{table}");
        assert_eq!(report.checks.len(), 31, "{name}: every check has a verdict");
        assert!(!report.passed(), "{name} must fail:\n{table}");
        let left = leftovers(inits.dir.path());
        assert!(left.is_empty(), "{name} left processes behind: {left:?}");
        match name {
            "exit-at-once" => {
                assert!(verdict(&report, "R1").verdict.to_string().contains("never reported READY"), "{table}");
                assert!(verdict(&report, "X1").verdict.to_string().starts_with("not reached"), "{table}");
                // exit 0 although the command could not run.
                assert!(is_fail(verdict(&report, "X3")), "{table}");
            }
            "ignore-all" => {
                // It runs its child and never exits; its SIGCHLD is
                // ignored, so the kernel reaps its orphans for it (R3.3).
                assert_eq!(verdict(&report, "R1").verdict, Verdict::Pass, "{table}");
                assert!(verdict(&report, "X1").verdict.to_string().contains("hang"), "{table}");
            }
            _ => {
                let r1 = verdict(&report, "R1").verdict.to_string();
                assert!(r1.contains("not reached") && r1.contains("READY"), "{name}: {table}");
            }
        }
    }
}

/// `reparent gate` killed by `sig` while the init under test runs: the
/// init and everything it started die with it.
fn gate_killed_leaves_nothing(sig: i32) {
    use std::os::unix::process::CommandExt;
    let inits = Inits::new();
    let mut cmd = Command::new(EXE);
    cmd.args(["gate", "--deadline", "20000", "--failures-dir"])
        .arg(inits.dir.path().join("failures"))
        .args(["--", &inits.path("ignore-all"), "--"])
        .stdout(std::process::Stdio::null());
    // As a terminal's Ctrl-C finds it: a test run from a background job
    // (bash without job control ignores SIGINT there) would hand the gate
    // an ignored SIGINT, which it rightly keeps.
    // SAFETY: signal() is async-signal-safe; nothing else runs here.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(sig, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pidfd = os::pidfd_open(child.id() as i32).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    // The init and its workload run (READY is reached within moments).
    while leftovers(inits.dir.path()).len() < 2 {
        assert!(Instant::now() < until, "the init under test never started");
        std::thread::yield_now();
    }
    os::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), sig).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let until = Instant::now() + Duration::from_secs(10);
    // pdeathsig chain: gate → trial helper → observer (PID 1) → namespace.
    // No event announces the end of a process we are not the parent of.
    while !leftovers(inits.dir.path()).is_empty() {
        assert!(Instant::now() < until, "left behind: {:?}", leftovers(inits.dir.path()));
        std::thread::yield_now();
    }
}

#[test]
fn sigkill_of_the_gate_leaves_nothing() {
    gate_killed_leaves_nothing(libc::SIGKILL);
}

#[test]
fn ctrl_c_of_the_gate_leaves_nothing() {
    gate_killed_leaves_nothing(libc::SIGINT);
}

/// `reparent gate ARGS` run in a directory of its own (a failing RT
/// case is written below it).
fn gate_cli(args: &[&str]) -> (i32, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(EXE).arg("gate").args(args).current_dir(cwd.path()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_writes_junit_json_and_holds_pins() {
    let inits = Inits::new();
    let correct = inits.path("correct");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("gate.xml");
    let pins = dir.path().join("pins");
    std::fs::write(&pins, "T1 immediate\nP1 inherited\n").unwrap();
    let (code, out, err) = gate_cli(&[
        "--junit",
        junit.to_str().unwrap(),
        "--expect",
        pins.to_str().unwrap(),
        "--patience",
        "300",
        "--",
        &correct,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: 12/12 hard checks passed") && out.contains("gate time"), "{out}");
    assert!(out.contains("RT  hard   pass") && out.contains("20/20 cases (seed 1)"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let back = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    assert_eq!(back.test_suites[0].test_cases.len(), 31);
    assert_eq!(back.test_suites[0].failures, 0);

    // A pin that does not hold fails the gate. `--cases 0`: no RT.
    std::fs::write(&pins, "T1 waits\n").unwrap();
    let (code, out, _) =
        gate_cli(&["--json", "--expect", pins.to_str().unwrap(), "--patience", "300", "--cases", "0", "--", &correct]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t1 = json["checks"].as_array().unwrap().iter().find(|c| c["id"] == "T1").unwrap();
    assert_eq!(t1["pinned"], "waits");
    assert_eq!(t1["value"], "immediate");
    let rt = json["checks"].as_array().unwrap().iter().find(|c| c["id"] == "RT").unwrap();
    assert_eq!(rt["verdict"], "skipped", "{rt}");

    // A known failure pinned as `FAIL` passes the gate while it fails as
    // pinned; unpinned, the same init fails it.
    let wrong = inits.path("wrong-status");
    std::fs::write(&pins, "X2 FAIL # known\n").unwrap();
    let pinned = ["--expect", pins.to_str().unwrap(), "--patience", "300", "--cases", "0", "--", &wrong];
    let (code, out, _) = gate_cli(&pinned);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(known: PINNED FAIL)") && out.contains("known failures (pinned FAIL): X2"), "{out}");
    let (code, out, _) = gate_cli(&pinned[2..]);
    assert_eq!(code, 1, "{out}");

    // A bad pin file: file:line:column, exit 2, nothing run.
    std::fs::write(&pins, "T1 immediate\nZ9 x\n").unwrap();
    let (code, _, err) = gate_cli(&["--expect", pins.to_str().unwrap(), "--", &correct]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{}:2:1: `Z9` is not a check", pins.display())), "{err}");

    // No such init, or not executable: exit 2, saying what to do.
    let (code, _, err) = gate_cli(&["--", "/nonexistent/init"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot run the init") && err.contains("No such file"), "{err}");
    let (code, _, err) = gate_cli(&["--", pins.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is not an executable file"), "{err}");
}
