//! Scenarios and random trees under a real init (`--init "INIT ARGS"`).
//!
//! An init under test runs as PID 1 of the case's namespace and starts the
//! node agent as its one command, its *main child*; the tree hangs below
//! that child. The kernel decides where orphans go (the model's job, as
//! always), but a few things are the init's to decide, and differ between
//! correct inits (shared/init-gate.md §3): the process group and session it
//! gives its main child (P1: tini and catatonit `setpgid()`, dumb-init
//! `setsid()`), and whether it exits once its main child has exited (T1).
//! Counting those as failures would fail every real init, so they are
//! *observed* first, in a small case of their own ([`observe_policy`]),
//! and given to the model as [`InitPolicy`]; a case whose init then does
//! otherwise fails on its starting tree or on the step that shows it.
//!
//! What is the init's job, and checked: every zombie it adopts is reaped
//! within the reap deadline (`SandboxOptions::reap_deadline`, measured
//! from the zombie's exit — its pidfd readable — to its reap — POLLHUP, or
//! `/proc` gone before 6.9). The sandbox fails such a case with
//! `SysError::NotReaped`, naming the zombies left.
//!
//! Whether an init exits with its main child is the one thing no event
//! tells when the answer is "no": an init that stays gives no sign of
//! having decided. An init that exits is seen on its pidfd (an event); one
//! that has not exited within the reap deadline after its main child was
//! reaped is taken to stay, and the policy's evidence says that this part
//! was time-based.
//!
//! [`random_trees`] is the property of init-gate.md §4: random trees below
//! the main child, random kills and exits, and the main child's own exit at
//! the end, each case checked against the model under the observed policy;
//! a failure is shrunk and written as a `.tree` file with the exact
//! `reparent --init ... run` command that fails again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::{InitPolicy, MainGroup, ModelConfig};
use crate::scenario::{Attrs, Node, Scenario, Signal, Step, INIT};
use crate::sys::{Sandbox, SandboxOptions, SettleHints, SysError};

use super::calibrate;
use super::random::{self, RandomFailure, RandomParams};
use super::replay::Replay;

/// Why the init's policy, or the model, could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UnderInitError {
    /// `SandboxOptions::init` is not set.
    #[error("no init under test: set SandboxOptions::init (`--init \"INIT ARGS\"`)")]
    NoInit,
    /// The sandbox, or the init, failed before a policy could be seen.
    #[error("observing the init under test ({init}) failed: {source}")]
    Sys { init: String, source: SysError },
    /// The init did not start its command as its one child.
    #[error("the init under test ({init}) did not start its command as its only child; the namespace showed:\n{tree}")]
    Shape { init: String, tree: String },
    /// Fitting the model to the kernel build failed.
    #[error("{0}")]
    Calibrate(#[from] calibrate::CalibrateError),
}

/// The policy of an init under test, and what it was taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPolicy {
    pub policy: InitPolicy,
    /// How each part was seen, in a sentence (for a report).
    pub evidence: String,
}

/// The command line of the init under test, as one string.
pub fn init_text(opts: &SandboxOptions) -> String {
    opts.init.as_ref().map(|c| c.join(" ")).unwrap_or_default()
}

/// Observes the policy of `opts.init` in a case of its own: `init → main →
/// kid`. The main child's group and session are read from the starting
/// tree; then `main` exits, and the init either exits (its pidfd readable)
/// or has not within the reap deadline (taken as staying, time-based). An
/// init that never reaps its main child stays, by definition: it never
/// learns that the child exited.
pub fn observe_policy(opts: &SandboxOptions) -> Result<ObservedPolicy, UnderInitError> {
    if opts.init.is_none() {
        return Err(UnderInitError::NoInit);
    }
    let init = init_text(opts);
    let sys = |source| UnderInitError::Sys { init: init.clone(), source };
    let tree =
        Node { children: vec![Node { children: vec![Node::new("kid")], ..Node::new("main") }], ..Node::new(INIT) };
    let (mut sb, obs) = Sandbox::start(opts, &tree).map_err(sys)?;
    let main = match obs.forest.as_slice() {
        [root] if root.name == INIT && root.children.len() == 1 && root.children[0].name == "main" => &root.children[0],
        _ => {
            return Err(UnderInitError::Shape { init, tree: super::report::tree_text(&obs.forest) });
        }
    };
    let main_group = MainGroup::from_attrs(&main.attrs);
    let exit = Step::Exit { target: "main".into(), code: 0 };
    let ms = opts.reap_deadline.as_millis();
    let (exits_with_main_child, how) = match sb.step(&exit, &SettleHints::default()) {
        Err(SysError::NotReaped { .. }) => (
            false,
            format!("it did not reap its main child within the reap deadline ({ms} ms), so it cannot exit with it"),
        ),
        Err(e) => return Err(sys(e)),
        Ok(_) => match sb.await_init_exit(opts.reap_deadline).map_err(sys)? {
            Some(after) => (
                true,
                format!("it exited once its main child had exited (its pidfd readable {} ms later)", after.as_millis()),
            ),
            None => (
                false,
                format!(
                    "it had not exited {ms} ms after its main child exited and was reaped (time-based: no event \
                     marks an init that stays)"
                ),
            ),
        },
    };
    sb.close();
    let group = match main_group {
        MainGroup::Inherited => "its main child stays in its process group and session",
        MainGroup::OwnGroup => "its main child leads a process group of its own (setpgid)",
        MainGroup::OwnSession => "its main child leads a session of its own (setsid)",
    };
    Ok(ObservedPolicy {
        policy: InitPolicy { main_group, exits_with_main_child },
        evidence: format!("observed: {group}; {how}"),
    })
}

/// Why scenario `s` cannot run under an init under test, if it cannot:
/// the init runs exactly one command (so `init` has one child in `tree:`
/// and no attributes), it is not the harness's to drive (no step makes
/// `init` act), what it does with a signal other than SIGKILL is its own
/// policy (forwarding, the gate's F checks), and its main child's process
/// group is its policy too.
pub fn unfit(s: &Scenario) -> Option<String> {
    let t = &s.tree;
    if t.attrs != Attrs::default() {
        return Some(format!(
            "`init` has attributes ({}), which only the built-in init can take",
            t.attrs.words().join(" ")
        ));
    }
    if t.children.len() != 1 {
        return Some(format!(
            "`init` has {} children in `tree:`; an init under test starts one, its command",
            t.children.len()
        ));
    }
    let main = &t.children[0];
    if main.attrs.pgrp || main.attrs.session || main.attrs.pidns {
        return Some(format!(
            "the main child `{}` has `pgrp`, `session` or `pidns`: how the init under test starts its command is \
             its own policy",
            main.name
        ));
    }
    for e in &s.steps {
        let acts = match &e.step {
            Step::Kill { targets, signal } => targets.iter().any(|t| t == INIT) && *signal != Signal::KILL,
            Step::Exit { target, .. }
            | Step::Subreaper { target, .. }
            | Step::Reap { target }
            | Step::ThreadExit { target, .. }
            | Step::Exec { target }
            | Step::Setpgid { target }
            | Step::Setsid { target } => target == INIT,
            Step::Spawn { parent, .. } => parent == INIT,
        };
        if acts {
            return Some(format!(
                "step `{}` (line {}) needs `init` to act, or signals it with other than SIGKILL: an init under test \
                 does what its own code says (`reparent gate` checks that)",
                e.step, e.line
            ));
        }
    }
    None
}

/// [`unfit`], and then whether every step can still run once the model
/// follows the init's observed policy (`cfg.init`): under an init that
/// exits with its main child, a step after the main child's death has no
/// namespace left to act on.
pub fn unfit_under(s: &Scenario, cfg: ModelConfig) -> Option<String> {
    if let Some(why) = unfit(s) {
        return Some(why);
    }
    let policy = cfg.init?;
    let mut world = crate::model::World::new(&s.tree, cfg).ok()?;
    for (i, e) in s.steps.iter().enumerate() {
        match world.apply(&e.step) {
            Ok(p) => {
                world = p.outcomes[0].world.clone();
                // The namespace ends here by the init's policy, not by a
                // rule the file was written for: its later `expect:` blocks
                // describe an init that stays.
                let expects_more = s.steps[i..].iter().any(|e| e.expect.as_ref().is_some_and(|x| !x.is_empty()));
                if !world.namespace_alive() && expects_more {
                    return Some(format!(
                        "step `{}` (line {}) ends the main child `{}`, and this init exits with it (its observed \
                         policy), but the file's `expect:` blocks were written for an init that stays",
                        e.step, e.line, s.tree.children[0].name
                    ));
                }
            }
            Err(err) => {
                return Some(format!(
                    "with its observed policy ({}), step `{}` (line {}) cannot run: {err}",
                    policy.text(),
                    e.step,
                    e.line
                ))
            }
        }
    }
    None
}

/// How [`random_trees`] draws its cases.
#[derive(Clone, Debug)]
pub struct UnderInitParams {
    pub cases: u32,
    pub seed: u64,
    /// Largest starting tree, init and main child included.
    pub max_nodes: usize,
    pub max_steps: usize,
    /// Where a shrunk failing case is written.
    pub failures_dir: PathBuf,
    /// The binary its replay command names (`reparent`).
    pub exe: String,
    /// Cases at once.
    pub jobs: usize,
}

impl UnderInitParams {
    /// Small, fast cases, as the gate runs them: `cases` of up to 8
    /// processes and 6 steps (and the main child's exit), seeded with
    /// `seed`, on every CPU.
    pub fn new(cases: u32, seed: u64, failures_dir: impl Into<PathBuf>) -> UnderInitParams {
        UnderInitParams {
            cases,
            seed,
            max_nodes: 8,
            max_steps: 6,
            failures_dir: failures_dir.into(),
            exe: "reparent".into(),
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }
}

/// What the random trees under an init came to.
#[derive(Debug)]
pub struct UnderInitOutcome {
    /// The policy the model took, and its evidence.
    pub policy: ObservedPolicy,
    /// Cases run, shrinking excluded (at most `cases`; a run stops at the
    /// first failure in case order).
    pub cases: u32,
    /// Cases that passed.
    pub passed: u32,
    /// Steps checked, shrinking included.
    pub steps: usize,
    /// The first failing case, shrunk: its explanation (a mismatch, or the
    /// zombies the init left past the reap deadline), where it was written,
    /// and its text.
    pub failure: Option<RandomFailure>,
    /// The command that replays the failure file.
    pub replay: Option<String>,
    pub elapsed: Duration,
}

impl UnderInitOutcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The model `opts.init` runs under: this kernel (its version and observed
/// build traits) and the init's observed policy.
pub fn model_for(opts: &SandboxOptions) -> Result<(ModelConfig, ObservedPolicy), UnderInitError> {
    let mut cfg = calibrate::running_kernel_model(opts)?;
    let policy = observe_policy(opts)?;
    cfg.init = Some(policy.policy);
    Ok((cfg, policy))
}

/// init-gate.md §4 under `opts.init`: `params.cases` random trees below
/// the init's main child, random kills and exits, and at the end the main
/// child's own exit, each step checked against the model under the init's
/// observed policy, and every zombie PID 1 adopts reaped within
/// `opts.reap_deadline`. The first failing case is shrunk and written to
/// `params.failures_dir`, with the command that replays it.
pub fn random_trees(opts: &SandboxOptions, params: &UnderInitParams) -> Result<UnderInitOutcome, UnderInitError> {
    let t = Instant::now();
    let (cfg, policy) = model_for(opts)?;
    let replay = replay_for(&params.exe, cfg, opts);
    let rp = RandomParams {
        cases: params.cases,
        seed: params.seed,
        max_nodes: params.max_nodes,
        max_steps: params.max_steps,
        failures_dir: params.failures_dir.clone(),
        replay: replay.clone(),
        jobs: params.jobs,
        // The gate runs this beside its other trials: left to the scheduler.
        one_cpu_each: false,
    };
    let r = random::run(opts, cfg, &rp, |_| {});
    let replay = r.failure.as_ref().and_then(|f| f.path.as_ref().ok()).map(|p| replay.command(p));
    Ok(UnderInitOutcome {
        policy,
        cases: r.passed + u32::from(r.failure.is_some()),
        passed: r.passed,
        steps: r.steps,
        failure: r.failure,
        replay,
        elapsed: t.elapsed(),
    })
}

/// The replay of a case under `opts.init`: the init, and the reap deadline
/// unless it is the default.
pub fn replay_for(exe: &str, cfg: ModelConfig, opts: &SandboxOptions) -> Replay {
    let mut r = Replay::new(exe, cfg, false, opts.init.as_ref().map(|c| c.join(" ")));
    let ms = opts.reap_deadline.as_millis() as u64;
    if ms != crate::sys::client::DEFAULT_REAP_DEADLINE_MS {
        r.reap_deadline_ms = Some(ms);
    }
    r
}

/// A generated tree as an init under test can run it: `init` with no
/// attributes and one child, the main child (the first child drawn, or a
/// new `m` if none was), which the init starts, so its group and
/// namespace are the init's; every other child of `init` hangs below it.
pub fn fit_tree(tree: &Node) -> Node {
    let mut kids = tree.children.clone().into_iter();
    let mut main = kids.next().unwrap_or_else(|| Node::new("m"));
    main.attrs = Attrs { pgrp: false, session: false, pidns: false, ..main.attrs };
    main.children.extend(kids);
    Node { attrs: Attrs::default(), children: vec![main], ..tree.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    fn parsed(text: &str) -> Scenario {
        scenario::parse("t.tree", text).unwrap()
    }

    #[test]
    fn a_scenario_an_init_cannot_run_says_why() {
        let ok = parsed("tree:\n  init\n    a\n      b\nkill b\nkill init SIGKILL\n");
        assert_eq!(unfit(&ok), None);
        let two = parsed("tree:\n  init\n    a\n    b\n");
        assert!(unfit(&two).unwrap().contains("has 2 children"), "{:?}", unfit(&two));
        let attrs = parsed("tree:\n  init subreaper\n    a\n");
        assert!(unfit(&attrs).unwrap().contains("`init` has attributes (subreaper)"), "{:?}", unfit(&attrs));
        let group = parsed("tree:\n  init\n    a pgrp\n");
        assert!(unfit(&group).unwrap().contains("main child `a`"), "{:?}", unfit(&group));
        let term = parsed("tree:\n  init\n    a\nkill init SIGTERM\n");
        assert!(unfit(&term).unwrap().starts_with("step `kill init SIGTERM` (line 4)"), "{:?}", unfit(&term));
        let spawn = parsed("tree:\n  init\n    a\nspawn b by init\n");
        assert!(unfit(&spawn).unwrap().contains("needs `init` to act"), "{:?}", unfit(&spawn));
    }

    #[test]
    fn a_fitted_tree_has_one_main_child_without_group_or_namespace() {
        let s = parsed("tree:\n  init subreaper\n    a session subreaper\n      c\n    b pidns\n");
        let fitted = fit_tree(&s.tree);
        let text = scenario::render_forest(std::slice::from_ref(&fitted));
        assert_eq!(text, "  init\n    a subreaper\n      c\n      b pidns\n");
        let bare = fit_tree(&Node::new(INIT));
        assert_eq!(scenario::render_forest(std::slice::from_ref(&bare)), "  init\n    m\n");
    }
}
