//! The sockets of the control channel: an `AF_UNIX` `SOCK_SEQPACKET` pair
//! (message boundaries kept, EOF exactly when the peer's last copy is
//! closed) and messages with descriptors beside them (`SCM_RIGHTS`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::last;
use crate::sys::SysError;

/// A new seqpacket socket pair, both ends close-on-exec.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), SysError> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: a valid array of two ints for the kernel to fill in.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    if r < 0 {
        return Err(last("socketpair(AF_UNIX, SOCK_SEQPACKET)"));
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What one `sendmsg()` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The message is queued on the peer's end.
    Sent,
    /// (`dontwait` only) The socket's send buffer is full: nothing was sent.
    Full,
    /// The peer is gone (EPIPE, ECONNRESET, ECONNREFUSED).
    Gone,
}

/// What a failed `sendmsg()` on a channel means, by its errno: `None` for
/// an error to report. EINTR is the caller's to retry.
///
/// A peer that is gone shows as EPIPE or ECONNRESET, and on 5.10 also as
/// ECONNREFUSED while the peer is exiting: seqpacket sends go through
/// `unix_dgram_sendmsg()`, whose answer to a connected peer that is
/// already `SOCK_DEAD` is ECONNREFUSED there (seen under load in a 5.10
/// guest, 4 times in about 2,400 cases; issue 10). All three mean "peer
/// gone": the caller learns it as EOF on its next receive.
fn sent_after(errno: i32, dontwait: bool) -> Option<Sent> {
    match errno {
        libc::EAGAIN if dontwait => Some(Sent::Full),
        libc::EPIPE | libc::ECONNRESET | libc::ECONNREFUSED => Some(Sent::Gone),
        _ => None,
    }
}

/// `sendmsg(fd, bytes, SCM_RIGHTS(pass), MSG_NOSIGNAL)`, with
/// `MSG_DONTWAIT` when `dontwait`: then a full buffer is [`Sent::Full`]
/// instead of a wait.
pub fn send_with_fds(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    pass: &[BorrowedFd<'_>],
    dontwait: bool,
) -> Result<Sent, SysError> {
    let fds: Vec<RawFd> = pass.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(fds.as_slice()) as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = if fds.is_empty() { 0 } else { (unsafe { libc::CMSG_SPACE(payload) }) as usize };
    // u64 elements keep the buffer aligned for cmsghdr.
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    // SAFETY: msghdr is plain data; every field used is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer holds CMSG_SPACE(payload) bytes, so the
        // first header and its payload of `fds.len()` ints fit in it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
        }
    }
    loop {
        let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
        // SAFETY: `msg` points to the iovec and control buffer above, which
        // outlive the call.
        let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
        if r >= 0 {
            return Ok(Sent::Sent);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(e) => match sent_after(e, dontwait) {
                Some(s) => return Ok(s),
                None => return Err(last("sendmsg(channel)")),
            },
            None => return Err(last("sendmsg(channel)")),
        }
    }
}

/// What one `recvmsg()` gave.
pub enum Recv {
    /// A message of `n` bytes and the descriptors passed with it.
    Msg(usize, Vec<OwnedFd>),
    /// The peer's end is closed.
    Eof,
    /// Interrupted, or nothing there after all: try again.
    Again,
}

/// `recvmsg(fd, buf, MSG_CMSG_CLOEXEC)` with room for `max_fds`
/// descriptors, which arrive close-on-exec.
pub fn recv_with_fds(fd: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> Result<Recv, SysError> {
    recv_with_fds_flags(fd, buf, max_fds, false)
}

/// [`recv_with_fds`], with `MSG_DONTWAIT` when `dontwait`: nothing there
/// yet is [`Recv::Again`].
pub fn recv_with_fds_flags(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    dontwait: bool,
) -> Result<Recv, SysError> {
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((max_fds * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; every field used is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let flags = libc::MSG_CMSG_CLOEXEC | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `msg` points to the iovec over `buf` and the control buffer,
    // which outlive the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => Ok(Recv::Again),
            Some(libc::ECONNRESET) => Ok(Recv::Eof),
            _ => Err(last("recvmsg(channel)")),
        };
    }
    let mut passed = Vec::new();
    // SAFETY: the kernel filled in msg_controllen bytes of well-formed
    // control messages; CMSG_FIRSTHDR/NXTHDR stay within them, and an
    // SCM_RIGHTS payload is an array of new descriptors that nothing else
    // owns.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for k in 0..len / std::mem::size_of::<RawFd>() {
                    passed.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(k))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        // The kernel dropped descriptors it could not install (scm_detach_fds():
        // no free slot under RLIMIT_NOFILE): the message is useless without them.
        let (soft, _) = super::rlimit(libc::RLIMIT_NOFILE);
        return Err(SysError::Resource {
            what: "descriptors passed on a control channel were dropped (MSG_CTRUNC): no descriptor slot left".into(),
            limit: format!("RLIMIT_NOFILE {soft}"),
        });
    }
    if n == 0 {
        return Ok(Recv::Eof);
    }
    Ok(Recv::Msg(n as usize, passed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn every_peer_gone_errno_is_gone_and_other_errors_are_errors() {
        // ECONNREFUSED is what 5.10 returns for a SOCK_SEQPACKET peer that is
        // exiting: without it, a kill step failed with "sendmsg(channel)
        // failed: Connection refused" (issue 10).
        for e in [libc::EPIPE, libc::ECONNRESET, libc::ECONNREFUSED] {
            assert_eq!(sent_after(e, false), Some(Sent::Gone), "errno {e}");
            assert_eq!(sent_after(e, true), Some(Sent::Gone), "errno {e}");
        }
        assert_eq!(sent_after(libc::EAGAIN, true), Some(Sent::Full));
        assert_eq!(sent_after(libc::EAGAIN, false), None, "a blocking send has no full buffer to report");
        for e in [libc::EBADF, libc::ENOTSOCK, libc::EMSGSIZE, libc::ENOBUFS] {
            assert_eq!(sent_after(e, false), None, "errno {e}");
        }
    }

    #[test]
    fn a_send_to_a_closed_peer_is_gone() {
        let (a, b) = seqpacket_pair().unwrap();
        drop(b);
        assert_eq!(send_with_fds(a.as_fd(), b"x", &[], false).unwrap(), Sent::Gone);
        assert_eq!(send_with_fds(a.as_fd(), b"x", &[], true).unwrap(), Sent::Gone);
    }
}
