//! The system layer: namespaces, node processes, pidfds and `/proc`.
//!
//! Everything here touches the kernel, and all of the crate's `unsafe` and
//! every raw syscall live in one seam, [`os`] (libc only). The layer knows
//! how to build a tree of real processes in a fresh PID namespace, act on
//! them and wait until the kernel has settled, how to ask the kernel the
//! single questions of the probes, and how to read the result back; it
//! knows nothing of what the result should be — that is the model's and
//! the kernel layer's business.
//!
//! - [`os`]: the syscall seam and the process toolkit the sandbox and the
//!   probes share (fork/clone running a closure, pidfds, pipes and lines,
//!   signals, namespaces, PID 1 preparation).
//! - [`client`]: the runner's handle on one case ([`Sandbox`]).
//! - [`sandbox`]: the helper process that owns the namespaces.
//! - [`node`]: the code every process of the tree runs, thread by thread.
//! - [`channel`]: the helper's control channel to each node.
//! - [`flat`]: trees on the runner–helper wire as flat lists.
//! - [`observe`]: `/proc` read back as a canonical tree.
//! - [`probe`]: the probes of `reparent kernel`, each in a sandbox of its
//!   own, reporting what they saw as plain data (judged by
//!   `kernel::probes`).

pub mod channel;
pub mod client;
pub mod flat;
pub mod node;
pub mod observe;
pub mod os;
pub mod probe;
pub mod sandbox;
pub mod server;

pub use client::{Observation, Sandbox, SandboxOptions};
pub use sandbox::SettleHints;

/// An error of the system layer.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A syscall failed.
    #[error("{call} failed: {source}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Syscall { call: String, source: std::io::Error, hint: Option<String> },
    /// A node reported a failure or died when it should not have.
    #[error("process `{name}`: {message}")]
    Node { name: String, message: String },
    /// A deadline passed: the kernel never did what the harness waited for.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The helper and the runner, or a node, misunderstood each other.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The sandbox could not be set up; the message says why and how to fix it.
    #[error("cannot create the sandbox: {0}")]
    Setup(String),
    /// The machine ran out of something — descriptors, processes, memory —
    /// or a tree would need more than a limit allows: not a finding about
    /// reparenting. `limit` names the limit and its value
    /// (`RLIMIT_NOFILE 64`).
    #[error("resource exhausted: {what} ({limit})")]
    Resource { what: String, limit: String },
    /// The init under test (PID 1 of `--init`) left zombies it adopted
    /// unreaped past the reap deadline: its job, not the kernel's. Each
    /// entry names one zombie left (`` `a` (pid 5), a zombie for 1002 ms ``).
    #[error(
        "the init under test did not reap {} zombie(s) it adopted within the reap deadline of {deadline_ms} ms \
         (measured from the exit, pidfd POLLIN, to the reap): {}",
        zombies.len(),
        zombies.join(", ")
    )]
    NotReaped { deadline_ms: u64, zombies: Vec<String> },
}

/// The start of a message that could not be understood, for an error: at
/// most a line's worth, with the total size, never the whole payload.
pub fn excerpt(bytes: &[u8]) -> String {
    const KEEP: usize = 120;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(KEEP)]).into_owned();
    if bytes.len() <= KEEP {
        format!("{text:?}")
    } else {
        format!("{text:?}… ({} bytes in all)", bytes.len())
    }
}

/// A [`SysError`] as the sandbox helper sends it to the runner, which
/// rebuilds the same variant ([`SysError::from`]): a node's failure stays a
/// node's failure, with its name, across the process boundary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WireError {
    /// [`SysError::Syscall`]: the error's errno when it has one, else its text.
    Syscall {
        call: String,
        errno: Option<i32>,
        message: String,
        hint: Option<String>,
    },
    Node {
        name: String,
        message: String,
    },
    Timeout(String),
    Protocol(String),
    Setup(String),
    Resource {
        what: String,
        limit: String,
    },
    NotReaped {
        deadline_ms: u64,
        zombies: Vec<String>,
    },
}

impl From<&SysError> for WireError {
    fn from(e: &SysError) -> WireError {
        match e {
            SysError::Syscall { call, source, hint } => WireError::Syscall {
                call: call.clone(),
                errno: source.raw_os_error(),
                message: source.to_string(),
                hint: hint.clone(),
            },
            SysError::Node { name, message } => WireError::Node { name: name.clone(), message: message.clone() },
            SysError::Timeout(what) => WireError::Timeout(what.clone()),
            SysError::Protocol(m) => WireError::Protocol(m.clone()),
            SysError::Setup(m) => WireError::Setup(m.clone()),
            SysError::Resource { what, limit } => WireError::Resource { what: what.clone(), limit: limit.clone() },
            SysError::NotReaped { deadline_ms, zombies } => {
                WireError::NotReaped { deadline_ms: *deadline_ms, zombies: zombies.clone() }
            }
        }
    }
}

impl From<WireError> for SysError {
    fn from(e: WireError) -> SysError {
        match e {
            WireError::Syscall { call, errno, message, hint } => SysError::Syscall {
                call,
                source: errno.map_or_else(|| std::io::Error::other(message), std::io::Error::from_raw_os_error),
                hint,
            },
            WireError::Node { name, message } => SysError::Node { name, message },
            WireError::Timeout(what) => SysError::Timeout(what),
            WireError::Protocol(m) => SysError::Protocol(m),
            WireError::Setup(m) => SysError::Setup(m),
            WireError::Resource { what, limit } => SysError::Resource { what, limit },
            WireError::NotReaped { deadline_ms, zombies } => SysError::NotReaped { deadline_ms, zombies },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_a_line_not_the_payload() {
        let big = vec![b'{'; 16 * 1024];
        let e = excerpt(&big);
        assert!(e.len() < 200 && e.ends_with("(16384 bytes in all)"), "{e}");
        assert_eq!(excerpt(b"\"Ping\""), r#""\"Ping\"""#);
    }

    #[test]
    fn every_error_crosses_the_helper_boundary_as_itself() {
        let errors = [
            SysError::Syscall {
                call: "fork()".into(),
                source: std::io::Error::from_raw_os_error(libc::EAGAIN),
                hint: Some("RLIMIT_NPROC".into()),
            },
            SysError::Syscall { call: "read /proc".into(), source: std::io::Error::other("odd"), hint: None },
            SysError::Node { name: "a".into(), message: "could not fork `b`".into() },
            SysError::Timeout("`a` to stop".into()),
            SysError::Protocol("Step before Build".into()),
            SysError::Setup("--init needs a command".into()),
            SysError::Resource { what: "pidfd_open(7, 0) failed: EMFILE".into(), limit: "RLIMIT_NOFILE 64".into() },
            SysError::NotReaped { deadline_ms: 100, zombies: vec!["`a` (pid 5), a zombie for 101 ms".into()] },
        ];
        for e in errors {
            let wire = serde_json::to_string(&WireError::from(&e)).unwrap();
            let back = SysError::from(serde_json::from_str::<WireError>(&wire).unwrap());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&e), "{e:?} came back as {back:?}");
            assert_eq!(back.to_string(), e.to_string());
            if let (SysError::Syscall { source: a, .. }, SysError::Syscall { source: b, .. }) = (&e, &back) {
                assert_eq!(a.raw_os_error(), b.raw_os_error());
            }
        }
    }
}
