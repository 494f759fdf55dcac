//! reparent's harness: a conformance suite for Linux process reparenting.
//!
//! Three layers, and data flows one way through them:
//!
//! - [`model`]: the kernel's reparenting rules as pure Rust, with no
//!   syscalls — the oracle. It takes a tree and a step and predicts the next
//!   tree, with the kernel function behind every change.
//! - [`sys`]: the system layer — namespaces, node processes, pidfds and
//!   `/proc`. All `unsafe` lives here, in its syscall seam `sys::os`.
//! - [`kernel`]: the conformance table of `reparent kernel` — which rules
//!   there are, and (pure, like the model) how the probes' observations
//!   are judged.
//! - [`driver`]: runs scenarios and random cases through both and compares;
//!   runs the table's rows.
//!
//! [`scenario`] is the `.tree` format all three share. [`vm`] runs the
//! suite on other kernels, booted under QEMU (`reparent vm`, `reparent matrix`).

pub mod driver;
pub mod gate;
pub mod kernel;
pub mod model;
pub mod scenario;
pub mod sys;
pub mod vm;
