//! Descriptors: close-on-exec pipes and the lines written on them (how a
//! child says it has done its part), reading them back with a deadline,
//! `poll()`, close-on-exec flags, the standard streams of a sandbox's PID 1,
//! and descriptors a process was handed across an `execve()`.
//!
//! A line is short enough to be written atomically on a pipe, so that
//! descendants that inherit the write end cannot interleave with it, and a
//! reader waits on `poll()` bounded by a deadline that names what it waited
//! for.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::last;
use crate::sys::SysError;

/// `poll()` on one descriptor; returns its revents (0 on timeout).
pub fn poll_one(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> Result<i16, SysError> {
    Ok(poll_fds(&[fd], events, timeout_ms)?[0])
}

/// `poll()` on several descriptors for the same events, retried on EINTR;
/// returns each one's revents (all 0 on timeout). `timeout_ms` -1 waits
/// for ever.
pub fn poll_fds(fds: &[BorrowedFd<'_>], events: i16, timeout_ms: i32) -> Result<Vec<i16>, SysError> {
    let each: Vec<(BorrowedFd<'_>, i16)> = fds.iter().map(|f| (*f, events)).collect();
    poll_each(&each, timeout_ms)
}

/// `poll()` on several descriptors, each for its own events, retried on
/// EINTR; returns each one's revents (all 0 on timeout).
pub fn poll_each(fds: &[(BorrowedFd<'_>, i16)], timeout_ms: i32) -> Result<Vec<i16>, SysError> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|(f, events)| libc::pollfd { fd: f.as_raw_fd(), events: *events, revents: 0 }).collect();
    loop {
        // SAFETY: `pfds` is a valid array of pollfds of the given length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(last("poll"));
        }
        return Ok(pfds.iter().map(|p| if r == 0 { 0 } else { p.revents }).collect());
    }
}

/// Milliseconds left until `deadline`, as `poll()` takes them (at least 1
/// while any time is left, 0 once it has passed).
pub fn millis_until(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        0
    } else {
        left.as_millis().clamp(1, i32::MAX as u128) as i32
    }
}

/// Reads and discards everything queued on a non-blocking descriptor.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 1024];
    while matches!(read(fd, &mut buf), Ok(n) if n > 0) {}
}

/// `read(fd, buf)`, retried on EINTR.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reading into a buffer of the given length that we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Blocks until one byte, or EOF, arrives on `fd`: a child held until it
/// is released (or its releaser is gone).
pub fn wait_byte(fd: BorrowedFd<'_>) {
    let mut b = [0u8; 1];
    let _ = read(fd, &mut b);
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: a valid array of two ints for the kernel to fill in.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(last("pipe2(O_CLOEXEC)"));
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes all of `bytes`, retrying on EINTR.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), SysError> {
    while !bytes.is_empty() {
        // SAFETY: writing from a buffer of the given length.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(last("write(pipe)"));
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Writes all of `bytes` to a non-blocking descriptor (see
/// [`set_nonblocking`]), waiting for room until `deadline`; a timeout names
/// `what`. `Ok(false)`: the reader is gone (EPIPE).
pub fn write_all_until(fd: BorrowedFd<'_>, mut bytes: &[u8], deadline: Instant, what: &str) -> Result<bool, SysError> {
    while !bytes.is_empty() {
        // SAFETY: writing from a buffer of the given length.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            bytes = &bytes[n as usize..];
            continue;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EPIPE) => return Ok(false),
            Some(libc::EAGAIN) => {
                let ms = millis_until(deadline);
                if ms == 0 || poll_one(fd, libc::POLLOUT, ms)? == 0 {
                    return Err(SysError::Timeout(what.into()));
                }
            }
            _ => return Err(last("write(pipe)")),
        }
    }
    Ok(true)
}

/// Sets `O_NONBLOCK` on a descriptor this process alone uses (a pipe's
/// write end that no child shares).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we borrow.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(last(format!("fcntl({}, F_SETFL, O_NONBLOCK)", fd.as_raw_fd())));
        }
    }
    Ok(())
}

/// Writes one line (short enough to be atomic on a pipe).
pub fn say(fd: BorrowedFd<'_>, text: &str) -> Result<(), SysError> {
    write_all(fd, format!("{text}\n").as_bytes())
}

/// The read end of a pipe, read line by line with deadlines.
pub struct Lines {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline (a long line arrives
    /// in many reads; each is searched once).
    scanned: usize,
}

impl Lines {
    pub fn new(fd: OwnedFd) -> Lines {
        Lines { fd, buf: Vec::new(), scanned: 0 }
    }

    /// The next line; a timeout names `what`, and so does EOF before it.
    pub fn line(&mut self, deadline: Instant, what: &str) -> Result<String, SysError> {
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let i = self.scanned + i;
                self.scanned = 0;
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            self.scanned = self.buf.len();
            self.fill(deadline, what)?;
        }
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, deadline: Instant, what: &str) -> Result<Vec<u8>, SysError> {
        while self.buf.len() < n {
            self.fill(deadline, what)?;
        }
        self.scanned = 0;
        Ok(self.buf.drain(..n).collect())
    }

    fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), SysError> {
        if poll_one(self.fd.as_fd(), libc::POLLIN, millis_until(deadline).max(1))? == 0 {
            return Err(SysError::Timeout(what.into()));
        }
        let mut chunk = vec![0u8; 64 * 1024];
        match read(self.fd.as_fd(), &mut chunk) {
            Ok(0) => Err(SysError::Protocol(format!("gave up waiting for {what}: the pipe was closed"))),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(source) => Err(SysError::Syscall { call: "read(pipe)".into(), source, hint: None }),
        }
    }
}

fn set_cloexec_flag(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    // SAFETY: F_GETFD/F_SETFD on a descriptor we borrow.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        let flags = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) < 0 {
            return Err(last(format!("fcntl({}, F_SETFD)", fd.as_raw_fd())));
        }
    }
    Ok(())
}

/// Lets `fd` survive an exec.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    set_cloexec_flag(fd, false)
}

/// Closes `fd` on exec again.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    set_cloexec_flag(fd, true)
}

/// `/dev/null`, opened for reading.
fn dev_null() -> Result<std::fs::File, SysError> {
    std::fs::File::open("/dev/null").map_err(|e| SysError::Syscall {
        call: "open(/dev/null)".into(),
        source: e,
        hint: None,
    })
}

/// Stdin from /dev/null, stdout to stderr: only the helper speaks on its
/// stdout (and listens on its stdin), so a sandbox's PID 1 and everything
/// below it must not hold them.
pub fn redirect_stdio() -> Result<(), SysError> {
    let null = dev_null()?;
    for (from, to) in [(null.as_raw_fd(), 0), (2, 1)] {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; no Rust object holds them.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(last(format!("dup2({from}, {to})")));
        }
    }
    Ok(())
}

/// Takes ownership of descriptor `fd`, handed to this process across its
/// `execve()` (its number in an argument or the environment). `None` for
/// the standard streams or a descriptor that is not open.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if fd <= 2 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the process that exec'd us passed this open descriptor for
    // our own use; nothing else in this image owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `memfd_create(name, MFD_CLOEXEC)`: an anonymous file, here the place
/// an init under test writes its standard output and error to — a file
/// never blocks its writer the way a full pipe would.
pub fn memfd(name: &std::ffi::CStr) -> Result<OwnedFd, SysError> {
    // SAFETY: a valid NUL-terminated name; the descriptor returned is new.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(last(format!("memfd_create({name:?})")));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Stdin from /dev/null, stdout and stderr to `out`: the standard streams
/// of a process whose output is captured.
pub fn redirect_stdio_to(out: BorrowedFd<'_>) -> Result<(), SysError> {
    let null = dev_null()?;
    for (from, to) in [(null.as_raw_fd(), 0), (out.as_raw_fd(), 1), (out.as_raw_fd(), 2)] {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; no Rust object holds them.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(last(format!("dup2({from}, {to})")));
        }
    }
    Ok(())
}

/// `pread(fd, buf, 0)`: up to `max` bytes from the start of a file (a
/// memfd another process wrote to).
pub fn read_head(fd: BorrowedFd<'_>, max: usize) -> Vec<u8> {
    let mut buf = vec![0u8; max];
    // SAFETY: reading into a buffer of the given length that we own.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    buf.truncate(n.max(0) as usize);
    buf
}

/// Takes this process's stdin as a descriptor of its own (close-on-exec,
/// numbered 3 or above) and puts /dev/null in its place: for a helper
/// whose spawner hands it a socket as its stdin.
pub fn take_stdin() -> Result<OwnedFd, SysError> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, which we own.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(last("fcntl(0, F_DUPFD_CLOEXEC)"));
    }
    // SAFETY: fresh, and nothing else owns it.
    let taken = unsafe { OwnedFd::from_raw_fd(fd) };
    let null = dev_null()?;
    // SAFETY: dup2 onto stdin, which this process owns; no Rust object
    // holds it.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(last("dup2(/dev/null, 0)"));
    }
    Ok(taken)
}

/// In a forked child: `stdin` and `stdout` become its standard input and
/// output (descriptors 0 and 1, kept across exec), and every descriptor
/// from 3 up is closed — those of the parent's frames, which this copy
/// never returns to, included.
pub fn install_stdio(stdin: OwnedFd, stdout: OwnedFd) -> Result<(), SysError> {
    use std::os::fd::IntoRawFd;
    // Closed below with the rest: not dropped again.
    let (stdin, stdout) = (stdin.into_raw_fd(), stdout.into_raw_fd());
    for (from, to) in [(stdin, 0), (stdout, 1)] {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; no Rust object holds them.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(last(format!("dup2({from}, {to})")));
        }
    }
    super::close_all_from(3);
    Ok(())
}
