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
//! - [`observe`]: `/proc` read back as a canonical tree.
//! - [`probe`]: the probes of `reparent kernel`, each in a sandbox of its
//!   own, reporting what they saw as plain data (judged by
//!   `kernel::probes`).

pub mod channel;
pub mod client;
pub mod node;
pub mod observe;
pub mod os;
pub mod probe;
pub mod sandbox;

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
    /// The sandbox helper reported a failure (its message says what failed).
    #[error("{0}")]
    Helper(String),
    /// The sandbox could not be set up; the message says why and how to fix it.
    #[error("cannot create the sandbox: {0}")]
    Setup(String),
}
