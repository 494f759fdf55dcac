//! What the model predicts for one step: the possible worlds after it, each
//! with the reasons for every change.
//!
//! A step usually has one outcome. It has several only when the kernel itself
//! does not decide: when processes killed together reach `exit_notify()` in an
//! order the harness cannot control (R1.8). Then the driver must accept any of
//! the outcomes, and the reasons say which order leads to which.

use std::fmt;

use super::world::World;

/// The worlds a step can lead to.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// At least one; distinct by world. More than one only when the result
    /// depends on the order of racing deaths (R1.8).
    pub outcomes: Vec<Outcome>,
}

/// One possible world after a step, and how it came about.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub world: World,
    pub reasons: Vec<Reason>,
}

/// Why one process changed: the rule of `kernel-rules.md` and the kernel
/// function behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The process that changed.
    pub process: String,
    /// The rule, `R1.3`; or `signal(7)` for a signal's default action, which
    /// `kernel-rules.md` takes as given.
    pub rule: &'static str,
    /// The kernel function that applies the rule, `find_new_reaper()`.
    pub kernel_fn: &'static str,
    /// What happened and why, in words.
    pub text: String,
}

impl Reason {
    pub(super) fn new(process: &str, rule: &'static str, kernel_fn: &'static str, text: impl Into<String>) -> Reason {
        Reason { process: process.to_string(), rule, kernel_fn, text: text.into() }
    }
}

/// Where the rules write their reasons as they apply. The racing-death
/// search runs the rules thousands of times without words ([`Reasons::quiet`])
/// and replays only the orders it keeps, so the words are built lazily.
pub(super) struct Reasons(Option<Vec<Reason>>);

impl Reasons {
    pub(super) fn new() -> Reasons {
        Reasons(Some(Vec::new()))
    }

    pub(super) fn quiet() -> Reasons {
        Reasons(None)
    }

    /// Records why `process` changed; `text` is called only if anyone will
    /// read it.
    pub(super) fn add(
        &mut self,
        process: &str,
        rule: &'static str,
        kernel_fn: &'static str,
        text: impl FnOnce() -> String,
    ) {
        if let Some(list) = &mut self.0 {
            list.push(Reason::new(process, rule, kernel_fn, text()));
        }
    }

    /// Records a reason whose rule, too, takes work to decide.
    pub(super) fn add_reason(&mut self, make: impl FnOnce() -> Reason) {
        if let Some(list) = &mut self.0 {
            list.push(make());
        }
    }

    pub(super) fn into_vec(self) -> Vec<Reason> {
        self.0.unwrap_or_default()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({}, {})", self.process, self.text, self.rule, self.kernel_fn)
    }
}

impl Prediction {
    /// A step whose result does not depend on timing.
    pub(super) fn one(world: World, reasons: Reasons) -> Prediction {
        Prediction { outcomes: vec![Outcome { world, reasons: reasons.into_vec() }] }
    }

    /// Whether the kernel leaves only one possible world.
    pub fn is_deterministic(&self) -> bool {
        self.outcomes.len() == 1
    }

    /// The possible worlds, in the order of `outcomes`.
    pub fn worlds(&self) -> impl Iterator<Item = &World> {
        self.outcomes.iter().map(|o| &o.world)
    }
}
