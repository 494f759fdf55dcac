//! The sandbox server: a process of this binary that forks a fresh sandbox
//! helper ([`super::sandbox`]) for each case, so that a run of many cases
//! (`check`, `bench`: [`super::SandboxOptions::pipeline`]) executes the
//! binary once per runner thread instead of once per case.
//!
//! An exec costs the kernel a new image (mappings, the stack, page faults
//! on every page the new process touches) and the C library its start-up:
//! glibc's start-up probes the caches with `cpuid`, which a virtual machine
//! traps, and on this project's 2-core VM that alone was about 0.65 ms of
//! CPU per exec, a tenth of a random case's. A fork of the server — small,
//! single-threaded, and past all of that — does none of it.
//!
//! The runner spawns the server (`reparent __sandbox-server`) with one end
//! of a `SOCK_SEQPACKET` pair as its stdin, and asks it for a helper with a
//! [`REQUEST`] message. The server forks the helper, whose stdin and stdout
//! are two new pipes, and answers with `+`, the helper's pid (4 bytes,
//! native order) and three descriptors: the write end of the helper's
//! stdin, the read end of its stdout and a pidfd of it — opened before the
//! server reaps anything, so it names exactly that helper. A failure is
//! `-` and the error as JSON ([`WireError`]). From there the runner talks
//! to the helper exactly as to one it spawned itself.
//!
//! Lifetime: the server dies with the runner thread that spawned it
//! (`os::link_to_spawner`), and each helper with the server
//! (`os::fork_run_linked`): the same chain of parent-death signals as a
//! spawned helper's, one link longer. The server reaps the helpers that
//! have exited before each fork and when it ends, which is at EOF on its
//! socket: the runner closes it after every helper it had is gone
//! (`client::finish_thread`).

#![forbid(unsafe_code)]

use std::os::fd::AsFd;

use super::os::{self, Recv, Sent};
use super::{sandbox, SysError, WireError};

/// The argument that makes the binary run as the sandbox server.
pub const SERVER_ARG: &str = "__sandbox-server";

/// The one request: fork a helper.
pub const REQUEST: &[u8] = b"helper";

/// Entry point of `reparent __sandbox-server`. Never returns.
pub fn main() -> ! {
    os::link_to_spawner();
    let sock = match os::take_stdin() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reparent {SERVER_ARG}: {e}");
            os::exit_now(111)
        }
    };
    let mut buf = [0u8; 64];
    loop {
        os::reap_all_exited();
        let answer = match os::recv_with_fds(sock.as_fd(), &mut buf, 0) {
            Ok(Recv::Msg(n, _)) if &buf[..n] == REQUEST => fork_helper(),
            Ok(Recv::Msg(n, _)) => Err(SysError::Protocol(format!(
                "the sandbox server was asked for {}, not for a helper",
                super::excerpt(&buf[..n])
            ))),
            Ok(Recv::Again) => continue,
            Ok(Recv::Eof) | Err(_) => break,
        };
        let sent = match answer {
            Ok(h) => {
                let mut msg = vec![b'+'];
                msg.extend_from_slice(&h.pid.to_ne_bytes());
                os::send_with_fds(sock.as_fd(), &msg, &[h.stdin.as_fd(), h.stdout.as_fd(), h.pidfd.as_fd()], false)
            }
            Err(e) => {
                let mut msg = vec![b'-'];
                msg.extend_from_slice(serde_json::to_string(&WireError::from(&e)).unwrap_or_default().as_bytes());
                os::send_with_fds(sock.as_fd(), &msg, &[], false)
            }
        };
        if !matches!(sent, Ok(Sent::Sent)) {
            break;
        }
    }
    os::reap_all_exited();
    os::exit_now(0)
}

/// A helper just forked, and the server's ends of it.
struct Forked {
    pid: i32,
    /// The write end of its stdin.
    stdin: std::os::fd::OwnedFd,
    /// The read end of its stdout.
    stdout: std::os::fd::OwnedFd,
    pidfd: std::os::fd::OwnedFd,
}

fn fork_helper() -> Result<Forked, SysError> {
    let (stdin_r, stdin) = os::pipe()?;
    let (stdout, stdout_w) = os::pipe()?;
    // The server is single-threaded, as `fork_run` requires. The child
    // keeps only its two pipe ends, as 0 and 1 (and stderr); the server's
    // copies of them are dropped when the closure is.
    let pid = os::fork_run_linked(move || {
        if let Err(e) = os::install_stdio(stdin_r, stdout_w) {
            eprintln!("reparent sandbox helper: {e}");
            return 111;
        }
        sandbox::serve()
    })?;
    // Our own child, not reaped before this: the pid names exactly it.
    let pidfd = os::pidfd_open(pid)?;
    Ok(Forked { pid, stdin, stdout, pidfd })
}
