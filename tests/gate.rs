//! The init gate against real and made-up inits: tini (installed here),
//! a correct minimal init and controls that break one thing each,
//! compiled with `cc` at test time, and hostile inits (hang, ignore every
//! signal, exit at once, never start the child, fork without end) that
//! must still get a full report within the deadline and leave nothing
//! behind — also when the gate itself is killed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reparent_harness::gate::{Check, Gate, Kind, Report, Verdict};
use reparent_harness::sys::os;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

/// One C source, several inits: `-D` flags break one thing each.
const INIT_C: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
#ifdef EXIT_AT_ONCE
    return 0;
#endif
#ifdef HANG
    for (;;) pause();
#endif
#ifdef FORK_FOREVER
    for (;;) { pid_t p = fork(); if (p == 0) _exit(0); if (p > 0) waitpid(p, 0, 0); }
#endif
#ifdef IGNORE_ALL
    for (int s = 1; s < 65; s++) signal(s, SIG_IGN);
    if (fork() == 0) { execvp(argv[1], argv + 1); _exit(127); }
    for (;;) pause();
#endif
    signal(SIGCHLD, SIG_DFL);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[1], argv + 1);
        _exit(errno == ENOENT ? 127 : 126);
    }
#ifdef NOREAP
    /* The seed's irresponsible PID 1: waits for its main child only. */
    int st;
    while (waitpid(child, &st, 0) < 0) {}
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
#endif
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0) continue;
        if (sig != SIGCHLD) { kill(child, sig); continue; }
        for (;;) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0) break;
#ifdef WRONG_EXIT
            if (p == child) return WIFSIGNALED(st) ? 1 : WEXITSTATUS(st) ^ 1;
#else
            if (p == child) return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
#endif
        }
    }
}
"#;

/// The compiled inits, in a directory whose path marks every process
/// they start (see [`leftovers`]).
struct Inits {
    dir: tempfile::TempDir,
}

impl Inits {
    fn build() -> Inits {
        let dir = tempfile::Builder::new().prefix("reparent-gate-inits").tempdir().unwrap();
        // Readable by an unprivileged user running the tests as well.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let src = dir.path().join("init.c");
        std::fs::write(&src, INIT_C).unwrap();
        for (name, define) in [
            ("correct", None),
            ("noreap", Some("NOREAP")),
            ("wrongexit", Some("WRONG_EXIT")),
            ("exitnow", Some("EXIT_AT_ONCE")),
            ("hang", Some("HANG")),
            ("forker", Some("FORK_FOREVER")),
            ("ignoreall", Some("IGNORE_ALL")),
        ] {
            let mut cc = Command::new("cc");
            cc.arg("-O1").arg("-o").arg(dir.path().join(name)).arg(&src);
            if let Some(d) = define {
                cc.arg(format!("-D{d}"));
            }
            let out = cc.output().expect("`cc` must be installed to build the test inits (apt-get install gcc)");
            assert!(out.status.success(), "cc {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Inits { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn gate(&self, name: &str) -> Gate {
        Gate::new([self.path(name)]).workload(EXE).deadline(Duration::from_secs(2)).patience(Duration::from_millis(300))
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
    let report = Gate::new(["/usr/bin/tini", "--"]).workload(EXE).patience(Duration::from_millis(300)).run().unwrap();
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
    let inits = Inits::build();
    let report = inits.gate("correct").run().unwrap();
    report.assert_hard_checks_pass();
    assert_eq!(verdict(&report, "P1").value(), "inherited", "{}", report.table());
    assert_eq!(verdict(&report, "F2").value(), "all", "{}", report.table());

    // Waits for its main child only: the orphans stay zombies.
    let report = inits.gate("noreap").run().unwrap();
    let table = report.table();
    for id in ["R1", "R2"] {
        let c = verdict(&report, id);
        assert!(is_fail(c) && c.evidence.contains("zombie pids"), "{id}:\n{table}");
    }
    assert_eq!(verdict(&report, "R4").value(), "never", "{table}");
    // It forwards nothing: as PID 1 at SIG_DFL, the kernel drops them.
    assert!(is_fail(verdict(&report, "F1")), "{table}");
    assert_eq!(verdict(&report, "X1").verdict, Verdict::Pass, "{table}");

    // Passes on the wrong status.
    let report = inits.gate("wrongexit").run().unwrap();
    let table = report.table();
    for id in ["X1", "X2", "R3"] {
        assert!(is_fail(verdict(&report, id)), "{id}:\n{table}");
    }
    assert_eq!(verdict(&report, "R1").verdict, Verdict::Pass, "{table}");
    assert!(leftovers(inits.dir.path()).is_empty(), "{:?}", leftovers(inits.dir.path()));
}

#[test]
fn hostile_inits_get_a_full_report_in_time_and_leave_nothing() {
    let inits = Inits::build();
    let deadline = Duration::from_secs(1);
    for name in ["hang", "ignoreall", "exitnow", "forker"] {
        let t = Instant::now();
        let report = inits.gate(name).deadline(deadline).run().unwrap();
        let took = t.elapsed();
        let table = report.table();
        // Without READY only X3's two trials follow the main one; with it
        // (ignoreall), the main trial waits out five patiences and a
        // deadline, then the other 27 trials run 12 at a time, one
        // deadline per round at most.
        assert!(took < deadline * 8, "{name}: the gate took {took:?}:\n{table}");
        assert_eq!(report.checks.len(), 30, "{name}: every check has a verdict");
        assert!(!report.passed(), "{name} must fail:\n{table}");
        let left = leftovers(inits.dir.path());
        assert!(left.is_empty(), "{name} left processes behind: {left:?}");
        match name {
            "exitnow" => {
                assert!(verdict(&report, "R1").verdict.to_string().contains("never reported READY"), "{table}");
                assert!(verdict(&report, "X1").verdict.to_string().starts_with("not reached"), "{table}");
                // exit 0 although the command could not run.
                assert!(is_fail(verdict(&report, "X3")), "{table}");
            }
            "ignoreall" => {
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
    let inits = Inits::build();
    let mut child = Command::new(EXE)
        .args(["gate", "--deadline", "20000", "--", &inits.path("ignoreall")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
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

fn gate_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(EXE).arg("gate").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_writes_junit_json_and_holds_pins() {
    let inits = Inits::build();
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
    assert!(out.contains("PASS: 11/11 hard checks passed") && out.contains("gate time"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let back = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    assert_eq!(back.test_suites[0].test_cases.len(), 30);
    assert_eq!(back.test_suites[0].failures, 0);

    // A pin that does not hold fails the gate.
    std::fs::write(&pins, "T1 waits\n").unwrap();
    let (code, out, _) = gate_cli(&["--json", "--expect", pins.to_str().unwrap(), "--patience", "300", "--", &correct]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t1 = json["checks"].as_array().unwrap().iter().find(|c| c["id"] == "T1").unwrap();
    assert_eq!(t1["pinned"], "waits");
    assert_eq!(t1["value"], "immediate");

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
