//! What crosses the gate's process boundaries, as plain data: the plan of
//! one trial (runner → trial helper), what the trial saw (helper →
//! runner), and the messages between the trial's observer and the workload
//! the init under test runs (a seqpacket channel, one JSON message per
//! packet, descriptors beside some of them).

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The environment variable that gives the workload its channel's
/// descriptor number: an init passes its descriptors on, not the meaning
/// of its arguments.
pub const GATE_FD_ENV: &str = "REPARENT_GATE_FD";

/// Where INIT runs in a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// PID 1 of a PID namespace of its own (nested in the observer's).
    Pid1,
    /// An ordinary child of the observer, which is PID 1 of the namespace.
    Subreaper,
}

/// What a trial does with the init, after its workload said READY.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plan {
    /// The workload exits with this code (X1).
    Exit(i32),
    /// The workload dies of this signal (X2).
    Die(i32),
    /// The workload never runs: the init is given this command instead (X3).
    BadCommand,
    /// The workload and an orphan exit together, in this order (R3):
    /// 0 orphan first, 1 workload first, 2 the orphan wakes on the
    /// workload's death.
    ExitWithOrphan { code: i32, order: u8 },
    /// The long trial: adoption and reaping (R1, R2, R4), forwarding (F1,
    /// F2, F3), stop and continue (R5), then an exit with `code`.
    Main { code: i32, burst: usize, forward: Vec<i32> },
    /// The workload exits while an orphan lives (T1, T2, T3).
    Teardown,
    /// The init is SIGKILLed from outside while its tree lives (X4, X5).
    KillInit,
    /// The init's process had a child before it exec'd the init (R6).
    ChildBeforeExec { code: i32 },
    /// The init is started with SIGCHLD ignored (R7).
    SigchldIgnored { code: i32 },
    /// SIGTERM to the init from outside while the main child ignores it
    /// (blocks it, as always): does the init SIGKILL it, and when (F5)?
    Escalation,
    /// F6, one start of several: `sig` sent through the init's pidfd as
    /// soon as the observer holds it, before READY (the init is started
    /// with `sig` blocked, so that a signal that comes before its first
    /// instruction is queued for it, not dropped in the gate's own code
    /// before the exec); after READY `witness`, a higher-numbered signal
    /// the init forwards, closes the wait (None: the patience does).
    Startup { sig: i32, witness: Option<i32> },
    /// P2: the init runs on a pseudo-terminal — its standard streams and
    /// the controlling terminal of its own session — and the workload
    /// reports the terminal's foreground group against its own.
    Terminal,
    /// T2: the main child exits while a survivor lives whose SIGTERM is
    /// at its default action, so that its status says which signal killed
    /// it (PIDFD_INFO_EXIT, or waitid() where it came to the gate) — the
    /// init's SIGTERM, or as PID 1 the kernel's SIGKILL when the init exits.
    TeardownTerm,
}

/// One trial: one run of INIT with one plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialSpec {
    /// INIT and its arguments, the workload's command already in place.
    pub argv: Vec<String>,
    pub mode: Mode,
    pub plan: Plan,
    pub deadline_ms: u64,
    pub patience_ms: u64,
    /// F5's window: how long the main child, which ignores SIGTERM, is
    /// watched for the init's SIGKILL.
    pub escalation_ms: u64,
}

/// How a process ended, as `waitid()` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Exited(i32),
    Killed(i32),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit {c}"),
            Status::Killed(s) => write!(f, "killed by {}", crate::scenario::Signal(*s)),
        }
    }
}

/// What the workload reports at READY: what it was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    /// `/proc/self/stat` `tty_nr` (0: no controlling terminal).
    pub tty_nr: i64,
    /// `SigBlk` and `SigIgn` of `/proc/self/status`, read first thing.
    pub sigblk: u64,
    pub sigign: u64,
    /// Open descriptors besides the channel: (number, what it links to).
    pub fds: Vec<(i32, String)>,
    /// Whether standard input is a terminal, and its foreground process
    /// group (`tcgetpgrp(0)`; None when it is not the controlling
    /// terminal: ENOTTY).
    #[serde(default)]
    pub stdin_tty: bool,
    #[serde(default)]
    pub tty_fg: Option<i32>,
}

/// A signal one of the workload's processes received.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Got {
    /// The receiver's pid (in the init's namespace).
    pub by: i32,
    pub signo: i32,
    /// `si_pid`: the sender (in the receiver's namespace).
    pub from: i32,
    pub code: i32,
    /// Milliseconds since the observer started the trial (filled in by
    /// the observer when the message arrives).
    #[serde(default)]
    pub at_ms: f64,
}

/// Workload → observer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Report {
    /// Set up; a pidfd of the workload goes with it.
    Ready(Ready),
    /// A process before the init's exec made a child (R6); its pidfd goes
    /// with it.
    PreChild {
        pid: i32,
    },
    /// Orphans-to-be are forked and their parent is exiting; with it go
    /// the release pipe's write end, the parent's pidfd, then one pidfd per
    /// orphan.
    Orphans {
        pids: Vec<i32>,
    },
    Signal(Got),
    Pong,
    Failed(String),
}

/// Observer → workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Order {
    /// Fork `n` processes through a parent that then exits, so that they
    /// are orphans. With `tie`, each also exits when the workload dies;
    /// with `term_default`, SIGTERM is not blocked in them (it kills them).
    Orphans {
        n: usize,
        tie: bool,
        #[serde(default)]
        term_default: bool,
    },
    Exit(i32),
    Die(i32),
    /// `kill(init, sig)` for each, from inside (F2).
    KillInit {
        pid: i32,
        sigs: Vec<i32>,
    },
    Ping,
}

/// Where an orphan of the workload was adopted and by whom it was reaped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reaping {
    pub orphans: usize,
    /// The parent each orphan had after its parent died, by the init's
    /// namespace numbers where known: "init", "gate" or a pid.
    pub adopted_by: Vec<String>,
    pub reaped: usize,
    /// Exit → reap latencies of the reaped ones, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Orphans that were still zombies when the gate stopped waiting.
    pub zombies: Vec<i32>,
    /// Reaped by the gate (they had come to it).
    pub reaped_by_gate: usize,
}

/// What one trial saw. Every field is what happened, not a judgement.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrialResult {
    /// The init could not be executed at all (its exec failed).
    pub exec_error: Option<String>,
    pub ready: Option<Ready>,
    /// How the init ended, and when (ms since it was started).
    pub init_status: Option<Status>,
    pub init_exit_ms: Option<f64>,
    /// The gate had to kill the init (it did not exit by itself).
    pub init_killed_by_gate: bool,
    /// The first wait that ran out, named.
    pub timed_out: Option<String>,
    /// The step the trial was at when the init exited unasked.
    pub init_exited_during: Option<String>,
    /// Another failure of the trial itself.
    pub error: Option<String>,
    /// Reaping rounds (R1, R2 in the main trial; one round elsewhere).
    pub reaping: Vec<Reaping>,
    /// Signals received by the workload's processes, in arrival order.
    pub signals: Vec<Got>,
    /// Which signals were sent from outside (F1) and from inside (F2) and
    /// when the sending started.
    pub sent_outside: Vec<i32>,
    pub sent_inside: Vec<i32>,
    /// When (ms since the trial started) the F1 and F2 sending began.
    pub f1_start_ms: Option<f64>,
    pub f2_start_ms: Option<f64>,
    /// When F2's last ping was answered (R5's own SIGCONT comes after).
    pub f2_end_ms: Option<f64>,
    /// Whether the last F1/F2 wait ended on the patience bound.
    pub f1_waited_out: bool,
    pub f2_waited_out: bool,
    /// R5: whether the init was alive after the main child stopped and
    /// continued.
    pub alive_after_stop: Option<bool>,
    /// T1: ms from the workload's death to the init's exit, and whether
    /// the init exited only after the survivors were released.
    pub teardown: Option<Teardown>,
    /// X5: tree processes not yet reaped when the init's wait returned.
    pub unreaped_at_init_exit: Vec<String>,
    /// R6: the pre-exec child's pid and whether the init lived on after it
    /// was reaped.
    pub prechild_reaped: Option<bool>,
    pub alive_after_prechild: Option<bool>,
    /// F5: what SIGTERM from outside led to while the main child ignored it.
    pub escalation: Option<Escalation>,
    /// F6: the signal sent at the start, and how the wait after READY ended.
    pub startup: Option<Startup>,
    /// T2: how the survivor ended.
    pub survivor: Option<Survivor>,
    /// The init's working directory (`/proc/<pid>/cwd`).
    pub init_cwd: Option<String>,
    /// The init's CPU time (user + system clock ticks) and voluntary
    /// context switches over the trial (H4).
    pub init_cpu_ticks: Option<u64>,
    pub init_wakeups: Option<u64>,
    /// Processes that came to the gate (subreaper mode) and were reaped or
    /// killed by it at the end.
    pub leaked: usize,
    /// The init's standard output and error (the first 4 KiB).
    pub output: String,
    pub elapsed_ms: f64,
}

/// F5: SIGTERM sent to the init from outside, the main child ignoring it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// ms from the sending to the main child's record of SIGTERM (it was
    /// forwarded), if it came within the patience.
    pub term_reached_ms: Option<f64>,
    /// ms from the sending to the main child's death (its pidfd readable),
    /// if it died within the bound.
    pub child_died_ms: Option<f64>,
    /// How long the gate waited for the death (its deadline).
    pub bound_ms: u64,
}

/// F6: a signal sent to the init as soon as the gate held its pidfd.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Startup {
    pub sig: i32,
    pub witness: Option<i32>,
    /// Why `pidfd_send_signal` failed, if it did.
    pub send_error: Option<String>,
    /// The wait after READY ran out: the witness never came (within the
    /// deadline), or, without a witness, `sig` did not within the patience.
    pub waited_out: bool,
    /// `sig` was still pending for the init after the wait (`ShdPnd` or
    /// `SigPnd` of /proc/<init>/status): it never took it — it keeps the
    /// mask it was started with — rather than dropped it.
    #[serde(default)]
    pub held_by_init: bool,
}

/// T2: the survivor, whose SIGTERM is at its default action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Survivor {
    /// How it ended, as `PIDFD_INFO_EXIT` says once it is reaped.
    pub status: Option<Status>,
    /// Why the kernel could not say (no `PIDFD_INFO_EXIT` before 6.15).
    pub info_error: Option<String>,
    /// ms from the main child's exit to the survivor's, when it died
    /// within the patience.
    pub died_ms: Option<f64>,
    /// It lived on until the gate released it.
    pub released: bool,
    /// It had come to the gate (subreaper mode), which reaped it: the
    /// status is waitid()'s.
    #[serde(default)]
    pub reaped_by_gate: bool,
}

/// How the init ended its run when the main child exited with survivors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Teardown {
    /// ms from the main child's exit to the init's, when it exited while
    /// the survivor lived.
    pub exit_while_survivors_ms: Option<f64>,
    /// It exited only once the survivor was released.
    pub exit_after_release: bool,
    /// It did not exit at all (killed by the gate).
    pub never: bool,
    /// The survivors still alive right after the init exited (subreaper
    /// mode: now the gate's).
    pub survivors_after_exit: usize,
}
