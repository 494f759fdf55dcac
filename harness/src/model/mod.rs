//! The model: the oracle that says what the kernel will do to a process tree.
//!
//! The harness runs every scenario twice, once in a real PID namespace and
//! once here, and compares. So this module answers one question, in pure Rust
//! with no syscalls: given the tree and one step, which tree does the kernel
//! leave behind once it has settled and every reaping parent has reaped? It
//! answers with the reason for every change, naming the rule of
//! `shared/kernel-rules.md` and the kernel function it comes from, so that a
//! mismatch says which rule the kernel broke, or which rule we got wrong.
//!
//! The code follows the kernel's own structure, as gVisor's
//! `pkg/sentry/kernel/task_exit.go` does, so that a reviewer can hold each
//! file against the kernel source:
//!
//! | file | kernel source | what it models |
//! |---|---|---|
//! | `world.rs` | `task_struct`, `signal_struct`, `pid_namespace` | the state the rules read and write |
//! | `fork.rs` | kernel/fork.c `copy_process()` | `spawn` steps and the `tree:` section |
//! | `prctl.rs` | kernel/sys.c `prctl()`, `propagate_has_child_subreaper()` | `subreaper` steps |
//! | `signal.rs` | kernel/signal.c `send_signal_locked()`, `complete_signal()`, `get_signal()`, `do_notify_parent()` | what a `kill` does to each target |
//! | `exit.rs` | kernel/exit.c `exit_notify()`, `find_new_reaper()`; kernel/pid_namespace.c `zap_pid_ns_processes()` | where orphans go |
//! | `wait.rs` | kernel/exit.c `wait_task_zombie()` | the nodes reaping their children |
//! | `race.rs` | R1.8 | several processes dying at once |
//!
//! `prediction.rs` and `error.rs` hold what a step returns: the possible
//! worlds with their reasons, or why the step cannot run.
//!
//! What the sandbox lets the model leave out: every process is a
//! single-threaded node forked by its parent, in the one PID namespace whose
//! init is PID 1, so `find_alive_thread()` of a dying process never finds a
//! sibling thread (R1.3a) and the reaper walk never meets a namespace
//! boundary below init (R1.5). Nobody is traced (R7) or sets a pdeath signal
//! (R4). Every process is in one process group and session that the harness
//! created, and every member's parent is in that same group: the group is
//! orphaned (so SIGTSTP, SIGTTIN and SIGTTOU are discarded, R5.7), and the
//! SIGHUP/SIGCONT of R5.2 and R5.3 never fire, since a dying process's parent
//! is always in its own group. No node catches a signal.

mod error;
mod exit;
mod fork;
mod pgrp;
mod prctl;
mod prediction;
mod race;
mod signal;
mod wait;
mod world;

#[cfg(test)]
mod tests;

pub use error::ModelError;
pub use prediction::{Outcome, Prediction, Reason};
pub use world::{ModelConfig, Mutation, ProcState, World};
