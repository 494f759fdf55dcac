//! The `reparent` command as a user meets it: its exit codes, its messages
//! for bad input, its output on a mismatch, and the promise that no process
//! outlives a run — even when the runner is killed with SIGKILL mid-case.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reparent_harness::sys::os;

mod common;
use common::descendants;

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn reparent(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run reparent")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p.display().to_string()
}

const GOOD: &str = "tree:\n  init\n    sub subreaper\n      bash\n        sleep\n\nkill bash\nexpect:\n  init\n    sub subreaper\n      sleep\n";

#[test]
fn malformed_scenario_is_one_positioned_line_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.tree", GOOD);
    let bad = write(dir.path(), "bad.tree", "tree:\n  init\n    a\n\nkil a\n");
    let out = reparent(&["run", &good, &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{bad}:5:1:")), "stderr: {err}");
    assert!(err.contains("kil"), "stderr: {err}");
    // Nothing ran, not even the good file.
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_step_the_model_cannot_run_is_rejected_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "gone.tree", "tree:\n  init\n    a\n\nkill a\n\nexit a\n");
    let out = reparent(&["run", &f]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{f}:7:1:")), "stderr: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn run_prints_each_step_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.tree", GOOD);
    let out = reparent(&["run", &f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("  kill bash\n    init\n      sub subreaper\n        sleep\n"), "{text}");
    assert!(text.contains("1 scenario(s): 1 passed, 0 failed, 0 skipped; 1 steps checked"), "{text}");
}

#[test]
fn a_wrong_expect_block_fails_with_both_trees_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    // Claims the orphan goes to PID 1 although a subreaper is above it.
    let f = write(
        dir.path(),
        "wrong.tree",
        &GOOD.replace(
            "expect:\n  init\n    sub subreaper\n      sleep\n",
            "expect:\n  init\n    sub subreaper\n    sleep\n",
        ),
    );
    let out = reparent(&["run", &f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the `expect:` block disagrees with the kernel"), "{text}");
    assert!(text.contains("kernel (observed)"), "{text}");
    assert!(text.contains("find_new_reaper()"), "the model's reasons are shown: {text}");
    assert!(text.contains(&format!("replay: {EXE} run {f}")), "{text}");
}

/// The replay line names the binary as invoked and every option that
/// changes the outcome, quoted for the shell: run as printed, it fails the
/// same way.
#[test]
fn the_replay_command_carries_the_options_and_reproduces_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("with space");
    std::fs::create_dir(&sub).unwrap();
    let wrong = GOOD.replace("    sub subreaper\n      sleep\n", "    sub subreaper\n    sleep\n");
    let f = write(&sub, "wrong.tree", &wrong);
    let out = reparent(&["--model-kernel", "6.18", "--model-mutation", "farthest-subreaper", "run", &f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let command = format!("{EXE} --model-kernel 6.18 --model-mutation farthest-subreaper run '{f}'");
    assert!(text.contains(&format!("    replay: {command}\n")), "{text}");
    let again = Command::new("sh").arg("-c").arg(&command).output().unwrap();
    let again_text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{again_text}");
    assert!(again_text.contains("the `expect:` block disagrees with the kernel"), "{again_text}");
    assert!(again_text.contains(&format!("    replay: {command}\n")), "{again_text}");
}

/// A shrunk failing case that cannot be written is an error the user sees,
/// not a silent loss: the case is shown instead, and the exit status is 2.
#[test]
fn a_failure_file_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-scenarios");
    std::fs::create_dir(&empty).unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let failures = blocker.join("failures");
    let out = Command::new(EXE)
        .args(["--model-mutation", "farthest-subreaper", "check", "--cases", "500", "--seed", "1"])
        .args(["--scenarios", empty.to_str().unwrap(), "--failures-dir", failures.to_str().unwrap()])
        .output()
        .unwrap();
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(err.contains(&format!("error: cannot write the failing case to {}: ", failures.display())), "{err}");
    assert!(text.contains("(it could not be written; here it is:)") && text.contains("tree:"), "{text}");
}

#[test]
fn explain_gives_the_reason_for_every_move() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.tree", GOOD);
    let out = reparent(&["--model-kernel", "6.18", "explain", &f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The command prints what the library renders (whose every line
    // tests/explain.rs snapshots for the bundled scenarios).
    let s = reparent_harness::scenario::parse(&f, GOOD).unwrap();
    let cfg = reparent_harness::model::ModelConfig::default();
    assert_eq!(text, reparent_harness::driver::explain::explain_text(&f, &s, cfg).unwrap());
    assert!(text.contains("step 1: kill bash"), "{text}");
    assert!(text.contains("sleep:") && text.contains("find_new_reaper()"), "{text}");
}

#[test]
fn check_runs_scenarios_and_random_cases_and_sums_up() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.tree", GOOD);
    let failures = dir.path().join("failures");
    let out = reparent(&[
        "check",
        "--cases",
        "30",
        "--seed",
        "5",
        "--scenarios",
        &dir.path().display().to_string(),
        "--failures-dir",
        &failures.display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("summary: scenarios 1/1 passed (0 skipped), random cases 30/30 passed"), "{text}");
}

#[test]
fn bad_environment_values_are_named() {
    let out = Command::new(EXE).args(["check", "--cases", "1"]).env("REPARENT_DEADLINE_MS", "soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REPARENT_DEADLINE_MS"));
}

#[test]
fn a_bad_jobs_value_is_named() {
    let out = Command::new(EXE).args(["check", "--cases", "1"]).env("REPARENT_JOBS", "many").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REPARENT_JOBS=\"many\""), "{err}");
    let out = reparent(&["check", "--cases", "1", "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--jobs"));
}

/// `check`'s output with what depends on the clock or on kernel races
/// taken out: the timings of the summary line, the thread count, and the
/// marker counts of `--stats` (how often a race was observed going one way).
fn deterministic_part(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    let mut out = String::new();
    let mut in_markers = false;
    for line in text.lines() {
        if line.starts_with("  observed node lines with each marker:") {
            in_markers = true;
            continue;
        }
        if in_markers && line.starts_with("    ") {
            continue;
        }
        in_markers = false;
        let line = match line.find(" steps checked, ") {
            Some(k) if line.starts_with("summary: ") => &line[..k],
            _ => line,
        };
        let line = match line.find(" steps each, ") {
            Some(k) => &line[..k],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn check_gives_the_same_cases_and_output_whatever_the_number_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.tree", GOOD);
    write(dir.path(), "also-ok.tree", GOOD);
    let failures = dir.path().join("failures").display().to_string();
    let scenarios = dir.path().display().to_string();
    let run = |jobs: &str| {
        let args = ["check", "--cases", "60", "--seed", "11", "--stats", "--jobs", jobs];
        let out = reparent(&[&args[..], &["--scenarios", &scenarios, "--failures-dir", &failures]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        out
    };
    let (one, two) = (run("1"), run("2"));
    let one_text = deterministic_part(&one.stdout);
    assert!(one_text.contains("random cases 60/60 passed"), "{one_text}");
    assert!(one_text.contains("statistics of the 60 passing random cases:\n  steps: "), "{one_text}");
    assert_eq!(one_text, deterministic_part(&two.stdout));
}

/// With a job for every CPU, `check` keeps each job on a CPU of its own
/// and says so; `--spread` leaves them to the scheduler; and the results
/// are the same.
#[test]
fn check_keeps_a_job_per_cpu_unless_told_to_spread() {
    let cpus = os::thread_cpus().len();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.tree", GOOD);
    let failures = dir.path().join("failures").display().to_string();
    let scenarios = dir.path().display().to_string();
    let jobs = cpus.to_string();
    let run = |spread: bool| {
        let mut args = vec!["check", "--cases", "30", "--seed", "5", "--jobs", &jobs];
        args.extend(["--scenarios", &scenarios, "--failures-dir", &failures]);
        if spread {
            args.push("--spread");
        }
        let out = reparent(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    let (kept, spread) = (run(false), run(true));
    let placed =
        |t: &str| t.lines().any(|l| l.starts_with("random cases:") && l.contains(", each on a CPU of its own)"));
    assert_eq!(placed(&kept), cpus > 1, "{kept}");
    assert!(!placed(&spread), "{spread}");
    assert_eq!(deterministic_part(kept.as_bytes()), deterministic_part(spread.as_bytes()));
}

#[test]
fn piped_output_or_ci_gets_no_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.tree", GOOD);
    let failures = dir.path().join("failures").display().to_string();
    let scenarios = dir.path().display().to_string();
    for ci in [false, true] {
        let mut cmd = Command::new(EXE);
        cmd.args(["check", "--cases", "40", "--seed", "2", "--jobs", "2"]);
        cmd.args(["--scenarios", &scenarios, "--failures-dir", &failures]);
        if ci {
            cmd.env("CI", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains('\x1b') && !text.contains('\r'), "escape codes on {name} (CI={ci}): {text:?}");
        }
    }
}

/// Whatever kills the runner mid-case — SIGKILL, or Ctrl-C's SIGINT, or a
/// SIGTERM — takes every process of its cases with it.
#[rstest::rstest]
#[case::sigkill(libc::SIGKILL)]
#[case::ctrl_c(libc::SIGINT)]
#[case::sigterm(libc::SIGTERM)]
fn no_process_survives_a_runner_killed_mid_case(#[case] signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.tree", GOOD);
    let mut child = Command::new(EXE)
        .args(["check", "--cases", "1000000", "--seed", "3", "--scenarios", &dir.path().display().to_string()])
        .args(["--failures-dir", &dir.path().join("f").display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pidfd = os::pidfd_open(child.id() as i32).unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let l = lines.next().expect("reparent check printed its random-cases line").unwrap();
        if l.starts_with("random cases:") {
            break;
        }
    }
    // Catch it with a sandbox and a tree alive: the helper and its nodes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let victims: Vec<(i32, OwnedFd)> = loop {
        let d: Vec<(i32, OwnedFd)> =
            descendants(child.id() as i32).into_iter().filter_map(|p| Some((p, os::pidfd_open(p).ok()?))).collect();
        if d.len() >= 3 {
            break d;
        }
        assert!(Instant::now() < deadline, "never saw a live case under the runner");
    };
    os::pidfd_send_signal(pidfd.as_fd(), signal).unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for (pid, fd) in &victims {
        assert!(
            os::pidfd_wait(fd.as_fd(), os::PidfdState::Exited, deadline).unwrap(),
            "process {pid} of the killed runner is still alive"
        );
    }
}

#[test]
fn kernel_self_test_proves_every_row_without_a_kernel() {
    let out = Command::new(env!("CARGO_BIN_EXE_reparent")).args(["kernel", "--self-test"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ID     CHECKED BY"), "{text}");
    assert!(text.contains("R1.4   subreaper-fatal-pending-adopts.tree"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('R')).collect();
    assert_eq!(rows.len(), reparent_harness::kernel::RULES.len(), "one line a row:\n{text}");
    for row in &rows {
        assert!(row.contains(" yes "), "a row not killed: {row}");
    }
    assert!(text.contains("probe pidfd-readiness"), "{text}");
    assert!(text.contains("0 scenario row(s) and 0 probe or build row(s) not killed"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn the_help_lists_every_mutation() {
    let out = Command::new(env!("CARGO_BIN_EXE_reparent")).args(["--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    for (name, _) in reparent_harness::model::Mutation::ALL {
        assert!(text.contains(name), "{name} missing from --help:\n{text}");
    }
}

/// `explain /dev/zero` reads one byte past the file limit and stops, with
/// the limit named, instead of reading until memory runs out.
#[test]
fn explain_refuses_an_endless_file_with_the_limit_named() {
    let out = reparent(&["explain", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero:1:33554433: the file is larger than the limit of 32 MiB"), "stderr: {err}");
}

/// A file name and a file holding escape sequences are shown escaped.
#[test]
fn errors_show_no_raw_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad\x1b[2J.tree", "tree:\n  init\nkill \x1b]0;pwned\x07\n");
    let out = reparent(&["explain", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "stderr: {err:?}");
    assert!(err.contains("bad\\x1b[2J.tree:3:6:") && err.contains("`\\x1b]0;pwned\\x07`"), "stderr: {err}");
}

/// Bytes that are not UTF-8 are reported where they are.
#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("latin1.tree");
    std::fs::write(&p, b"tree:\n  init\n    caf\xe9\n").unwrap();
    let out = reparent(&["explain", &p.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:8: found a byte that is not UTF-8 (0xe9)", p.display())), "stderr: {err}");
}

/// How many processes a test may add to the machine: what `pid_max` and
/// `RLIMIT_NPROC` leave, with room to spare for everything else.
fn process_room() -> usize {
    let in_use = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.parse::<u32>().is_ok()))
        .count();
    let pid_max: usize = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let nproc = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .and_then(|l| l.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    pid_max.saturating_sub(in_use).min(nproc.saturating_sub(in_use)).saturating_sub(500)
}

/// A chain of 5,000 processes (or as many as the machine allows, at least
/// 1,000): no nesting limit on the runner–helper wire (serde_json's 128
/// levels stopped a chain of 61), and no fork that costs more the deeper it
/// is (a chain of 1,000 took 45 s).
#[test]
fn a_chain_of_five_thousand_processes_runs() {
    let n = process_room().min(5000);
    assert!(n >= 1000, "this machine leaves room for only {n} processes");
    let mut text = String::from("about: a long chain\n\ntree:\n  init\n");
    for i in 0..n {
        text.push_str(&format!("{}l{i}\n", "  ".repeat(i + 2)));
    }
    text.push_str(&format!("\nkill l{}\n", n / 2));
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain.tree", &text);
    let t = std::time::Instant::now();
    let out = reparent(&["run", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chain of {n}: {}\n{}", &stdout[stdout.len().saturating_sub(2000)..], stderr);
    assert!(stdout.contains("1 passed"), "{}", &stdout[stdout.len().saturating_sub(2000)..]);
    assert!(t.elapsed() < Duration::from_secs(60), "chain of {n} took {:?}", t.elapsed());
}

/// Runs `reparent run <file>` with `RLIMIT_NOFILE` at 64 (soft and hard).
fn run_with_64_descriptors(file: &str) -> String {
    let out =
        Command::new("sh").args(["-c", "ulimit -n 64 && exec \"$0\" run \"$1\"", EXE, file]).output().expect("run sh");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Running out of descriptors is reported as what it is, naming the limit,
/// never as a disagreement with the model: refused up front when the tree
/// cannot fit, and as the failed call when a step runs out.
#[test]
fn running_out_of_descriptors_is_a_resource_failure_not_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::from("about: too many for 64 descriptors\n\ntree:\n  init\n");
    for i in 0..100 {
        big.push_str(&format!("    c{i}\n"));
    }
    let text = run_with_64_descriptors(&write(dir.path(), "big.tree", &big));
    assert!(text.contains("resource exhausted: a tree of 101 processes needs about"), "{text}");
    assert!(text.contains("(RLIMIT_NOFILE 64, its hard limit)"), "{text}");

    let mut spawns = String::from("about: spawns past 64 descriptors\n\ntree:\n  init\n    a\n\n");
    for i in 0..40 {
        spawns.push_str(&format!("spawn c{i} by a\n"));
    }
    let text = run_with_64_descriptors(&write(dir.path(), "spawns.tree", &spawns));
    assert!(text.contains("resource exhausted: ") && text.contains("EMFILE (RLIMIT_NOFILE 64)"), "{text}");
    assert!(!text.contains("disagrees") && !text.contains("protocol error"), "{text}");
}
