//! The system layer on its own: real trees in real namespaces, observed
//! back, with no model involved.

use reparent_harness::scenario::{Attrs, Node, Signal, Step};
use reparent_harness::sys::{Sandbox, SandboxOptions, SettleHints};

mod common;

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
    let obs = sb
        .step(&Step::Kill { targets: vec!["bash".into()], signal: Signal::KILL }, &SettleHints::default())
        .expect("kill");
    assert_eq!(render(&obs.forest), "  init\n    sub subreaper\n      sleep\n");
    let obs = sb
        .step(&Step::Kill { targets: vec!["init".into()], signal: Signal::KILL }, &SettleHints::default())
        .expect("kill init");
    assert_eq!(render(&obs.forest), "");
}

/// PID 1 need not be ours: with an init under test (tini, from Debian's
/// `tini` package, which ci/test installs), the tree hangs under it and an
/// orphan lands on it.
#[test]
fn an_init_under_test_adopts_the_orphan() {
    let tini = "/usr/bin/tini";
    assert!(std::path::Path::new(tini).exists(), "{tini} is missing: apt-get install tini (ci/test installs it)");
    let mut opts = opts();
    opts.init = Some(vec![tini.into(), "--".into()]);
    let tree = node(
        "init",
        Attrs::default(),
        vec![node(
            "agent",
            Attrs::default(),
            vec![node("ash", Attrs::default(), vec![node("sleep", Attrs::default(), vec![])])],
        )],
    );
    let (mut sb, obs) = Sandbox::start(&opts, &tree).expect("start under tini");
    // The root is `init`, which the helper records as pid 1 (tini): a PID 1
    // other than tini would render as `unknown-1`.
    assert_eq!(render(&obs.forest), "  init\n    agent\n      ash\n        sleep\n");
    let obs = sb
        .step(&Step::Kill { targets: vec!["ash".into()], signal: Signal::KILL }, &SettleHints::default())
        .expect("kill ash");
    assert_eq!(render(&obs.forest), "  init\n    agent\n    sleep\n");
}

#[test]
fn an_init_under_test_takes_no_attributes_and_one_child() {
    let mut opts = opts();
    opts.init = Some(vec!["/usr/bin/tini".into(), "--".into()]);
    let tree =
        node("init", Attrs::default(), vec![node("a", Attrs::default(), vec![]), node("b", Attrs::default(), vec![])]);
    let err = Sandbox::start(&opts, &tree).err().expect("two children under an init under test are refused");
    assert!(err.to_string().contains("exactly one child"), "{err}");
}

/// A panic while a case is live unwinds through the `Sandbox`, whose drop
/// tears the namespace down: every process of the case is gone afterwards.
#[test]
fn a_panic_mid_case_leaves_no_process_behind() {
    use reparent_harness::sys::os;
    use std::os::fd::AsFd;
    let tree = node("init", Attrs::default(), vec![node("a", sub(), vec![node("b", Attrs::default(), vec![])])]);
    let pidfds = std::panic::catch_unwind(|| {
        let (sb, _) = Sandbox::start(&opts(), &tree).expect("start");
        // The helper, PID 1 and the nodes, as the host sees them.
        let mut pids = common::descendants(sb.helper_pid());
        pids.push(sb.helper_pid());
        assert!(pids.len() >= 4, "helper, init, a and b are alive: {pids:?}");
        let fds: Vec<_> = pids.into_iter().map(|p| os::pidfd_open(p).expect("pidfd")).collect();
        let _keep = sb;
        std::panic::panic_any(fds)
    })
    .expect_err("the closure panics")
    .downcast::<Vec<std::os::fd::OwnedFd>>()
    .expect("the panic carries the pidfds");
    for fd in pidfds.iter() {
        assert_ne!(os::pidfd_state(fd.as_fd()).unwrap(), os::PidfdState::Alive, "a process of the case outlived it");
    }
}

/// Real-time signals at both ends of the range are installed, delivered and
/// reported back under the numbers the scenario named: `SIGRTMAX` (64, the
/// last bit of a 64-bit mask) once came back as nothing at all.
#[test]
fn realtime_handlers_are_observed_back_exactly() {
    let names = ["SIGRTMIN", "SIGRTMIN+1", "SIGRTMAX"];
    let signals: Vec<Signal> = names.iter().map(|n| Signal::from_name(n).expect("a signal")).collect();
    assert_eq!(signals, [Signal(34), Signal(35), Signal(64)]);
    let caught = Attrs { catch: signals.clone(), ..Attrs::default() };
    let tree = node("init", Attrs::default(), vec![node("a", caught.clone(), vec![])]);
    let (mut sb, obs) = Sandbox::start(&opts(), &tree).expect("start");
    assert_eq!(obs.forest[0].children[0].attrs.catch, signals);
    for s in signals.iter().rev() {
        let obs =
            sb.step(&Step::Kill { targets: vec!["a".into()], signal: *s }, &SettleHints::default()).expect("kill");
        let a = &obs.forest[0].children[0];
        assert_eq!((a.attrs.catch.clone(), a.markers.got.clone()), (signals.clone(), vec![*s]), "after {s}");
        assert!(!a.markers.zombie, "{s} is caught, not fatal");
    }
}

/// One process asked for a thousand forks at once: its acks fill the
/// control channel long before the helper has sent every order (this hung
/// from 450 children on, the helper and PID 1 each blocked sending).
#[test]
fn a_thousand_children_of_one_process_are_built_and_killed() {
    let kids: Vec<Node> = (0..1000).map(|i| node(&format!("c{i}"), Attrs::default(), vec![])).collect();
    let tree = node("init", Attrs::default(), vec![node("p", Attrs::default(), kids)]);
    let t = std::time::Instant::now();
    let (mut sb, obs) = Sandbox::start(&opts(), &tree).expect("start");
    assert_eq!(obs.forest.len(), 1);
    assert_eq!(obs.forest[0].children[0].children.len(), 1000);
    let obs = sb
        .step(&Step::Kill { targets: vec!["p".into()], signal: Signal::KILL }, &SettleHints::default())
        .expect("kill p");
    assert_eq!(obs.forest[0].children.len(), 1000, "init adopts all of p's children");
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "took {:?}", t.elapsed());
}

/// The runner's own wait for the helper obeys the deadline: a helper that
/// never answers is a named timeout, not a hang.
#[test]
fn a_helper_that_never_answers_is_a_timeout() {
    let dir = std::env::temp_dir().join(format!("reparent-mute-helper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("mute");
    // Written by a child, not here: a file this process held open for
    // writing while another test's thread forked would stay open in that
    // child until its exec, and exec'ing the file meanwhile fails (ETXTBSY).
    let wrote = std::process::Command::new("/bin/sh")
        .args(["-c", "printf '#!/bin/sh\\nexec sleep 60\\n' > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(wrote.success());
    let opts = SandboxOptions { deadline: std::time::Duration::from_millis(200), ..SandboxOptions::new(&exe).unwrap() };
    let t = std::time::Instant::now();
    let err = Sandbox::start(&opts, &node("init", Attrs::default(), vec![])).err().expect("no answer");
    assert!(err.to_string().contains("timed out waiting for the sandbox helper to answer"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `client::build_ahead`: the next case's tree stands before that case
/// starts (no build time on its path), a case that starts with another
/// tree gets its own (the spare built ahead is dropped), every helper is
/// forked by the thread's sandbox server, and nothing of either — the
/// server included — outlives `finish_thread`.
#[test]
fn a_tree_built_ahead_is_the_next_case_s_and_only_its() {
    use reparent_harness::sys::{client, os};
    use std::os::fd::AsFd;
    let opts = SandboxOptions { pipeline: true, ..opts() };
    let first = node("init", Attrs::default(), vec![node("a", Attrs::default(), vec![])]);
    let second = node("init", Attrs::default(), vec![node("b", sub(), vec![node("c", Attrs::default(), vec![])])]);
    let other = node("init", Attrs::default(), vec![node("d", Attrs::default(), vec![])]);
    let mut helpers = Vec::new();
    let mut servers = Vec::new();
    let mut start = |tree: &Node| {
        let (sb, obs) = Sandbox::start(&opts, tree).expect("start");
        helpers.push(os::pidfd_open(sb.helper_pid()).expect("pidfd"));
        // Forked by this thread's sandbox server, not spawned by the test.
        let ppid = reparent_harness::sys::observe::status_ppid(sb.helper_pid()).expect("helper's parent");
        assert_ne!(ppid, os::getpid(), "a pipelined helper is the server's child, not the runner's");
        servers.push(os::pidfd_open(ppid).expect("pidfd of the server"));
        (sb, obs)
    };

    client::build_ahead(&second);
    let (sb, obs) = start(&first);
    assert_eq!(render(&obs.forest), "  init\n    a\n");
    sb.close();
    let (sb, obs) = start(&second);
    assert_eq!(render(&obs.forest), "  init\n    b subreaper\n      c\n");
    assert_eq!(obs.timings.build_us, 0, "built ahead, off this case's path: {:?}", obs.timings);
    // The tree stands and works like any other.
    let mut sb = sb;
    let obs = sb
        .step(&Step::Kill { targets: vec!["b".into()], signal: Signal::KILL }, &SettleHints::default())
        .expect("kill");
    assert_eq!(render(&obs.forest), "  init\n    c\n");
    sb.close();

    // Named ahead, but the next case starts with another tree.
    client::build_ahead(&second);
    let (sb, obs) = start(&first);
    sb.close();
    let (sb, obs2) = start(&other);
    assert_eq!(render(&obs.forest), "  init\n    a\n");
    assert_eq!(render(&obs2.forest), "  init\n    d\n");
    assert!(obs2.timings.build_us > 0, "built on its own path: {:?}", obs2.timings);
    sb.close();

    client::finish_thread();
    for fd in &helpers {
        assert_ne!(os::pidfd_state(fd.as_fd()).unwrap(), os::PidfdState::Alive, "a helper outlived finish_thread");
    }
    for fd in &servers {
        assert_ne!(os::pidfd_state(fd.as_fd()).unwrap(), os::PidfdState::Alive, "the server outlived finish_thread");
    }
}

/// The sandbox server on its own: an unknown request gets an error (with
/// the request escaped) and the server serves on; a `helper` request gets
/// a helper — its pid, the ends of its stdin and stdout and a pidfd — that
/// exits at EOF on its stdin; EOF on the server's socket ends the server.
#[test]
fn the_sandbox_server_refuses_a_bad_request_and_forks_helpers_on() {
    use reparent_harness::sys::{os, server};
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};
    let (ours, theirs) = os::seqpacket_pair().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reparent"))
        .arg(server::SERVER_ARG)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let answer = |fds: usize| {
        let mut buf = vec![0u8; 4096];
        match os::recv_with_fds(ours.as_fd(), &mut buf, fds).unwrap() {
            os::Recv::Msg(n, fds) => (buf[..n].to_vec(), fds),
            _ => panic!("no answer from the server"),
        }
    };

    os::send_with_fds(ours.as_fd(), b"\x1b]0;title\x07", &[], false).unwrap();
    let (msg, fds) = answer(3);
    let text = String::from_utf8_lossy(&msg).into_owned();
    assert!(text.starts_with('-') && text.contains("not for a helper"), "{text}");
    assert!(text.contains(r"\\u{1b}") && !text.contains('\x1b'), "the request is escaped: {text}");
    assert!(fds.is_empty());

    for _ in 0..2 {
        os::send_with_fds(ours.as_fd(), server::REQUEST, &[], false).unwrap();
        let (msg, mut fds) = answer(3);
        assert_eq!((msg.len(), msg[0], fds.len()), (5, b'+', 3), "{msg:?}");
        let pid = i32::from_ne_bytes(msg[1..5].try_into().unwrap());
        let pidfd = fds.pop().unwrap();
        let ppid = reparent_harness::sys::observe::status_ppid(pid).expect("the helper lives");
        assert_eq!(ppid, child.id() as i32, "the server's own child");
        assert_eq!(os::pidfd_state(pidfd.as_fd()).unwrap(), os::PidfdState::Alive);
        // EOF on its stdin (fds[0]; fds[1] is its stdout): it exits.
        fds.clear();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        assert!(os::pidfd_wait(pidfd.as_fd(), os::PidfdState::Exited, deadline).unwrap(), "the helper exits at EOF");
    }
    drop(ours);
    assert!(child.wait().unwrap().success(), "the server ends at EOF");
}
