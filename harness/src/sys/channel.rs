//! The control channel between the sandbox helper and each node process.
//!
//! Every node owns one end of a `SOCK_SEQPACKET` socket pair whose other end
//! the helper holds. Seqpacket keeps message boundaries, carries descriptors
//! (`SCM_RIGHTS`: a new node hands the helper a pidfd of itself, a parent
//! hands over the helper's end of its new child's channel) and — what the
//! settle logic relies on — reports end-of-file exactly when the node's
//! last copy of its end is closed, which `do_exit()` does in `exit_files()`
//! before `exit_notify()`. A node that dies therefore shows up as EOF on its
//! channel even when nobody predicted its death.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

use super::{os, SysError};

/// A command from the helper to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Answer `Pong`: proves the node has returned to user space, so every
    /// signal sent to it before has been acted on.
    Ping,
    /// `exit(code)`.
    Exit(i32),
    /// `PR_SET_CHILD_SUBREAPER(on)`.
    Subreaper(bool),
    /// Wait for all exited children now.
    Reap,
    /// Fork a new node with these attribute bits; the node's end of its
    /// channel comes with the command (`SCM_RIGHTS`). No reply: the new
    /// node greets the helper on that channel, and a failed fork shows as
    /// EOF there.
    Spawn(u8),
}

/// A node's answer.
#[derive(Debug)]
pub enum Reply {
    Pong,
    /// Done; the value read back (subreaper flag) or a count.
    Ack(i32),
    /// The first message on a new channel: the node's pid in the namespace
    /// and a pidfd for it.
    /// Also the node's subreaper flag as `PR_GET_CHILD_SUBREAPER` reads it.
    Hello(i32, bool, OwnedFd),
    /// The node could not do what it was asked.
    Failed(String),
}

/// Attribute bits carried by `Spawn`.
pub const ATTR_SUBREAPER: u8 = 1;
pub const ATTR_NOREAP: u8 = 2;
pub const ATTR_SIGCHLD_IGNORE: u8 = 4;

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
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(|e| SysError::Syscall {
        call: "socketpair(AF_UNIX, SOCK_SEQPACKET)".into(),
        source: e.into(),
        hint: None,
    })
}

fn send(fd: BorrowedFd<'_>, bytes: &[u8], pass: Option<RawFd>) -> Result<bool, SysError> {
    let fds;
    let cmsgs: &[ControlMessage] = match pass {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    match sendmsg::<()>(fd.as_raw_fd(), &[IoSlice::new(bytes)], cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(_) => Ok(true),
        // The peer is gone: the caller learns it as EOF on its next receive.
        Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => Ok(false),
        Err(e) => Err(SysError::Syscall { call: "sendmsg(channel)".into(), source: e.into(), hint: None }),
    }
}

/// A raw message: its bytes and the descriptor passed with it, if any.
type Raw = (Vec<u8>, Option<OwnedFd>);

/// Receives one message, blocking until `deadline` (`None`: forever).
fn recv(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<Received<Raw>, SysError> {
    loop {
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
        if os::poll_one(fd, libc::POLLIN, timeout)? == 0 {
            continue;
        }
        let mut buf = [0u8; 512];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(Received::Eof),
            Err(e) => return Err(SysError::Syscall { call: "recvmsg(channel)".into(), source: e.into(), hint: None }),
        };
        let mut passed = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        // SAFETY: SCM_RIGHTS installed a new descriptor that
                        // nothing else owns.
                        let owned = unsafe { OwnedFd::from_raw_fd(f) };
                        if passed.is_none() {
                            passed = Some(owned);
                        }
                    }
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Ok(Received::Eof);
        }
        return Ok(Received::Msg((buf[..n].to_vec(), passed)));
    }
}

fn int(bytes: &[u8]) -> i32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(bytes.iter()) {
        *d = *s;
    }
    i32::from_le_bytes(b)
}

/// Sends a command (helper side), with a descriptor for `Spawn`. `false`:
/// the node is gone.
pub fn send_command(fd: BorrowedFd<'_>, cmd: Command) -> Result<bool, SysError> {
    send_command_with(fd, cmd, None)
}

/// [`send_command`] passing a descriptor along.
pub fn send_command_with(fd: BorrowedFd<'_>, cmd: Command, pass: Option<BorrowedFd<'_>>) -> Result<bool, SysError> {
    let mut b = Vec::with_capacity(5);
    match cmd {
        Command::Ping => b.push(b'P'),
        Command::Exit(code) => {
            b.push(b'X');
            b.extend_from_slice(&code.to_le_bytes());
        }
        Command::Subreaper(on) => b.extend_from_slice(&[b'S', on as u8]),
        Command::Reap => b.push(b'R'),
        Command::Spawn(attrs) => b.extend_from_slice(&[b'F', attrs]),
    }
    send(fd, &b, pass.map(|p| p.as_raw_fd()))
}

/// Receives a command and the descriptor passed with it (node side);
/// `None` when the helper is gone.
pub fn recv_command(fd: BorrowedFd<'_>) -> Result<Option<(Command, Option<OwnedFd>)>, SysError> {
    match recv(fd, None)? {
        Received::Msg((b, passed)) => Ok(Some((
            match b.first() {
                Some(b'P') => Command::Ping,
                Some(b'X') => Command::Exit(int(&b[1..])),
                Some(b'S') => Command::Subreaper(b.get(1) == Some(&1)),
                Some(b'R') => Command::Reap,
                Some(b'F') => Command::Spawn(b.get(1).copied().unwrap_or(0)),
                _ => return Err(SysError::Protocol(format!("unknown command bytes {b:?}"))),
            },
            passed,
        ))),
        Received::Eof | Received::Timeout => Ok(None),
    }
}

/// Sends a reply (node side).
pub fn send_reply(fd: BorrowedFd<'_>, reply: Reply) -> Result<bool, SysError> {
    let mut b = Vec::with_capacity(8);
    let pass = match &reply {
        Reply::Pong => {
            b.push(b'p');
            None
        }
        Reply::Ack(v) => {
            b.push(b'a');
            b.extend_from_slice(&v.to_le_bytes());
            None
        }
        Reply::Hello(pid, subreaper, f) => {
            b.push(b'h');
            b.extend_from_slice(&pid.to_le_bytes());
            b.push(*subreaper as u8);
            Some(f.as_raw_fd())
        }
        Reply::Failed(why) => {
            b.push(b'e');
            b.extend_from_slice(why.as_bytes());
            b.truncate(500);
            None
        }
    };
    send(fd, &b, pass)
}

/// Receives a reply (helper side), until `deadline`.
pub fn recv_reply(fd: BorrowedFd<'_>, deadline: Instant) -> Result<Received<Reply>, SysError> {
    Ok(match recv(fd, Some(deadline))? {
        Received::Msg((b, passed)) => Received::Msg(match (b.first(), passed) {
            (Some(b'p'), _) => Reply::Pong,
            (Some(b'a'), _) => Reply::Ack(int(&b[1..])),
            (Some(b'h'), Some(f)) => Reply::Hello(int(&b[1..]), b.get(5) == Some(&1), f),
            (Some(b'e'), _) => Reply::Failed(String::from_utf8_lossy(&b[1..]).into_owned()),
            _ => return Err(SysError::Protocol(format!("unexpected reply bytes {b:?}"))),
        }),
        Received::Eof => Received::Eof,
        Received::Timeout => Received::Timeout,
    })
}
