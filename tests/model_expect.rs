//! Every bundled scenario against the model alone, without a kernel: each
//! `expect:` block must be one of the worlds the model predicts for its
//! step. This is the check a kernel reimplementation's authors can run
//! anywhere, and it tells a wrong `expect:` block from a wrong kernel before
//! any namespace is made: a scenario failing here and passing in
//! `tests/scenarios.rs` cannot happen (both compare with the same model).

use std::path::Path;

use reparent_harness::driver::scenario_run;
use reparent_harness::model::{ModelConfig, World};
use reparent_harness::scenario::render_forest;

fn model_agrees(path: &Path) -> datatest_stable::Result<()> {
    let s = scenario_run::load(path, ModelConfig::default())?;
    // A scenario for one kind of kernel build is checked against that build.
    let cfg = ModelConfig::default().for_needs(&s);
    let mut world = World::new(&s.tree, cfg)?;
    for (i, entry) in s.steps.iter().enumerate() {
        let prediction = world.apply(&entry.step)?;
        let next = match &entry.expect {
            None => 0,
            Some(expect) => {
                let found = prediction.outcomes.iter().position(|o| o.world.render() == *expect);
                let Some(k) = found else {
                    let mut msg = format!(
                        "step {} (`{}`, line {}): the expect: block is none of the model's {} outcome(s)\nexpect:\n{}",
                        i + 1,
                        entry.step,
                        entry.line,
                        prediction.outcomes.len(),
                        render_forest(expect)
                    );
                    for o in &prediction.outcomes {
                        msg += &format!("model:\n{}why:\n", render_forest(&o.world.render()));
                        for r in &o.reasons {
                            msg += &format!("  {r}\n");
                        }
                    }
                    return Err(msg.into());
                };
                k
            }
        };
        world = prediction.outcomes[next].world.clone();
    }
    Ok(())
}

datatest_stable::harness! {
    { test = model_agrees, root = "scenarios", pattern = r"\.tree$" },
}
