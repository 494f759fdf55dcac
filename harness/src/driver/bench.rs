//! The benchmark workload: a fixed shape of case, run many times, with the
//! time split by phase so a reader can see where it goes.
//!
//! Each case is a random tree of exactly [`NODES`] processes (init
//! included; `reparent bench --nodes N` for another size), a quarter of
//! them ([`subreapers`], never init) subreapers, then up to
//! [`KILLS`] sequential SIGKILLs of random running non-init processes (fewer
//! if none is left), the whole tree observed and checked against the model
//! after each. The random choices come from the seed (`reparent bench
//! --seed`, 1 by default), so two runs with the same seed do the same work.
//!
//! Shapes and victims are drawn from two streams, so that each case's
//! successor is known before it runs: its tree is built ahead, in the spare
//! sandbox, while the case runs (`sys::client::build_ahead`), as set-up and
//! teardown already are. What that leaves on a case's own path is the
//! kills, the waits and the checks; the build still costs its CPU, on the
//! other core.

use std::time::{Duration, Instant};

use crate::model::{ModelConfig, ProcState};
use crate::scenario::{Attrs, Node, Signal, Step, INIT};
use crate::sys::SandboxOptions;

use super::case::{Case, CaseError, PhaseTimes};

/// A small deterministic generator (xorshift64*), enough for shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Nodes per tree by default, kills per case.
pub const NODES: usize = 16;
pub const KILLS: usize = 4;

/// Subreapers in a tree of `nodes` processes.
pub fn subreapers(nodes: usize) -> usize {
    nodes / 4
}

/// The next case's tree of `nodes` processes (at least 2), drawn from `rng`.
fn tree(rng: &mut Rng, nodes: usize) -> Node {
    let nodes = nodes.max(2);
    let mut parents = vec![usize::MAX];
    for k in 1..nodes {
        parents.push(rng.below(k));
    }
    let mut sub = vec![false; nodes];
    let mut placed = 0;
    while placed < subreapers(nodes) {
        let k = 1 + rng.below(nodes - 1);
        if !sub[k] {
            sub[k] = true;
            placed += 1;
        }
    }
    fn build(i: usize, parents: &[usize], sub: &[bool]) -> Node {
        Node {
            name: if i == 0 { INIT.into() } else { format!("p{i}") },
            attrs: Attrs { subreaper: sub[i], ..Attrs::default() },
            markers: Default::default(),
            children: (i + 1..parents.len()).filter(|&c| parents[c] == i).map(|c| build(c, parents, sub)).collect(),
        }
    }
    build(0, &parents, &sub)
}

/// The result of a benchmark run.
#[derive(Debug)]
pub struct BenchReport {
    pub cases: usize,
    pub steps: usize,
    pub wall: Duration,
    pub times: PhaseTimes,
}

impl BenchReport {
    pub fn cases_per_second(&self) -> f64 {
        self.cases as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `cases` benchmark cases of `nodes` processes; the first failure
/// ends the run.
pub fn run(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    cases: usize,
    seed: u64,
    nodes: usize,
) -> Result<BenchReport, CaseError> {
    // Trees and victims come from two streams, so that the next case's
    // tree is known before this case's kills are drawn: it is built ahead
    // (`client::build_ahead`) while this case runs.
    let mut rng = Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1);
    let mut shapes = Rng(seed | 1);
    let mut times = PhaseTimes::default();
    let mut steps = 0;
    let start = Instant::now();
    let mut next = tree(&mut shapes, nodes);
    for k in 0..cases {
        let t = std::mem::replace(&mut next, tree(&mut shapes, nodes));
        if k + 1 < cases {
            crate::sys::client::build_ahead(&next);
        }
        let mut case = Case::start(opts, cfg, &t)?;
        for _ in 0..KILLS {
            let living: Vec<String> = case
                .world()
                .names()
                .into_iter()
                .filter(|n| n != INIT && case.world().state(n) == Some(ProcState::Running))
                .collect();
            if living.is_empty() {
                break;
            }
            let victim = living[rng.below(living.len())].clone();
            case.step(&Step::Kill { targets: vec![victim], signal: Signal::KILL }, None)?;
        }
        steps += case.steps();
        times.add(&case.finish());
    }
    // The last teardowns are part of the run.
    crate::sys::client::finish_thread();
    Ok(BenchReport { cases, steps, wall: start.elapsed(), times })
}
