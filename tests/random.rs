//! Random cases as part of `cargo test`: random trees and steps on this
//! kernel, checked against the model after every step. `REPARENT_CASES`
//! (default 64) scales it; `REPARENT_SEED` fixes the seed.

use reparent_harness::driver::calibrate;
use reparent_harness::driver::random::{self, RandomParams};
use reparent_harness::driver::replay::Replay;
use reparent_harness::sys::SandboxOptions;

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
    }
}

#[test]
fn random_cases_agree_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let seed = env_num("REPARENT_SEED", 20261127);
    let params = RandomParams {
        cases: env_num("REPARENT_CASES", 64) as u32,
        seed,
        max_nodes: 24,
        max_steps: 8,
        failures_dir: dir.path().to_path_buf(),
        replay: Replay { exe: env!("CARGO_BIN_EXE_reparent").into(), ..Replay::default() },
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        one_cpu_each: true,
    };
    let opts = SandboxOptions::new(env!("CARGO_BIN_EXE_reparent")).unwrap();
    let cfg = calibrate::running_kernel_model(&opts).unwrap();
    let summary = random::run(&opts, cfg, &params, |_| {});
    if let Some(f) = summary.failure {
        panic!("seed {seed}: {}\nminimal case:\n{}", f.message, f.text);
    }
    assert_eq!(summary.passed, params.cases);
    assert!(summary.steps >= params.cases as usize, "every case ran at least one step");
}
