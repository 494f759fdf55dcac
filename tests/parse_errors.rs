//! Every parser error, one bad file of `tests/bad-scenarios/` each (a test
//! named after the file), compared with its snapshot in
//! `snapshots/parse-errors/`: the whole `file:line:col: message` text the
//! user sees. A file that parses fails. The input is in the snapshot's
//! description, escaped, for review.

use std::path::Path;

use reparent_harness::scenario;

fn bad_scenario(path: &Path) -> datatest_stable::Result<()> {
    let name = path.file_stem().and_then(|s| s.to_str()).ok_or("bad file name")?.to_string();
    let text = std::fs::read_to_string(path)?;
    let shown = format!("bad-scenarios/{name}.tree");
    let message = match scenario::parse(&shown, &text) {
        Ok(_) => return Err(format!("{shown} parsed without an error").into()),
        Err(e) => e.to_string(),
    };
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/parse-errors"),
        prepend_module_to_snapshot => false,
        description => text.escape_debug().to_string(),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, message);
    });
    Ok(())
}

datatest_stable::harness! {
    { test = bad_scenario, root = "tests/bad-scenarios", pattern = r"\.tree$" },
}
