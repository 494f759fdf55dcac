//! Why a step cannot run in the model's world.
//!
//! These are errors in the scenario, not in the kernel: a step names a
//! process that never existed or is gone, asks a stopped process or a zombie
//! to act itself, or reuses a name. Each message names the process and why,
//! so that the driver can print it under the file and line of the step.

use super::world::ProcState;

/// A step the model cannot apply, or a starting tree it cannot build.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The root of `tree:` is not `init`.
    #[error("the starting tree's root is {found}, but it must be init, PID 1 of the namespace")]
    RootNotInit { found: String },

    /// A node of `tree:` carries `zombie` or `stopped`.
    #[error(
        "{name} is marked {markers} in the starting tree; markers describe observations and \
         belong in expect: blocks only"
    )]
    MarkersInTree { name: String, markers: String },

    /// No process of this name was ever created.
    #[error("no process is named {name}")]
    UnknownProcess { name: String },

    /// The process existed but has been reaped.
    #[error("{name} is already gone: it exited and was reaped")]
    Gone { name: String },

    /// A step needs the process to run code of its own (exit, prctl, fork,
    /// wait), but it is stopped or a zombie.
    #[error("{name} cannot {action}: it is {state}, and only a running process can act itself")]
    NotRunning { name: String, action: &'static str, state: ProcState },

    /// A new process would take a name that is, or was, in use.
    #[error(
        "cannot create {name}: the name is already used by a process that exists or once \
         existed (names are never reused)"
    )]
    NameTaken { name: String },

    /// init has died, and the whole namespace with it.
    #[error("cannot {action}: the namespace is gone (init died, and every process with it)")]
    NamespaceDead { action: String },

    /// A `kill` step with no target.
    #[error("kill names no process")]
    NoTargets,

    /// `PR_SET_CHILD_SUBREAPER` on a kernel that predates it.
    #[error(
        "{name} cannot become a subreaper: PR_SET_CHILD_SUBREAPER arrived in Linux 3.4, and the \
         model is configured for {major}.{minor} (R2.9)"
    )]
    NoSubreapers { name: String, major: u32, minor: u32 },

    /// A step names a thread that does not exist (or no longer lives).
    #[error("{name} has no living thread {thread}")]
    NoSuchThread { name: String, thread: String },

    /// `threads=N` beyond what the model and the node support.
    #[error("{name} asks for {threads} extra threads; at most 15 are supported")]
    TooManyThreads { name: String, threads: u32 },

    /// `clone(CLONE_PARENT)` by a namespace init (R6.7).
    #[error(
        "{name} cannot fork with clone-parent: it is a namespace init (SIGNAL_UNKILLABLE), and \
         clone(CLONE_PARENT) fails with EINVAL there (R6.7)"
    )]
    CloneParentFromInit { name: String },

    /// `into=N` where N is not a `pidns` node.
    #[error("into={name}: {name} is not a pidns node, so it has no namespace of its own to join")]
    NotANamespace { name: String },

    /// `setns()` into a namespace that is not the caller's or below it.
    #[error(
        "{name} cannot join {target}'s namespace: setns() accepts only the caller's own PID \
         namespace or one nested in it (R6.1)"
    )]
    SetnsRefused { name: String, target: String },

    /// A fork into a namespace whose init has died (R6.3, R8.5).
    #[error(
        "cannot fork into {target}'s namespace: its init is dying, and a fork into a dying \
         namespace fails with ENOMEM (R6.3)"
    )]
    NamespaceDying { target: String },

    /// `setpgid(0, 0)` by a session leader fails with EPERM.
    #[error("{name} cannot call setpgid(0, 0): it is a session leader, and that fails with EPERM")]
    SessionLeader { name: String },

    /// `setsid()` by a process-group leader fails with EPERM.
    #[error("{name} cannot call setsid(): it already leads a process group, and that fails with EPERM")]
    GroupLeader { name: String },

    /// `CLONE_NEWPID` by a thread whose `pid_ns_for_children` is not its
    /// active namespace (after `setns()`): `copy_pid_ns()` refuses (EINVAL).
    #[error(
        "{name} cannot fork a pidns process into {target}'s namespace: after setns(), the \
         thread's pid_for_children differs from its active namespace, and copy_pid_ns() \
         refuses CLONE_NEWPID with EINVAL"
    )]
    NewPidnsAfterSetns { name: String, target: String },
}
