//! Judging the probes: what each probe's observation must be for its rule
//! to hold on this kernel, and the text `reparent kernel` shows for it.
//!
//! The system layer (`sys::probe`) runs a probe and reports what it saw as
//! plain data — return values, errno names, wait statuses, counts — with no
//! idea of what the answer should be. This module holds that knowledge:
//! the expected values (from kernel-rules.md and the C probes of its
//! section 11), the rule each probe bears on (its row in [`RULES`]), and
//! the version-dependent rows (`PIDFD_GET_INFO` since 6.13, POLLHUP on a
//! reaped pidfd since 6.9). One probe bears on a behaviour in which kernel
//! builds differ (R6.6g, `mt-init-leader-blocks`): its judgement records
//! which one it saw (`killed` or `survives`) and fails only on an outcome
//! that is neither. Being pure, every judgement is unit-tested
//! without a kernel, and [`violations`] shows that each probe's row can
//! fail: for every probe, observations that break its rule.

use crate::scenario::Signal;
use crate::sys::probe::{Observation, Polled, Ret, SigInfo, Wait};

use super::catalogue::{Check, Rule, RULES};
use super::table::Outcome;

// Signal numbers of Linux's generic ABI (as `scenario::Signal` numbers
// them) and `CLD_EXITED`, the `si_code` of a child's normal exit.
const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;
const SIGTERM: i32 = 15;
const SIGCHLD: i32 = 17;
const CLD_EXITED: i32 = 1;

/// Every probe the catalogue names, in its order.
pub fn names() -> impl Iterator<Item = &'static str> {
    RULES.iter().filter_map(|r| if let Check::Probe(n) = r.check { Some(n) } else { None })
}

/// The rule id of probe `name`'s row (`R2.1`), or `?` for a probe the
/// catalogue does not name.
fn rule_id(name: &str) -> &'static str {
    row(name).map_or("?", |r| r.id)
}

/// The catalogue's row for probe `name`.
fn row(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| matches!(r.check, Check::Probe(n) if n == name))
}

fn signame(sig: i32) -> String {
    Signal(sig).name()
}

/// Pass with what was seen, or Fail with what was seen against what was
/// expected and the rule.
fn verdict(ok: bool, seen: String, expected: &str, id: &str) -> Outcome {
    if ok {
        Outcome::Pass(seen)
    } else {
        Outcome::Fail(format!("saw {seen}; expected {expected} ({id})"))
    }
}

/// A fork's result: `success (pid N)` or the errno.
fn fork_text(r: &Ret) -> String {
    match r {
        Ret::Ok(pid) => format!("success (pid {pid})"),
        Ret::Err(e) => e.clone(),
    }
}

fn poll_text(p: &Polled) -> String {
    match (p.pollin, p.pollhup) {
        (true, true) => "POLLIN|POLLHUP".into(),
        (true, false) => "POLLIN".into(),
        (false, true) => "POLLHUP".into(),
        (false, false) => "nothing".into(),
    }
}

fn siginfo_text(s: &SigInfo, zombie: i32) -> String {
    let who = if s.pid == zombie { "Z".to_string() } else { format!("pid {}", s.pid) };
    format!("{}(from {who}, code {}, status {})", signame(s.signo), s.code, s.status)
}

/// What probe `name`'s observation `seen` means for its rule on a kernel
/// of version `kernel`: pass (with what was seen), fail (seen against
/// expected, naming the rule), or skipped (a feature this kernel lacks).
pub fn judge(name: &str, seen: &Observation, kernel: (u32, u32)) -> Outcome {
    let id = rule_id(name);
    match seen {
        Observation::Unavailable(why) => return Outcome::Unavailable(why.clone()),
        Observation::Failed(why) => return Outcome::Fail(why.clone()),
        _ => {}
    }
    if let Some((v, feature)) = row(name).and_then(|r| r.since) {
        if kernel < v {
            return Outcome::Skipped(format!(
                "{feature} arrived in Linux {}.{}; this is {}.{}",
                v.0, v.1, kernel.0, kernel.1
            ));
        }
    }
    match (name, seen) {
        ("ppid-is-tgid", &Observation::PpidIsTgid { tgid, tid, getppid, proc_ppid }) => verdict(
            tid != tgid && getppid == tgid && proc_ppid == tgid,
            format!("thread {tid} of process {tgid} forked C; C's getppid() = {getppid}, PPid = {proc_ppid}"),
            &format!("both {tgid}, the tgid, not the thread id {tid}"),
            id,
        ),
        ("pidfd-info-ppid", Observation::PidfdInfoUnsupported { errno }) => {
            Outcome::Skipped(format!("PIDFD_GET_INFO is not supported here ({errno})"))
        }
        ("pidfd-info-ppid", &Observation::PidfdInfoPpid { parent, before, subreaper, after }) => verdict(
            before == parent && after == subreaper,
            format!("PIDFD_GET_INFO ppid {before} while parent {parent} lived, {after} after it died"),
            &format!("{parent}, then the subreaper {subreaper}"),
            id,
        ),
        ("subreaper-readback", &Observation::SubreaperReadback { set_ret, read }) => verdict(
            set_ret == 0 && read == 1,
            format!("prctl returned {set_ret}, PR_GET_CHILD_SUBREAPER read {read}"),
            "0 and 1",
            id,
        ),
        ("subreaper-not-inherited", &Observation::SubreaperNotInherited { child_reads }) => {
            verdict(child_reads == 0, format!("the child of a subreaper reads {child_reads}"), "0", id)
        }
        ("subreaper-kept-across-exec", &Observation::SubreaperAfterExec { reads }) => {
            verdict(reads == 1, format!("after execve() the subreaper reads {reads}"), "1", id)
        }
        ("init-may-be-subreaper", Observation::InitMayBeSubreaper { pid, set, read }) => verdict(
            *set == Ret::Ok(0) && *read == 1,
            format!("in pid {pid}, the namespace's init: prctl {set}, reads {read}"),
            "success (0) and 1",
            id,
        ),
        ("exit-signal-reset", Observation::ExitSignalReset { before_plain, before_wall, after_plain, reaped }) => {
            let seen = format!("{before_plain} {before_wall} {after_plain} {reaped}");
            let expected = "ECHILD alive alive exited with 0";
            verdict(
                seen == expected,
                format!(
                    "{seen} (before the reparent: plain waitpid, __WALL waitpid; after: plain waitpid, plain waitid \
                     reap)"
                ),
                expected,
                id,
            )
        }
        ("sigign-autoreap" | "nocldwait-autoreap", Observation::Autoreap { zombie, signals, then_wait }) => {
            let got: Vec<String> = signals.iter().map(|s| siginfo_text(s, *zombie)).collect();
            let seen = format!("signals [{}], then waitpid(-1): {then_wait}", got.join(", "));
            let (expected, how) = if name == "nocldwait-autoreap" {
                (
                    format!(
                        "signals [{}(from Z, code {CLD_EXITED}, status 7)], then waitpid(-1): ECHILD",
                        signame(SIGCHLD)
                    ),
                    "SA_NOCLDWAIT",
                )
            } else {
                ("signals [], then waitpid(-1): ECHILD".to_string(), "SIG_IGN")
            };
            verdict(seen == expected, format!("{how} subreaper adopting zombie Z: {seen}"), &expected, id)
        }
        ("pdeathsig-range", Observation::PdeathsigRange { set65, read64, read0 }) => {
            let seen = format!("65: {set65}, 64 reads {read64}, 0 reads {read0}");
            let expected = "65: EINVAL, 64 reads 64, 0 reads 0";
            verdict(seen == expected, seen, expected, id)
        }
        ("pdeathsig-cleared-on-fork", &Observation::PdeathsigAfterFork { parent_sig, child_reads }) => verdict(
            child_reads == 0,
            format!("a child of a process with pdeathsig {} reads {child_reads}", signame(parent_sig)),
            "0",
            id,
        ),
        ("pdeathsig-kept-across-exec", &Observation::PdeathsigAfterExec { set, reads }) => verdict(
            reads == set,
            format!("after execve() PR_GET_PDEATHSIG reads {reads}"),
            &format!("{set} ({})", signame(set)),
            id,
        ),
        ("ns-empty-at-init-readiness", Observation::NsEmptyAtReadiness { init, members, left }) => verdict(
            *members == 4 && *left == 0 && *init == Wait::Killed(SIGKILL),
            format!("init {init}; when its pidfd was readable {left} of its {members} processes were left"),
            "killed by SIGKILL, 0 of 4 left",
            id,
        ),
        ("fork-into-dead-ns", Observation::ForkIntoDeadNs { zombie, reaped }) => {
            let enomem = Ret::Err("ENOMEM".into());
            verdict(
                *zombie == enomem && *reaped == enomem,
                format!(
                    "setns() into the namespace, then fork(): {} with its init a zombie, {} once reaped",
                    fork_text(zombie),
                    fork_text(reaped)
                ),
                "ENOMEM both times",
                id,
            )
        }
        ("reboot-restart" | "reboot-power-off", Observation::Reboot { failed, init }) => {
            let (cmd, want, caller) = if name == "reboot-restart" {
                ("RESTART", SIGHUP, "a child of the init")
            } else {
                ("POWER_OFF", SIGINT, "the init itself")
            };
            match (failed, init) {
                (Some(why), _) => Outcome::Fail(format!("reboot({cmd}) by {caller} failed: {why} ({id})")),
                (None, Some(status)) => verdict(
                    *status == Wait::Killed(want),
                    format!("reboot({cmd}) by {caller}: the init {status}"),
                    &format!("killed by {}", signame(want)),
                    id,
                ),
                (None, None) => {
                    Outcome::Fail(format!("reboot({cmd}): the probe saw neither a failure nor an end ({id})"))
                }
            }
        }
        ("init-shield-inside", Observation::InitShieldInside { kill_term, kill_kill, kill_usr1, handled }) => {
            let returned = format!("{} {} {}", kill_term.short(), kill_kill.short(), kill_usr1.short());
            let handler = if *handled == [SIGUSR1] {
                "its SIGUSR1 handler ran".to_string()
            } else {
                let names: Vec<String> = handled.iter().map(|&s| signame(s)).collect();
                format!("its handler acknowledged [{}]", names.join(", "))
            };
            verdict(
                returned == "0 0 0" && *handled == [SIGUSR1],
                format!("kill(1, SIGTERM|SIGKILL|SIGUSR1) returned {returned}; the init lives on and {handler}"),
                "0 0 0, the init alive, the handler run",
                id,
            )
        }
        ("init-shield-outside", Observation::InitShieldOutside { died, after_sigkill }) => {
            match (died, after_sigkill) {
                (Some(status), _) => Outcome::Fail(format!(
                    "the nested init {status} after SIGTERM, SIGINT, SIGHUP from the parent namespace; expected them \
                 dropped ({id})"
                )),
                (None, Some(status)) => verdict(
                    *status == Wait::Killed(SIGKILL),
                    format!(
                    "SIGTERM, SIGINT, SIGHUP dropped, a handled SIGRTMIN delivered; then SIGKILL: the init {status}"
                ),
                    "SIGKILL to kill it",
                    id,
                ),
                (None, None) => {
                    Outcome::Fail(format!("the probe saw neither the init's death nor its survival ({id})"))
                }
            }
        }
        ("mt-init-leader-blocks", Observation::MtInitLeaderBlocks { blocked, died }) => {
            // Builds differ (R6.6g): the row records which behaviour it saw,
            // and fails only on an outcome that is neither.
            let names: Vec<String> = blocked.iter().map(|&s| signame(s)).collect();
            let names = names.join(", ");
            match died {
                None => Outcome::Recorded {
                    value: "survives".into(),
                    detail: format!(
                        "survives: a 2-thread init with {names} blocked only in its leader lived on; SIGRTMIN, \
                         sent after, was handled"
                    ),
                },
                Some(Wait::Killed(s)) if blocked.contains(s) => Outcome::Recorded {
                    value: "killed".into(),
                    detail: format!(
                        "killed: a 2-thread init with {names} blocked only in its leader {}; its other thread \
                         took the signal",
                        Wait::Killed(*s)
                    ),
                },
                Some(status) => Outcome::Fail(format!(
                    "saw the 2-thread init {status} after {names}, blocked only in its leader; expected it to \
                     survive, or to be killed by one of them ({id})"
                )),
            }
        }
        ("init-clone-parent", Observation::InitCloneParent { from_init, from_child_ppid }) => verdict(
            *from_init == Ret::Err("EINVAL".into()) && *from_child_ppid == 1,
            format!(
                "from the init: {}; from its child S: success, the new child's parent is pid {from_child_ppid}",
                fork_text(from_init)
            ),
            "EINVAL from the init; success with parent 1 from S",
            id,
        ),
        ("kill-all-spares-init", Observation::KillAllSparesInit { returned, b, c, a }) => {
            let killed = Wait::Killed(SIGKILL);
            verdict(
                *returned == Ret::Ok(0) && *b == killed && *c == killed && *a == Wait::Exited(0),
                format!(
                    "kill(-1, SIGKILL) returned {}; B {b}, C {c}; the caller A {a}; the init lives on",
                    returned.short()
                ),
                "0; B and C killed; A exited with 0",
                id,
            )
        }
        ("pidfd-hup-after-reap", Observation::PidfdHupAfterReap { zombie, reaped }) => {
            let (z, r) = (poll_text(zombie), poll_text(reaped));
            verdict(
                z == "POLLIN" && r == "POLLIN|POLLHUP",
                format!("a zombie's pidfd polls {z}; once reaped {r}"),
                "POLLIN, then POLLIN|POLLHUP",
                id,
            )
        }
        (
            "pidfd-readiness",
            Observation::PidfdReadiness {
                rounds,
                threaded,
                threads,
                live,
                zombies,
                stale,
                missing,
                visible_single,
                visible_threaded,
                states,
                first_stale,
            },
        ) => {
            let figures = format!(
                "{rounds} rounds ({threaded} with a {threads}-thread victim), {live} live + {zombies} zombie \
                 children each: {stale}/{} live children stale at readiness, {missing} gone; {}/{} auto-reaped \
                 zombies still in /proc ({visible_single} after a 1-thread victim, {visible_threaded} after a \
                 {threads}-thread one{}; allowed, R9.4)",
                rounds * live,
                visible_single + visible_threaded,
                rounds * zombies,
                if states.is_empty() { String::new() } else { format!(", state {states}") }
            );
            match first_stale {
                None if *missing == 0 && *stale == 0 => Outcome::Pass(figures),
                None if *stale == 0 => {
                    Outcome::Fail(format!("{figures}; expected every live child to be there ({id})"))
                }
                first => Outcome::Fail(format!(
                    "{figures} (first: {}); expected 0 stale ({id})",
                    first.as_deref().unwrap_or("not recorded")
                )),
            }
        }
        (_, other) => Outcome::Fail(format!("probe {name} reported what no judgement here reads: {other:?} ({id})")),
    }
}

/// For probe `name`, observations that break its rule, each described in
/// a few words: the proof that its row can fail. Empty for a name the
/// catalogue does not know.
pub fn violations(name: &str) -> Vec<(&'static str, Observation)> {
    use Observation as O;
    let alive = || Wait::Alive;
    match name {
        "ppid-is-tgid" => vec![
            ("getppid() shows the forking thread's id", O::PpidIsTgid { tgid: 2, tid: 3, getppid: 3, proc_ppid: 2 }),
            ("/proc shows the forking thread's id", O::PpidIsTgid { tgid: 2, tid: 3, getppid: 2, proc_ppid: 3 }),
        ],
        "pidfd-info-ppid" => vec![
            ("the ppid stays the dead parent", O::PidfdInfoPpid { parent: 3, before: 3, subreaper: 2, after: 3 }),
            ("the ppid is 0 after the reparent", O::PidfdInfoPpid { parent: 3, before: 3, subreaper: 2, after: 0 }),
        ],
        "subreaper-readback" => vec![
            ("the flag reads back 0", O::SubreaperReadback { set_ret: 0, read: 0 }),
            ("the flag reads back 42, not !!42", O::SubreaperReadback { set_ret: 0, read: 42 }),
        ],
        "subreaper-not-inherited" => {
            vec![("the fork child inherits the flag", O::SubreaperNotInherited { child_reads: 1 })]
        }
        "subreaper-kept-across-exec" => vec![("execve() clears the flag", O::SubreaperAfterExec { reads: 0 })],
        "init-may-be-subreaper" => vec![(
            "the init is refused with EINVAL",
            O::InitMayBeSubreaper { pid: 1, set: Ret::Err("EINVAL".into()), read: 0 },
        )],
        "exit-signal-reset" => vec![
            (
                "a plain wait sees the SIGUSR1 child before the reparent",
                O::ExitSignalReset {
                    before_plain: alive(),
                    before_wall: alive(),
                    after_plain: alive(),
                    reaped: Wait::Exited(0),
                },
            ),
            (
                "exit_signal is not reset: the adopter's plain wait gets ECHILD",
                O::ExitSignalReset {
                    before_plain: Wait::Errno("ECHILD".into()),
                    before_wall: alive(),
                    after_plain: Wait::Errno("ECHILD".into()),
                    reaped: Wait::Errno("ECHILD".into()),
                },
            ),
        ],
        "sigign-autoreap" => vec![
            (
                "the zombie is left for the SIG_IGN adopter to reap",
                O::Autoreap { zombie: 5, signals: vec![], then_wait: Wait::Exited(7) },
            ),
            (
                "a SIGCHLD reaches the SIG_IGN adopter",
                O::Autoreap {
                    zombie: 5,
                    signals: vec![SigInfo { signo: SIGCHLD, pid: 5, code: CLD_EXITED, status: 7 }],
                    then_wait: Wait::Errno("ECHILD".into()),
                },
            ),
        ],
        "nocldwait-autoreap" => vec![
            (
                "no SIGCHLD for the SA_NOCLDWAIT adopter",
                O::Autoreap { zombie: 5, signals: vec![], then_wait: Wait::Errno("ECHILD".into()) },
            ),
            (
                "the zombie is left to be reaped",
                O::Autoreap {
                    zombie: 5,
                    signals: vec![SigInfo { signo: SIGCHLD, pid: 5, code: CLD_EXITED, status: 7 }],
                    then_wait: Wait::Exited(7),
                },
            ),
        ],
        "pdeathsig-range" => vec![
            ("65 is accepted", O::PdeathsigRange { set65: Ret::Ok(0), read64: 64, read0: 0 }),
            ("64 does not read back", O::PdeathsigRange { set65: Ret::Err("EINVAL".into()), read64: 0, read0: 0 }),
        ],
        "pdeathsig-cleared-on-fork" => vec![(
            "the fork child inherits the pdeath signal",
            O::PdeathsigAfterFork { parent_sig: SIGUSR2, child_reads: SIGUSR2 },
        )],
        "pdeathsig-kept-across-exec" => {
            vec![("execve() clears the pdeath signal", O::PdeathsigAfterExec { set: SIGUSR2, reads: 0 })]
        }
        "ns-empty-at-init-readiness" => vec![
            (
                "a process is left when the init's pidfd is readable",
                O::NsEmptyAtReadiness { init: Wait::Killed(SIGKILL), members: 4, left: 1 },
            ),
            (
                "the init survives SIGKILL's effects and exits 0",
                O::NsEmptyAtReadiness { init: Wait::Exited(0), members: 4, left: 0 },
            ),
        ],
        "fork-into-dead-ns" => vec![(
            "a fork into the dead namespace succeeds",
            O::ForkIntoDeadNs { zombie: Ret::Ok(7), reaped: Ret::Err("ENOMEM".into()) },
        )],
        "reboot-restart" => vec![
            ("the init is killed by SIGINT", O::Reboot { failed: None, init: Some(Wait::Killed(SIGINT)) }),
            ("reboot() fails", O::Reboot { failed: Some("reboot(RESTART) failed: EPERM".into()), init: None }),
        ],
        "reboot-power-off" => vec![
            ("the init is killed by SIGHUP", O::Reboot { failed: None, init: Some(Wait::Killed(SIGHUP)) }),
            ("the init exits instead", O::Reboot { failed: None, init: Some(Wait::Exited(0)) }),
        ],
        "init-shield-inside" => vec![
            (
                "kill(1, SIGTERM) is refused",
                O::InitShieldInside {
                    kill_term: Ret::Err("EPERM".into()),
                    kill_kill: Ret::Ok(0),
                    kill_usr1: Ret::Ok(0),
                    handled: vec![SIGUSR1],
                },
            ),
            (
                "the handler saw another signal first",
                O::InitShieldInside {
                    kill_term: Ret::Ok(0),
                    kill_kill: Ret::Ok(0),
                    kill_usr1: Ret::Ok(0),
                    handled: vec![SIGTERM],
                },
            ),
        ],
        "init-shield-outside" => vec![
            (
                "SIGTERM from outside kills the init",
                O::InitShieldOutside { died: Some(Wait::Killed(SIGTERM)), after_sigkill: None },
            ),
            (
                "SIGKILL from outside does not kill it",
                O::InitShieldOutside { died: None, after_sigkill: Some(Wait::Exited(0)) },
            ),
        ],
        "mt-init-leader-blocks" => vec![
            (
                "the init exits instead",
                O::MtInitLeaderBlocks { blocked: vec![SIGTERM, SIGINT, SIGUSR1], died: Some(Wait::Exited(0)) },
            ),
            (
                "the init is killed by a signal nobody sent",
                O::MtInitLeaderBlocks { blocked: vec![SIGTERM, SIGINT, SIGUSR1], died: Some(Wait::Killed(SIGKILL)) },
            ),
        ],
        "init-clone-parent" => vec![
            (
                "the init's clone(CLONE_PARENT) succeeds",
                O::InitCloneParent { from_init: Ret::Ok(9), from_child_ppid: 1 },
            ),
            (
                "S's CLONE_PARENT child has S as its parent",
                O::InitCloneParent { from_init: Ret::Err("EINVAL".into()), from_child_ppid: 2 },
            ),
        ],
        "kill-all-spares-init" => vec![
            (
                "the caller is killed too",
                O::KillAllSparesInit {
                    returned: Ret::Ok(0),
                    b: Wait::Killed(SIGKILL),
                    c: Wait::Killed(SIGKILL),
                    a: Wait::Killed(SIGKILL),
                },
            ),
            (
                "C is spared",
                O::KillAllSparesInit {
                    returned: Ret::Ok(0),
                    b: Wait::Killed(SIGKILL),
                    c: Wait::Exited(0),
                    a: Wait::Exited(0),
                },
            ),
        ],
        "pidfd-hup-after-reap" => vec![
            (
                "the reaped pidfd does not hang up",
                O::PidfdHupAfterReap {
                    zombie: Polled { pollin: true, pollhup: false },
                    reaped: Polled { pollin: true, pollhup: false },
                },
            ),
            (
                "the zombie's pidfd already hangs up",
                O::PidfdHupAfterReap {
                    zombie: Polled { pollin: true, pollhup: true },
                    reaped: Polled { pollin: true, pollhup: true },
                },
            ),
        ],
        "pidfd-readiness" => vec![
            (
                "a live child still has its dead parent at readiness",
                readiness(1, 0, Some("round 3: pid 40 still had parent 12".into())),
            ),
            ("a live child is gone at readiness", readiness(0, 1, None)),
        ],
        _ => Vec::new(),
    }
}

/// A readiness observation with the probe's usual figures.
fn readiness(stale: usize, missing: usize, first_stale: Option<String>) -> Observation {
    Observation::PidfdReadiness {
        rounds: 64,
        threaded: 32,
        threads: 4,
        live: 16,
        zombies: 8,
        stale,
        missing,
        visible_single: 0,
        visible_threaded: 0,
        states: String::new(),
        first_stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: (u32, u32) = (6, 18);

    /// What each probe sees on a kernel that follows the rules (as on
    /// 6.18.44).
    fn passing(name: &str) -> Observation {
        use Observation as O;
        let echild = || Wait::Errno("ECHILD".into());
        match name {
            "ppid-is-tgid" => O::PpidIsTgid { tgid: 2, tid: 3, getppid: 2, proc_ppid: 2 },
            "pidfd-info-ppid" => O::PidfdInfoPpid { parent: 3, before: 3, subreaper: 2, after: 2 },
            "subreaper-readback" => O::SubreaperReadback { set_ret: 0, read: 1 },
            "subreaper-not-inherited" => O::SubreaperNotInherited { child_reads: 0 },
            "subreaper-kept-across-exec" => O::SubreaperAfterExec { reads: 1 },
            "init-may-be-subreaper" => O::InitMayBeSubreaper { pid: 1, set: Ret::Ok(0), read: 1 },
            "exit-signal-reset" => O::ExitSignalReset {
                before_plain: echild(),
                before_wall: Wait::Alive,
                after_plain: Wait::Alive,
                reaped: Wait::Exited(0),
            },
            "sigign-autoreap" => O::Autoreap { zombie: 5, signals: vec![], then_wait: echild() },
            "nocldwait-autoreap" => O::Autoreap {
                zombie: 5,
                signals: vec![SigInfo { signo: SIGCHLD, pid: 5, code: CLD_EXITED, status: 7 }],
                then_wait: echild(),
            },
            "pdeathsig-range" => O::PdeathsigRange { set65: Ret::Err("EINVAL".into()), read64: 64, read0: 0 },
            "pdeathsig-cleared-on-fork" => O::PdeathsigAfterFork { parent_sig: SIGUSR2, child_reads: 0 },
            "pdeathsig-kept-across-exec" => O::PdeathsigAfterExec { set: SIGUSR2, reads: SIGUSR2 },
            "ns-empty-at-init-readiness" => O::NsEmptyAtReadiness { init: Wait::Killed(SIGKILL), members: 4, left: 0 },
            "fork-into-dead-ns" => {
                O::ForkIntoDeadNs { zombie: Ret::Err("ENOMEM".into()), reaped: Ret::Err("ENOMEM".into()) }
            }
            "reboot-restart" => O::Reboot { failed: None, init: Some(Wait::Killed(SIGHUP)) },
            "reboot-power-off" => O::Reboot { failed: None, init: Some(Wait::Killed(SIGINT)) },
            "init-shield-inside" => O::InitShieldInside {
                kill_term: Ret::Ok(0),
                kill_kill: Ret::Ok(0),
                kill_usr1: Ret::Ok(0),
                handled: vec![SIGUSR1],
            },
            "init-shield-outside" => O::InitShieldOutside { died: None, after_sigkill: Some(Wait::Killed(SIGKILL)) },
            "mt-init-leader-blocks" => O::MtInitLeaderBlocks { blocked: vec![SIGTERM, SIGINT, SIGUSR1], died: None },
            "init-clone-parent" => O::InitCloneParent { from_init: Ret::Err("EINVAL".into()), from_child_ppid: 1 },
            "kill-all-spares-init" => O::KillAllSparesInit {
                returned: Ret::Ok(0),
                b: Wait::Killed(SIGKILL),
                c: Wait::Killed(SIGKILL),
                a: Wait::Exited(0),
            },
            "pidfd-hup-after-reap" => O::PidfdHupAfterReap {
                zombie: Polled { pollin: true, pollhup: false },
                reaped: Polled { pollin: true, pollhup: true },
            },
            "pidfd-readiness" => readiness(0, 0, None),
            other => panic!("no passing observation for probe {other}"),
        }
    }

    #[test]
    fn every_probe_of_the_catalogue_has_a_violation() {
        assert!(names().count() >= 23);
        for name in names() {
            assert!(!violations(name).is_empty(), "probe {name} has no violation: its row could never fail");
        }
    }

    #[test]
    fn every_violation_fails_and_names_its_rule() {
        for name in names() {
            let id = rule_id(name);
            for (what, seen) in violations(name) {
                match judge(name, &seen, NOW) {
                    Outcome::Fail(msg) => assert!(msg.contains(id), "{name} ({what}): {msg} does not name {id}"),
                    other => panic!("{name} ({what}): {seen:?} judged {other:?}, not a failure"),
                }
            }
        }
    }

    #[test]
    fn every_probe_passes_on_a_conforming_kernel() {
        for name in names() {
            let seen = passing(name);
            let ok = matches!(judge(name, &seen, NOW), Outcome::Pass(_) | Outcome::Recorded { .. });
            assert!(ok, "{name}: {:?}", judge(name, &seen, NOW));
        }
    }

    #[test]
    fn pass_texts_say_what_was_seen_as_before() {
        let text = |name| match judge(name, &passing(name), NOW) {
            Outcome::Pass(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(text("subreaper-readback"), "prctl returned 0, PR_GET_CHILD_SUBREAPER read 1");
        assert_eq!(text("init-may-be-subreaper"), "in pid 1, the namespace's init: prctl success (0), reads 1");
        assert_eq!(
            text("nocldwait-autoreap"),
            "SA_NOCLDWAIT subreaper adopting zombie Z: signals [SIGCHLD(from Z, code 1, status 7)], then \
             waitpid(-1): ECHILD"
        );
        assert_eq!(text("pdeathsig-kept-across-exec"), "after execve() PR_GET_PDEATHSIG reads 12");
        assert_eq!(
            text("init-clone-parent"),
            "from the init: EINVAL; from its child S: success, the new child's parent is pid 1"
        );
        assert_eq!(text("pidfd-hup-after-reap"), "a zombie's pidfd polls POLLIN; once reaped POLLIN|POLLHUP");
        assert!(text("pidfd-readiness").starts_with("64 rounds (32 with a 4-thread victim), 16 live + 8 zombie"));
    }

    #[test]
    fn the_multi_threaded_init_records_either_outcome() {
        let seen = |died| Observation::MtInitLeaderBlocks { blocked: vec![SIGTERM, SIGINT, SIGUSR1], died };
        let recorded = |o: Outcome| match o {
            Outcome::Recorded { value, detail } => (value, detail),
            other => panic!("{other:?}"),
        };
        let (v, d) = recorded(judge("mt-init-leader-blocks", &seen(None), NOW));
        assert_eq!(v, "survives");
        assert!(d.starts_with("survives: a 2-thread init with SIGTERM, SIGINT, SIGUSR1 blocked"), "{d}");
        // As every Debian kernel from 5.10 to 7.3.4 does: the other thread
        // takes the first signal sent.
        let (v, d) = recorded(judge("mt-init-leader-blocks", &seen(Some(Wait::Killed(SIGTERM))), (5, 10)));
        assert_eq!(v, "killed");
        assert!(d.contains("was killed by SIGTERM"), "{d}");
        let (v, _) = recorded(judge("mt-init-leader-blocks", &seen(Some(Wait::Killed(SIGUSR1))), NOW));
        assert_eq!(v, "killed");
        // Killed by a signal it does not block in its leader: neither.
        let other = judge("mt-init-leader-blocks", &seen(Some(Wait::Killed(SIGHUP))), NOW);
        assert!(matches!(&other, Outcome::Fail(m) if m.contains("R6.6g") && m.contains("SIGHUP")), "{other:?}");
    }

    #[test]
    fn version_dependent_probes_are_skipped_on_older_kernels() {
        let skipped = |name, k| matches!(judge(name, &passing(name), k), Outcome::Skipped(_));
        assert!(skipped("pidfd-info-ppid", (6, 12)));
        assert!(!skipped("pidfd-info-ppid", (6, 13)));
        assert!(skipped("pidfd-hup-after-reap", (6, 8)));
        assert!(!skipped("pidfd-hup-after-reap", (6, 9)));
        let unsupported = Observation::PidfdInfoUnsupported { errno: "ENOTTY".into() };
        assert_eq!(
            judge("pidfd-info-ppid", &unsupported, NOW),
            Outcome::Skipped("PIDFD_GET_INFO is not supported here (ENOTTY)".into())
        );
    }

    #[test]
    fn a_probe_that_could_not_run_is_no_pass() {
        let failed = judge("subreaper-readback", &Observation::Failed("timed out waiting for S".into()), NOW);
        assert_eq!(failed, Outcome::Fail("timed out waiting for S".into()));
        let none = judge("subreaper-readback", &Observation::Unavailable("unshare: EPERM".into()), NOW);
        assert_eq!(none, Outcome::Unavailable("unshare: EPERM".into()));
        let wrong = judge("subreaper-readback", &Observation::SubreaperAfterExec { reads: 1 }, NOW);
        assert!(matches!(wrong, Outcome::Fail(m) if m.contains("R2.1")));
    }
}
