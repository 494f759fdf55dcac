//! The driver: runs scenarios and random cases through the model and the
//! system layer and compares them. It owns no kernel knowledge (that is the
//! model's) and makes no syscalls of its own (those are the system
//! layer's).
//!
//! - [`case`]: one case, checked step by step.
//! - [`scenario_run`]: `.tree` files — load, validate, run, trace.
//! - [`random`]: proptest-generated cases, shrunk and written out on failure.
//! - [`bench`]: the fixed benchmark workload.
//! - [`report`]: how a mismatch is shown.

#![forbid(unsafe_code)]

pub mod bench;
pub mod case;
pub mod kernel_table;
pub mod random;
pub mod report;
pub mod scenario_run;

pub use case::{Case, CaseError, Mismatch, MismatchKind, PhaseTimes};
