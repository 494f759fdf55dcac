//! Random cases: proptest draws trees and step sequences, runs each through
//! the model and a sandbox, and shrinks a failure to a small `.tree` file.
//!
//! A generated step is an abstract *choice* (a kind and a few indices), not
//! a concrete step: it is resolved against the model's world at the moment
//! it runs, to a process that can take it (a living process for `exit`, an
//! existing one for `kill`, and so on). Shrinking therefore never produces
//! an invalid case — dropping a node or a step just re-resolves the rest —
//! and every resolved case can be written out as an ordinary scenario.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::model::{ModelConfig, ProcState, World};
use crate::scenario::{self, Attrs, Node, Scenario, Signal, Step, StepEntry, INIT};
use crate::sys::SandboxOptions;

use super::case::{Case, CaseError, PhaseTimes};

/// What to generate.
#[derive(Clone, Debug)]
pub struct RandomParams {
    pub cases: u32,
    pub seed: u64,
    /// Largest starting tree, init included.
    pub max_nodes: usize,
    pub max_steps: usize,
    /// Where a shrunk failing case is written.
    pub failures_dir: PathBuf,
}

/// The kinds of step a choice can become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Kill,
    Exit,
    SubreaperOn,
    SubreaperOff,
    Spawn,
    Reap,
    KillInit,
}

/// A step before it is resolved against the world.
#[derive(Clone, Debug)]
pub struct Choice {
    pub kind: Kind,
    pub picks: [Index; 3],
    /// How many processes a kill names (1..=3).
    pub width: usize,
    pub signal: Signal,
    pub attrs: Attrs,
}

/// A generated case: a starting tree and choices.
#[derive(Clone, Debug)]
pub struct CaseSpec {
    pub tree: Node,
    pub choices: Vec<Choice>,
}

fn attrs_strategy(init: bool) -> impl Strategy<Value = Attrs> {
    let (s, n, i) = if init { (10, 10, 5) } else { (30, 15, 10) };
    // True near the top of each range, so that shrinking (towards 0) drops
    // attributes a failure does not need.
    (0..100u32, 0..100u32, 0..100u32).prop_map(move |(a, b, c)| Attrs {
        subreaper: a >= 100 - s,
        noreap: b >= 100 - n,
        sigchld_ignore: c >= 100 - i,
        ..Attrs::default()
    })
}

fn tree_strategy(max_nodes: usize) -> impl Strategy<Value = Node> {
    let max_nodes = max_nodes.max(1);
    (attrs_strategy(true), proptest::collection::vec((any::<Index>(), attrs_strategy(false)), 0..max_nodes)).prop_map(
        |(init_attrs, rest)| {
            // Node k (1-based) hangs under one of the nodes before it.
            let mut parents = vec![usize::MAX];
            let mut attrs = vec![init_attrs];
            for (k, (p, a)) in rest.into_iter().enumerate() {
                parents.push(p.index(k + 1));
                attrs.push(a);
            }
            fn build(i: usize, parents: &[usize], attrs: &[Attrs]) -> Node {
                Node {
                    name: if i == 0 { INIT.to_string() } else { format!("p{i}") },
                    attrs: attrs[i].clone(),
                    markers: Default::default(),
                    children: (i + 1..parents.len())
                        .filter(|&c| parents[c] == i)
                        .map(|c| build(c, parents, attrs))
                        .collect(),
                }
            }
            build(0, &parents, &attrs)
        },
    )
}

fn choice_strategy() -> impl Strategy<Value = Choice> {
    let kind = prop_oneof![
        40 => Just(Kind::Kill),
        12 => Just(Kind::Exit),
        12 => Just(Kind::SubreaperOn),
        8 => Just(Kind::SubreaperOff),
        14 => Just(Kind::Spawn),
        8 => Just(Kind::Reap),
        3 => Just(Kind::KillInit),
    ];
    let signal = prop_oneof![
        50 => Just(Signal::KILL),
        20 => Just(Signal::TERM),
        15 => Just(Signal::STOP),
        15 => Just(Signal::CONT),
    ];
    (kind, any::<[Index; 3]>(), 1..=3usize, signal, attrs_strategy(false))
        .prop_map(|(kind, picks, width, signal, attrs)| Choice { kind, picks, width, signal, attrs })
}

/// The strategy for whole cases.
pub fn case_strategy(max_nodes: usize, max_steps: usize) -> impl Strategy<Value = CaseSpec> {
    (tree_strategy(max_nodes), proptest::collection::vec(choice_strategy(), 1..=max_steps.max(1)))
        .prop_map(|(tree, choices)| CaseSpec { tree, choices })
}

/// Turns a choice into a concrete step the world can run, or `None` when no
/// process can take it. `spawned` numbers new processes.
pub fn resolve(world: &World, c: &Choice, spawned: &mut usize) -> Option<Step> {
    if !world.namespace_alive() {
        return None;
    }
    let names = world.names();
    let running: Vec<&String> = names.iter().filter(|n| world.state(n) == Some(ProcState::Running)).collect();
    let pick =
        |v: &[&String], i: usize| -> Option<String> { (!v.is_empty()).then(|| v[c.picks[i].index(v.len())].clone()) };
    Some(match c.kind {
        Kind::Kill => {
            let mut pool: Vec<&String> =
                names.iter().filter(|n| n.as_str() != INIT && world.state(n) != Some(ProcState::Zombie)).collect();
            let mut targets = Vec::new();
            for i in 0..c.width.min(3) {
                if pool.is_empty() {
                    break;
                }
                let t = pool.remove(c.picks[i].index(pool.len()));
                targets.push(t.clone());
            }
            if targets.is_empty() {
                return None;
            }
            Step::Kill { targets, signal: c.signal }
        }
        Kind::KillInit => {
            let signal = [Signal::KILL, Signal::TERM, Signal::STOP, Signal::CONT][c.picks[0].index(4)];
            Step::Kill { targets: vec![INIT.to_string()], signal }
        }
        Kind::Exit => {
            let pool: Vec<&String> = running.iter().copied().filter(|n| n.as_str() != INIT).collect();
            Step::Exit { target: pick(&pool, 0)?, code: c.picks[1].index(4) as i32 }
        }
        Kind::SubreaperOn | Kind::SubreaperOff => {
            Step::Subreaper { target: pick(&running, 0)?, on: c.kind == Kind::SubreaperOn }
        }
        Kind::Spawn => {
            let parent = pick(&running, 0)?;
            *spawned += 1;
            Step::Spawn {
                child: format!("s{spawned}"),
                parent,
                thread: None,
                clone_parent: false,
                into: None,
                attrs: c.attrs.clone(),
            }
        }
        Kind::Reap => {
            let keepers: Vec<&String> =
                running.iter().copied().filter(|n| world.attrs(n).is_some_and(|a| a.noreap)).collect();
            let pool = if keepers.is_empty() { &running } else { &keepers };
            Step::Reap { target: pick(pool, 0)? }
        }
    })
}

/// Totals of a random run.
#[derive(Debug, Default)]
pub struct RandomSummary {
    /// Cases that passed before the first failure (all, if none failed).
    pub passed: u32,
    /// Steps checked, shrinking included.
    pub steps: usize,
    /// Cases run, shrinking included.
    pub runs: usize,
    pub times: PhaseTimes,
    pub failure: Option<RandomFailure>,
}

/// A shrunk failing case.
#[derive(Debug)]
pub struct RandomFailure {
    /// Where the `.tree` file was written (None if writing failed).
    pub path: Option<PathBuf>,
    /// The explanation of the minimal case's failure.
    pub message: String,
    /// The minimal case as a scenario file.
    pub text: String,
}

/// One resolved and executed case.
struct Executed {
    scenario: Scenario,
    error: Option<CaseError>,
    steps: usize,
    times: PhaseTimes,
}

/// Runs a case from `tree`, asking `next` for each step given the model's
/// world (`None`: no more steps; `Some(None)`: nothing to do this time).
/// The returned scenario records the concrete steps taken, with the observed
/// tree as `expect:` for every step that passed.
fn execute(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    tree: &Node,
    mut next: impl FnMut(&World) -> Option<Option<Step>>,
) -> Executed {
    let mut scenario = Scenario { about: None, needs: vec![], tree: tree.clone(), steps: vec![] };
    let mut case = match Case::start(opts, cfg, tree) {
        Ok(c) => c,
        Err(e) => return Executed { scenario, error: Some(e), steps: 0, times: PhaseTimes::default() },
    };
    let mut error = None;
    while let Some(step) = next(case.world()) {
        let Some(step) = step else { continue };
        let res = case.step(&step, None);
        scenario.steps.push(StepEntry { step, line: 0, expect: res.as_ref().ok().map(|r| r.observed.clone()) });
        if let Err(e) = res {
            error = Some(e);
            break;
        }
    }
    let steps = case.steps();
    let times = case.finish();
    Executed { scenario, error, steps, times }
}

/// A generated case: its choices resolved against the world as it runs.
fn execute_spec(opts: &SandboxOptions, cfg: ModelConfig, spec: &CaseSpec) -> Executed {
    let mut choices = spec.choices.iter();
    let mut spawned = 0;
    execute(opts, cfg, &spec.tree, |world| choices.next().map(|c| resolve(world, c, &mut spawned)))
}

/// A concrete scenario (its `expect:` blocks are not checked).
fn execute_concrete(opts: &SandboxOptions, cfg: ModelConfig, s: &Scenario) -> Executed {
    let mut steps = s.steps.iter();
    execute(opts, cfg, &s.tree, |_| steps.next().map(|e| Some(e.step.clone())))
}

/// Whether a candidate still shows a real failure (a mismatch or a system
/// error), not merely a step the model cannot run.
fn still_fails(ex: &Executed) -> bool {
    matches!(ex.error, Some(CaseError::Mismatch(_)) | Some(CaseError::Sys { .. }))
}

/// Smaller variants of a scenario, most promising first: drop a step, drop a
/// process (its children move up to its parent), drop a kill target, drop
/// an attribute.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in (0..s.steps.len()).rev() {
        let mut c = s.clone();
        c.steps.remove(i);
        out.push(c);
    }
    let names: Vec<String> = s.tree.preorder().iter().skip(1).map(|n| n.name.clone()).collect();
    for name in &names {
        let mut c = s.clone();
        remove_node(&mut c.tree, name);
        out.push(c);
    }
    for (i, e) in s.steps.iter().enumerate() {
        if let Step::Kill { targets, signal } = &e.step {
            if targets.len() > 1 {
                for k in 0..targets.len() {
                    let mut t = targets.clone();
                    t.remove(k);
                    let mut c = s.clone();
                    c.steps[i].step = Step::Kill { targets: t, signal: *signal };
                    out.push(c);
                }
            }
        }
    }
    let all: Vec<String> = s.tree.preorder().iter().map(|n| n.name.clone()).collect();
    for name in &all {
        for which in 0..3 {
            let mut c = s.clone();
            if clear_attr(&mut c.tree, name, which) {
                out.push(c);
            }
        }
    }
    out
}

/// Removes `name` from the tree, handing its children to its parent in its
/// place.
fn remove_node(n: &mut Node, name: &str) -> bool {
    if let Some(i) = n.children.iter().position(|c| c.name == name) {
        let gone = n.children.remove(i);
        for (k, c) in gone.children.into_iter().enumerate() {
            n.children.insert(i + k, c);
        }
        return true;
    }
    n.children.iter_mut().any(|c| remove_node(c, name))
}

/// Clears attribute `which` (0 subreaper, 1 noreap, 2 sigchld=ignore) of
/// `name`; false if it was not set.
fn clear_attr(n: &mut Node, name: &str, which: usize) -> bool {
    if n.name == name {
        let a = &mut n.attrs;
        let flag = [&mut a.subreaper, &mut a.noreap, &mut a.sigchld_ignore].into_iter().nth(which);
        return match flag {
            Some(f) if *f => {
                *f = false;
                true
            }
            _ => false,
        };
    }
    n.children.iter_mut().any(|c| clear_attr(c, name, which))
}

/// Greedy reduction of a failing concrete scenario, after proptest's own
/// shrinking (whose index-based choices cannot always drop a process
/// without reshaping the rest): keeps any smaller variant that still fails,
/// until none does or `budget` runs are spent.
fn minimize(opts: &SandboxOptions, cfg: ModelConfig, s: Scenario, mut budget: usize) -> (Executed, usize) {
    let mut best = execute_concrete(opts, cfg, &s);
    let mut runs = 1;
    'outer: while budget > 0 {
        for c in candidates(&strip_expect(best.scenario.clone())) {
            if budget == 0 {
                break 'outer;
            }
            budget -= 1;
            runs += 1;
            let ex = execute_concrete(opts, cfg, &c);
            if still_fails(&ex) {
                best = ex;
                continue 'outer;
            }
        }
        break;
    }
    (best, runs)
}

/// Runs `params.cases` random cases; on a failure, shrinks it, writes the
/// minimal case to `params.failures_dir` and returns it.
pub fn run(opts: &SandboxOptions, cfg: ModelConfig, params: &RandomParams) -> RandomSummary {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&params.seed.to_le_bytes());
    let config = Config { cases: params.cases, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let summary = RefCell::new(RandomSummary::default());
    let last_failure: RefCell<Option<(Scenario, String)>> = RefCell::new(None);
    let shrinking = RefCell::new(false);
    let result = runner.run(&case_strategy(params.max_nodes, params.max_steps), |spec| {
        let ex = execute_spec(opts, cfg, &spec);
        let mut s = summary.borrow_mut();
        s.runs += 1;
        s.steps += ex.steps;
        s.times.add(&ex.times);
        match ex.error {
            None => {
                if !*shrinking.borrow() {
                    s.passed += 1;
                }
                Ok(())
            }
            Some(e) => {
                *shrinking.borrow_mut() = true;
                let msg = e.to_string();
                *last_failure.borrow_mut() = Some((ex.scenario, msg.clone()));
                Err(TestCaseError::fail(msg))
            }
        }
    });
    let mut summary = summary.into_inner();
    if let Err(err) = result {
        let (scenario, message) = match (err, last_failure.into_inner()) {
            (TestError::Fail(_, _), Some((s, _))) => {
                let (ex, runs) = minimize(opts, cfg, strip_expect(s), 2000);
                summary.runs += runs;
                let message =
                    ex.error.as_ref().map_or_else(|| "the failure did not reproduce".to_string(), |e| e.to_string());
                (ex.scenario, message)
            }
            (e, last) => (
                last.map(|(s, _)| s).unwrap_or(Scenario {
                    about: None,
                    needs: vec![],
                    tree: Node::new(INIT),
                    steps: vec![],
                }),
                e.to_string(),
            ),
        };
        let text = failure_file(&scenario, &message, params.seed);
        let path = write_failure(&params.failures_dir, params.seed, &text);
        summary.failure = Some(RandomFailure { path, message, text });
    }
    summary
}

fn strip_expect(mut s: Scenario) -> Scenario {
    for e in &mut s.steps {
        e.expect = None;
    }
    s
}

/// The minimal case as a `.tree` file: the mismatch in comments at the top,
/// `expect:` blocks for the steps that passed, none for the failing step
/// (replaying it checks it against the model again).
fn failure_file(s: &Scenario, message: &str, seed: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# A random case that failed, shrunk (reparent check --seed {seed}).");
    for line in message.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let mut s = s.clone();
    s.about = Some(format!("shrunk random case (seed {seed})"));
    if let Some(last) = s.steps.last_mut() {
        last.expect = None;
    }
    out.push_str(&scenario::render(&s));
    out
}

fn write_failure(dir: &Path, seed: u64, text: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
    }
    let path = dir.join(format!("seed-{seed}-{:08x}.tree", hash as u32));
    std::fs::write(&path, text).ok()?;
    Some(path)
}
