//! The driver: runs scenarios and random cases through the model and the
//! system layer and compares them. It owns no kernel knowledge (that is the
//! model's and, for `reparent kernel`, the kernel layer's) and makes no
//! syscalls of its own (those are the system layer's).
//!
//! - [`calibrate`]: fits the model to the running kernel build.
//! - [`case`]: one case, checked step by step.
//! - [`scenario_run`]: `.tree` files — load, validate, run, trace.
//! - [`explain`]: what the model predicts for a scenario, and why
//!   (`reparent explain`).
//! - [`random`]: proptest-generated cases, shrunk and written out on failure.
//! - [`replay`]: the one command that replays a failure.
//! - [`kernel_table`]: runs the rows of `reparent kernel`'s table.
//! - [`pool`]: independent jobs on N threads, results in job order.
//! - [`bench`]: the fixed benchmark workload.
//! - [`report`]: how a mismatch is shown.
//! - [`under_init`]: scenarios and random trees under an init under test
//!   (`--init`): its observed policy, and the random-tree property of the
//!   init gate.

#![forbid(unsafe_code)]

pub mod bench;
pub mod calibrate;
pub mod case;
pub mod explain;
pub mod kernel_table;
pub mod pool;
pub mod random;
pub mod replay;
pub mod report;
pub mod scenario_run;
pub mod under_init;

pub use case::{Case, CaseError, Mismatch, MismatchKind, PhaseTimes};
