//! The command that replays a failure: one place builds it for `run`,
//! `check`, the failure files of the random cases and `reparent kernel`, so
//! all of them print the same command, and it reproduces the failure — the
//! binary as it was invoked and every option that changes the outcome (the
//! model's kernel and mutation, the init under test), each part quoted for
//! a POSIX shell.

use std::path::Path;

use crate::model::{ModelConfig, Mutation, OrphanHup};

/// What a replay needs besides the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The binary, as invoked (`argv[0]`).
    pub exe: String,
    /// `--model-kernel`, when it was given (otherwise the running kernel,
    /// which the replay on this machine uses too).
    pub model_kernel: Option<(u32, u32)>,
    /// `--model-mutation`.
    pub model_mutation: Option<Mutation>,
    /// `--init`, as one string.
    pub init: Option<String>,
    /// `--model-orphan-hup`, when it was pinned (otherwise the replay
    /// observes the build again, as the failure did).
    pub model_orphan_hup: Option<OrphanHup>,
    /// `--reap-deadline-ms`, when it was not the default.
    pub reap_deadline_ms: Option<u64>,
}

impl Replay {
    /// A replay for the binary `exe` with the model of `cfg`; `explicit_kernel`
    /// says whether the model's kernel was chosen (not the running one).
    pub fn new(exe: impl Into<String>, cfg: ModelConfig, explicit_kernel: bool, init: Option<String>) -> Replay {
        Replay {
            exe: exe.into(),
            model_kernel: explicit_kernel.then_some(cfg.kernel),
            model_mutation: cfg.mutation,
            init,
            model_orphan_hup: None,
            reap_deadline_ms: None,
        }
    }

    /// The same, with `--model-orphan-hup` when it was pinned.
    pub fn with_orphan_hup(self, pinned: Option<OrphanHup>) -> Replay {
        Replay { model_orphan_hup: pinned, ..self }
    }

    /// The shell command that runs `file` again as the failure did.
    pub fn command(&self, file: &Path) -> String {
        let mut parts = vec![shell_quote(&self.exe)];
        if let Some((major, minor)) = self.model_kernel {
            parts.push(format!("--model-kernel {major}.{minor}"));
        }
        if let Some(m) = self.model_mutation {
            let name = Mutation::ALL.iter().find(|(_, x)| *x == m).map_or("?", |(n, _)| n);
            parts.push(format!("--model-mutation {}", shell_quote(name)));
        }
        if let Some(v) = self.model_orphan_hup {
            parts.push(format!("--model-orphan-hup {}", v.word()));
        }
        if let Some(init) = &self.init {
            parts.push(format!("--init {}", shell_quote(init)));
        }
        if let Some(ms) = self.reap_deadline_ms {
            parts.push(format!("--reap-deadline-ms {ms}"));
        }
        parts.push("run".into());
        parts.push(shell_quote(&file.display().to_string()));
        parts.join(" ")
    }
}

/// `s` as one word of a POSIX shell: as it is when it holds only characters
/// no shell treats specially (not `=`: a first word `A=b` would be an
/// assignment), otherwise in single quotes (a `'` inside
/// becoming `'\''`).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '+' | '@' | '%'));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_the_rest_is_quoted() {
        assert_eq!(shell_quote("/usr/bin/reparent"), "/usr/bin/reparent");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;rm"), "'$HOME;rm'");
        assert_eq!(shell_quote("~x"), "'~x'");
        // `A=b` first on a line would be an assignment.
        assert_eq!(shell_quote("A=b"), "'A=b'");
    }

    #[test]
    fn the_command_carries_every_option_that_changes_the_outcome() {
        let r = Replay {
            exe: "./target/release/reparent".into(),
            model_kernel: Some((5, 10)),
            model_mutation: Some(Mutation::FarthestSubreaper),
            init: Some("/usr/bin/tini --".into()),
            model_orphan_hup: Some(OrphanHup::StoppedMembers),
            reap_deadline_ms: Some(250),
        };
        assert_eq!(
            r.command(Path::new("fail dir/seed-1.tree")),
            "./target/release/reparent --model-kernel 5.10 --model-mutation farthest-subreaper \
             --model-orphan-hup stopped-only --init '/usr/bin/tini --' --reap-deadline-ms 250 run 'fail dir/seed-1.tree'"
        );
        let plain = Replay::new("reparent", ModelConfig::default(), false, None);
        assert_eq!(plain.command(Path::new("a.tree")), "reparent run a.tree");
        let chosen = Replay::new("reparent", ModelConfig::default(), true, None);
        assert_eq!(chosen.command(Path::new("a.tree")), "reparent --model-kernel 6.18 run a.tree");
    }
}
