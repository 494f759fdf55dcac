//! The system layer on its own: real trees in real namespaces, observed
//! back, with no model involved.

use reparent_harness::scenario::{Attrs, Node, Signal, Step};
use reparent_harness::sys::{Sandbox, SandboxOptions};

fn opts() -> SandboxOptions {
    SandboxOptions::new(env!("CARGO_BIN_EXE_reparent")).expect("options")
}

fn node(name: &str, attrs: Attrs, children: Vec<Node>) -> Node {
    Node { name: name.into(), attrs, children, ..Node::default() }
}

fn sub() -> Attrs {
    Attrs { subreaper: true, ..Attrs::default() }
}

fn render(forest: &[Node]) -> String {
    fn go(n: &Node, depth: usize, out: &mut String) {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&n.name);
        if n.attrs.subreaper {
            out.push_str(" subreaper");
        }
        if n.markers.zombie {
            out.push_str(" zombie");
        }
        if n.markers.stopped {
            out.push_str(" stopped");
        }
        out.push('\n');
        for c in &n.children {
            go(c, depth + 1, out);
        }
    }
    let mut s = String::new();
    for n in forest {
        go(n, 1, &mut s);
    }
    s
}

#[test]
fn subreaper_adopts_sleep_when_bash_dies() {
    let tree = node(
        "init",
        Attrs::default(),
        vec![node("sub", sub(), vec![node("bash", Attrs::default(), vec![node("sleep", Attrs::default(), vec![])])])],
    );
    let (mut sb, obs) = Sandbox::start(&opts(), &tree).expect("start");
    assert_eq!(render(&obs.forest), "  init\n    sub subreaper\n      bash\n        sleep\n");
    let obs = sb.step(&Step::Kill { targets: vec!["bash".into()], signal: Signal::KILL }, &[]).expect("kill");
    assert_eq!(render(&obs.forest), "  init\n    sub subreaper\n      sleep\n");
    let obs = sb.step(&Step::Kill { targets: vec!["init".into()], signal: Signal::KILL }, &[]).expect("kill init");
    assert_eq!(render(&obs.forest), "");
}
