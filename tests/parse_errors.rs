//! Every parser error, one bad file of `tests/bad-scenarios/` each (a test
//! named after the file), compared with its snapshot in
//! `snapshots/parse-errors/`: the whole `file:line:col: message` text the
//! user sees. A file that parses fails, and so does an error that shows a
//! raw control character. Files are read as bytes, as the loader reads
//! them, so that bytes that are not UTF-8 are reported with their position. The input is in the snapshot's
//! description, escaped, for review.

use std::path::Path;

use reparent_harness::scenario;

fn bad_scenario(path: &Path) -> datatest_stable::Result<()> {
    let name = path.file_stem().and_then(|s| s.to_str()).ok_or("bad file name")?.to_string();
    let bytes = std::fs::read(path)?;
    let shown = format!("bad-scenarios/{name}.tree");
    let message = match scenario::parse_bytes(&shown, &bytes) {
        Ok(_) => return Err(format!("{shown} parsed without an error").into()),
        Err(e) => e.to_string(),
    };
    // What a terminal would be handed: input shown back is escaped.
    if let Some(c) = message.chars().find(|c| c.is_control()) {
        return Err(format!("{shown}: the error shows a raw control character {c:?}: {message:?}").into());
    }
    let text = String::from_utf8_lossy(&bytes);
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
