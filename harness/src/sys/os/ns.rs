//! Namespaces and mounts: the user + PID + mount namespaces every sandbox
//! (a case's, or a kernel probe's) lives in, `setns()` for forking into
//! another PID namespace and back, and what the PID 1 of a new namespace
//! does before anything else runs in it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{default_all_signals, getpid, no_core_dumps, real_ids, redirect_stdio, setsid};
use crate::sys::SysError;

/// `unshare(flags)`, with a hint for the usual reasons it is refused.
pub fn unshare(flags: i32, what: &str) -> Result<(), SysError> {
    // SAFETY: integer flags only.
    if unsafe { libc::unshare(flags) } < 0 {
        let source = io::Error::last_os_error();
        let hint = match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) if flags & libc::CLONE_NEWUSER != 0 => Some(
                "unprivileged user namespaces are disabled here: enable them \
                 (sysctl kernel.unprivileged_userns_clone=1, or \
                 kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), \
                 or run as root"
                    .to_string(),
            ),
            Some(libc::ENOSPC) => Some(
                "the namespace limit is reached: raise user.max_user_namespaces / user.max_pid_namespaces".to_string(),
            ),
            Some(libc::EINVAL) => Some(
                "is the caller multi-threaded? only a single-threaded process may unshare(CLONE_NEWUSER)".to_string(),
            ),
            _ => None,
        };
        return Err(SysError::Syscall { call: format!("unshare({what})"), source, hint });
    }
    Ok(())
}

/// `unshare(CLONE_NEWPID)`: the caller's next children are the first
/// processes of a new PID namespace nested in its own.
pub fn unshare_pidns() -> Result<(), SysError> {
    unshare(libc::CLONE_NEWPID, "CLONE_NEWPID")
}

/// A namespace file of the calling thread (`/proc/thread-self/ns/<which>`),
/// e.g. `pid` (its active PID namespace, to return to with [`setns_pid`]
/// after a fork into another one) or `pid_for_children`.
pub fn open_ns(which: &str) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/thread-self/ns/{which}");
    // std opens with O_CLOEXEC.
    std::fs::File::open(&path).map(OwnedFd::from).map_err(|source| SysError::Syscall {
        call: format!("open({path})"),
        source,
        hint: None,
    })
}

/// The calling thread's active PID namespace.
pub fn open_own_pidns() -> Result<OwnedFd, SysError> {
    open_ns("pid")
}

/// `setns(fd, CLONE_NEWPID)`: the calling thread's next children are born
/// in the PID namespace that `fd` names (a namespace file, or a pidfd: the
/// target's active namespace). The caller itself stays where it is (R6.1).
pub fn setns_pid(fd: BorrowedFd<'_>, what: &str) -> Result<(), SysError> {
    // SAFETY: a borrowed descriptor and an integer flag.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
        return Err(super::last(format!("setns({what}, CLONE_NEWPID)")));
    }
    Ok(())
}

/// `mount(src, target, fstype, flags, NULL)`.
pub fn mount(src: &str, target: &str, fstype: Option<&str>, flags: libc::c_ulong) -> Result<(), SysError> {
    let c = |s: &str| CString::new(s).map_err(|_| SysError::Protocol(format!("NUL in mount argument {s:?}")));
    let (csrc, ctarget) = (c(src)?, c(target)?);
    let cfs = fstype.map(c).transpose()?;
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            csrc.as_ptr(),
            ctarget.as_ptr(),
            cfs.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    if r < 0 {
        let source = io::Error::last_os_error();
        let hint = (fstype == Some("proc") && source.raw_os_error() == Some(libc::EPERM)).then(|| {
            "the kernel refuses a new proc mount when the visible /proc is partly masked \
             (as in many containers): run on a host or VM, or in a container with an unmasked /proc"
                .to_string()
        });
        return Err(SysError::Syscall {
            call: format!("mount({src:?}, {target:?}, {fstype:?}, {flags:#x})"),
            source,
            hint,
        });
    }
    Ok(())
}

/// Writes a whole file such as `/proc/self/uid_map`.
pub fn write_file(path: &str, contents: &str) -> Result<(), SysError> {
    std::fs::write(path, contents).map_err(|source| SysError::Syscall {
        call: format!("write({path}, {contents:?})"),
        source,
        hint: None,
    })
}

/// The namespaces every sandbox (a case's, or a kernel probe's) lives in:
/// a session of its own, then user + PID + mount namespaces — PID + mount
/// only, for root on a kernel that refuses the user namespace — with root
/// inside mapped to the caller's ids, and every mount private. Only the
/// caller's *next* child is in the new PID namespace, as its PID 1. Returns
/// whether there is a user namespace. The caller must be single-threaded.
pub fn enter_sandbox_namespaces() -> Result<bool, SysError> {
    setsid()?;
    let (uid, gid) = real_ids();
    let userns = match unshare(
        libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS,
        "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS",
    ) {
        Ok(()) => true,
        Err(e) if uid == 0 => {
            // Root can do without a user namespace.
            unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS, "CLONE_NEWPID|CLONE_NEWNS").map_err(|_| e)?;
            false
        }
        Err(e) => return Err(e),
    };
    if userns {
        write_file("/proc/self/setgroups", "deny")?;
        write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    mount("none", "/", None, libc::MS_REC | libc::MS_PRIVATE)?;
    Ok(userns)
}

/// What the PID 1 of a sandbox (a case's or a probe's) does before it runs
/// anything — forked with [`fork_run_linked`](super::fork_run_linked), it
/// already dies with the helper that forked it (R6.10: a parent-death
/// SIGKILL from the parent namespace is forced through init's shield):
/// puts every signal back to its default action (the helper's Rust runtime
/// installed handlers; every process forked below inherits them), with
/// `no_dumps` makes no core dumps, leaves the helper's stdin and stdout
/// (only the helper speaks on them), mounts the namespace's own /proc, and
/// checks that it is pid 1 — the guarantee behind every signal a probe
/// sends by pid.
pub fn prepare_pid1(no_dumps: bool) -> Result<(), SysError> {
    default_all_signals()?;
    if no_dumps {
        no_core_dumps()?;
    }
    redirect_stdio()?;
    mount("proc", "/proc", Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)?;
    if getpid() != 1 {
        return Err(SysError::Protocol(format!(
            "the sandbox's first process is pid {}, not 1: no new PID namespace, refusing to go on",
            getpid()
        )));
    }
    Ok(())
}
