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
//! | `pgrp.rs` | kernel/sys.c `setpgid()`, `setsid()`; kernel/exit.c `kill_orphaned_pgrp()` | process groups, orphaned groups |
//! | `signal.rs` | kernel/signal.c `send_signal_locked()`, `complete_signal()`, `get_signal()`, `do_notify_parent()` | what a signal does to its target |
//! | `exit.rs` | kernel/exit.c `exit_notify()`, `find_new_reaper()`; kernel/pid_namespace.c `zap_pid_ns_processes()`; fs/exec.c `de_thread()` | where orphans go |
//! | `wait.rs` | kernel/exit.c `wait_task_zombie()` | the nodes reaping their children |
//! | `race.rs` | R1.8, R1.9 | several processes, or the threads of one, dying at once |
//!
//! `prediction.rs` and `error.rs` hold what a step returns: the possible
//! worlds with their reasons, or why the step cannot run.
//!
//! What the sandbox lets the model leave out: nobody is traced (R7), every
//! process keeps one uid (so the permission check of R4.5 always passes),
//! every process is forked with SIGCHLD as its exit signal (so R3.1's reset,
//! R3.5 and R3.6 change nothing observable), and core dumps are off. A
//! multi-threaded process that dies as a whole (a fatal signal, or `exit`,
//! which is `exit_group()`) is modelled as its last thread's
//! `exit_notify()`, which sends the children out of the process, preceded
//! by at most one threaded hop per child that has a parent-death signal,
//! which the race search may or may not take (R1.9, see `exit.rs`): the
//! child may get its signal, and die of it, while still a child of the dying
//! process. Other children and other hops change nothing observable (a
//! threaded reparent keeps the parent process, R1.7); how often a signal
//! arrives, and in what order handlers run (R4.4, R5.5), the kernel leaves
//! open, and `got=` is a set so that it need not say. A namespace init's
//! threads hop in no model world: its death kills and reaps its whole
//! namespace whatever they do (R6.3).

#![forbid(unsafe_code)]

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

pub use crate::scenario::OrphanHup;
pub use error::ModelError;
pub use prediction::{Outcome, Prediction, Reason, Unmatched};
pub use world::{BuildTraits, InitPolicy, MainGroup, ModelConfig, MtInitSignal, Mutation, ProcState, World};
