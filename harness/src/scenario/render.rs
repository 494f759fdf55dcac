//! Renderer (stub, being written).
use super::{Node, Scenario};
pub fn render(_s: &Scenario) -> String { String::new() }
pub fn render_forest(_n: &[Node]) -> String { String::new() }
pub fn render_node_line(_n: &Node) -> String { String::new() }
