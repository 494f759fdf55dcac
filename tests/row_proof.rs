//! Every row of `reparent kernel` can fail: each scenario row names a
//! deliberate bug of the model that breaks its rule, and its scenario's
//! `expect:` blocks must catch that bug with the model alone, while agreeing
//! with the true model; each probe (and build) row's judgement, fed
//! observations that break its rule, must fail naming the rule
//! (`harness/src/kernel/proof.rs`). A row that passes whatever the kernel
//! does would hide regressions.

use std::path::Path;

use reparent_harness::kernel::{self, Check, RULES};
use reparent_harness::model::{ModelConfig, Mutation};

fn read(file: &str) -> Result<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(file);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[test]
fn every_row_is_killed_by_its_mutation_or_violating_data() {
    let proofs = kernel::prove(RULES, ModelConfig::default(), read);
    assert_eq!(proofs.len(), RULES.len());
    let mut bad = Vec::new();
    for (rule, p) in RULES.iter().zip(&proofs) {
        match rule.check {
            Check::Scenario(file) if rule.killed_by.is_none() => {
                bad.push(format!("{} {file}: no killing mutation", rule.id))
            }
            _ if !p.killed => bad.push(format!("{} {} [{}]: {}", rule.id, rule.check, p.proof, p.how)),
            _ => {}
        }
    }
    assert!(bad.is_empty(), "rows that nothing makes fail:\n{}", bad.join("\n"));
}

#[test]
fn probe_rows_carry_no_mutation() {
    for rule in RULES.iter().filter(|r| matches!(r.check, Check::Probe(_))) {
        assert_eq!(rule.killed_by, None, "{} {}", rule.id, rule.check);
    }
}

/// Not a check: which mutations kill which scenario rows, to choose from.
/// `cargo test --release --test row_proof -- --ignored --nocapture`
#[test]
#[ignore]
fn matrix() {
    for rule in RULES {
        let Check::Scenario(file) = rule.check else { continue };
        let text = read(file).unwrap();
        let mut killers = Vec::new();
        for (name, m) in Mutation::ALL {
            let r = reparent_harness::kernel::Rule { killed_by: Some(m), ..*rule };
            let p = kernel::prove_scenario(&r, file, &text, ModelConfig::default());
            if p.killed {
                killers.push(name);
            } else if p.how.starts_with("invalid") {
                killers.push("INVALID");
                break;
            }
        }
        println!("{:<6} {:<42} {}", rule.id, file, killers.join(" "));
    }
}
