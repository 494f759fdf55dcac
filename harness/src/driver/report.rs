//! How a mismatch is shown: the step, the model's tree and the observed
//! tree side by side with the differing lines marked, and the model's
//! reasons — everything a reader needs to decide whether the model, the
//! kernel or the scenario is wrong, without re-running anything.

use std::fmt::Write as _;

use crate::model::Reason;
use crate::scenario::{render_forest, Node};

/// Renders a forest for display; an empty one says so.
pub fn tree_text(forest: &[Node]) -> String {
    if forest.is_empty() {
        "  (no process left)\n".to_string()
    } else {
        render_forest(forest)
    }
}

/// Two trees side by side under their titles; lines that differ are marked
/// with `|` between the columns (equal lines with a blank).
pub fn side_by_side(left_title: &str, left: &[Node], right_title: &str, right: &[Node]) -> String {
    let l = tree_text(left);
    let r = tree_text(right);
    let l: Vec<&str> = l.lines().collect();
    let r: Vec<&str> = r.lines().collect();
    let width = l.iter().map(|s| s.chars().count()).chain([left_title.len()]).max().unwrap_or(0) + 2;
    let mut out = String::new();
    let _ = writeln!(out, "    {left_title:<width$}   {right_title}");
    for i in 0..l.len().max(r.len()) {
        let a = l.get(i).copied().unwrap_or("");
        let b = r.get(i).copied().unwrap_or("");
        let mark = if a == b { ' ' } else { '|' };
        let _ = writeln!(out, "  {mark} {a:<width$} {mark} {b}");
    }
    out
}

/// The model's reasons, one a line, indented.
pub fn reasons_text(reasons: &[Reason]) -> String {
    let mut out = String::new();
    for r in reasons {
        let _ = writeln!(out, "    - {r}");
    }
    if reasons.is_empty() {
        out.push_str("    - (no change)\n");
    }
    out
}
