//! The table checks itself: every row must be able to fail. A row that
//! passes whatever the kernel does hides regressions, so each scenario row
//! names a deliberate bug of the model ([`Mutation`]) that breaks *its*
//! rule, and its scenario's `expect:` blocks must catch that bug with the
//! model alone — exactly the check of `tests/model_expect.rs`: at some step
//! the `expect:` block is none of the model's predicted outcomes, or the
//! model cannot run the step. Without the mutation, the same scenario must
//! agree with the model, or the proof means nothing.
//!
//! Probe rows are proven differently: every observation that
//! [`super::probes::violations`] gives for the row's probe — data that
//! breaks the rule — must be judged a failure that names the row's rule.
//! Build rows likewise, with [`super::build::prove`].
//!
//! Pure, like the rest of the kernel layer: the caller reads the scenario
//! files and passes their text.

use crate::model::{ModelConfig, World};
use crate::scenario::{self, Scenario};

use super::catalogue::{Check, Rule};
use super::table::Outcome;

/// What was done to try to make a row fail, and whether it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProof {
    pub id: &'static str,
    pub check: Check,
    /// The mutation's name for a scenario row; for a probe row, what the
    /// violating data is.
    pub proof: String,
    /// The row failed, as it must.
    pub killed: bool,
    /// Where and how it failed, or why it did not.
    pub how: String,
}

/// Checks a scenario against the model of `cfg` as `tests/model_expect.rs`
/// does. `None`: every `expect:` block is one of the model's outcomes.
/// `Some(how)`: the first step where it is not, or where the model cannot
/// run the step.
pub fn model_disagrees(s: &Scenario, cfg: ModelConfig) -> Option<String> {
    let mut world = match World::new(&s.tree, cfg) {
        Ok(w) => w,
        Err(e) => return Some(format!("the model cannot build the tree: {e}")),
    };
    for (i, entry) in s.steps.iter().enumerate() {
        let prediction = match world.apply(&entry.step) {
            Ok(p) => p,
            Err(e) => return Some(format!("step {} `{}`: the model cannot run it: {e}", i + 1, entry.step)),
        };
        world = match &entry.expect {
            None => prediction.outcomes[0].world.clone(),
            Some(expect) => match prediction.check(expect) {
                Ok(o) => o.world,
                Err(_) => {
                    return Some(format!(
                        "step {} `{}` (line {}): expect: is none of the {} outcome(s)",
                        i + 1,
                        entry.step,
                        entry.line,
                        prediction.outcomes.len()
                    ))
                }
            },
        };
    }
    None
}

/// The proof of a scenario row, given its file's text: the scenario agrees
/// with the true model and not with the model carrying the row's mutation.
pub fn prove_scenario(rule: &Rule, file: &str, text: &str, cfg: ModelConfig) -> RowProof {
    let mut proof = RowProof {
        id: rule.id,
        check: rule.check,
        proof: rule.killed_by.map_or_else(|| "none".to_string(), |m| m.name().to_string()),
        killed: false,
        how: String::new(),
    };
    let s = match scenario::parse(file, text) {
        Ok(s) => s,
        Err(e) => {
            proof.how = format!("invalid proof: the scenario does not parse: {e}");
            return proof;
        }
    };
    let cfg = cfg.for_needs(&s);
    let truth = ModelConfig { mutation: None, ..cfg };
    if let Some(how) = model_disagrees(&s, truth) {
        proof.how = format!("invalid proof: the scenario disagrees with the true model: {how}");
        return proof;
    }
    let Some(m) = rule.killed_by else {
        proof.how = "no mutation is known to make this row fail".into();
        return proof;
    };
    match model_disagrees(&s, ModelConfig { mutation: Some(m), ..cfg }) {
        Some(how) => {
            proof.killed = true;
            proof.how = how;
        }
        None => proof.how = "survived: every expect: block is still one of the model's outcomes".into(),
    }
    proof
}

/// The proof of a probe row: each violating observation of its probe is
/// judged, on a kernel new enough for the row, and must fail naming the
/// rule.
pub fn prove_probe(rule: &Rule, name: &str) -> RowProof {
    let kernel = rule.since.map_or((6, 18), |(v, _)| v.max((6, 18)));
    let violations = super::probes::violations(name);
    let mut proof = RowProof {
        id: rule.id,
        check: rule.check,
        proof: format!("{} violation(s)", violations.len()),
        killed: false,
        how: String::new(),
    };
    if violations.is_empty() {
        proof.how = "no violating observation is known".into();
        return proof;
    }
    let mut caught = Vec::new();
    for (what, seen) in &violations {
        match super::probes::judge(name, seen, kernel) {
            Outcome::Fail(msg) if msg.contains(rule.id) => caught.push(*what),
            Outcome::Fail(msg) => {
                proof.how = format!("{what}: fails, but does not name {}: {msg}", rule.id);
                return proof;
            }
            other => {
                proof.how = format!("{what}: survived, judged {other:?}");
                return proof;
            }
        }
    }
    proof.killed = true;
    proof.how = format!("each fails naming {}: {}", rule.id, caught.join("; "));
    proof
}

/// The proof of every row of `rules`. `read(file)` gives the text of a
/// bundled scenario.
pub fn prove(rules: &[Rule], cfg: ModelConfig, read: impl Fn(&str) -> Result<String, String>) -> Vec<RowProof> {
    rules
        .iter()
        .map(|rule| match rule.check {
            Check::Probe(name) => prove_probe(rule, name),
            Check::Build(name) => super::build::prove(rule, name),
            Check::Scenario(file) => match read(file) {
                Ok(text) => prove_scenario(rule, file, &text, cfg),
                Err(e) => RowProof {
                    id: rule.id,
                    check: rule.check,
                    proof: rule.killed_by.map_or_else(|| "none".to_string(), |m| m.name().to_string()),
                    killed: false,
                    how: format!("cannot read {file}: {e}"),
                },
            },
        })
        .collect()
}

/// The counts of a proof: rows killed, scenario rows not killed, probe and
/// build rows not killed.
pub fn summary(proofs: &[RowProof]) -> (usize, usize, usize) {
    let killed = proofs.iter().filter(|p| p.killed).count();
    let scen = proofs.iter().filter(|p| !p.killed && matches!(p.check, Check::Scenario(_))).count();
    let probes = proofs.iter().filter(|p| !p.killed && !matches!(p.check, Check::Scenario(_))).count();
    (killed, scen, probes)
}

/// The proof as a table, one row a line, in columns as wide as they need.
pub fn proof_text(proofs: &[RowProof]) -> String {
    let wc = proofs.iter().map(|p| p.check.to_string().len()).max().unwrap_or(0).max("CHECKED BY".len());
    let wp = proofs.iter().map(|p| p.proof.len()).max().unwrap_or(0).max("MUTATION OR VIOLATION".len());
    let mut out =
        format!("{:<6} {:<wc$} {:<wp$} {:<6} {}\n", "ID", "CHECKED BY", "MUTATION OR VIOLATION", "KILLED", "HOW");
    for p in proofs {
        let killed = if p.killed { "yes" } else { "NO" };
        out += &format!("{:<6} {:<wc$} {:<wp$} {:<6} {}\n", p.id, p.check.to_string(), p.proof, killed, p.how);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::catalogue::RULES;
    use crate::model::Mutation;

    const TEXT: &str = "tree:\n  init\n    s subreaper\n      t subreaper\n        a\n          b\n\n\
                        kill a\nexpect:\n  init\n    s subreaper\n      t subreaper\n        b\n";

    fn row(m: Option<Mutation>) -> Rule {
        Rule { killed_by: m, ..RULES.iter().copied().find(|r| r.check == Check::Scenario("deep-chain.tree")).unwrap() }
    }

    #[test]
    fn a_mutation_that_moves_the_orphan_kills_the_row() {
        let p = prove_scenario(&row(Some(Mutation::FarthestSubreaper)), "t.tree", TEXT, ModelConfig::default());
        assert!(p.killed, "{p:?}");
        assert_eq!(p.how, "step 1 `kill a` (line 8): expect: is none of the 1 outcome(s)");
    }

    #[test]
    fn a_mutation_the_scenario_cannot_see_survives() {
        let p = prove_scenario(&row(Some(Mutation::WalkCrossesNamespaces)), "t.tree", TEXT, ModelConfig::default());
        assert!(!p.killed, "{p:?}");
        assert!(p.how.starts_with("survived"), "{p:?}");
    }

    #[test]
    fn a_row_without_a_mutation_is_not_killed() {
        let p = prove_scenario(&row(None), "t.tree", TEXT, ModelConfig::default());
        assert!(!p.killed);
        assert!(p.how.contains("no mutation"), "{p:?}");
    }

    #[test]
    fn a_scenario_the_true_model_rejects_is_no_proof() {
        let wrong = TEXT.replace("        b\n", "      b\n");
        let p = prove_scenario(&row(Some(Mutation::FarthestSubreaper)), "t.tree", &wrong, ModelConfig::default());
        assert!(!p.killed);
        assert!(p.how.starts_with("invalid proof"), "{p:?}");
        assert!(p.how.contains("step 1 `kill a`"), "{p:?}");
    }

    #[test]
    fn every_row_of_the_catalogue_is_proven_without_files_but_scenario_rows() {
        let proofs = prove(RULES, ModelConfig::default(), |_| Err("no files".into()));
        assert_eq!(proofs.len(), RULES.len());
        for p in &proofs {
            match p.check {
                Check::Scenario(_) => assert!(!p.killed && p.how.starts_with("cannot read"), "{p:?}"),
                _ => assert!(p.killed, "{p:?}"),
            }
        }
    }

    #[test]
    fn a_probe_whose_violation_passes_is_not_killed() {
        // A probe row proven with another probe's violations: they are
        // that probe's rule, so they do not all fail naming this one.
        let rule = RULES.iter().copied().find(|r| r.check == Check::Probe("subreaper-readback")).unwrap();
        let p = prove_probe(&rule, "pdeathsig-range");
        assert!(!p.killed, "{p:?}");
    }
}
