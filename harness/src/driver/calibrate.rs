//! Fits the model to the kernel build it runs on: runs the fixed cases of
//! [`crate::kernel::build`] in a sandbox, without the model, and lets the
//! kernel layer read the answer.
//!
//! This costs one small sandbox per command (a few milliseconds). A flag or
//! a `needs:` header can pin the answer instead; `reparent kernel` prints
//! what it found, so that no build difference passes unseen.

use crate::kernel::build;
use crate::model::{BuildTraits, ModelConfig, MtInitSignal};
use crate::scenario::OrphanHup;
use crate::sys::{Sandbox, SandboxOptions, SettleHints, SysError};

/// Why the build could not be told.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("telling this kernel build's behaviour apart failed: {0}")]
    Sys(#[from] SysError),
    #[error("telling this kernel build's behaviour apart failed: {0}")]
    Unexpected(String),
}

/// Who gets an orphaned process group's SIGHUP on the running kernel.
pub fn orphan_hup(opts: &SandboxOptions) -> Result<OrphanHup, CalibrateError> {
    // The case is about the kernel, not about an init under test.
    let opts = SandboxOptions { init: None, ..opts.clone() };
    let case = build::orphan_hup_case();
    let (mut sandbox, _) = Sandbox::start(&opts, &case.tree)?;
    let mut observed = Vec::new();
    for (i, entry) in case.steps.iter().enumerate() {
        // After `kill z SIGSTOP`, z is stopped: a stop wakes no pidfd.
        let hints = SettleHints { stopped: if i == 0 { vec!["z".into()] } else { vec![] }, ..SettleHints::default() };
        observed = sandbox.step(&entry.step, &hints)?.forest;
    }
    sandbox.close();
    build::orphan_hup_from(&observed).map_err(CalibrateError::Unexpected)
}

/// What a namespace init whose main thread exited does with an uncaught
/// SIGUSR1 from outside, on the running kernel (R6.6g).
pub fn mt_init(opts: &SandboxOptions) -> Result<MtInitSignal, CalibrateError> {
    let opts = SandboxOptions { init: None, ..opts.clone() };
    let case = build::mt_init_case();
    let (mut sandbox, _) = Sandbox::start(&opts, &case.tree)?;
    let mut observed = Vec::new();
    for entry in &case.steps {
        observed = sandbox.step(&entry.step, &SettleHints::default())?.forest;
    }
    sandbox.close();
    build::mt_init_from(&observed).map_err(CalibrateError::Unexpected)
}

/// The build traits of the running kernel, each observed unless `pinned`.
pub fn build_traits(
    opts: &SandboxOptions,
    pinned_orphan_hup: Option<OrphanHup>,
) -> Result<BuildTraits, CalibrateError> {
    let orphan_hup = match pinned_orphan_hup {
        Some(v) => v,
        None => orphan_hup(opts)?,
    };
    Ok(BuildTraits { orphan_hup, mt_init: mt_init(opts)? })
}

/// The model of the running kernel: its version and its observed build
/// traits, for tests and embedders that want what `reparent check` uses.
pub fn running_kernel_model(opts: &SandboxOptions) -> Result<ModelConfig, CalibrateError> {
    Ok(ModelConfig {
        kernel: crate::sys::os::kernel_version(),
        mutation: None,
        build: build_traits(opts, None)?,
        init: None,
    })
}
