//! The observer: what the kernel says the namespace looks like right now.
//!
//! The sandbox helper lives outside the scenario's PID namespace but shares
//! its private mount namespace, where the namespace's PID 1 mounted a fresh
//! `/proc`. That procfs speaks the namespace's own numbering: `PPid` (field
//! 4 of `/proc/<pid>/stat`) is computed against the mount's namespace
//! (kernel-rules.md R1.10, `do_task_stat()`), and a parent outside it — the
//! helper, for PID 1 — shows as 0. The observer lists that `/proc`, maps each
//! pid to the node that announced it, and renders the canonical tree of the
//! scenario format, with `zombie` (state `Z`) and `stopped` (`T`/`t`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::scenario::{Attrs, Markers, Node};

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
}

/// Reads `/proc/<pid>/stat`: `None` if the process is gone.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and
    // parentheses: the fields we want come after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { pid, ppid, state })
}

/// Every process of the namespace, in pid order.
pub fn scan() -> std::io::Result<Vec<ProcStat>> {
    let mut out: Vec<ProcStat> = std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect();
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// What the observer knows of a node besides /proc: its name, attributes
/// and when it was created.
pub struct Known<'a> {
    pub name: &'a str,
    pub attrs: Attrs,
    pub seq: usize,
}

/// Renders the canonical forest of the namespace from a scan. `known` maps a
/// pid in the namespace to the node that announced it; a process nobody
/// announced is shown as `unknown-<pid>` so that it cannot go unnoticed.
pub fn render(procs: &[ProcStat], known: &HashMap<i32, Known<'_>>) -> Vec<Node> {
    let by_pid: HashMap<i32, &ProcStat> = procs.iter().map(|p| (p.pid, p)).collect();
    let seq = |pid: i32| known.get(&pid).map_or(usize::MAX, |k| k.seq);
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut roots = Vec::new();
    for p in procs {
        if by_pid.contains_key(&p.ppid) {
            kids.entry(p.ppid).or_default().push(p.pid);
        } else {
            roots.push(p.pid);
        }
    }
    for v in kids.values_mut() {
        v.sort_by_key(|&pid| (seq(pid), pid));
    }
    roots.sort_by_key(|&pid| (seq(pid), pid));
    fn build(
        pid: i32,
        by_pid: &HashMap<i32, &ProcStat>,
        kids: &HashMap<i32, Vec<i32>>,
        known: &HashMap<i32, Known<'_>>,
    ) -> Node {
        let p = by_pid[&pid];
        let (name, attrs) = match known.get(&pid) {
            Some(k) => (k.name.to_string(), k.attrs.clone()),
            None => (format!("unknown-{pid}"), Attrs::default()),
        };
        Node {
            name,
            attrs,
            markers: Markers {
                zombie: p.state == 'Z' || p.state == 'X',
                stopped: matches!(p.state, 'T' | 't'),
                ..Markers::default()
            },
            children: kids
                .get(&pid)
                .map_or_else(Vec::new, |v| v.iter().map(|&c| build(c, by_pid, kids, known)).collect()),
        }
    }
    roots.iter().map(|&r| build(r, &by_pid, &kids, known)).collect()
}
