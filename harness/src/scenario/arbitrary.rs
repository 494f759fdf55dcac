//! proptest strategies that generate valid scenarios.
//!
//! The round trip `parse(render(x)) == x` is only a contract for valid
//! scenarios, so the generator must produce exactly those: the root is
//! `init`, names are unique in the file (node names that are also words of
//! the format, such as `subreaper` or `by`, included, since the parser reads
//! them by position), every step names processes that the tree or an earlier
//! `spawn` defined, markers appear only in `expect:` blocks, and
//! `StepEntry::line` is the line the renderer puts the step on. Steps are
//! drawn as indices and resolved against the names defined so far, so that
//! shrinking keeps them valid.

use std::collections::BTreeMap;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::{Attrs, Markers, Name, Need, Node, Scenario, Signal, Step, StepEntry, INIT};

/// Most non-root nodes in a generated tree.
const MAX_TREE_NODES: usize = 8;
/// Most steps in a generated scenario.
const MAX_STEPS: usize = 8;

/// Names that are also words of the format: valid names all the same.
const TRICKY_NAMES: [&str; 17] = [
    "subreaper",
    "noreap",
    "zombie",
    "stopped",
    "by",
    "on",
    "off",
    "kill",
    "exit",
    "spawn",
    "reap",
    "expect",
    "tree",
    "about",
    "needs",
    "root",
    "kernel",
];

/// A valid scenario whose step lines are those [`render`](super::render)
/// writes.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    (
        option::of(about()),
        needs(),
        name_pool(),
        attrs(),
        vec((any::<Index>(), attrs()), 0..=MAX_TREE_NODES),
        vec(raw_step(), 0..=MAX_STEPS),
    )
        .prop_map(|(about, needs, pool, init_attrs, raw_tree, raw_steps)| {
            let mut pool = pool.into_iter();
            let mut defined: Vec<Name> = vec![INIT.to_string()];
            let mut items = vec![(node(INIT, init_attrs, Markers::default()), None)];
            for (i, (parent, attrs)) in raw_tree.into_iter().enumerate() {
                let Some(name) = pool.next() else { break };
                defined.push(name.clone());
                items.push((node(&name, attrs, Markers::default()), Some(parent.index(i + 1))));
            }
            let tree = build_forest(items).into_iter().next().unwrap_or_else(|| Node::new(INIT));
            let mut steps = Vec::new();
            for raw in raw_steps {
                let step = match raw.kind {
                    RawKind::Kill(targets, signal) => {
                        let mut names: Vec<Name> = Vec::new();
                        for t in &targets {
                            let name = pick(&defined, t);
                            if !names.contains(&name) {
                                names.push(name);
                            }
                        }
                        Step::Kill { targets: names, signal }
                    }
                    RawKind::Exit(t, code) => Step::Exit { target: pick(&defined, &t), code },
                    RawKind::Subreaper(t, on) => Step::Subreaper { target: pick(&defined, &t), on },
                    RawKind::Reap(t) => Step::Reap { target: pick(&defined, &t) },
                    RawKind::Spawn(p, attrs) => match pool.next() {
                        Some(child) => {
                            let parent = pick(&defined, &p);
                            defined.push(child.clone());
                            Step::Spawn { child, parent, thread: None, clone_parent: false, into: None, attrs }
                        }
                        None => Step::Reap { target: pick(&defined, &p) },
                    },
                };
                let expect = raw.expect.map(|block| expect_block(&defined, block));
                steps.push(StepEntry { step, line: 0, expect });
            }
            let mut s = Scenario { about, needs, tree, steps };
            number_lines(&mut s);
            s
        })
}

/// A valid starting tree: `init` at the root, names unique, no markers.
pub fn tree() -> impl Strategy<Value = Node> {
    scenario().prop_map(|s| s.tree)
}

/// Any combination of attributes.
pub fn attrs() -> impl Strategy<Value = Attrs> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(subreaper, noreap, sigchld_ignore)| Attrs {
        subreaper,
        noreap,
        sigchld_ignore,
        ..Attrs::default()
    })
}

/// Any combination of markers.
pub fn markers() -> impl Strategy<Value = Markers> {
    (any::<bool>(), any::<bool>()).prop_map(|(zombie, stopped)| Markers { zombie, stopped, ..Markers::default() })
}

/// Any signal with a name, SIGKILL (the default) more often.
pub fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![Just(Signal::KILL), select(Signal::all().collect::<Vec<_>>())]
}

/// Sets each step's line to the one `render` puts it on.
pub fn number_lines(s: &mut Scenario) {
    let headers = usize::from(s.about.is_some()) + s.needs.len();
    // The number of the next line to be written.
    let mut next = 1;
    if headers > 0 {
        next += headers + 1;
    }
    next += 1 + s.tree.preorder().len();
    for entry in &mut s.steps {
        next += 1;
        entry.line = next;
        next += 1;
        if let Some(expect) = &entry.expect {
            next += 1 + expect.iter().map(|n| n.preorder().len()).sum::<usize>();
        }
    }
}

fn about() -> impl Strategy<Value = String> {
    let plain = "[A-Za-z0-9][A-Za-z0-9 ,.:;#'()=>_-]{0,40}".prop_map(|s| s.trim_end().to_string());
    let unicode = "\\PC{1,30}".prop_filter_map("about text is trimmed and not empty", |s| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    });
    prop_oneof![3 => plain, 1 => unicode]
}

fn needs() -> impl Strategy<Value = Vec<Need>> {
    (option::of((0..10u32, 0..40u32)), any::<bool>(), any::<bool>()).prop_map(|(kernel, root, root_first)| {
        let kernel = kernel.map(|(major, minor)| Need::Kernel { major, minor });
        let root = root.then_some(Need::Root);
        let (a, b) = if root_first { (root, kernel) } else { (kernel, root) };
        a.into_iter().chain(b).collect()
    })
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,5}",
        1 => select(TRICKY_NAMES.to_vec()).prop_map(str::to_string),
    ]
    .prop_filter("init is the root's name", |n| n != INIT)
}

/// Distinct names, enough for the tree and every spawn.
fn name_pool() -> impl Strategy<Value = Vec<Name>> {
    btree_set(name(), MAX_TREE_NODES + MAX_STEPS).prop_map(|set| set.into_iter().collect::<Vec<_>>()).prop_shuffle()
}

#[derive(Clone, Debug)]
enum RawKind {
    Kill(Vec<Index>, Signal),
    Exit(Index, i32),
    Subreaper(Index, bool),
    Spawn(Index, Attrs),
    Reap(Index),
}

/// A step whose names are indices into the names defined so far.
#[derive(Clone, Debug)]
struct RawStep {
    kind: RawKind,
    expect: Option<RawBlock>,
}

/// An `expect:` block: per node, an index into the defined names, the index
/// of its parent among the nodes before it (or `None` for a root), its
/// attributes and its markers. Repeated names are dropped.
type RawBlock = Vec<(Index, Option<Index>, Attrs, Markers)>;

fn raw_step() -> impl Strategy<Value = RawStep> {
    let kind = prop_oneof![
        (vec(any::<Index>(), 1..4), signal()).prop_map(|(t, s)| RawKind::Kill(t, s)),
        (any::<Index>(), prop_oneof![Just(0), 0..=255i32]).prop_map(|(t, c)| RawKind::Exit(t, c)),
        (any::<Index>(), any::<bool>()).prop_map(|(t, on)| RawKind::Subreaper(t, on)),
        (any::<Index>(), attrs()).prop_map(|(p, a)| RawKind::Spawn(p, a)),
        any::<Index>().prop_map(RawKind::Reap),
    ];
    let block = vec((any::<Index>(), option::of(any::<Index>()), attrs(), markers()), 0..8);
    (kind, option::of(block)).prop_map(|(kind, expect)| RawStep { kind, expect })
}

fn expect_block(defined: &[Name], raw: RawBlock) -> Vec<Node> {
    let mut items: Vec<(Node, Option<usize>)> = Vec::new();
    for (name, parent, attrs, markers) in raw {
        let name = &defined[name.index(defined.len())];
        if items.iter().any(|(n, _)| &n.name == name) {
            continue;
        }
        let parent = match (parent, items.len()) {
            (Some(p), placed) if placed > 0 => Some(p.index(placed)),
            _ => None,
        };
        items.push((node(name, attrs, markers), parent));
    }
    build_forest(items)
}

fn pick(defined: &[Name], i: &Index) -> Name {
    defined[i.index(defined.len())].clone()
}

fn node(name: &str, attrs: Attrs, markers: Markers) -> Node {
    Node { name: name.to_string(), attrs, markers, children: Vec::new() }
}

/// Builds a forest from nodes listed with the index of their parent, which
/// comes before them (`None` for a root). Children keep their listed order.
fn build_forest(items: Vec<(Node, Option<usize>)>) -> Vec<Node> {
    let mut children: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
    for (i, (_, parent)) in items.iter().enumerate() {
        children.entry(*parent).or_default().push(i);
    }
    let mut slots: Vec<Option<Node>> = items.into_iter().map(|(n, _)| Some(n)).collect();
    // Attach the last listed nodes first: a node's children all come after
    // it, so they are complete when it is attached to its own parent.
    for i in (0..slots.len()).rev() {
        let kids: Vec<Node> =
            children.get(&Some(i)).map(|ks| ks.iter().filter_map(|&k| slots[k].take()).collect()).unwrap_or_default();
        if let Some(n) = slots[i].as_mut() {
            n.children = kids;
        }
    }
    children.get(&None).map(|roots| roots.iter().filter_map(|&r| slots[r].take()).collect()).unwrap_or_default()
}
