//! The kernel layer: the conformance table of `reparent kernel` — which
//! rules of kernel-rules.md there are, how each is checked, what each range
//! of kernel versions should give, and how checked rows become a table and
//! its JSON.
//!
//! Like the model, this layer is pure: it makes no syscalls and creates no
//! process, so every judgement in it is unit-tested without a kernel. The
//! system layer runs the probes and scenarios and reports what it saw as
//! plain data; this layer decides pass or fail from that data and the
//! kernel version; the driver carries the data from one to the other.
//!
//! - [`catalogue`]: every row — rule, kernel function, how it is checked,
//!   since which version, and what each version range should give.
//! - [`build`]: behaviours that differ between builds of one version,
//!   read from what a fixed case showed on the running kernel.
//! - [`probes`]: what each probe's observation must be, on which kernel,
//!   and observations that break each probe's rule.
//! - [`table`]: checked rows, the table, its text and JSON forms.
//! - [`diff`]: what changed between two tables, and whether it is a
//!   regression.
//! - [`proof`]: the table checks itself — each scenario row is made to
//!   fail by a deliberate bug of the model that breaks its rule, each probe
//!   row by observations that break its rule.

#![forbid(unsafe_code)]

pub mod build;
pub mod catalogue;
pub mod diff;
pub mod probes;
pub mod proof;
pub mod table;

pub use catalogue::{Check, Expectation, Kernels, Rule, RULES};
pub use diff::{diff, diff_text, Change, Diff, RowChange};
pub use proof::{prove, prove_probe, prove_scenario, RowProof};
pub use table::{
    evaluate, header_text, key, parse_json, predates, read_json, read_json_file, row_text, select, table,
    BinaryVersion, Expected, JsonError, Machine, ModelVersion, Outcome, Provenance, Row, SavedRow, SavedTable,
    Selection, Summary, Table, Verdict, FORMAT_VERSION,
};
