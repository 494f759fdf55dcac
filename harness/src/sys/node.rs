//! The node agent: the code every process of a scenario tree runs.
//!
//! A node is a forked copy of the sandbox helper (single-threaded, so a plain
//! `fork()` is safe) that waits for commands on its channel and carries them
//! out itself — `exit()`, `PR_SET_CHILD_SUBREAPER`, `fork()`, `wait()` —
//! because those calls only mean something when the process in the tree
//! makes them. It learns of exited children through a signalfd for SIGCHLD
//! and, unless it is `noreap` or ignores SIGCHLD, reaps them at once, as a
//! shell does. Signals are never its business: they come from the helper
//! through pidfds and take their default action (no node catches any).
//!
//! The loop serves the signalfd before the channel, so an answer to a
//! `Ping` also says the node has collected every child whose SIGCHLD arrived
//! before the ping.

use std::os::fd::{AsFd, OwnedFd};

use super::channel::{self, Command, Reply, ATTR_NOREAP, ATTR_SIGCHLD_IGNORE, ATTR_SUBREAPER};
use super::{os, SysError};

/// The argument that makes the binary run as a node started by an init
/// under test, and the environment variables that hand it its channel and
/// attributes.
pub const NODE_ARG: &str = "__node";
pub const NODE_FD_ENV: &str = "REPARENT_NODE_FD";
pub const NODE_ATTRS_ENV: &str = "REPARENT_NODE_ATTRS";

/// Entry point of `reparent __node`: the node an init under test runs as its
/// child. It was exec'd, so it first undoes what the Rust runtime set up.
/// Never returns.
pub fn main_from_env() -> ! {
    let fd = std::env::var(NODE_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok());
    let attrs = std::env::var(NODE_ATTRS_ENV).ok().and_then(|v| v.parse::<u8>().ok()).unwrap_or(0);
    let Some(fd) = fd.filter(|&fd| fd > 2) else {
        eprintln!("reparent {NODE_ARG}: {NODE_FD_ENV} is not set: this is started by the sandbox, not by hand");
        os::exit_now(2)
    };
    // SAFETY: the sandbox passed this descriptor to us for our own use.
    let chan = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if let Err(e) = os::default_all_signals().and_then(|_| os::set_cloexec(chan.as_fd())) {
        eprintln!("reparent {NODE_ARG}: {e}");
        os::exit_now(111)
    }
    become_node(chan, attrs)
}

/// Becomes a node: applies `attrs`, greets the helper with its pid and a
/// pidfd of itself, then serves commands until told to exit. Never returns.
pub fn become_node(chan: OwnedFd, attrs: u8) -> ! {
    let code = match run(chan, attrs) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reparent node {}: {e}", os::getpid());
            111
        }
    };
    os::exit_now(code)
}

fn run(chan: OwnedFd, attrs: u8) -> Result<(), SysError> {
    let sigfd = os::sigchld_fd()?;
    // A fork inherits its parent's SIGCHLD disposition: set ours either way.
    os::set_sigchld_ignored(attrs & ATTR_SIGCHLD_IGNORE != 0)?;
    // Reap at once, as a shell does — unless told never to, or unless the
    // kernel does it (SIGCHLD ignored).
    let reaps = attrs & (ATTR_SIGCHLD_IGNORE | ATTR_NOREAP) == 0;
    // The flag the helper records is the one the kernel reads back.
    let subreaper =
        if attrs & ATTR_SUBREAPER != 0 { os::set_child_subreaper(true)? } else { os::get_child_subreaper()? };
    let me = os::getpid();
    let pidfd = os::pidfd_open(me)?;
    channel::send_reply(chan.as_fd(), Reply::Hello(me, subreaper, pidfd))?;

    loop {
        let mut fds = [
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&sigfd), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&chan), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfds on the stack.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            continue; // EINTR: a stop/continue; poll again.
        }
        if fds[0].revents != 0 {
            os::drain(sigfd.as_fd());
            if reaps {
                os::reap_all_exited();
            }
        }
        if fds[1].revents == 0 {
            continue;
        }
        let Some((cmd, passed)) = channel::recv_command(chan.as_fd())? else {
            // The helper is gone; so is the namespace, shortly.
            return Ok(());
        };
        let reply = match cmd {
            Command::Ping => Reply::Pong,
            Command::Exit(code) => os::exit_now(code),
            Command::Subreaper(on) => match os::set_child_subreaper(on) {
                Ok(v) => Reply::Ack(v as i32),
                Err(e) => Reply::Failed(e.to_string()),
            },
            Command::Reap => Reply::Ack(os::reap_all_exited() as i32),
            Command::Spawn(child_attrs) => {
                // No reply: the child greets the helper itself; if it could
                // not be forked, dropping its channel end shows as EOF there.
                match passed {
                    Some(child_chan) => {
                        if let Err(e) = spawn(&chan, &sigfd, child_chan, child_attrs) {
                            eprintln!("reparent node {}: {e}", os::getpid());
                        }
                    }
                    None => eprintln!("reparent node {}: spawn without a channel", os::getpid()),
                }
                continue;
            }
        };
        channel::send_reply(chan.as_fd(), reply)?;
    }
}

/// Forks a child node that will serve `node_end`.
fn spawn(chan: &OwnedFd, sigfd: &OwnedFd, node_end: OwnedFd, attrs: u8) -> Result<(), SysError> {
    // SAFETY: nodes are single-threaded.
    let pid = unsafe { os::fork()? };
    if pid == 0 {
        // The child must not keep its parent's channel open: EOF on it is
        // how the helper learns that the parent died. Dropping closes them.
        // SAFETY: these descriptors are owned by the parent's frames, which
        // this child never returns to; closing them here and forgetting the
        // owners keeps each descriptor closed exactly once.
        unsafe {
            libc::close(std::os::fd::AsRawFd::as_raw_fd(chan));
            libc::close(std::os::fd::AsRawFd::as_raw_fd(sigfd));
        }
        become_node(node_end, attrs);
    }
    drop(node_end);
    Ok(())
}
