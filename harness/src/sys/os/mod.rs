//! The syscall seam: every raw call the harness makes, each wrapped so that
//! a failure names the call, its arguments and, where one helps, a hint.
//!
//! Keeping them here (as youki keeps `libcontainer/src/syscall/`) means the
//! rest of the system layer reads as a description of what happens to the
//! processes, and every `unsafe` block sits next to its justification (a
//! `// SAFETY:` comment). Nothing outside this folder calls `libc` or holds
//! an `unsafe` block; `libc` is the crate's one syscall crate.
//!
//! The sandbox (its helper, nodes and client) and the kernel probes share
//! this one toolkit, by theme:
//!
//! - [`pidfd`]: pidfds — open, signal, readiness, `waitid(P_PIDFD)`,
//!   `PIDFD_GET_INFO`.
//! - [`process`]: fork and clone running a closure, exec, exit, wait,
//!   `prctl`, ids, `reboot`, the link that ties a helper to its runner.
//! - [`signal`]: dispositions, handlers, masks, signalfd.
//! - [`ns`]: `unshare`, `setns`, mounts, the sandbox's namespaces and the
//!   preparation of a namespace's PID 1.
//! - [`fd`]: pipes, lines on them with deadlines, `poll`, close-on-exec,
//!   descriptors handed over at exec.
//! - [`socket`]: the seqpacket pair of the control channel, with
//!   descriptors passed beside each message (`SCM_RIGHTS`).
//! - [`tty`]: pseudo-terminals, the controlling terminal, `tcgetpgrp()`.
//! - [`host`]: the running kernel's version and the caller's uid.
//! - [`machine`]: `reparent vm`'s calls: whether KVM works, and, in the
//!   guest, draining the report port and stopping the machine.

use std::io;

use super::SysError;

pub mod fd;
pub mod host;
pub mod machine;
pub mod ns;
pub mod pidfd;
pub mod process;
pub mod signal;
pub mod socket;
pub mod tty;

pub use fd::*;
pub use host::*;
pub use machine::*;
pub use ns::*;
pub use pidfd::*;
pub use process::*;
pub use signal::*;
pub use socket::*;
pub use tty::*;

/// The error of the call that just failed, from `errno`.
fn last(call: impl Into<String>) -> SysError {
    syscall_error(call, io::Error::last_os_error(), false)
}

/// A failed call as an error: [`SysError::Resource`] naming the limit
/// when the machine ran out of something (descriptors, memory, or — for a
/// call that creates a task, `creates_task` — processes), else
/// [`SysError::Syscall`].
pub fn syscall_error(call: impl Into<String>, source: io::Error, creates_task: bool) -> SysError {
    let call = call.into();
    match source.raw_os_error().and_then(|e| Some((e, exhausted_limit(e, creates_task)?))) {
        Some((errno, limit)) => SysError::Resource { what: format!("{call} failed: {}", errno_name(errno)), limit },
        None => SysError::Syscall { call, source, hint: None },
    }
}

/// The errno of a failed syscall, if that is what the error is.
pub fn errno_of(e: &SysError) -> Option<i32> {
    match e {
        SysError::Syscall { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// An errno's symbolic name (`EINVAL`), or `errno N` for one not listed.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECONNRESET => "ECONNRESET",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ETOOMANYREFS => "ETOOMANYREFS",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// The errno name of a failed call, or the whole error when it is not a
/// failed syscall.
pub fn error_name(e: &SysError) -> String {
    errno_of(e).map_or_else(|| e.to_string(), errno_name)
}
