//! What the model predicts for one step: the possible worlds after it, each
//! with the reasons for every change.
//!
//! A step usually has one outcome. It has several only when the kernel itself
//! does not decide: when processes killed together reach `exit_notify()` in an
//! order the harness cannot control (R1.8). Then the driver must accept any of
//! the outcomes, and the reasons say which order leads to which.

use std::fmt;
use std::sync::Arc;

use super::race::RaceCheck;
use super::world::World;
use crate::scenario::Node;

/// The worlds a step can lead to.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// At least one; distinct by world. More than one only when the result
    /// depends on the order of racing deaths (R1.8). Not every outcome when
    /// there were too many to list ([`Prediction::too_many`]).
    pub outcomes: Vec<Outcome>,
    /// Set when the racing deaths had more outcomes, or took more states to
    /// list, than the model's bound: `outcomes` holds those found first, and
    /// [`Prediction::check`] searches again for the tree the kernel left.
    pub(super) race: Option<Arc<RaceCheck>>,
}

/// Why an observed tree is none of a step's outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// No order the rules allow leads there.
    Unreachable,
    /// The outcomes were too many to list, and the search guided by the
    /// observed tree hit its own bound before it found or excluded it.
    Undecided,
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
        Prediction { outcomes: vec![Outcome { world, reasons: reasons.into_vec() }], race: None }
    }

    /// When the outcomes were too many to list: how many were listed (they
    /// are `outcomes`), and how many states the listing explored before it
    /// stopped.
    pub fn too_many(&self) -> Option<(usize, usize)> {
        self.race.as_ref().map(|r| (r.listed, r.states))
    }

    /// The outcome that is the tree the kernel left, `observed`: one of
    /// `outcomes`, or, when they were too many to list, one found by
    /// searching the orders of the racing deaths again, guided by
    /// `observed` (its reasons say so).
    pub fn check(&self, observed: &[Node]) -> Result<Outcome, Unmatched> {
        if let Some(o) = self.outcomes.iter().find(|o| o.world.render() == observed) {
            return Ok(o.clone());
        }
        match &self.race {
            None => Err(Unmatched::Unreachable),
            Some(race) => {
                race.check(observed).map_err(
                    |undecided| {
                        if undecided {
                            Unmatched::Undecided
                        } else {
                            Unmatched::Unreachable
                        }
                    },
                )
            }
        }
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
