//! Every bundled scenario, one test each (named after its file), run in a
//! real sandbox and checked step by step against the model and the file's
//! `expect:` blocks.
//!
//! A scenario with a step that has no `expect:` block also has its trace —
//! the observed tree after every step — compared with a snapshot in
//! `snapshots/`: a missing or changed snapshot fails (in CI insta never
//! writes one). A scenario with an `expect:` block after every step has no
//! trace snapshot (it would only repeat the file); a stale one left in
//! `snapshots/` fails, so that it is deleted. What the model predicts, and
//! why, is snapshotted for every scenario by `tests/explain.rs`.

use std::path::Path;
use std::sync::OnceLock;

use reparent_harness::driver::calibrate;
use reparent_harness::driver::scenario_run::{self, Verdict};
use reparent_harness::model::ModelConfig;
use reparent_harness::sys::SandboxOptions;

const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// The model of the running kernel, its build observed once for every
/// scenario of this run.
fn running_kernel_model(opts: &SandboxOptions) -> Result<ModelConfig, String> {
    static MODEL: OnceLock<Result<ModelConfig, String>> = OnceLock::new();
    MODEL.get_or_init(|| calibrate::running_kernel_model(opts).map_err(|e| e.to_string())).clone()
}

fn scenario(path: &Path) -> datatest_stable::Result<()> {
    let opts = SandboxOptions::new(env!("CARGO_BIN_EXE_reparent"))?;
    let cfg = running_kernel_model(&opts)?;
    let s = scenario_run::load(path, cfg)?;
    let report = scenario_run::run(&opts, cfg, &s, |_| {});
    match &report.verdict {
        Verdict::Passed => {}
        // A scenario written for the other kind of kernel build (`needs:
        // orphan-hup`) has a twin for this one, which runs here; the build
        // was observed by the calibration case, so this is checked too.
        // Any other scenario this kernel cannot run is not a pass.
        Verdict::Skipped(why) if scenario_run::unmet_need(&s, cfg.for_needs(&s)).is_none() => {
            eprintln!("not run on this kernel build, its twin is: {why}");
            return Ok(());
        }
        Verdict::Skipped(why) => return Err(format!("not run on this machine: {why}").into()),
        Verdict::Failed(e) => return Err(format!("{e}").into()),
    }
    assert_eq!(report.steps.len(), s.steps.len(), "every step must have been checked");
    let name = path.file_stem().and_then(|s| s.to_str()).ok_or("bad file name")?.to_string();
    let snap = Path::new(SNAPSHOTS).join(format!("{name}.snap"));
    if s.steps.iter().all(|e| e.expect.is_some()) {
        if snap.exists() {
            return Err(format!(
                "{} is stale: every step of scenarios/{name}.tree has an `expect:` block; delete it",
                snap.display()
            )
            .into());
        }
        return Ok(());
    }
    let trace = report.trace(&s);
    insta::with_settings!({
        snapshot_path => SNAPSHOTS,
        prepend_module_to_snapshot => false,
        description => format!("trace of scenarios/{name}.tree"),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, trace);
    });
    Ok(())
}

datatest_stable::harness! {
    { test = scenario, root = "scenarios", pattern = r"\.tree$" },
}
