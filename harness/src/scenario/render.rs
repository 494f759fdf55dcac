//! Writing a [`Scenario`], a tree or a step back out in the `.tree` notation,
//! canonically.
//!
//! The same text serves as hand-written scenario, snapshot and shrunk failing
//! case, so a rendered case must be ready to drop into `scenarios/` and a
//! snapshot must not change unless the tree does. Hence one canonical
//! spelling for everything: headers (`about:` first, then `needs:` in order)
//! and a blank line, `tree:` and its node lines, then each step after a blank
//! line with its `expect:` block; two spaces per level; attributes in the
//! order subreaper, noreap, sigchld=ignore, then markers zombie, stopped;
//! defaults (`SIGKILL`, exit code 0) left out. `parse(render(x)) == x` for
//! every valid scenario (with `StepEntry::line` as rendered), and rendering
//! a parsed canonical file gives back its bytes.

use std::fmt;

use super::{Attrs, Markers, Need, Node, Scenario, Signal, Step};

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
    for word in attribute_words(&node.attrs).chain(marker_words(&node.markers)) {
        line.push(' ');
        line.push_str(word);
    }
    line
}

/// The words of the attributes that are set, in canonical order.
fn attribute_words(a: &Attrs) -> impl Iterator<Item = &'static str> {
    [(a.subreaper, "subreaper"), (a.noreap, "noreap"), (a.sigchld_ignore, "sigchld=ignore")]
        .into_iter()
        .filter_map(|(set, word)| set.then_some(word))
}

/// The words of the markers that are set, in canonical order.
fn marker_words(m: &Markers) -> impl Iterator<Item = &'static str> {
    [(m.zombie, "zombie"), (m.stopped, "stopped")].into_iter().filter_map(|(set, word)| set.then_some(word))
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
            Step::Spawn { child, parent, attrs, .. } => {
                write!(f, "spawn {child} by {parent}")?;
                for word in attribute_words(attrs) {
                    write!(f, " {word}")?;
                }
                Ok(())
            }
            Step::Reap { target } => write!(f, "reap {target}"),
            other => write!(f, "TODO(issue 3) {}", other.kind()),
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
  init subreaper
    a noreap sigchld=ignore
      b

kill a b SIGTERM
expect:
  init subreaper
    b zombie stopped

exit b 3

spawn c by init subreaper
";

    #[test]
    fn canonical_file_renders_back_byte_for_byte() {
        let s = parse("canonical.tree", CANONICAL).unwrap();
        assert_eq!(render(&s), CANONICAL);
        assert_eq!(s.steps.iter().map(|e| e.line).collect::<Vec<_>>(), vec![10, 15, 17]);
    }

    #[test]
    fn non_canonical_spellings_are_normalised() {
        let text = "\
needs: root
about:  out of order  \n\
tree:
  init   noreap subreaper
# a comment
    a sigchld=ignore
kill a SIGKILL
expect:
  init
    a stopped  zombie
exit a 0
";
        let s = parse("t.tree", text).unwrap();
        assert_eq!(
            render(&s),
            "\
about: out of order
needs: root

tree:
  init subreaper noreap
    a sigchld=ignore

kill a
expect:
  init
    a zombie stopped

exit a
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
        assert_eq!(Step::Reap { target: "a".into() }.to_string(), "reap a");
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
