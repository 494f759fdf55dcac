//! Running `.tree` files: parse, check every step against the model before
//! anything runs, then run them in a sandbox and compare step by step.
//!
//! A file that does not parse, or whose steps the model cannot run (a
//! process that is gone, stopped, or never existed), is rejected with
//! `file:line:column` and nothing is started. A file whose `needs:` this
//! machine does not meet is reported as skipped, with the reason.

use std::io::Read as _;
use std::path::Path;

use crate::model::{ModelConfig, World};
use crate::scenario::{self, Need, Node, Scenario, StepEntry};
use crate::sys::{os, SandboxOptions};

use super::case::{Case, CaseError, PhaseTimes, StepRecord};

/// Why a file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Parse(#[from] scenario::ParseError),
    /// A step the model cannot run, with its position.
    #[error("{file}:{line}:{col}: {message}")]
    Invalid { file: String, line: usize, col: usize, message: String },
}

/// How a scenario ended.
#[derive(Debug)]
pub enum Verdict {
    Passed,
    /// Not run: this machine does not meet a `needs:` header.
    Skipped(String),
    Failed(CaseError),
}

/// A scenario run: its verdict, the steps that were checked and the trace.
#[derive(Debug)]
pub struct ScenarioReport {
    pub verdict: Verdict,
    /// The observed starting tree (empty if the case never started).
    pub initial: Vec<Node>,
    /// Each checked step with what was observed.
    pub steps: Vec<(StepEntry, StepRecord)>,
    pub times: PhaseTimes,
}

impl ScenarioReport {
    /// The trace as a scenario file: the starting tree as observed, and
    /// every step followed by the tree observed after it. It is itself a
    /// valid `.tree` file, and is what the snapshots hold. A step the
    /// scenario leaves without an `expect:` block (a race whose outcome the
    /// kernel does not fix) is traced without one too, so that the snapshot
    /// holds only what every run shows.
    pub fn trace(&self, scenario: &Scenario) -> String {
        let traced = Scenario {
            about: scenario.about.clone(),
            needs: scenario.needs.clone(),
            tree: self.initial.first().cloned().unwrap_or_else(|| scenario.tree.clone()),
            steps: self
                .steps
                .iter()
                .map(|(e, r)| StepEntry {
                    step: e.step.clone(),
                    line: 0,
                    expect: e.expect.as_ref().map(|_| r.observed.clone()),
                })
                .collect(),
        };
        scenario::render(&traced)
    }
}

/// Reads and parses a file, and runs its steps through the model alone to
/// reject a scenario that cannot run, before any process is created.
pub fn load(path: &Path, cfg: ModelConfig) -> Result<Scenario, LoadError> {
    let shown = scenario::escape(&path.display().to_string()).into_owned();
    let read = |source| LoadError::Read { path: shown.clone(), source };
    // One byte more than the limit, so that a longer file (or /dev/zero)
    // is refused without being read to its end.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(scenario::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(read)?;
    load_bytes(&shown, &bytes, cfg)
}

/// [`load`] for bytes already read; `file` names them in errors.
pub fn load_bytes(file: &str, bytes: &[u8], cfg: ModelConfig) -> Result<Scenario, LoadError> {
    let scenario = scenario::parse_bytes(file, bytes)?;
    validate(file, &scenario, cfg)?;
    Ok(scenario)
}

/// Runs the model over every step (following its first outcome where a step
/// races) and turns a step it cannot run into a positioned error.
pub fn validate(file: &str, s: &Scenario, cfg: ModelConfig) -> Result<(), LoadError> {
    // The file is checked as written, for the built-in init; what an init
    // under test makes of it is `unmet_need`'s to say (a skip, with why).
    let cfg = ModelConfig { init: None, ..cfg };
    let mut world = World::new(&s.tree, cfg).map_err(|e| LoadError::Invalid {
        file: file.into(),
        line: 1,
        col: 1,
        message: scenario::escape(&e.to_string()).into_owned(),
    })?;
    for entry in &s.steps {
        let p = world.apply(&entry.step).map_err(|e| LoadError::Invalid {
            file: file.into(),
            line: entry.line.max(1),
            col: 1,
            // Names passed the parser, but a model message is input shown
            // back all the same.
            message: scenario::escape(&format!("`{}` cannot run: {e}", entry.step)).into_owned(),
        })?;
        world = p.outcomes[0].world.clone();
    }
    Ok(())
}

/// Whether this machine, and the kernel build the model was fitted to
/// (`cfg.build`), meet the scenario's `needs:`; `Some(reason)` if not.
pub fn unmet_need(s: &Scenario, cfg: ModelConfig) -> Option<String> {
    if cfg.init.is_some() {
        if let Some(why) = super::under_init::unfit_under(s, cfg) {
            return Some(format!("cannot run under this init under test: {why}"));
        }
    }
    for need in &s.needs {
        match need {
            Need::Kernel { major, minor } => {
                let have = os::kernel_version();
                if have < (*major, *minor) {
                    return Some(format!("needs kernel >= {major}.{minor}, this is {}.{}", have.0, have.1));
                }
            }
            Need::Root => {
                if !os::is_root() {
                    return Some("needs root".into());
                }
            }
            Need::OrphanHup(want) => {
                if cfg.build.orphan_hup != *want {
                    return Some(format!(
                        "needs orphan-hup {}; this kernel build is orphan-hup {} ({})",
                        want.word(),
                        cfg.build.orphan_hup.word(),
                        crate::kernel::build::orphan_hup_text(cfg.build.orphan_hup),
                    ));
                }
            }
        }
    }
    None
}

/// What a running scenario reports as it goes.
pub enum Progress<'a> {
    /// The starting tree was built and matches the model.
    Started(&'a [Node]),
    /// A step was checked.
    Step(&'a StepEntry, &'a StepRecord),
}

/// Runs a loaded scenario. `progress` sees the starting tree and every
/// checked step as they happen.
pub fn run(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    s: &Scenario,
    mut progress: impl FnMut(Progress<'_>),
) -> ScenarioReport {
    if let Some(why) = unmet_need(s, cfg) {
        return ScenarioReport {
            verdict: Verdict::Skipped(why),
            initial: vec![],
            steps: vec![],
            times: PhaseTimes::default(),
        };
    }
    let mut case = match Case::start(opts, cfg, &s.tree) {
        Ok(c) => c,
        Err(e) => {
            return ScenarioReport {
                verdict: Verdict::Failed(e),
                initial: vec![],
                steps: vec![],
                times: PhaseTimes::default(),
            }
        }
    };
    progress(Progress::Started(&case.initial));
    let mut steps = Vec::new();
    let mut verdict = Verdict::Passed;
    for entry in &s.steps {
        match case.step(&entry.step, entry.expect.as_deref()) {
            Ok(rec) => {
                progress(Progress::Step(entry, &rec));
                steps.push((entry.clone(), rec));
            }
            Err(e) => {
                verdict = Verdict::Failed(e);
                break;
            }
        }
    }
    let initial = case.initial.clone();
    let times = case.finish();
    ScenarioReport { verdict, initial, steps, times }
}
