//! The workload: the main child the init under test runs
//! (`reparent __workload`, this binary exec'd by the init). It obeys the
//! gate's observer over a channel whose descriptor number it finds in
//! [`GATE_FD_ENV`].
//!
//! It first reads what it was started with (signal mask, ignored signals,
//! process group, session, terminal, descriptors), then blocks the
//! signals an init forwards and reads them from a signalfd, so that every
//! signal is recorded with its sender (`ssi_pid`) and none takes its
//! default action; only then does it report READY — the barrier after
//! which the gate sends signals. Orphans it makes (through a parent that
//! exits at once) record their signals the same way, and exit when the
//! observer closes their release pipe.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{Got, Order, Ready, Report, GATE_FD_ENV};
use crate::sys::{os, SysError};

/// The argument that makes the binary run as the workload.
pub const WORKLOAD_ARG: &str = "__workload";

/// The signals the workload blocks and records: every standard signal but
/// the two that cannot be caught.
pub fn recorded_signals() -> Vec<i32> {
    (1..32).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP).collect()
}

/// Sends one message, descriptors beside it.
pub(crate) fn send<T: Serialize>(fd: BorrowedFd<'_>, msg: &T, pass: &[BorrowedFd<'_>]) -> Result<bool, SysError> {
    let bytes = serde_json::to_vec(msg).map_err(|e| SysError::Protocol(e.to_string()))?;
    Ok(os::send_with_fds(fd, &bytes, pass, false)? == os::Sent::Sent)
}

/// What one receive gave.
pub(crate) enum Msg<T> {
    Msg(T, Vec<OwnedFd>),
    Eof,
}

/// Receives one message (blocking: call after `poll()` said readable, or
/// when a wait is wanted).
pub(crate) fn recv<T: DeserializeOwned>(fd: BorrowedFd<'_>) -> Result<Msg<T>, SysError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match os::recv_with_fds(fd, &mut buf, 253)? {
            os::Recv::Again => continue,
            os::Recv::Eof => return Ok(Msg::Eof),
            os::Recv::Msg(n, fds) => {
                let msg = serde_json::from_slice(&buf[..n]).map_err(|e| {
                    SysError::Protocol(format!("undecodable gate message ({e}): {}", crate::sys::excerpt(&buf[..n])))
                })?;
                return Ok(Msg::Msg(msg, fds));
            }
        }
    }
}

pub(super) fn status_mask(status: &str, field: &str) -> u64 {
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0)
}

/// `tty_nr` of `/proc/self/stat` (field 7).
fn tty_nr() -> i64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    after.split_whitespace().nth(4).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Every open descriptor but `except`, with what it links to.
fn open_fds(except: i32) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut fds: Vec<(i32, String)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            Some((n, link))
        })
        .filter(|(n, _)| *n != except)
        .collect();
    // The directory being read shows up as one more descriptor.
    fds.retain(|(_, l)| !l.ends_with("/fd") || !l.contains("/proc/"));
    fds.sort();
    fds
}

/// Entry point of `reparent __workload`. Never returns.
pub fn main() -> ! {
    // What the init started us with, before anything of ours changes it.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let (sigblk, sigign) = (status_mask(&status, "SigBlk:"), status_mask(&status, "SigIgn:"));
    let fd = std::env::var(GATE_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok());
    let Some(chan) = fd.and_then(os::take_inherited_fd) else {
        eprintln!("reparent {WORKLOAD_ARG}: {GATE_FD_ENV} is not set: this is started by `reparent gate`, not by hand");
        os::exit_now(2)
    };
    let ready = Ready {
        pid: os::getpid(),
        ppid: os::getppid(),
        pgrp: os::getpgrp(),
        sid: os::getsid(),
        tty_nr: tty_nr(),
        sigblk,
        sigign,
        fds: open_fds(chan.as_raw_fd()),
        stdin_tty: std::io::stdin().is_terminal(),
        tty_fg: os::tcgetpgrp(std::io::stdin().as_fd()).ok(),
    };
    let code = match run(&chan, ready) {
        Ok(code) => code,
        Err(e) => {
            let _ = send(chan.as_fd(), &Report::Failed(e.to_string()), &[]);
            111
        }
    };
    os::exit_now(code)
}

fn run(chan: &OwnedFd, ready: Ready) -> Result<i32, SysError> {
    os::set_cloexec(chan.as_fd())?;
    os::no_core_dumps()?;
    let sigfd = os::signals_fd(&recorded_signals())?;
    let me = os::pidfd_open(os::getpid())?;
    let init_pid = ready.ppid;
    if !send(chan.as_fd(), &Report::Ready(ready), &[me.as_fd()])? {
        return Ok(0);
    }
    drop(me);
    // Held while the workload lives: orphans made with `tie` exit on its EOF.
    let (tie_r, tie_w) = os::pipe()?;
    loop {
        let ev = os::poll_fds(&[chan.as_fd(), sigfd.as_fd()], libc::POLLIN, -1)?;
        if ev[1] != 0 {
            report_signals(chan.as_fd(), sigfd.as_fd())?;
        }
        if ev[0] == 0 {
            continue;
        }
        let order = match recv::<Order>(chan.as_fd())? {
            Msg::Eof => return Ok(0),
            Msg::Msg(o, _) => o,
        };
        match order {
            Order::Ping => {
                report_signals(chan.as_fd(), sigfd.as_fd())?;
                send(chan.as_fd(), &Report::Pong, &[])?;
            }
            Order::Exit(code) => return Ok(code),
            Order::Die(sig) => {
                os::die_of(sig)?;
                return Err(SysError::Protocol(format!("still alive after raising signal {sig}")));
            }
            Order::KillInit { pid, sigs } => {
                for s in sigs {
                    let _ = os::kill(if pid > 0 { pid } else { init_pid }, s);
                }
            }
            Order::Orphans { n, tie, term_default } => {
                make_orphans(chan, &sigfd, n, tie.then(|| tie_r.as_fd()), &tie_w, term_default)?
            }
        }
    }
}

/// Reads every queued signal and reports each.
fn report_signals(chan: BorrowedFd<'_>, sigfd: BorrowedFd<'_>) -> Result<(), SysError> {
    let me = os::getpid();
    for si in os::read_signalfd(sigfd) {
        let got = Got { by: me, signo: si.signo, from: si.pid, code: si.code, at_ms: 0.0 };
        send(chan, &Report::Signal(got), &[])?;
    }
    Ok(())
}

/// Forks a parent that forks `n` children, sends the observer their
/// pidfds, its own and the write end of their release pipe, and exits:
/// the children are orphans. The workload reaps that parent.
fn make_orphans(
    chan: &OwnedFd,
    sigfd: &OwnedFd,
    n: usize,
    tie: Option<BorrowedFd<'_>>,
    tie_w: &OwnedFd,
    term_default: bool,
) -> Result<(), SysError> {
    let tie_w_raw = tie_w.as_raw_fd();
    let middle = os::fork_run(|| {
        os::close_inherited(tie_w_raw);
        // Unblocked before the orphans are forked, so that they have it
        // unblocked from their first instruction: a SIGTERM then kills
        // them in the sender's own call (the kernel's fatal-signal path),
        // which is what T2 in PID 1 mode reads back (PIDFD_INFO_EXIT).
        if term_default {
            if let Err(e) = os::unblock_signals(&[libc::SIGTERM]) {
                let _ = send(chan.as_fd(), &Report::Failed(format!("unblocking SIGTERM: {e}")), &[]);
                return 1;
            }
        }
        match orphan_parent(chan, sigfd, n, tie) {
            Ok(()) => 0,
            Err(e) => {
                let _ = send(chan.as_fd(), &Report::Failed(format!("forking orphans: {e}")), &[]);
                1
            }
        }
    })?;
    let _ = os::waitpid_blocking(middle);
    Ok(())
}

fn orphan_parent(chan: &OwnedFd, sigfd: &OwnedFd, n: usize, tie: Option<BorrowedFd<'_>>) -> Result<(), SysError> {
    let (rel_r, rel_w) = os::pipe()?;
    let rel_w_raw = rel_w.as_raw_fd();
    let mut pids = Vec::with_capacity(n);
    let mut pidfds = Vec::with_capacity(n);
    for _ in 0..n {
        let pid = os::fork_run(|| {
            os::close_inherited(rel_w_raw);
            orphan(chan.as_fd(), sigfd.as_fd(), rel_r.as_fd(), tie)
        })?;
        pidfds.push(os::pidfd_open(pid)?);
        pids.push(pid);
    }
    let me = os::pidfd_open(os::getpid())?;
    let mut pass: Vec<BorrowedFd<'_>> = vec![rel_w.as_fd(), me.as_fd()];
    pass.extend(pidfds.iter().map(|f| f.as_fd()));
    send(chan.as_fd(), &Report::Orphans { pids }, &pass)?;
    Ok(())
}

/// An orphan: records its signals until its release pipe (or, with a tie,
/// the workload's pipe) reads EOF, then exits 0.
fn orphan(chan: BorrowedFd<'_>, sigfd: BorrowedFd<'_>, release: BorrowedFd<'_>, tie: Option<BorrowedFd<'_>>) -> i32 {
    loop {
        let mut fds = vec![release, sigfd];
        fds.extend(tie);
        let Ok(ev) = os::poll_fds(&fds, libc::POLLIN, -1) else { return 1 };
        if ev[1] != 0 && report_signals(chan, sigfd).is_err() {
            return 1;
        }
        if ev[0] != 0 || ev.get(2).is_some_and(|&e| e != 0) {
            return 0;
        }
    }
}
