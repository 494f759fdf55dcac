//! The system layer with the whole format: threads and the control thread,
//! caught signals (`got=`), parent-death signals, exec, nested PID
//! namespaces and injection with `setns()`, `CLONE_PARENT`, process groups
//! and sessions — real trees in real namespaces, observed back, with no
//! model involved. Each expected tree is what the kernel rules say
//! (kernel-rules.md), written out by hand.

use std::os::fd::AsFd;

use reparent_harness::driver::calibrate;
use reparent_harness::scenario::{render_forest, Attrs, Node, OrphanHup, Signal, Step, ThreadRef};
use reparent_harness::sys::{os, Sandbox, SandboxOptions, SettleHints};

mod common;

const USR1: Signal = Signal(10);
const USR2: Signal = Signal(12);

fn opts() -> SandboxOptions {
    SandboxOptions::new(env!("CARGO_BIN_EXE_reparent")).expect("options")
}

fn node(name: &str, attrs: Attrs, children: Vec<Node>) -> Node {
    Node { name: name.into(), attrs, children, ..Node::default() }
}

fn leaf(name: &str, attrs: Attrs) -> Node {
    node(name, attrs, vec![])
}

fn plain() -> Attrs {
    Attrs::default()
}

/// The tree in the format's notation, as the library renders it, but with
/// the roots at the left margin.
fn show(forest: &[Node]) -> String {
    render_forest(forest).lines().map(|l| format!("{}\n", &l[2..])).collect()
}

/// Runs a step with no stop or exiting predicted and renders the result.
fn step(sb: &mut Sandbox, step: Step) -> String {
    step_with(sb, step, SettleHints::default())
}

fn step_with(sb: &mut Sandbox, step: Step, hints: SettleHints) -> String {
    let text = format!("{step:?}");
    show(&sb.step(&step, &hints).unwrap_or_else(|e| panic!("{text}: {e}")).forest)
}

fn kill(target: &str, signal: Signal) -> Step {
    Step::Kill { targets: vec![target.into()], signal }
}

fn spawn(child: &str, parent: &str) -> Step {
    spawn_by(child, parent, Spawn::default())
}

/// The options of a `spawn` step.
#[derive(Default)]
struct Spawn<'a> {
    thread: Option<u32>,
    clone_parent: bool,
    into: Option<&'a str>,
    attrs: Attrs,
}

fn spawn_by(child: &str, parent: &str, o: Spawn<'_>) -> Step {
    Step::Spawn {
        child: child.into(),
        parent: parent.into(),
        thread: o.thread,
        clone_parent: o.clone_parent,
        into: o.into.map(String::from),
        attrs: o.attrs,
    }
}

fn thread_exit(target: &str, thread: ThreadRef) -> Step {
    Step::ThreadExit { target: target.into(), thread }
}

fn start(tree: &Node) -> (Sandbox, String) {
    let (sb, obs) = Sandbox::start(&opts(), tree).expect("start");
    (sb, show(&obs.forest))
}

/// Threads, each forking and exiting on its own: a thread's exit moves its
/// children to a living thread of the same process (R1.7, no change of
/// parent) and sends their parent-death signal (R4.3); the main thread's
/// exit leaves the process alive (`main-exited`, R8.3); the last thread's
/// exit ends the process, and the children go to init with their pdeath
/// signal once more (R4.4).
#[test]
fn threads_exit_one_by_one_and_children_follow() {
    let c = Attrs { pdeathsig: Some(USR1), catch: vec![USR1], ..plain() };
    let tree = node("init", plain(), vec![node("p", Attrs { threads: 2, ..plain() }, vec![leaf("c", c)])]);
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  p threads=2\n    c pdeathsig=SIGUSR1 catch=SIGUSR1\n");

    let d = Attrs { pdeathsig: Some(USR2), catch: vec![USR2], ..plain() };
    let by_thread_1 = spawn_by("d", "p", Spawn { thread: Some(1), attrs: d, ..Spawn::default() });
    assert_eq!(
        step(&mut sb, by_thread_1),
        "init\n  p threads=2\n    c pdeathsig=SIGUSR1 catch=SIGUSR1\n    d pdeathsig=SIGUSR2 catch=SIGUSR2\n"
    );
    // Thread 1 forked d: its exit hands d to the main thread.
    assert_eq!(
        step(&mut sb, thread_exit("p", ThreadRef::Extra(1))),
        "init\n  p threads=1\n    c pdeathsig=SIGUSR1 catch=SIGUSR1\n    d pdeathsig=SIGUSR2 catch=SIGUSR2 got=SIGUSR2\n"
    );
    // The main thread's exit hands both to thread 2.
    assert_eq!(
        step(&mut sb, thread_exit("p", ThreadRef::Main)),
        "init\n  p threads=1 main-exited\n    c pdeathsig=SIGUSR1 catch=SIGUSR1 got=SIGUSR1\n    \
         d pdeathsig=SIGUSR2 catch=SIGUSR2 got=SIGUSR2\n"
    );
    // A process whose main thread is gone still forks from a thread, and
    // cannot exec.
    let err = sb.step(&Step::Exec { target: "p".into() }, &SettleHints::default()).expect_err("exec after main-exit");
    assert!(err.to_string().contains("main thread has exited"), "{err}");
    let err = sb.step(&spawn("x", "p"), &SettleHints::default()).expect_err("main thread fork after main-exit");
    assert!(err.to_string().contains("main thread has exited"), "{err}");
    // Thread 2 is the last: the process ends, init reaps it and adopts.
    assert_eq!(
        step(&mut sb, thread_exit("p", ThreadRef::Extra(2))),
        "init\n  c pdeathsig=SIGUSR1 catch=SIGUSR1 got=SIGUSR1\n  d pdeathsig=SIGUSR2 catch=SIGUSR2 got=SIGUSR2\n"
    );
}

/// A parent-death signal that kills: the settle finds the second death
/// (caused by the first) before it observes.
#[test]
fn a_fatal_parent_death_signal_is_waited_for() {
    let r = Attrs { pdeathsig: Some(Signal::KILL), ..plain() };
    let s = Attrs { pdeathsig: Some(Signal::TERM), catch: vec![Signal::TERM], ..plain() };
    let tree =
        node("init", plain(), vec![node("q", plain(), vec![node("r", r, vec![leaf("r2", plain())]), leaf("s", s)])]);
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  q\n    r pdeathsig=SIGKILL\n      r2\n    s pdeathsig=SIGTERM catch=SIGTERM\n");
    assert_eq!(step(&mut sb, kill("q", Signal::KILL)), "init\n  r2\n  s pdeathsig=SIGTERM catch=SIGTERM got=SIGTERM\n");
}

/// `exec`: the threads are gone, the subreaper flag and the pdeath signal
/// are what the kernel kept (R2.5, R4.7), the handlers are installed again,
/// `noreap` still holds, and the children stay.
#[test]
fn exec_keeps_flags_and_children_and_drops_threads() {
    let e =
        Attrs { subreaper: true, noreap: true, threads: 2, pdeathsig: Some(USR2), catch: vec![USR1, USR2], ..plain() };
    let tree = node("init", plain(), vec![node("e", e, vec![leaf("f", plain())])]);
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  e subreaper noreap threads=2 pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2\n    f\n");
    let after = "init\n  e subreaper noreap pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2\n    f\n";
    assert_eq!(step(&mut sb, Step::Exec { target: "e".into() }), after);
    // The new image caught it (the default action would have killed it).
    assert_eq!(
        step(&mut sb, kill("e", USR1)),
        "init\n  e subreaper noreap pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2 got=SIGUSR1\n    f\n"
    );
    // It still forks, and still does not reap.
    assert_eq!(
        step(&mut sb, spawn("g", "e")),
        "init\n  e subreaper noreap pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2\n    f\n    g\n"
    );
    assert_eq!(
        step(&mut sb, Step::Exit { target: "f".into(), code: 0 }),
        "init\n  e subreaper noreap pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2\n    f zombie\n    g\n"
    );
    // And exec'ing twice works (the new image serves exec too).
    assert_eq!(
        step(&mut sb, Step::Exec { target: "e".into() }),
        "init\n  e subreaper noreap pdeathsig=SIGUSR2 catch=SIGUSR1,SIGUSR2\n    f zombie\n    g\n"
    );
}

/// A `pidns` node is PID 1 of a nested namespace: the orphans of its
/// subtree go to it, not to the sandbox's init (R1.5), and its death takes
/// the namespace with it (R6.3).
#[test]
fn a_nested_init_adopts_its_orphans() {
    let tree = node(
        "init",
        Attrs { subreaper: true, ..plain() },
        vec![node("n", Attrs { pidns: true, ..plain() }, vec![node("m", plain(), vec![leaf("k", plain())])])],
    );
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init subreaper\n  n pidns\n    m\n      k\n");
    assert_eq!(step(&mut sb, kill("m", Signal::KILL)), "init subreaper\n  n pidns\n    k\n");
    // A pidns node nests further.
    let deeper = spawn_by("o", "k", Spawn { attrs: Attrs { pidns: true, ..plain() }, ..Spawn::default() });
    assert_eq!(step(&mut sb, deeper), "init subreaper\n  n pidns\n    k\n      o pidns\n");
    assert_eq!(step(&mut sb, kill("n", Signal::KILL)), "init subreaper\n");
}

/// `into=`: a process outside a nested namespace forks into it (from its
/// thread 1 here). The injected child's parent is outside (R1.5); when the
/// nested init dies, zap kills the child, whose parent does not reap it,
/// so the init is held `exiting` (R6.4) until that parent reaps.
#[test]
fn injection_and_an_init_held_exiting() {
    let tree = node(
        "init",
        plain(),
        vec![leaf("n", Attrs { pidns: true, ..plain() }), leaf("p", Attrs { noreap: true, threads: 1, ..plain() })],
    );
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  n pidns\n  p noreap threads=1\n");
    let inject = spawn_by("j", "p", Spawn { thread: Some(1), into: Some("n"), ..Spawn::default() });
    assert_eq!(step(&mut sb, inject), "init\n  n pidns\n  p noreap threads=1\n    j\n");
    // Its own children are born in n's namespace and are orphaned to n.
    assert_eq!(step(&mut sb, spawn("jj", "j")), "init\n  n pidns\n  p noreap threads=1\n    j\n      jj\n");
    assert_eq!(step(&mut sb, kill("j", Signal::KILL)), "init\n  n pidns\n    jj\n  p noreap threads=1\n    j zombie\n");
    let inject2 = spawn_by("j2", "p", Spawn { into: Some("n"), ..Spawn::default() });
    step(&mut sb, inject2);
    let exiting = SettleHints { exiting: vec!["n".into()], ..SettleHints::default() };
    assert_eq!(
        step_with(&mut sb, kill("n", Signal::KILL), exiting),
        "init\n  n pidns exiting\n  p noreap threads=1\n    j zombie\n    j2 zombie\n"
    );
    // Nothing can be born in a dying namespace.
    let late = spawn_by("j3", "p", Spawn { into: Some("n"), ..Spawn::default() });
    let err = sb.step(&late, &SettleHints::default()).expect_err("fork into a dying namespace");
    assert!(err.to_string().contains("could not fork `j3`") && err.to_string().contains("ENOMEM"), "{err}");
    // Once p reaps its zombies, n finishes dying and init reaps it.
    assert_eq!(step(&mut sb, Step::Reap { target: "p".into() }), "init\n  p noreap threads=1\n");
}

/// Spawn options combined: thread 1 of p joins n's namespace and clones
/// with `CLONE_PARENT`, so k lives in n's namespace as init's child (p's
/// parent). n's death kills k (R6.3), and init reaps both. A new namespace
/// cannot be made from there: `copy_pid_ns()` refuses `CLONE_NEWPID` while
/// the caller's `pid_for_children` is not its own namespace.
#[test]
fn spawn_options_combine() {
    let tree = node(
        "init",
        plain(),
        vec![leaf("n", Attrs { pidns: true, ..plain() }), leaf("p", Attrs { threads: 1, ..plain() })],
    );
    let (mut sb, _) = start(&tree);
    let k = Attrs { threads: 1, catch: vec![USR1], ..plain() };
    let all = spawn_by("k", "p", Spawn { thread: Some(1), clone_parent: true, into: Some("n"), attrs: k });
    assert_eq!(step(&mut sb, all), "init\n  n pidns\n  p threads=1\n  k threads=1 catch=SIGUSR1\n");
    assert_eq!(
        step(&mut sb, kill("k", USR1)),
        "init\n  n pidns\n  p threads=1\n  k threads=1 catch=SIGUSR1 got=SIGUSR1\n"
    );
    let nested =
        spawn_by("m", "p", Spawn { into: Some("n"), attrs: Attrs { pidns: true, ..plain() }, ..Spawn::default() });
    let err = sb.step(&nested, &SettleHints::default()).expect_err("CLONE_NEWPID after setns");
    assert!(err.to_string().contains("EINVAL: CLONE_NEWPID is refused"), "{err}");
    // The failed attempt left p's thread in its own namespace: its next
    // child is born there, and does not die with n.
    assert_eq!(step(&mut sb, spawn("q", "p")), "init\n  n pidns\n  p threads=1\n    q\n  k threads=1 catch=SIGUSR1\n");
    assert_eq!(step(&mut sb, kill("n", Signal::KILL)), "init\n  p threads=1\n    q\n");
}

/// The same, with the `exiting` state nobody predicted: the settle still
/// ends (after its deadline), and the observation shows what happened.
#[test]
fn an_unpredicted_exiting_init_is_observed_not_a_timeout() {
    let mut opts = opts();
    opts.deadline = std::time::Duration::from_millis(500);
    let tree = node(
        "init",
        plain(),
        vec![leaf("n", Attrs { pidns: true, ..plain() }), leaf("p", Attrs { noreap: true, ..plain() })],
    );
    let (mut sb, _) = Sandbox::start(&opts, &tree).expect("start");
    step(&mut sb, spawn_by("j", "p", Spawn { into: Some("n"), ..Spawn::default() }));
    assert_eq!(step(&mut sb, kill("n", Signal::KILL)), "init\n  n pidns exiting\n  p noreap\n    j zombie\n");
}

/// `clone-parent`: the child's parent is its forker's parent (R8.1); from a
/// namespace init the kernel refuses (R6.7), and says so.
#[test]
fn clone_parent_and_its_refusal_by_an_init() {
    let tree = node(
        "init",
        plain(),
        vec![node("a", plain(), vec![leaf("b", plain())]), leaf("n", Attrs { pidns: true, ..plain() })],
    );
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  a\n    b\n  n pidns\n");
    let sibling = spawn_by("c", "b", Spawn { clone_parent: true, ..Spawn::default() });
    assert_eq!(step(&mut sb, sibling), "init\n  a\n    b\n    c\n  n pidns\n");
    // a reaps c like any child of its own.
    assert_eq!(step(&mut sb, Step::Exit { target: "c".into(), code: 0 }), "init\n  a\n    b\n  n pidns\n");
    let refused = spawn_by("d", "n", Spawn { clone_parent: true, ..Spawn::default() });
    let err = sb.step(&refused, &SettleHints::default()).expect_err("CLONE_PARENT from an init");
    assert!(err.to_string().contains("EINVAL") || err.to_string().contains("Invalid argument"), "{err}");
}

/// Process groups and sessions, at creation and as steps; a session leader
/// cannot make a new process group or session (EPERM), and says so.
#[test]
fn setpgid_and_setsid() {
    let tree = node(
        "init",
        plain(),
        vec![
            node("s", plain(), vec![leaf("t", plain())]),
            leaf("u", Attrs { pgrp: true, ..plain() }),
            leaf("v", Attrs { session: true, ..plain() }),
        ],
    );
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  s\n    t\n  u pgrp\n  v session\n");
    assert_eq!(step(&mut sb, Step::Setsid { target: "t".into() }), "init\n  s\n    t session\n  u pgrp\n  v session\n");
    assert_eq!(
        step(&mut sb, Step::Setpgid { target: "s".into() }),
        "init\n  s pgrp\n    t session\n  u pgrp\n  v session\n"
    );
    let err =
        sb.step(&Step::Setsid { target: "s".into() }, &SettleHints::default()).expect_err("setsid by a pgrp leader");
    assert!(err.to_string().contains("setsid"), "{err}");
    let err = sb
        .step(&Step::Setpgid { target: "v".into() }, &SettleHints::default())
        .expect_err("setpgid by a session leader");
    assert!(err.to_string().contains("setpgid"), "{err}");
}

/// An orphaned process group with a stopped member gets SIGHUP then SIGCONT
/// (R5.3): y catches what reaches it; z is resumed by SIGCONT and killed by
/// SIGHUP. The settle must wait for z's death, which x's death causes, and
/// ping y after the signals were generated. Whether the running y gets the
/// SIGHUP too depends on the kernel build (`kernel::build`), observed here
/// first; the SIGCONT reaches it on every build.
#[test]
fn an_orphaned_process_group_is_hung_up() {
    let got = match calibrate::orphan_hup(&opts()).expect("the orphan-hup case runs") {
        OrphanHup::AllMembers => "got=SIGHUP,SIGCONT",
        OrphanHup::StoppedMembers => "got=SIGCONT",
    };
    let y = Attrs { pgrp: true, catch: vec![Signal::HUP, Signal::CONT], ..plain() };
    let tree = node(
        "init",
        plain(),
        vec![node("x", Attrs { session: true, ..plain() }, vec![node("y", y, vec![leaf("z", plain())])])],
    );
    let (mut sb, obs) = start(&tree);
    assert_eq!(obs, "init\n  x session\n    y catch=SIGHUP,SIGCONT pgrp\n      z\n");
    let stopped = SettleHints { stopped: vec!["z".into()], ..SettleHints::default() };
    assert_eq!(
        step_with(&mut sb, kill("z", Signal::STOP), stopped),
        "init\n  x session\n    y catch=SIGHUP,SIGCONT pgrp\n      z stopped\n"
    );
    assert_eq!(step(&mut sb, kill("x", Signal::KILL)), format!("init\n  y catch=SIGHUP,SIGCONT pgrp {got}\n"));
}

/// `got=` belongs to the step that sent the signal: the control thread is
/// the only one that takes signals, so its handler has run before it reads
/// the ping. After the main thread's exit, thread 1 is the control thread
/// and threads 2 and 3 block everything — which the test checks in
/// `SigBlk` (deterministic: without the blocking, all three take SIGUSR1).
/// Were they to take the signal, its handler could run after the pong and
/// the signal show a step late; the rounds below catch that race only when
/// the kernel happens to lose it. SIGCHLD is never reported, and each pong
/// clears the mask.
#[test]
fn got_is_reported_in_the_step_that_sent_it() {
    let g = Attrs { threads: 3, catch: vec![USR1, Signal::CHLD], ..plain() };
    let tree = node("init", plain(), vec![node("g", g, vec![leaf("h", plain())])]);
    let (mut sb, _) = start(&tree);
    let line = "g threads=3 catch=SIGUSR1,SIGCHLD main-exited";
    assert_eq!(step(&mut sb, thread_exit("g", ThreadRef::Main)), format!("init\n  {line}\n    h\n"));
    // Of g's living threads, exactly one leaves SIGUSR1 unblocked. (g is
    // the host process with 4 tasks: its zombie leader and 3 threads.)
    let g_pid = common::descendants(sb.helper_pid()).into_iter().find(|&p| tasks_of(p) == 4).expect("g");
    let takers = threads_not_blocking(g_pid, 10);
    assert_eq!(takers.len(), 1, "threads of g that take SIGUSR1: {takers:?}");
    for round in 0..25 {
        assert_eq!(step(&mut sb, kill("g", USR1)), format!("init\n  {line} got=SIGUSR1\n    h\n"), "round {round}");
        let quiet = Step::Subreaper { target: "g".into(), on: false };
        assert_eq!(step(&mut sb, quiet), format!("init\n  {line}\n    h\n"), "round {round}");
    }
    // A child's death: SIGCHLD is caught, never reported, and g reaps.
    assert_eq!(step(&mut sb, kill("h", Signal::KILL)), format!("init\n  {line}\n"));
}

/// Tasks of host process `pid` (its leader included, alive or not).
fn tasks_of(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// The living tasks of host process `pid` that do not block `sig`.
fn threads_not_blocking(pid: i32, sig: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|tid| {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) else { return false };
            let field = |name: &str| {
                status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
            };
            let alive = !field("State:").starts_with('Z') && !field("State:").starts_with('X');
            let blocked = u64::from_str_radix(&field("SigBlk:"), 16).unwrap_or(0);
            alive && blocked & (1 << (sig - 1)) == 0
        })
        .collect()
}

/// Dropping a sandbox whose tree has threads, nested namespaces, injected
/// processes and an init held exiting leaves no process behind.
#[test]
fn a_dropped_sandbox_with_everything_leaves_nothing_behind() {
    let tree = node(
        "init",
        plain(),
        vec![
            node(
                "n",
                Attrs { pidns: true, threads: 2, ..plain() },
                vec![node("n2", Attrs { pidns: true, ..plain() }, vec![leaf("n3", Attrs { threads: 1, ..plain() })])],
            ),
            leaf("p", Attrs { noreap: true, threads: 2, ..plain() }),
            leaf("q", plain()),
        ],
    );
    let (mut sb, _) = start(&tree);
    step(&mut sb, spawn_by("j", "p", Spawn { into: Some("n2"), thread: Some(2), ..Spawn::default() }));
    step(&mut sb, spawn_by("k", "q", Spawn { into: Some("n"), ..Spawn::default() }));
    step(&mut sb, thread_exit("n", ThreadRef::Main));
    let exiting = SettleHints { exiting: vec!["n2".into()], ..SettleHints::default() };
    assert!(step_with(&mut sb, kill("n2", Signal::KILL), exiting).contains("n2 pidns exiting"));
    let mut pids = common::descendants(sb.helper_pid());
    pids.push(sb.helper_pid());
    assert!(pids.len() >= 8, "helper, init, n, n2, n3, p, q, j, k: {pids:?}");
    let fds: Vec<_> = pids.iter().filter_map(|&p| os::pidfd_open(p).ok()).collect();
    drop(sb);
    for fd in &fds {
        assert_ne!(os::pidfd_state(fd.as_fd()).unwrap(), os::PidfdState::Alive, "a process of the case outlived it");
    }
}
