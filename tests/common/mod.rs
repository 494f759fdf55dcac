//! Helpers shared by the integration tests.

use std::collections::HashSet;

/// Every process whose parent chain (host view) leads to `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(ppid) =
                stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse::<i32>().ok())
            {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier: HashSet<i32> = [root].into();
    while !frontier.is_empty() {
        let next: HashSet<i32> = parent.iter().filter(|(_, pp)| frontier.contains(pp)).map(|(p, _)| *p).collect();
        out.extend(next.iter().copied());
        frontier = next;
    }
    out
}
