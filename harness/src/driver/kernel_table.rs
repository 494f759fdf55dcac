//! Runs the conformance table of `reparent kernel` on the running kernel:
//! each probe row in a sandbox of its own (`sys::probe`), each scenario row
//! through the model and the kernel as `reparent run` does. What a row
//! should give is the kernel layer's business ([`crate::kernel`]): a probe
//! only reports what it saw, and `kernel::probes::judge` decides. This
//! module only carries each row to the system layer and back.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::kernel::{self, Check, Outcome, Provenance, Row, Rule, Table};
use crate::model::ModelConfig;
use crate::sys::probe::{self, Observation};
use crate::sys::{os, SandboxOptions};

use super::calibrate;
use super::pool;
use super::scenario_run::{self, LoadError, Verdict as RunVerdict};

/// The running kernel and user, as a table records them.
pub fn machine() -> kernel::Machine {
    kernel::Machine { release: os::kernel_release(), version: os::kernel_version(), uid: os::uid() }
}

/// Whether a probe sandbox can be created here: `Ok(userns)` (whether it
/// had a user namespace), or why not and how to fix it. One cheap probe,
/// so that a machine where no namespace can be made says so once, before
/// any row runs.
pub fn preflight(opts: &SandboxOptions) -> Result<Option<bool>, String> {
    let first = probe::observe(opts, "init-may-be-subreaper");
    match first.observation {
        Observation::Unavailable(why) => Err(why),
        _ => Ok(first.userns),
    }
}

/// Checks `rules` (all of [`kernel::RULES`], or the rows `--only`/`--skip`
/// left: [`kernel::select`]) on the running kernel: probes in their own
/// sandboxes, scenarios from `scenarios_dir` through the model (`cfg`) and
/// the kernel, on `jobs` threads (rows are independent; `progress` still
/// sees them in table order). `userns` is what [`preflight`] found; `from`
/// says which model, binary and selection made the table. Should a sandbox
/// become impossible midway, the error says why.
#[allow(clippy::too_many_arguments)]
pub fn run(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    scenarios_dir: &Path,
    rules: &[Rule],
    userns: Option<bool>,
    from: Provenance,
    jobs: usize,
    progress: impl FnMut(&Row),
) -> Result<Table, String> {
    let start = Instant::now();
    let kernel = os::kernel_version();
    // A row the kernel predates is not checked (`evaluate` skips it): its
    // job gives `None`.
    let job = |i: usize| -> Option<(Outcome, Option<bool>, Duration)> {
        let rule = &rules[i];
        if kernel::predates(rule, kernel).is_some() {
            return None;
        }
        let began = Instant::now();
        let (outcome, seen) = match rule.check {
            Check::Probe(name) => {
                let report = probe::observe(opts, name);
                (kernel::probes::judge(name, &report.observation, kernel), report.userns)
            }
            Check::Scenario(file) => (scenario_outcome(opts, cfg, scenarios_dir, file), None),
            Check::Build(name) => (build_outcome(opts, name), None),
        };
        Some((outcome, seen, began.elapsed()))
    };
    // Without a sandbox nothing else can be checked either.
    let stops = |r: &Option<(Outcome, Option<bool>, Duration)>| matches!(r, Some((Outcome::Unavailable(_), _, _)));
    let mut userns = userns;
    let rows = pool::ordered(rules.len(), jobs, job, stops, |results| {
        // `evaluate` asks for the rows it checks in table order, which is
        // the order the pool gives them in.
        let mut checked = results.filter_map(|(_, r)| r);
        kernel::evaluate(
            rules,
            kernel,
            |rule| match checked.next() {
                Some((outcome, seen, took)) => {
                    userns = userns.or(seen);
                    (outcome, took)
                }
                None => {
                    (Outcome::Fail(format!("row {} was not checked (a worker thread died)", rule.id)), Duration::ZERO)
                }
            },
            progress,
        )
    })?;
    Ok(kernel::table(rows, &machine(), userns, from, start.elapsed()))
}

/// Observes one build-dependent behaviour, as the model was fitted to it.
fn build_outcome(opts: &SandboxOptions, name: &str) -> Outcome {
    match name {
        "orphan-hup" => match calibrate::orphan_hup(opts) {
            Ok(v) => Outcome::Recorded {
                value: v.word().to_string(),
                detail: format!("orphan-hup {}: {}", v.word(), kernel::build::orphan_hup_text(v)),
            },
            Err(e) => Outcome::Fail(e.to_string()),
        },
        other => Outcome::Fail(format!("no case tells build behaviour {other:?} apart")),
    }
}

/// Runs one bundled scenario as `reparent run` does.
fn scenario_outcome(opts: &SandboxOptions, cfg: ModelConfig, dir: &Path, file: &str) -> Outcome {
    let path = dir.join(file);
    let s = match scenario_run::load(&path, cfg) {
        Ok(s) => s,
        Err(LoadError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Fail(format!("scenario file missing: {}", path.display()));
        }
        Err(e) => return Outcome::Fail(format!("the scenario does not load: {e}")),
    };
    let report = scenario_run::run(opts, cfg, &s, |_| {});
    match report.verdict {
        RunVerdict::Passed => {
            let expects = s.steps.iter().filter(|e| e.expect.is_some()).count();
            Outcome::Pass(format!(
                "{} step(s) checked against the model and {expects} expect block(s)",
                report.steps.len()
            ))
        }
        RunVerdict::Skipped(why) => Outcome::Skipped(why),
        RunVerdict::Failed(e) => Outcome::Fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_has_a_row_and_every_row_a_probe_the_system_layer_runs() {
        let rows: Vec<&str> = kernel::probes::names().collect();
        for name in probe::names() {
            assert!(rows.contains(&name), "probe {name} has no row");
        }
        for name in &rows {
            assert!(probe::names().any(|n| n == *name), "row names probe {name}, which sys::probe cannot run");
        }
        let mut unique = rows.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), rows.len(), "a probe has two rows");
        assert!(kernel::RULES.len() >= 25);
    }
}
