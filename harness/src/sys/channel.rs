//! The control channel between the sandbox helper and each node process.
//!
//! Every node owns one end of a `SOCK_SEQPACKET` socket pair whose other end
//! the helper holds. Seqpacket keeps message boundaries, carries descriptors
//! (`SCM_RIGHTS`: a new node hands the helper a pidfd of itself and, if it
//! is a namespace init, its namespace; the helper hands a parent the node's
//! end of its new child's channel and, for `into=`, that namespace) and — what the settle logic
//! relies on — reports end-of-file exactly when the node's last copy of its
//! end is closed, which `do_exit()` of its last thread does in
//! `exit_files()` before `exit_notify()`. A node that dies therefore shows
//! up as EOF on its channel even when nobody predicted its death; a node
//! whose main thread alone has exited keeps it open (its other threads
//! share the descriptor table).
//!
//! Each message is one `postcard` record (a compact binary serde format:
//! no field names, no text to parse; both ends are this same binary);
//! descriptors travel beside it.
//!
//! ## Why neither side can block the other for ever
//!
//! A socket's buffer is finite: a sender blocks once the peer has not read
//! enough, and two processes that each block sending to the other wait for
//! ever (a parent asked to fork 450 children at once fills the helper's
//! buffer with acks while the helper fills the parent's with orders). So
//! the two sides follow different rules:
//!
//! - a node only ever answers, one reply per command, with a blocking send;
//! - the helper never blocks on a send: it sends with `MSG_DONTWAIT`
//!   ([`try_send_command`]), and when a channel's buffer is full it reads
//!   that node's replies — the very thing a node blocked on a send waits
//!   for — before it tries again (the helper's poll loop over a batch), or,
//!   with nothing outstanding on the channel, waits for room until a
//!   deadline ([`send_command`]).
//!
//! A node blocked on a send therefore always has a reader, and the helper
//! has no unbounded wait at all.

#![forbid(unsafe_code)]

use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{os, SysError};
use crate::scenario::{Attrs, ThreadRef};

/// The largest message either side sends.
const MAX_MSG: usize = 4096;
/// The most descriptors one message carries.
const MAX_FDS: usize = BUILT_FDS;
/// The most new children's channels one [`Reply::Built`] carries.
pub const BUILT_FDS: usize = 32;

/// A command from the helper to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Answer `Pong`: proves the node has returned to user space, so every
    /// signal sent to it before has been acted on — and says which of its
    /// handlers ran since the last answer.
    Ping,
    /// `exit(code)`.
    Exit(i32),
    /// `PR_SET_CHILD_SUBREAPER(on)`.
    Subreaper(bool),
    /// Wait for all exited children now.
    Reap,
    /// Fork a new node. The node's end of its channel comes with the
    /// command (`SCM_RIGHTS`), then, with `into`, the PID namespace to fork
    /// into (as its init reported it). The parent answers `Ack` once it has forked
    /// (or `Failed`); the new node greets the helper on its own channel.
    Spawn(SpawnOrder),
    /// End one thread (`SYS_exit`); answered once the kernel is done with
    /// it (its children moved, R1.7).
    ThreadExit(ThreadRef),
    /// Re-execute the node's binary from the main thread; the new image
    /// greets the helper again on the same channel.
    Exec,
    /// `setpgid(0, 0)`.
    Setpgid,
    /// `setsid()`.
    Setsid,
    /// A part of the starting tree for the receiving node — PID 1, the
    /// root of the tree — to fork by itself, each new node forking its own
    /// children in turn ([`TreePart`]). Answered `Ack(0)`, and the last
    /// part by the root's [`Reply::Built`].
    BuildTree(TreePart),
}

/// Part of the starting tree, in file order: for each process after the
/// root, its parent's index in the whole list (the root is 0) and its
/// attributes (`None`: the defaults). Several parts keep each message
/// small; `last` marks the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreePart {
    pub nodes: Vec<(u32, Option<Attrs>)>,
    pub last: bool,
}

/// How to fork a new node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnOrder {
    /// The new node's attributes (`pidns`: `CLONE_NEWPID`).
    pub attrs: Attrs,
    /// Which extra thread forks (`None`: the main thread).
    pub thread: Option<u32>,
    /// `CLONE_PARENT`.
    pub clone_parent: bool,
    /// The namespace to fork into comes with the command.
    pub into: bool,
}

/// What a node says about itself when it starts (and again after `exec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Its pid as the sandbox's `/proc` numbers it.
    pub pid: i32,
    /// `PR_GET_CHILD_SUBREAPER` as the kernel reads it back.
    pub subreaper: bool,
    /// `PR_GET_PDEATHSIG` of the main thread (0: none).
    pub pdeathsig: i32,
    /// It is PID 1 of its own namespace (`getpid() == 1`).
    pub ns_init: bool,
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Alive; the mask of signals (bit `n - 1` for signal `n`) whose
    /// handlers ran since the last `Pong`.
    Pong(u64),
    /// Done; the value read back (subreaper flag) or a count.
    Ack(i32),
    /// The first message on a new channel (and after an exec). A pidfd of
    /// the node comes with it and, from a namespace init, its namespace
    /// (`/proc/self/ns/pid`: opening its own needs no ptrace access, which
    /// another node, not dumpable, would lack).
    Hello(Hello),
    /// The node could not do what it was asked.
    Failed(String),
    /// The node ran out of something (a [`SysError::Resource`]): not a
    /// finding, and not to be shown as one.
    Exhausted { what: String, limit: String },
    /// A node of a [`Command::BuildTree`] has forked its children: their
    /// indexes in the tree and, beside the message, their channels' helper
    /// ends in the same order (at most [`BUILT_FDS`] per message; `more`:
    /// another message follows). A new node sends it right after its
    /// `Hello`; the root sends it as its answer.
    Built { children: Vec<u32>, more: bool },
}

impl Reply {
    /// The failure reply for `e`: [`Reply::Exhausted`] for a resource
    /// failure, else [`Reply::Failed`] with its text.
    pub fn from_error(e: &SysError) -> Reply {
        match e {
            SysError::Resource { what, limit } => Reply::Exhausted { what: what.clone(), limit: limit.clone() },
            other => Reply::Failed(other.to_string()),
        }
    }
}

/// What a receive found.
#[derive(Debug)]
pub enum Received<T> {
    Msg(T),
    /// The peer's end is closed: the node is dead or dying.
    Eof,
    /// The deadline passed first.
    Timeout,
}

/// A new channel: (helper's end, node's end), both close-on-exec.
pub fn pair() -> Result<(OwnedFd, OwnedFd), SysError> {
    os::seqpacket_pair()
}

pub use os::Sent;

fn send<T: Serialize>(fd: BorrowedFd<'_>, msg: &T, pass: &[BorrowedFd<'_>], dontwait: bool) -> Result<Sent, SysError> {
    let mut bytes = postcard::to_allocvec(msg).map_err(|e| SysError::Protocol(e.to_string()))?;
    bytes.truncate(MAX_MSG);
    os::send_with_fds(fd, &bytes, pass, dontwait)
}

/// A raw message: its bytes and the descriptors passed with it.
type Raw = (Vec<u8>, Vec<OwnedFd>);

/// Receives one message, blocking until `deadline` (`None`: forever). A
/// deadline already past still takes a message that is there.
fn recv(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<Received<Raw>, SysError> {
    let mut buf = vec![0u8; MAX_MSG];
    loop {
        // A message that is there already is taken without a poll first:
        // a node reads its channel after its own loop's poll found it
        // readable, and the helper mostly reads replies its poll over a
        // batch found. Only when nothing is there does it wait.
        match os::recv_with_fds_flags(fd, &mut buf, MAX_FDS, true)? {
            os::Recv::Again => {}
            os::Recv::Eof => return Ok(Received::Eof),
            os::Recv::Msg(n, passed) => {
                buf.truncate(n);
                return Ok(Received::Msg((buf, passed)));
            }
        }
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Received::Timeout);
                }
                left.as_millis().clamp(1, i32::MAX as u128) as i32
            }
        };
        os::poll_one(fd, libc::POLLIN, timeout)?;
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SysError> {
    postcard::from_bytes(bytes).map_err(|e| {
        SysError::Protocol(format!("undecodable message on a control channel ({e}): {}", super::excerpt(bytes)))
    })
}

/// Sends a command with `pass` beside it (helper side) if the channel has
/// room now; never blocks.
pub fn try_send_command(fd: BorrowedFd<'_>, cmd: &Command, pass: &[BorrowedFd<'_>]) -> Result<Sent, SysError> {
    send(fd, cmd, pass, true)
}

/// Sends a command (helper side), waiting until `deadline` for room.
/// Only for a channel on which no reply is outstanding, whose node
/// therefore is not blocked sending to the helper (see the module docs).
/// [`Sent::Full`]: still no room at the deadline.
pub fn send_command(fd: BorrowedFd<'_>, cmd: &Command, deadline: Instant) -> Result<Sent, SysError> {
    loop {
        match send(fd, cmd, &[], true)? {
            Sent::Full => {}
            done => return Ok(done),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Sent::Full);
        }
        os::poll_one(fd, libc::POLLOUT, left.as_millis().clamp(1, i32::MAX as u128) as i32)?;
    }
}

/// Receives a command and the descriptors passed with it (node side);
/// `None` when the helper is gone.
pub fn recv_command(fd: BorrowedFd<'_>) -> Result<Option<(Command, Vec<OwnedFd>)>, SysError> {
    match recv(fd, None)? {
        Received::Msg((b, passed)) => Ok(Some((decode(&b)?, passed))),
        Received::Eof | Received::Timeout => Ok(None),
    }
}

/// Sends a reply (node side), with the descriptors for `Hello`, blocking
/// until the helper has room. `false`: the helper is gone.
pub fn send_reply(fd: BorrowedFd<'_>, reply: &Reply, pass: &[BorrowedFd<'_>]) -> Result<bool, SysError> {
    let reply = match reply {
        Reply::Failed(why) if why.len() > MAX_MSG / 2 => {
            let mut end = MAX_MSG / 2;
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            Reply::Failed(why[..end].to_string())
        }
        other => other.clone(),
    };
    Ok(send(fd, &reply, pass, false)? == Sent::Sent)
}

/// Receives a reply (helper side), until `deadline` (one already past:
/// only a reply that is there), with the descriptors that came with it.
pub fn recv_reply(fd: BorrowedFd<'_>, deadline: Instant) -> Result<Received<(Reply, Vec<OwnedFd>)>, SysError> {
    Ok(match recv(fd, Some(deadline))? {
        Received::Msg((b, passed)) => Received::Msg((decode(&b)?, passed)),
        Received::Eof => Received::Eof,
        Received::Timeout => Received::Timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Duration;

    #[test]
    fn commands_and_descriptors_cross_the_channel() {
        let (a, b) = pair().unwrap();
        let (x, y) = pair().unwrap();
        let order = Command::Spawn(SpawnOrder {
            attrs: Attrs { threads: 2, ..Attrs::default() },
            thread: Some(1),
            clone_parent: true,
            into: true,
        });
        assert_eq!(try_send_command(a.as_fd(), &order, &[x.as_fd(), y.as_fd()]).unwrap(), Sent::Sent);
        let (got, fds) = recv_command(b.as_fd()).unwrap().unwrap();
        assert_eq!(got, order);
        assert_eq!(fds.len(), 2);
        assert!(send_reply(b.as_fd(), &Reply::Pong(1 << 9), &[]).unwrap());
        match recv_reply(a.as_fd(), Instant::now() + Duration::from_secs(5)).unwrap() {
            Received::Msg((Reply::Pong(m), fds)) => assert!(m == 1 << 9 && fds.is_empty()),
            other => panic!("{other:?}"),
        }
        drop(b);
        assert!(matches!(recv_reply(a.as_fd(), Instant::now() + Duration::from_secs(5)).unwrap(), Received::Eof));
    }

    #[test]
    fn the_helper_side_never_blocks_on_a_full_channel() {
        let (a, _b) = pair().unwrap();
        let mut sent = 0;
        while try_send_command(a.as_fd(), &Command::Ping, &[]).unwrap() == Sent::Sent {
            sent += 1;
            assert!(sent < 1_000_000, "the buffer never filled");
        }
        let t = Instant::now();
        let full = send_command(a.as_fd(), &Command::Ping, Instant::now() + Duration::from_millis(50)).unwrap();
        assert_eq!(full, Sent::Full);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
