//! Writing a [`Scenario`], a tree or a step back out in the `.tree` notation,
//! canonically.
//!
//! The same text serves as hand-written scenario, snapshot and shrunk failing
//! case, so a rendered case must be ready to drop into `scenarios/` and a
//! snapshot must not change unless the tree does. Hence one canonical
//! spelling for everything: headers (`about:` first, then `needs:` in order)
//! and a blank line, `tree:` and its node lines, then each step after a blank
//! line with its `expect:` block; two spaces per level; attributes in the
//! order `subreaper noreap sigchld=ignore threads=N pdeathsig=SIG
//! catch=SIG,SIG pgrp session pidns`, then markers `main-exited exiting
//! zombie stopped got=SIG,SIG`; signal lists in number order; `spawn`
//! options as `thread=K clone-parent into=N` before the attributes;
//! defaults (`SIGKILL`, exit code 0, no extra threads, the main thread)
//! left out. `parse(render(x)) == x` for every valid scenario (with
//! `StepEntry::line` as rendered), and rendering a parsed canonical file
//! gives back its bytes.

use std::fmt;

use super::{Attrs, Markers, Need, Node, Scenario, Signal, Step, ThreadRef};

/// The whole file, ending with a single `\n`.
pub fn render(s: &Scenario) -> String {
    let mut out = String::new();
    if let Some(about) = &s.about {
        out.push_str("about: ");
        out.push_str(about);
        out.push('\n');
    }
    for need in &s.needs {
        match need {
            Need::Kernel { major, minor } => out.push_str(&format!("needs: kernel >= {major}.{minor}\n")),
            Need::Root => out.push_str("needs: root\n"),
            Need::OrphanHup(v) => out.push_str(&format!("needs: orphan-hup {}\n", v.word())),
        }
    }
    if s.about.is_some() || !s.needs.is_empty() {
        out.push('\n');
    }
    out.push_str("tree:\n");
    out.push_str(&render_forest(std::slice::from_ref(&s.tree)));
    for entry in &s.steps {
        out.push('\n');
        out.push_str(&entry.step.to_string());
        out.push('\n');
        if let Some(expect) = &entry.expect {
            out.push_str("expect:\n");
            out.push_str(&render_forest(expect));
        }
    }
    out
}

/// Node lines for `roots` and their descendants, each ending with `\n`,
/// indented two spaces per level with the roots at one level, as inside
/// `tree:` and `expect:`.
pub fn render_forest(roots: &[Node]) -> String {
    let mut out = String::new();
    // Depth first with an explicit stack, so that no tree is too deep to
    // render; children in creation order.
    let mut stack: Vec<(&Node, usize)> = roots.iter().rev().map(|n| (n, 1)).collect();
    while let Some((node, depth)) = stack.pop() {
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push_str(&render_node_line(node));
        out.push('\n');
        stack.extend(node.children.iter().rev().map(|c| (c, depth + 1)));
    }
    out
}

/// A node line without its indentation: the name, then its attributes,
/// then its markers, separated by single spaces.
pub fn render_node_line(node: &Node) -> String {
    let mut line = node.name.clone();
    for word in attribute_words(&node.attrs).into_iter().chain(marker_words(&node.markers)) {
        line.push(' ');
        line.push_str(&word);
    }
    line
}

impl Attrs {
    /// The words of the attributes that are set, in canonical order
    /// (`subreaper`, `threads=2`, `catch=SIGHUP,SIGUSR1`, ...).
    pub fn words(&self) -> Vec<String> {
        attribute_words(self)
    }
}

impl Markers {
    /// The words of the markers that are set, in canonical order
    /// (`main-exited`, ..., `got=SIGUSR1`).
    pub fn words(&self) -> Vec<String> {
        marker_words(self)
    }
}

/// The words of the attributes that are set, in canonical order.
fn attribute_words(a: &Attrs) -> Vec<String> {
    let mut words = Vec::new();
    push_flags(&mut words, [(a.subreaper, "subreaper"), (a.noreap, "noreap"), (a.sigchld_ignore, "sigchld=ignore")]);
    if a.threads > 0 {
        words.push(format!("threads={}", a.threads));
    }
    if let Some(signal) = a.pdeathsig {
        words.push(format!("pdeathsig={signal}"));
    }
    if !a.catch.is_empty() {
        words.push(format!("catch={}", signal_list(&a.catch)));
    }
    push_flags(&mut words, [(a.pgrp, "pgrp"), (a.session, "session"), (a.pidns, "pidns")]);
    words
}

/// The words of the markers that are set, in canonical order.
fn marker_words(m: &Markers) -> Vec<String> {
    let mut words = Vec::new();
    push_flags(
        &mut words,
        [(m.main_exited, "main-exited"), (m.exiting, "exiting"), (m.zombie, "zombie"), (m.stopped, "stopped")],
    );
    if !m.got.is_empty() {
        words.push(format!("got={}", signal_list(&m.got)));
    }
    words
}

/// Appends the words whose flag is set, in the order given.
fn push_flags<const N: usize>(words: &mut Vec<String>, flags: [(bool, &str); N]) {
    words.extend(flags.into_iter().filter(|&(set, _)| set).map(|(_, word)| word.to_string()));
}

/// `SIGA,SIGB`, in the order given (the AST keeps these lists sorted).
fn signal_list(signals: &[Signal]) -> String {
    signals.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
}

/// A step as its line in a `.tree` file, e.g. `kill a b SIGTERM`.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Kill { targets, signal } => {
                f.write_str("kill")?;
                for t in targets {
                    write!(f, " {t}")?;
                }
                if *signal != Signal::KILL {
                    write!(f, " {}", signal.name())?;
                }
                Ok(())
            }
            Step::Exit { target, code: 0 } => write!(f, "exit {target}"),
            Step::Exit { target, code } => write!(f, "exit {target} {code}"),
            Step::Subreaper { target, on } => {
                write!(f, "subreaper {target} {}", if *on { "on" } else { "off" })
            }
            Step::Spawn { child, parent, thread, clone_parent, into, attrs } => {
                write!(f, "spawn {child} by {parent}")?;
                if let Some(k) = thread {
                    write!(f, " thread={k}")?;
                }
                if *clone_parent {
                    f.write_str(" clone-parent")?;
                }
                if let Some(ns) = into {
                    write!(f, " into={ns}")?;
                }
                for word in attribute_words(attrs) {
                    write!(f, " {word}")?;
                }
                Ok(())
            }
            Step::Reap { target } => write!(f, "reap {target}"),
            Step::ThreadExit { target, thread: ThreadRef::Main } => write!(f, "thread-exit {target} main"),
            Step::ThreadExit { target, thread: ThreadRef::Extra(k) } => write!(f, "thread-exit {target} {k}"),
            Step::Exec { target } => write!(f, "exec {target}"),
            Step::Setpgid { target } => write!(f, "setpgid {target}"),
            Step::Setsid { target } => write!(f, "setsid {target}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scenario::{arbitrary, parse, Attrs, StepEntry};

    const CANONICAL: &str = "\
about: TEXT
needs: kernel >= 5.10
needs: root

tree:
  init subreaper threads=2 catch=SIGUSR1 session
    a noreap sigchld=ignore pdeathsig=SIGTERM pgrp
      b
    ns threads=1 catch=SIGHUP,SIGTERM,SIGRTMIN+2 pidns

kill a b SIGTERM
expect:
  init subreaper threads=2 catch=SIGUSR1 session
    b zombie stopped
    ns threads=1 catch=SIGHUP,SIGTERM,SIGRTMIN+2 pidns main-exited exiting got=SIGHUP,SIGRTMIN+2

exit b 3

spawn c by init subreaper

spawn d by ns thread=1 into=ns threads=3 pdeathsig=SIGKILL

spawn e by a thread=8 clone-parent into=ns pgrp

thread-exit init 2

thread-exit ns main

exec a

setpgid d

setsid c

reap init
";

    #[test]
    fn canonical_file_renders_back_byte_for_byte() {
        let s = parse("canonical.tree", CANONICAL).unwrap();
        assert_eq!(render(&s), CANONICAL);
        assert_eq!(
            s.steps.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![11, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35]
        );
    }

    #[test]
    fn non_canonical_spellings_are_normalised() {
        let text = "\
needs: root
about:  out of order  \n\
tree:
  init   noreap subreaper
# a comment
    a pidns catch=SIGTERM,SIGHUP threads=2 sigchld=ignore
kill a SIGKILL
expect:
  init
    a got=SIGTERM,SIGIOT stopped  zombie main-exited threads=1 pidns
exit a 0
spawn b by init session into=a
spawn c by b pgrp into=a clone-parent thread=1
";
        let s = parse("t.tree", text).unwrap();
        assert_eq!(
            render(&s),
            "\
about: out of order
needs: root

tree:
  init subreaper noreap
    a sigchld=ignore threads=2 catch=SIGHUP,SIGTERM pidns

kill a
expect:
  init
    a threads=1 pidns main-exited zombie stopped got=SIGABRT,SIGTERM

exit a

spawn b by init into=a session

spawn c by b thread=1 clone-parent into=a pgrp
"
        );
    }

    #[test]
    fn scenario_without_headers_or_steps() {
        let s = Scenario { about: None, needs: vec![], tree: Node::new("init"), steps: vec![] };
        assert_eq!(render(&s), "tree:\n  init\n");
    }

    #[test]
    fn empty_expect_renders_as_a_bare_header() {
        let s = Scenario {
            about: None,
            needs: vec![],
            tree: Node::new("init"),
            steps: vec![StepEntry {
                step: Step::Exit { target: "init".into(), code: 1 },
                line: 4,
                expect: Some(vec![]),
            }],
        };
        assert_eq!(render(&s), "tree:\n  init\n\nexit init 1\nexpect:\n");
        assert_eq!(parse("t.tree", &render(&s)).unwrap(), s);
    }

    #[test]
    fn forest_and_node_lines() {
        let mut b = Node::new("b");
        b.markers.stopped = true;
        b.attrs.noreap = true;
        let mut a = Node::new("a");
        a.children = vec![b, Node::new("c")];
        let forest = vec![a, Node::new("d")];
        assert_eq!(render_forest(&forest), "  a\n    b noreap stopped\n    c\n  d\n");
        assert_eq!(render_node_line(&forest[0].children[0]), "b noreap stopped");
        assert_eq!(render_forest(&[]), "");
    }

    #[test]
    fn node_line_with_every_attribute_and_marker() {
        let node = Node {
            name: "x".into(),
            attrs: Attrs {
                subreaper: true,
                noreap: true,
                sigchld_ignore: true,
                threads: 3,
                pdeathsig: Some(Signal(36)),
                catch: vec![Signal::HUP, Signal::TERM],
                pgrp: true,
                session: false,
                pidns: true,
            },
            markers: Markers { main_exited: true, exiting: true, zombie: true, stopped: true, got: vec![Signal::HUP] },
            children: vec![],
        };
        assert_eq!(
            render_node_line(&node),
            "x subreaper noreap sigchld=ignore threads=3 pdeathsig=SIGRTMIN+2 catch=SIGHUP,SIGTERM pgrp pidns \
             main-exited exiting zombie stopped got=SIGHUP"
        );
        let session = Node { attrs: Attrs { session: true, ..Attrs::default() }, ..Node::new("s") };
        assert_eq!(render_node_line(&session), "s session");
    }

    #[test]
    fn steps_display_as_their_line() {
        let kill = Step::Kill { targets: vec!["a".into(), "b".into()], signal: Signal::KILL };
        assert_eq!(kill.to_string(), "kill a b");
        let kill = Step::Kill { targets: vec!["a".into()], signal: Signal(35) };
        assert_eq!(kill.to_string(), "kill a SIGRTMIN+1");
        assert_eq!(Step::Subreaper { target: "a".into(), on: false }.to_string(), "subreaper a off");
        let spawn = Step::Spawn {
            child: "c".into(),
            parent: "a".into(),
            thread: None,
            clone_parent: false,
            into: None,
            attrs: Attrs { subreaper: true, sigchld_ignore: true, ..Attrs::default() },
        };
        assert_eq!(spawn.to_string(), "spawn c by a subreaper sigchld=ignore");
        let spawn = Step::Spawn {
            child: "c".into(),
            parent: "a".into(),
            thread: Some(2),
            clone_parent: true,
            into: Some("ns".into()),
            attrs: Attrs { catch: vec![Signal::TERM], pidns: true, ..Attrs::default() },
        };
        assert_eq!(spawn.to_string(), "spawn c by a thread=2 clone-parent into=ns catch=SIGTERM pidns");
        assert_eq!(Step::Reap { target: "a".into() }.to_string(), "reap a");
        assert_eq!(Step::ThreadExit { target: "a".into(), thread: ThreadRef::Main }.to_string(), "thread-exit a main");
        assert_eq!(Step::ThreadExit { target: "a".into(), thread: ThreadRef::Extra(3) }.to_string(), "thread-exit a 3");
        assert_eq!(Step::Exec { target: "a".into() }.to_string(), "exec a");
        assert_eq!(Step::Setpgid { target: "a".into() }.to_string(), "setpgid a");
        assert_eq!(Step::Setsid { target: "a".into() }.to_string(), "setsid a");
    }

    proptest! {
        #[test]
        fn parse_inverts_render(s in arbitrary::scenario()) {
            let text = render(&s);
            prop_assert_eq!(parse("generated.tree", &text), Ok(s), "{}", text);
        }

        #[test]
        fn rendering_a_parsed_rendering_is_idempotent(s in arbitrary::scenario()) {
            let once = render(&s);
            let twice = render(&parse("generated.tree", &once).map_err(|e| TestCaseError::fail(e.to_string()))?);
            prop_assert_eq!(once, twice);
        }
    }
}
