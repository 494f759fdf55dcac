//! One case — a starting tree and its steps — run through both the model
//! and a real sandbox, compared after every step.
//!
//! The model goes first: its prediction says which processes should be
//! stopped or exiting afterwards (the states the sandbox cannot learn from
//! pidfds).
//! Then the sandbox acts and settles, and the observed tree must be one of
//! the model's outcomes. When racing deaths leave the kernel a choice the
//! model returns several outcomes; the case goes on from the one the kernel
//! took.

use std::time::{Duration, Instant};

use crate::model::{ModelConfig, ModelError, ProcState, Reason, Unmatched, World};
use crate::scenario::{Node, Step};
use crate::sys::{Observation, Sandbox, SandboxOptions, SettleHints, SysError};

use super::report;

/// Time spent per phase over one or more cases.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    /// Starting the helper, creating the namespaces and PID 1.
    pub setup: Duration,
    /// Forking the starting tree.
    pub build: Duration,
    /// Acting (signals, commands), waiting for the kernel to settle, and
    /// the final /proc scan.
    pub act_and_wait: Duration,
    /// Rendering the observed tree (and scanning /proc for a bare observe).
    pub observe: Duration,
    /// The model's predictions and the comparisons.
    pub model: Duration,
    /// Killing PID 1 and waiting for the namespace to be gone.
    pub teardown: Duration,
    /// Starting the helper process (fork, exec) and runner <-> helper
    /// messaging: the runner's round-trip time not counted above.
    pub other: Duration,
}

impl PhaseTimes {
    pub fn add(&mut self, o: &PhaseTimes) {
        self.setup += o.setup;
        self.build += o.build;
        self.act_and_wait += o.act_and_wait;
        self.observe += o.observe;
        self.model += o.model;
        self.teardown += o.teardown;
        self.other += o.other;
    }

    pub fn total(&self) -> Duration {
        self.setup + self.build + self.act_and_wait + self.observe + self.model + self.teardown + self.other
    }

    fn add_observation(&mut self, o: &Observation, round_trip: Duration) {
        let t = o.timings;
        let us = Duration::from_micros;
        self.setup += us(t.setup_us);
        self.build += us(t.build_us);
        self.act_and_wait += us(t.act_us + t.settle_us);
        self.observe += us(t.observe_us);
        let inside = us(t.setup_us + t.build_us + t.act_us + t.settle_us + t.observe_us);
        self.other += round_trip.saturating_sub(inside);
    }
}

/// Which two trees disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MismatchKind {
    /// The kernel did something the model does not allow.
    ModelVsKernel,
    /// Model and kernel agree, but the scenario's `expect:` block says
    /// otherwise.
    ExpectVsKernel,
}

/// A disagreement after a step.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub kind: MismatchKind,
    /// 1-based index of the step (0: the starting tree).
    pub step_no: usize,
    /// The step as written, `kill bash`.
    pub step_text: String,
    /// The model's possible trees (one unless the step races).
    pub model: Vec<Vec<Node>>,
    /// The model's reasons for its first outcome.
    pub reasons: Vec<Reason>,
    pub observed: Vec<Node>,
    pub expect: Option<Vec<Node>>,
}

impl Mismatch {
    /// The full explanation: step, trees side by side, reasons.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let at = if self.step_no == 0 {
            "the starting tree".to_string()
        } else {
            format!("step {} `{}`", self.step_no, self.step_text)
        };
        match self.kind {
            MismatchKind::ModelVsKernel => {
                s.push_str(&format!("mismatch after {at}: the kernel disagrees with the model\n"));
                for (i, m) in self.model.iter().enumerate() {
                    let title = if self.model.len() == 1 {
                        "model".to_string()
                    } else {
                        format!("model (outcome {} of {})", i + 1, self.model.len())
                    };
                    s.push_str(&report::side_by_side(&title, m, "kernel (observed)", &self.observed));
                }
            }
            MismatchKind::ExpectVsKernel => {
                s.push_str(&format!("mismatch after {at}: the `expect:` block disagrees with the kernel (the model agrees with the kernel)\n"));
                s.push_str(&report::side_by_side(
                    "expect:",
                    self.expect.as_deref().unwrap_or(&[]),
                    "kernel (observed)",
                    &self.observed,
                ));
            }
        }
        s.push_str("  the model's reasons:\n");
        s.push_str(&report::reasons_text(&self.reasons));
        s
    }
}

/// Why a case stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The step cannot run in the model's world (a scenario error).
    #[error("step {step_no} `{step_text}` cannot run: {source}")]
    Invalid { step_no: usize, step_text: String, source: ModelError },
    /// The system layer failed (a deadline, a syscall).
    #[error("step {step_no} `{step_text}`: {source}")]
    Sys { step_no: usize, step_text: String, source: SysError },
    /// Observed and predicted (or expected) trees differ.
    #[error("{}", .0.explain())]
    Mismatch(Box<Mismatch>),
}

/// What one checked step gave.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub observed: Vec<Node>,
    pub reasons: Vec<Reason>,
    /// How many outcomes the model allowed (more than one: a race). Past
    /// the model's limit, those it listed plus one.
    pub outcomes: usize,
}

/// A case in progress: a live sandbox and the model's world in step.
pub struct Case {
    sandbox: Option<Sandbox>,
    world: World,
    /// Under an init under test: its main child's name (the one child of
    /// `init` in `tree:`), whose process group is the init's policy.
    main: Option<String>,
    steps: usize,
    pub times: PhaseTimes,
    /// The tree as first observed.
    pub initial: Vec<Node>,
}

/// An `expect:` block written for the built-in init, as it reads under an
/// init under test: the main child (a child of `init`) that the block
/// shows in init's own group gets the group the init put it in (its
/// policy, observed). A block that gives the main child `pgrp` or
/// `session` itself is left as written.
pub fn fit_expect(expect: &[Node], main: &str, group: crate::model::MainGroup) -> Vec<Node> {
    let mut out = expect.to_vec();
    for root in out.iter_mut().filter(|r| r.name == crate::scenario::INIT) {
        for child in root.children.iter_mut().filter(|c| c.name == main && !c.attrs.pgrp && !c.attrs.session) {
            child.attrs = group.apply(&child.attrs);
        }
    }
    out
}

/// The step as the format writes it.
pub fn step_text(step: &Step) -> String {
    step.to_string()
}

impl Case {
    /// Builds `tree` in a fresh sandbox and checks it against the model.
    pub fn start(opts: &SandboxOptions, cfg: ModelConfig, tree: &Node) -> Result<Case, CaseError> {
        if opts.init.is_some() && cfg.init.is_none() {
            return Err(CaseError::Sys {
                step_no: 0,
                step_text: "tree:".into(),
                source: SysError::Setup(
                    "an init under test needs its observed policy in the model (ModelConfig::init, from \
                     driver::under_init::observe_policy)"
                        .into(),
                ),
            });
        }
        let main = cfg.init.and(tree.children.first()).map(|n| n.name.clone());
        let t = Instant::now();
        let world = World::new(tree, cfg).map_err(|source| CaseError::Invalid {
            step_no: 0,
            step_text: "tree:".into(),
            source,
        })?;
        let model_time = t.elapsed();
        let t = Instant::now();
        let (sandbox, obs) = Sandbox::start(opts, tree).map_err(|source| CaseError::Sys {
            step_no: 0,
            step_text: "tree:".into(),
            source,
        })?;
        let mut times = PhaseTimes { model: model_time, ..PhaseTimes::default() };
        times.add_observation(&obs, t.elapsed());
        let predicted = world.render();
        if predicted != obs.forest {
            return Err(CaseError::Mismatch(Box::new(Mismatch {
                kind: MismatchKind::ModelVsKernel,
                step_no: 0,
                step_text: "tree:".into(),
                model: vec![predicted],
                reasons: vec![],
                observed: obs.forest,
                expect: None,
            })));
        }
        Ok(Case { sandbox: Some(sandbox), world, main, steps: 0, times, initial: obs.forest })
    }

    /// The model's current world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs one step and checks it; `expect` is the scenario's block, if any.
    pub fn step(&mut self, step: &Step, expect: Option<&[Node]>) -> Result<StepRecord, CaseError> {
        self.steps += 1;
        let step_no = self.steps;
        let t = Instant::now();
        let prediction = self.world.apply(step).map_err(|source| CaseError::Invalid {
            step_no,
            step_text: step_text(step),
            source,
        })?;
        // An init under test dies without a channel to say so: by its
        // policy once its main child is gone, or by SIGKILL.
        let init_exits = self.main.is_some() && prediction.worlds().any(|w| !w.namespace_alive());
        let mut hints = SettleHints { init_exits, ..SettleHints::default() };
        for w in prediction.worlds() {
            for n in w.names() {
                if w.state(&n) == Some(ProcState::Stopped) && !hints.stopped.contains(&n) {
                    hints.stopped.push(n);
                }
            }
            for n in w.render().iter().flat_map(Node::preorder) {
                if n.markers.exiting && !hints.exiting.contains(&n.name) {
                    hints.exiting.push(n.name.clone());
                }
            }
        }
        self.times.model += t.elapsed();

        let sandbox = self.sandbox.as_mut().ok_or_else(|| CaseError::Sys {
            step_no,
            step_text: step_text(step),
            source: SysError::Protocol("the sandbox is closed".into()),
        })?;
        let t = Instant::now();
        let obs = sandbox.step(step, &hints).map_err(|source| CaseError::Sys {
            step_no,
            step_text: step_text(step),
            source,
        })?;
        self.times.add_observation(&obs, t.elapsed());

        let t = Instant::now();
        let rendered: Vec<Vec<Node>> = prediction.worlds().map(World::render).collect();
        let outcome = match prediction.check(&obs.forest) {
            Ok(outcome) => outcome,
            Err(why) => {
                self.times.model += t.elapsed();
                let mut reasons = prediction.outcomes[0].reasons.clone();
                if let Some((listed, states)) = prediction.too_many() {
                    let text = match why {
                        Unmatched::Unreachable => format!(
                            "more than {listed} possible outcomes (past the model's limit, {states} states): \
                             checked the kernel's outcome against the rules instead, and no order of the \
                             racing deaths leads to it; the trees above are the outcomes listed"
                        ),
                        Unmatched::Undecided => format!(
                            "more than {listed} possible outcomes (past the model's limit, {states} states): \
                             checked the kernel's outcome against the rules instead, but that search too hit \
                             its limit before it found an order leading to it or ruled every order out \
                             (undecided, reported as a mismatch)"
                        ),
                    };
                    reasons
                        .insert(0, Reason { process: step_text(step), rule: "R1.8", kernel_fn: "exit_notify()", text });
                }
                return Err(CaseError::Mismatch(Box::new(Mismatch {
                    kind: MismatchKind::ModelVsKernel,
                    step_no,
                    step_text: step_text(step),
                    model: rendered,
                    reasons,
                    observed: obs.forest,
                    expect: expect.map(<[Node]>::to_vec),
                })));
            }
        };
        let outcomes =
            if prediction.too_many().is_some() { prediction.outcomes.len() + 1 } else { prediction.outcomes.len() };
        self.world = outcome.world.clone();
        self.times.model += t.elapsed();
        let fitted = match (self.world.config().init, &self.main, expect) {
            (Some(policy), Some(main), Some(e)) => Some(fit_expect(e, main, policy.main_group)),
            _ => None,
        };
        if let Some(e) = fitted.as_deref().or(expect) {
            if e != obs.forest.as_slice() {
                return Err(CaseError::Mismatch(Box::new(Mismatch {
                    kind: MismatchKind::ExpectVsKernel,
                    step_no,
                    step_text: step_text(step),
                    model: vec![obs.forest.clone()],
                    reasons: outcome.reasons.clone(),
                    observed: obs.forest,
                    expect: Some(e.to_vec()),
                })));
            }
        }
        Ok(StepRecord { observed: obs.forest, reasons: outcome.reasons, outcomes })
    }

    /// Steps checked so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Tears the sandbox down (also done on drop) and records the time.
    pub fn finish(mut self) -> PhaseTimes {
        if let Some(sb) = self.sandbox.take() {
            self.times.teardown += sb.close();
        }
        self.times
    }
}
