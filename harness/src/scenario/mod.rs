//! The `.tree` scenario format: its syntax tree, parser and canonical renderer.
//!
//! The format is a contract with people outside the project (see
//! `shared/scenario-format.md`): a file written to it must keep meaning the
//! same thing. So the parser rejects, with file, line and column, everything
//! it does not understand — including parts of the format this version does
//! not implement yet ("not supported yet") — rather than guessing. The
//! renderer is canonical, so that `parse(render(x)) == x` and a canonically
//! written file renders back byte for byte; the same notation serves for
//! hand-written scenarios, snapshots and shrunk failing cases.
//!
//! Nothing in this module touches the system: it is shared by the model and
//! the driver.

mod parse;
mod render;
mod signal;

pub mod arbitrary;

pub use parse::{parse, ParseError};
pub use render::{render, render_forest, render_node_line};
pub use signal::Signal;

/// A node name: `[a-z][a-z0-9_-]*`, unique in a file. `init` is PID 1.
pub type Name = String;

/// The name of the namespace's PID 1 in every scenario.
pub const INIT: &str = "init";

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// `about: TEXT`
    pub about: Option<String>,
    /// `needs: ...` headers, in file order.
    pub needs: Vec<Need>,
    /// The starting tree; its root is always `init`.
    pub tree: Node,
    /// The steps, in order, each with its optional `expect:` block.
    pub steps: Vec<StepEntry>,
}

/// A `needs:` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// `needs: kernel >= X.Y`
    Kernel { major: u32, minor: u32 },
    /// `needs: root`
    Root,
}

/// One process of a tree, with its attributes, its markers (only in
/// `expect:` blocks and rendered observations) and its children in creation
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub name: Name,
    pub attrs: Attrs,
    pub markers: Markers,
    pub children: Vec<Node>,
}

/// The attributes of a node (the `tree:` table of the format). Rendered in
/// this field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Attrs {
    /// `subreaper`: `PR_SET_CHILD_SUBREAPER(1)`.
    pub subreaper: bool,
    /// `noreap`: never waits for its children.
    pub noreap: bool,
    /// `sigchld=ignore`: SIGCHLD is `SIG_IGN`, the kernel reaps its children.
    pub sigchld_ignore: bool,
}

/// The markers of a node line. Rendered in this field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Markers {
    /// `zombie`: exited, not reaped yet.
    pub zombie: bool,
    /// `stopped`: state `T`.
    pub stopped: bool,
}

/// A step and the `expect:` block that follows it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEntry {
    pub step: Step,
    /// 1-based line of the step in its file (0 for generated cases).
    pub line: usize,
    /// `None`: no `expect:` block. `Some(vec![])`: an empty block, meaning no
    /// process of the namespace is left.
    pub expect: Option<Vec<Node>>,
}

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// `kill A [B ...] [SIG]`: SIG from outside the namespace to each target,
    /// all sent before any is waited for.
    Kill { targets: Vec<Name>, signal: Signal },
    /// `exit A [CODE]`
    Exit { target: Name, code: i32 },
    /// `subreaper A on|off`
    Subreaper { target: Name, on: bool },
    /// `spawn B by A [ATTR ...]`
    Spawn { child: Name, parent: Name, attrs: Attrs },
    /// `reap A`
    Reap { target: Name },
}

impl Step {
    /// The processes this step names as actors or targets, in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Step::Kill { targets, .. } => targets.iter().map(String::as_str).collect(),
            Step::Exit { target, .. } | Step::Subreaper { target, .. } | Step::Reap { target } => {
                vec![target.as_str()]
            }
            Step::Spawn { child, parent, .. } => vec![parent.as_str(), child.as_str()],
        }
    }
}

impl Node {
    /// A node with no attributes, markers or children.
    pub fn new(name: impl Into<Name>) -> Self {
        Node { name: name.into(), ..Node::default() }
    }

    /// Every node of this subtree, parents before children.
    pub fn preorder(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(n.children.iter().rev());
        }
        out
    }
}
