//! proptest strategies that generate valid scenarios.
//!
//! The round trip `parse(render(x)) == x` is only a contract for valid
//! scenarios, so the generator must produce exactly those: the root is
//! `init`, names are unique in the file (node names that are also words of
//! the format, such as `subreaper`, `by` or `clone-parent`, included, since
//! the parser reads them by position), every step names processes that the
//! tree or an earlier `spawn` defined, markers appear only in `expect:`
//! blocks, and `StepEntry::line` is the line the renderer puts the step on.
//! The parser's other rules are kept too: `init` takes neither `pidns` nor
//! `pdeathsig`, no node has both `pgrp` and `session`, signal lists are sets
//! in number order without the signals they may not hold, `into=` names a
//! `pidns` process and no namespace init spawns with `clone-parent`. Steps
//! are drawn as indices and resolved against the names defined so far, so
//! that shrinking keeps them valid.

use std::collections::BTreeMap;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::parse::MAX_THREADS;
use super::{Attrs, Markers, Name, Need, Node, Scenario, Signal, Step, StepEntry, ThreadRef, INIT};

/// Most non-root nodes in a generated tree.
const MAX_TREE_NODES: usize = 8;
/// Most steps in a generated scenario.
const MAX_STEPS: usize = 8;

/// Names that are also words of the format: valid names all the same.
const TRICKY_NAMES: [&str; 34] = [
    "subreaper",
    "noreap",
    "threads",
    "pdeathsig",
    "catch",
    "pgrp",
    "session",
    "pidns",
    "main-exited",
    "exiting",
    "zombie",
    "stopped",
    "got",
    "by",
    "on",
    "off",
    "thread",
    "clone-parent",
    "into",
    "main",
    "kill",
    "exit",
    "spawn",
    "thread-exit",
    "exec",
    "reap",
    "setpgid",
    "setsid",
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
            // The `pidns` processes, which `into=` may name.
            let mut namespaces: Vec<Name> = Vec::new();
            let mut items = vec![(node(INIT, init_attrs, Markers::default()), None)];
            for (i, (parent, attrs)) in raw_tree.into_iter().enumerate() {
                let Some(name) = pool.next() else { break };
                defined.push(name.clone());
                if attrs.pidns {
                    namespaces.push(name.clone());
                }
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
                    RawKind::Spawn(spawn) => match pool.next() {
                        Some(child) => {
                            let parent = pick(&defined, &spawn.parent);
                            let parent_is_init = parent == INIT || namespaces.contains(&parent);
                            let into = match (spawn.into, namespaces.is_empty()) {
                                (Some(i), false) => Some(pick(&namespaces, &i)),
                                _ => None,
                            };
                            defined.push(child.clone());
                            if spawn.attrs.pidns {
                                namespaces.push(child.clone());
                            }
                            Step::Spawn {
                                child,
                                parent,
                                thread: spawn.thread,
                                clone_parent: spawn.clone_parent && !parent_is_init,
                                into,
                                attrs: spawn.attrs,
                            }
                        }
                        None => Step::Reap { target: pick(&defined, &spawn.parent) },
                    },
                    RawKind::ThreadExit(t, thread) => Step::ThreadExit { target: pick(&defined, &t), thread },
                    RawKind::Exec(t) => Step::Exec { target: pick(&defined, &t) },
                    RawKind::Setpgid(t) => Step::Setpgid { target: pick(&defined, &t) },
                    RawKind::Setsid(t) => Step::Setsid { target: pick(&defined, &t) },
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

/// Any combination of attributes a node other than `init` may have: all
/// but `pgrp` together with `session`. [`scenario`] drops `pidns` and
/// `pdeathsig` from `init`.
pub fn attrs() -> impl Strategy<Value = Attrs> {
    let flags = (any::<bool>(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.2));
    let threads = prop_oneof![3 => Just(0), 1 => 1..=MAX_THREADS];
    let pdeathsig = option::weighted(0.2, signal());
    let catch = prop_oneof![3 => Just(Vec::new()), 1 => signal_set()];
    // Neither, `pgrp` or `session`: never both.
    let group = prop_oneof![2 => Just((false, false)), 1 => Just((true, false)), 1 => Just((false, true))];
    (flags, threads, pdeathsig, catch, group).prop_map(
        |((subreaper, noreap, sigchld_ignore, pidns), threads, pdeathsig, catch, (pgrp, session))| Attrs {
            subreaper,
            noreap,
            sigchld_ignore,
            threads,
            pdeathsig,
            catch,
            pgrp,
            session,
            pidns,
        },
    )
}

/// Any combination of markers.
pub fn markers() -> impl Strategy<Value = Markers> {
    let got = prop_oneof![3 => Just(Vec::new()), 1 => signal_set()];
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), got)
        .prop_map(|(main_exited, exiting, zombie, stopped, got)| Markers { main_exited, exiting, zombie, stopped, got })
}

/// A non-empty set of the signals `catch=` and `got=` may list (all but
/// SIGKILL, SIGSTOP and SIGCHLD), in number order.
pub fn signal_set() -> impl Strategy<Value = Vec<Signal>> {
    let catchable: Vec<Signal> =
        Signal::all().filter(|s| ![Signal::KILL, Signal::STOP, Signal::CHLD].contains(s)).collect();
    btree_set(select(catchable), 1..4).prop_map(|set| set.into_iter().collect())
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
    Spawn(RawSpawn),
    Reap(Index),
    ThreadExit(Index, ThreadRef),
    Exec(Index),
    Setpgid(Index),
    Setsid(Index),
}

/// A `spawn`: `parent` indexes the names defined so far, `into` the `pidns`
/// processes among them (dropped if there are none).
#[derive(Clone, Debug)]
struct RawSpawn {
    parent: Index,
    thread: Option<u32>,
    clone_parent: bool,
    into: Option<Index>,
    attrs: Attrs,
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
        2 => (vec(any::<Index>(), 1..4), signal()).prop_map(|(t, s)| RawKind::Kill(t, s)),
        1 => (any::<Index>(), prop_oneof![Just(0), 0..=255i32]).prop_map(|(t, c)| RawKind::Exit(t, c)),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(t, on)| RawKind::Subreaper(t, on)),
        2 => raw_spawn().prop_map(RawKind::Spawn),
        1 => any::<Index>().prop_map(RawKind::Reap),
        1 => (any::<Index>(), thread_ref()).prop_map(|(t, k)| RawKind::ThreadExit(t, k)),
        1 => any::<Index>().prop_map(RawKind::Exec),
        1 => any::<Index>().prop_map(RawKind::Setpgid),
        1 => any::<Index>().prop_map(RawKind::Setsid),
    ];
    let block = vec((any::<Index>(), option::of(any::<Index>()), attrs(), markers()), 0..8);
    (kind, option::of(block)).prop_map(|(kind, expect)| RawStep { kind, expect })
}

fn raw_spawn() -> impl Strategy<Value = RawSpawn> {
    (any::<Index>(), option::weighted(0.25, 1..=MAX_THREADS), any::<bool>(), option::of(any::<Index>()), attrs())
        .prop_map(|(parent, thread, clone_parent, into, attrs)| RawSpawn { parent, thread, clone_parent, into, attrs })
}

fn thread_ref() -> impl Strategy<Value = ThreadRef> {
    prop_oneof![Just(ThreadRef::Main), (1..=MAX_THREADS).prop_map(ThreadRef::Extra)]
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

/// A node without children; `init` loses the attributes it cannot take.
fn node(name: &str, mut attrs: Attrs, markers: Markers) -> Node {
    if name == INIT {
        attrs.pidns = false;
        attrs.pdeathsig = None;
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    /// The words of the attributes and markers set on `n`.
    fn node_constructs(n: &Node, seen: &mut BTreeSet<&'static str>) {
        let (a, m) = (&n.attrs, &n.markers);
        let words = [
            (a.subreaper, "subreaper"),
            (a.noreap, "noreap"),
            (a.sigchld_ignore, "sigchld=ignore"),
            (a.threads > 0, "threads="),
            (a.pdeathsig.is_some(), "pdeathsig="),
            (!a.catch.is_empty(), "catch="),
            (a.pgrp, "pgrp"),
            (a.session, "session"),
            (a.pidns, "pidns"),
            (m.main_exited, "main-exited"),
            (m.exiting, "exiting"),
            (m.zombie, "zombie"),
            (m.stopped, "stopped"),
            (!m.got.is_empty(), "got="),
        ];
        seen.extend(words.into_iter().filter_map(|(set, word)| set.then_some(word)));
    }

    /// The words of every attribute, marker, step and spawn option found in
    /// `s`.
    fn constructs(s: &Scenario, seen: &mut BTreeSet<&'static str>) {
        for n in s.tree.preorder() {
            node_constructs(n, seen);
        }
        for e in &s.steps {
            for n in e.expect.iter().flatten().flat_map(Node::preorder) {
                node_constructs(n, seen);
            }
            seen.insert(e.step.kind());
            match &e.step {
                Step::Spawn { thread, clone_parent, into, .. } => {
                    let words =
                        [(thread.is_some(), "thread="), (*clone_parent, "clone-parent"), (into.is_some(), "into=")];
                    seen.extend(words.into_iter().filter_map(|(set, word)| set.then_some(word)));
                }
                Step::ThreadExit { thread: ThreadRef::Main, .. } => {
                    seen.insert("thread-exit main");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn scenarios_reach_every_construct_of_the_format() {
        let mut runner = TestRunner::deterministic();
        let strategy = scenario();
        let mut seen = BTreeSet::new();
        for _ in 0..500 {
            let s = strategy.new_tree(&mut runner).expect("a scenario").current();
            constructs(&s, &mut seen);
        }
        let all = [
            "subreaper",
            "noreap",
            "sigchld=ignore",
            "threads=",
            "pdeathsig=",
            "catch=",
            "pgrp",
            "session",
            "pidns",
            "main-exited",
            "exiting",
            "zombie",
            "stopped",
            "got=",
            "kill",
            "exit",
            "spawn",
            "thread-exit",
            "exec",
            "reap",
            "setpgid",
            "setsid",
            "thread=",
            "clone-parent",
            "into=",
            "thread-exit main",
        ];
        let missing: Vec<_> = all.into_iter().filter(|w| !seen.contains(w)).collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }
}
