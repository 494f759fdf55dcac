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
//! - [`probes`]: what each probe's observation must be, on which kernel,
//!   and observations that break each probe's rule.
//! - [`table`]: checked rows, the table, its text and JSON forms.

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod probes;
pub mod table;

pub use catalogue::{Check, Expectation, Rule, RULES};
pub use table::{
    evaluate, header_text, parse_json, row_text, table, Machine, Outcome, Row, SavedTable, Summary, Table, Verdict,
};
