//! `reparent explain`: what the model predicts for a scenario, step by
//! step, with its reasons. The model alone: no process is created, so the
//! text depends only on the scenario and the [`ModelConfig`].

use std::fmt::Write as _;

use crate::model::{ModelConfig, ModelError, World};
use crate::scenario::{render_forest, Scenario};

use super::report;

/// Why a scenario could not be explained (a loaded one always can: loading
/// runs the same steps through the model).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    Tree(ModelError),
    #[error("step {index} `{step}`: {source}")]
    Step { index: usize, step: String, source: ModelError },
}

/// `Linux 6.18 (orphan-hup all)`: what the model predicts for.
pub fn model_text(cfg: ModelConfig) -> String {
    format!("Linux {}.{} (orphan-hup {})", cfg.kernel.0, cfg.kernel.1, cfg.build.orphan_hup.word())
}

/// The explanation of `s`, shown under the title `name` (the file as the
/// user named it). Where a step races, it continues from the first outcome.
pub fn explain_text(name: &str, s: &Scenario, cfg: ModelConfig) -> Result<String, ExplainError> {
    let mut all = String::new();
    explain_to(name, s, cfg, |chunk| {
        all.push_str(chunk);
        true
    })?;
    Ok(all)
}

/// The same, handed to `emit` a step at a time as it is worked out, so
/// that memory holds one step's text, not the whole explanation (which
/// grows with steps × tree size). `emit` returns false to stop early (a
/// closed pipe).
pub fn explain_to(
    name: &str,
    s: &Scenario,
    cfg: ModelConfig,
    mut emit: impl FnMut(&str) -> bool,
) -> Result<(), ExplainError> {
    let mut out = String::new();
    let _ = writeln!(out, "{name} (model of {}; no process is created)", model_text(cfg));
    let mut world = World::new(&s.tree, cfg).map_err(ExplainError::Tree)?;
    out.push_str("tree:\n");
    out.push_str(&render_forest(&world.render()));
    for (i, entry) in s.steps.iter().enumerate() {
        let p = world.apply(&entry.step).map_err(|source| ExplainError::Step {
            index: i + 1,
            step: entry.step.to_string(),
            source,
        })?;
        if !emit(&out) {
            return Ok(());
        }
        out.clear();
        let _ = writeln!(out, "\nstep {}: {}", i + 1, entry.step);
        if let Some((listed, states)) = p.too_many() {
            // Thousands of trees help no one: the first, and a note.
            let _ = writeln!(
                out,
                "  the outcome depends on the order in which the racing deaths reach exit_notify() (R1.8): \
                 more than {listed} possible trees (the model stopped listing them after {states} states); \
                 `reparent run` and `check` check the kernel's outcome against the rules instead, by a \
                 search guided by the observed tree"
            );
            let _ = writeln!(out, "  the first outcome found:");
            if let Some(o) = p.outcomes.first() {
                out.push_str(&report::tree_text(&o.world.render()));
                out.push_str("  because:\n");
                out.push_str(&report::reasons_text(&o.reasons));
            }
            out.push_str("  (explain continues from this outcome)\n");
            if let Some(first) = p.outcomes.into_iter().next() {
                world = first.world;
            }
            continue;
        }
        let n = p.outcomes.len();
        if n > 1 {
            let why = if matches!(entry.step, crate::scenario::Step::Reap { .. }) {
                "on whether the wait loop also catches a zombie that its own reaps made (R3.8, R6.4)"
            } else {
                "on the order in which the racing deaths reach exit_notify() (R1.8)"
            };
            let _ = writeln!(out, "  the outcome depends {why}: {n} possible trees");
        }
        for (k, o) in p.outcomes.iter().enumerate() {
            if n > 1 {
                let _ = writeln!(out, "  outcome {} of {n}:", k + 1);
            }
            out.push_str(&report::tree_text(&o.world.render()));
            out.push_str("  because:\n");
            out.push_str(&report::reasons_text(&o.reasons));
        }
        if n > 1 {
            out.push_str(
                "  (explain continues from outcome 1; `reparent run` continues from the one the kernel took)\n",
            );
        }
        if let Some(first) = p.outcomes.into_iter().next() {
            world = first.world;
        }
    }
    emit(&out);
    Ok(())
}
