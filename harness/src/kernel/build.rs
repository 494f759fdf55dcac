//! What a kernel *build* does where builds of one version differ, told
//! apart from what the running kernel shows.
//!
//! Most rules follow the version (`ModelConfig::kernel`). Some do not: two
//! builds of 6.18.44 answer differently. Such a behaviour is observed once
//! on the running kernel, by a fixed case run in a sandbox like any other
//! (the driver runs it, see `driver::calibrate`), and this module reads the
//! answer from the observed tree. The model then predicts for the build it
//! runs on, and `reparent kernel` shows which behaviour it saw, so that
//! tables of two kernels show the difference side by side.
//!
//! Today there is one such behaviour: who gets the SIGHUP that
//! `kill_orphaned_pgrp()` sends a newly orphaned process group with a
//! stopped member (kernel-rules.md R5.2). Mainline sends it to every
//! member; the build this suite first met deviating (6.18.44-fc-v1252)
//! sends it to stopped members only, while SIGCONT still reaches all.

use super::catalogue::Rule;
use super::proof::RowProof;
use crate::model::MtInitSignal;
use crate::scenario::{self, Node, OrphanHup, Scenario, Signal};

/// The case that tells the SIGHUP's reach: `z` stops, `y` exits and orphans
/// its group {y, z, w} (x, in another group of the session, was its only
/// link); `w` runs and catches SIGHUP. Whether `w` got it is the answer.
pub const ORPHAN_HUP_CASE: &str = "\
about: who gets the SIGHUP of a newly orphaned process group
tree:
  init
    x session
      y pgrp
        z
        w catch=SIGHUP
kill z SIGSTOP
kill y
";

/// The case, parsed.
pub fn orphan_hup_case() -> Scenario {
    // The text is a constant of this crate; a parse error is a bug here,
    // caught by the tests below.
    scenario::parse("<orphan-hup case>", ORPHAN_HUP_CASE).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads the answer from the tree observed after the case's last step.
pub fn orphan_hup_from(observed: &[Node]) -> Result<OrphanHup, String> {
    let w = observed.iter().flat_map(Node::preorder).find(|n| n.name == "w").ok_or_else(|| {
        format!(
            "the orphan-hup case lost `w`, which must survive either way; saw:\n{}",
            scenario::render_forest(observed)
        )
    })?;
    Ok(if w.markers.got.contains(&Signal::HUP) { OrphanHup::AllMembers } else { OrphanHup::StoppedMembers })
}

/// The case that tells what a namespace init whose main thread exited does
/// with an uncaught SIGUSR1 from outside (R6.6g for random cases): `n`'s
/// main thread exits (blocking every signal, as a node's does), its other
/// thread lives on; then SIGUSR1. Whether `n` is still there is the answer.
pub const MT_INIT_CASE: &str = "\
about: what a namespace init whose main thread exited does with SIGUSR1 from outside
tree:
  init
    n threads=1 pidns
      a
thread-exit n main
kill n SIGUSR1
";

/// The case, parsed.
pub fn mt_init_case() -> Scenario {
    scenario::parse("<mt-init case>", MT_INIT_CASE).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads the answer from the tree observed after the case's last step:
/// `n` gone (with `a`, as its namespace died) is `killed`; `n` still
/// there, main-exited, with `a` below it, is `survives`; anything else is
/// no answer.
pub fn mt_init_from(observed: &[Node]) -> Result<MtInitSignal, String> {
    let all: Vec<&Node> = observed.iter().flat_map(Node::preorder).collect();
    let n = all.iter().find(|x| x.name == "n");
    let a = all.iter().find(|x| x.name == "a");
    match (n, a) {
        (None, None) => Ok(MtInitSignal::Killed),
        (Some(n), Some(_)) if n.markers.main_exited => Ok(MtInitSignal::Survives),
        _ => Err(format!(
            "the mt-init case ended neither way (n killed with its namespace, or n alive, main-exited, above a); saw:\n{}",
            scenario::render_forest(observed)
        )),
    }
}

/// In words, for a table.
pub fn orphan_hup_text(v: OrphanHup) -> &'static str {
    match v {
        OrphanHup::AllMembers => "every member gets SIGHUP then SIGCONT (mainline)",
        OrphanHup::StoppedMembers => "only stopped members get SIGHUP; every member gets SIGCONT",
    }
}

/// The proof that a build row can fail: the case's observation with `w`
/// lost — what a kernel that kills a running member with the orphaned
/// group's SIGHUP although it catches it would show — must be a failure,
/// not an answer.
pub fn prove(rule: &Rule, name: &str) -> RowProof {
    let mut init = Node::new("init");
    init.children = vec![Node::new("x")];
    let (killed, how) = match (name, orphan_hup_from(&[init])) {
        ("orphan-hup", Err(e)) => {
            (true, format!("`w` dies of the SIGHUP it catches: {}", e.lines().next().unwrap_or("")))
        }
        ("orphan-hup", Ok(v)) => (false, format!("`w` lost, yet read as orphan-hup {}", v.word())),
        (other, _) => (false, format!("no violation data for build behaviour {other:?}")),
    };
    RowProof { id: rule.id, check: rule.check, proof: "1 violation(s)".into(), killed, how }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `init` with `x` and `w` below it, `w` having got `got`.
    fn observed(w: &str, got: &[Signal]) -> Vec<Node> {
        let mut w = Node::new(w);
        w.markers.got = got.to_vec();
        let mut init = Node::new("init");
        init.children = vec![Node::new("x"), w];
        vec![init]
    }

    #[test]
    fn the_case_parses_and_has_two_steps() {
        assert_eq!(orphan_hup_case().steps.len(), 2);
    }

    #[test]
    fn w_with_sighup_means_all_members() {
        assert_eq!(orphan_hup_from(&observed("w", &[Signal::HUP])), Ok(OrphanHup::AllMembers));
    }

    #[test]
    fn w_without_sighup_means_stopped_members_only() {
        assert_eq!(orphan_hup_from(&observed("w", &[])), Ok(OrphanHup::StoppedMembers));
        assert_eq!(orphan_hup_from(&observed("w", &[Signal::CONT])), Ok(OrphanHup::StoppedMembers));
    }

    #[test]
    fn the_mt_init_case_reads_killed_survives_or_neither() {
        assert_eq!(mt_init_case().steps.len(), 2);
        let init = |children: Vec<Node>| {
            let mut i = Node::new("init");
            i.children = children;
            vec![i]
        };
        assert_eq!(mt_init_from(&init(vec![])), Ok(MtInitSignal::Killed));
        let mut n = Node::new("n");
        n.markers.main_exited = true;
        n.children = vec![Node::new("a")];
        assert_eq!(mt_init_from(&init(vec![n.clone()])), Ok(MtInitSignal::Survives));
        // n alive but a gone, or n no longer main-exited: no answer.
        let mut lost_a = n.clone();
        lost_a.children.clear();
        assert!(mt_init_from(&init(vec![lost_a])).unwrap_err().contains("neither way"));
        n.markers.main_exited = false;
        assert!(mt_init_from(&init(vec![n])).is_err());
    }

    #[test]
    fn a_lost_w_is_an_error_not_an_answer() {
        assert!(orphan_hup_from(&observed("v", &[Signal::HUP])).unwrap_err().contains("lost `w`"));
    }
}
