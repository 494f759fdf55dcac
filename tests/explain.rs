//! `reparent explain` for every bundled scenario, one test each (named
//! after its file), compared with its snapshot in `snapshots/explain/`: the
//! model's trees and reasons step by step. The model is fixed at
//! `ModelConfig::default()` (Linux 6.18), not the running kernel, so the
//! text is the same on every machine; any change to what the model predicts,
//! or why, shows up here as a diff to review. A missing or changed snapshot
//! fails (in CI insta never writes one).

use std::path::Path;

use reparent_harness::driver::{explain, scenario_run};
use reparent_harness::model::ModelConfig;

fn explain(path: &Path) -> datatest_stable::Result<()> {
    let cfg = ModelConfig::default();
    let s = scenario_run::load(path, cfg)?;
    let name = path.file_stem().and_then(|s| s.to_str()).ok_or("bad file name")?.to_string();
    let text = explain::explain_text(&format!("scenarios/{name}.tree"), &s, cfg)?;
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/explain"),
        prepend_module_to_snapshot => false,
        description => format!("reparent --model-kernel 6.18 explain scenarios/{name}.tree"),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
    Ok(())
}

datatest_stable::harness! {
    { test = explain, root = "scenarios", pattern = r"\.tree$" },
}
