//! Signal names and numbers, as `signal(7)` writes them for x86_64 and the
//! other architectures with the generic numbering (arm, arm64, riscv, s390).
//!
//! Real-time signals follow the C library's numbering, not the kernel's:
//! glibc keeps 32 and 33 for itself, so `SIGRTMIN` is 34 and `SIGRTMAX` 64,
//! which is what a process written in C or Rust on glibc sees.

use std::fmt;

/// A signal number (1..=64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Signal(pub i32);

const NAMES: [(&str, i32); 31] = [
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// Other names `signal(7)` gives for the same numbers; accepted on input,
/// never rendered.
const ALIASES: [(&str, i32); 4] = [("SIGIOT", 6), ("SIGPOLL", 29), ("SIGCLD", 17), ("SIGUNUSED", 31)];

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const KILL: Signal = Signal(9);
    pub const TERM: Signal = Signal(15);
    pub const CHLD: Signal = Signal(17);
    pub const CONT: Signal = Signal(18);
    pub const STOP: Signal = Signal(19);
    pub const TSTP: Signal = Signal(20);
    /// glibc's `SIGRTMIN`.
    pub const RTMIN: i32 = 34;
    /// `SIGRTMAX`.
    pub const RTMAX: i32 = 64;

    /// Parses `SIGKILL`, `SIGRTMIN+2`, `SIGRTMAX-1` and the aliases.
    pub fn from_name(s: &str) -> Option<Signal> {
        if let Some(&(_, n)) = NAMES.iter().chain(ALIASES.iter()).find(|(name, _)| *name == s) {
            return Some(Signal(n));
        }
        let offset = |rest: &str| -> Option<i32> {
            if rest.is_empty() {
                return Some(0);
            }
            let digits = rest.get(1..)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
                return None;
            }
            digits.parse().ok()
        };
        if let Some(rest) = s.strip_prefix("SIGRTMIN") {
            if rest.is_empty() || rest.starts_with('+') {
                let n = Signal::RTMIN + offset(rest)?;
                return (n <= Signal::RTMAX).then_some(Signal(n));
            }
        }
        if let Some(rest) = s.strip_prefix("SIGRTMAX") {
            if rest.is_empty() || rest.starts_with('-') {
                let n = Signal::RTMAX - offset(rest)?;
                return (n >= Signal::RTMIN).then_some(Signal(n));
            }
        }
        None
    }

    /// The canonical name: `SIGTERM`, `SIGRTMIN+3`. Numbers glibc reserves
    /// (32, 33) have no name and render as `SIG32`; they never parse.
    pub fn name(self) -> String {
        if let Some(&(name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return name.to_string();
        }
        if (Signal::RTMIN..=Signal::RTMAX).contains(&self.0) {
            let k = self.0 - Signal::RTMIN;
            return if k == 0 { "SIGRTMIN".into() } else { format!("SIGRTMIN+{k}") };
        }
        format!("SIG{}", self.0)
    }

    /// This signal's bit in a 64-bit signal mask: bit n-1 for signal n,
    /// as the kernel lays out `sigset_t` and /proc/PID/status shows it
    /// (`SigCgt:`). 0 for a number outside 1..=64. The one mapping between
    /// numbers and masks: the model's signal sets, the node's record of the
    /// signals its handlers ran for, and the sandbox that reads it all use
    /// it. Async-signal-safe.
    pub const fn mask_bit(self) -> u64 {
        if self.0 >= 1 && self.0 <= 64 {
            1u64 << (self.0 - 1)
        } else {
            0
        }
    }

    /// The signals of a mask of [`Signal::mask_bit`]s, in number order.
    pub fn from_mask(mask: u64) -> Vec<Signal> {
        (1..=64).map(Signal).filter(|s| mask & s.mask_bit() != 0).collect()
    }

    /// Every signal that has a canonical name, in number order.
    pub fn all() -> impl Iterator<Item = Signal> {
        (1..=31).chain(Signal::RTMIN..=Signal::RTMAX).map(Signal)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_signal_round_trips() {
        for s in Signal::all() {
            assert_eq!(Signal::from_name(&s.name()), Some(s), "{}", s.name());
        }
    }

    #[test]
    fn every_signal_has_its_own_mask_bit() {
        let all: Vec<Signal> = (1..=64).map(Signal).collect();
        let mask = all.iter().fold(0, |m, s| m | s.mask_bit());
        assert_eq!(mask, u64::MAX);
        assert_eq!(Signal::from_mask(mask), all);
        assert_eq!(Signal(64).mask_bit(), 1 << 63);
        assert_eq!(Signal(0).mask_bit() | Signal(65).mask_bit(), 0);
    }

    #[test]
    fn realtime_names_follow_glibc() {
        assert_eq!(Signal::from_name("SIGRTMIN+2"), Some(Signal(36)));
        assert_eq!(Signal::from_name("SIGRTMAX"), Some(Signal(64)));
        assert_eq!(Signal::from_name("SIGRTMAX-30"), Some(Signal(34)));
        assert_eq!(Signal::from_name("SIGRTMIN+31"), None);
        assert_eq!(Signal::from_name("SIGRTMIN+"), None);
        assert_eq!(Signal::from_name("SIGKILLX"), None);
        assert_eq!(Signal::from_name("sigkill"), None);
    }
}
