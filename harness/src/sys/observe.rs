//! The observer: what the kernel says the namespace looks like right now.
//!
//! The sandbox helper lives outside the scenario's PID namespace but shares
//! its private mount namespace, where the namespace's PID 1 mounted a fresh
//! `/proc`. That procfs speaks the namespace's own numbering: `PPid` (field
//! 4 of `/proc/<pid>/stat`), the process group and the session (fields 5
//! and 6) are computed against the mount's namespace (kernel-rules.md
//! R1.10, `do_task_stat()`), and a parent outside it — the helper, for PID 1
//! — shows as 0. Nested namespaces are descendants of it, so their
//! processes are listed too, under the same numbers, with their parents —
//! also a process injected with `setns()`, whose parent lives outside the
//! nested namespace but inside ours.
//!
//! `/proc` lists thread-group leaders only; `/proc/<pid>/task/` lists every
//! thread. A leader that has exited while other threads live shows `Z` (a
//! delayed group leader, R8.3): the process is alive (`main-exited`), and
//! only when no thread is left alive is it a `zombie`. A process that has
//! begun to exit but is not a zombie yet — a namespace init waiting in
//! `zap_pid_ns_processes()` (R6.4) — has `PF_EXITING` in its flags (field
//! 9): `exiting`.
//!
//! The observer maps each pid to the node that announced it and renders the
//! canonical tree of the scenario format.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::scenario::{Attrs, Markers, Node, Signal};

/// `PF_EXITING` (include/linux/sched.h): set by `exit_signals()` early in
/// `do_exit()`.
pub const PF_EXITING: u32 = 0x4;

/// One process as `/proc/<pid>/stat` and `/proc/<pid>/task/` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    /// The leader thread's state.
    pub state: char,
    pub pgid: i32,
    pub sid: i32,
    /// The leader thread's `task->flags`.
    pub flags: u32,
    /// Living threads besides the leader (state other than `Z`/`X`).
    pub threads: u32,
    /// The state of a living thread — the leader's while it lives — or
    /// `None` when no thread lives.
    pub live_state: Option<char>,
    /// Every living thread, the leader included while it lives, has
    /// `PF_EXITING`.
    pub all_exiting: bool,
}

impl ProcStat {
    fn leader_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }

    /// Exited, with no thread left: a zombie (or being released, `X`).
    pub fn is_zombie(&self) -> bool {
        self.leader_dead() && self.threads == 0
    }

    /// The leader has exited, other threads live on.
    pub fn main_exited(&self) -> bool {
        self.leader_dead() && self.threads > 0 && !self.is_exiting()
    }

    /// A living thread is stopped (group stop or trace stop).
    pub fn is_stopped(&self) -> bool {
        matches!(self.live_state, Some('T' | 't'))
    }

    /// Begun to exit, not a zombie yet: every thread still alive has
    /// `PF_EXITING`. The last one may be a non-leader thread, with the leader
    /// already a zombie (R6.3: `zap_pid_ns_processes()` runs in the
    /// init's *last* thread).
    pub fn is_exiting(&self) -> bool {
        self.live_state.is_some() && self.all_exiting
    }
}

/// The fields of a stat line that the observer uses.
struct StatLine {
    state: char,
    ppid: i32,
    pgid: i32,
    sid: i32,
    flags: u32,
    num_threads: u32,
}

fn parse_stat(text: &str) -> Option<StatLine> {
    // The command name is in parentheses and may itself hold spaces and
    // parentheses: the fields we want come after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().take(18).collect();
    // stat(5) fields 3..=20: state ppid pgrp session tty_nr tpgid flags
    // minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
    // num_threads.
    Some(StatLine {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        num_threads: f.get(17)?.parse().ok()?,
    })
}

thread_local! {
    /// `/proc/<pid>/stat` and `/proc/<pid>/task/<tid>/stat` files kept
    /// open by (pid, tid) (tid 0 for the first), once
    /// [`keep_stat_files_open`] has been called: `None` until then.
    static STAT_FILES: std::cell::RefCell<Option<StatFiles>> = const { std::cell::RefCell::new(None) };
}

/// The open `stat` files, and how many may be kept at most.
struct StatFiles {
    open: HashMap<(i32, i32), std::fs::File>,
    cap: usize,
}

/// The most `stat` files kept open: at most a quarter of `RLIMIT_NOFILE`'s
/// soft limit, so that the descriptors the helper needs for its nodes
/// (a pidfd and a channel each) are not crowded out.
const MAX_KEPT_STAT_FILES: u64 = 512;

/// From now on, this thread keeps each `/proc/<pid>/stat` and
/// `/proc/<pid>/task/<tid>/stat` it reads open, and reads it again with
/// `pread()` from offset 0 (a `seq_file` starts over): the sandbox helper
/// reads every process's `stat` after every step, and an `open()` +
/// `close()` per read — a path walk each, and a dentry to let go — cost
/// more than the read. A descriptor stays bound to the process it was
/// opened for: once that process is reaped its reads fail with `ESRCH`,
/// and the file is closed and the path opened afresh, in case the pid now
/// names another process.
pub fn keep_stat_files_open() {
    let (soft, _) = super::os::rlimit(libc::RLIMIT_NOFILE);
    let cap = (soft / 4).min(MAX_KEPT_STAT_FILES) as usize;
    STAT_FILES.with(|c| *c.borrow_mut() = Some(StatFiles { open: Default::default(), cap }));
}

/// `/proc/<pid>/stat` (`tid` 0) or `/proc/<pid>/task/<tid>/stat`, through
/// a kept file where there is one (see [`keep_stat_files_open`]).
fn read_stat(pid: i32, tid: i32) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let kept = STAT_FILES.with(|c| {
        let mut c = c.borrow_mut();
        let files = c.as_mut()?;
        let f = files.open.get(&(pid, tid))?;
        let mut buf = [0u8; 1024];
        match f.read_at(&mut buf, 0) {
            // A stat line fits and ends with its newline.
            Ok(n) if n > 0 && n < buf.len() && buf[n - 1] == b'\n' => {
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            // Reaped (ESRCH), or anything unexpected: forget this file and
            // read the path as if it had never been kept.
            _ => {
                files.open.remove(&(pid, tid));
                None
            }
        }
    });
    if let Some(text) = kept {
        return Ok(text);
    }
    let path = if tid == 0 { format!("/proc/{pid}/stat") } else { format!("/proc/{pid}/task/{tid}/stat") };
    let mut f = with_room(|| std::fs::File::open(&path))?;
    let text = read_small(&mut f)?;
    // Kept while there is room; otherwise closed when `f` drops here.
    STAT_FILES.with(|c| {
        if let Some(files) = c.borrow_mut().as_mut() {
            if files.open.len() < files.cap {
                files.open.insert((pid, tid), f);
            }
        }
    });
    Ok(text)
}

/// Runs `open`; should it fail for want of a descriptor (EMFILE), closes
/// the kept `stat` files — and keeps at most half as many from then on —
/// and runs it once more. The kept files are a cache: they must never be
/// what the helper runs out of descriptors for (its nodes' pidfds and
/// channels are what [`keep_stat_files_open`]'s cap leaves room for, and a
/// tree can need more of them than the cap foresaw).
fn with_room<T>(open: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match open() {
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) && release_kept_files() => open(),
        r => r,
    }
}

/// Closes every kept `stat` file and halves the cap; false if none was
/// open.
fn release_kept_files() -> bool {
    STAT_FILES.with(|c| match c.borrow_mut().as_mut() {
        Some(files) if !files.open.is_empty() => {
            files.cap = files.open.len() / 2;
            files.open.clear();
            true
        }
        _ => false,
    })
}

/// A small `/proc` file just opened, read with one `read()` where it fits
/// in 1 KiB (a `stat` line does), instead of `read_to_string`'s size probe
/// and growing reads: the settle and the scans read hundreds of these per
/// case.
fn read_small(f: &mut std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 1024];
    let mut n = 0;
    loop {
        let got = f.read(&mut buf[n..])?;
        n += got;
        // A one-line file is whole once its newline has come (a seq_file
        // read returns all that fits); EOF is a read of 0.
        if got == 0 || buf[..n].ends_with(b"\n") {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if n == buf.len() {
            let mut all = buf.to_vec();
            f.read_to_end(&mut all)?;
            return Ok(String::from_utf8_lossy(&all).into_owned());
        }
    }
}

/// The state of one thread, from `/proc/<pid>/task/<tid>/stat`.
pub fn task_state(pid: i32, tid: i32) -> Option<char> {
    task_stat(pid, tid).map(|(s, _)| s)
}

/// The state and `task->flags` of one thread.
fn task_stat(pid: i32, tid: i32) -> Option<(char, u32)> {
    task_stat_or_error(pid, tid).ok().flatten()
}

/// [`task_stat`], telling a thread that is gone (`None`) from a read that
/// failed for another reason.
fn task_stat_or_error(pid: i32, tid: i32) -> std::io::Result<Option<(char, u32)>> {
    match read_stat(pid, tid) {
        Ok(text) => Ok(parse_stat(&text).map(|s| (s.state, s.flags))),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A read of `/proc` that failed because the process or thread is gone.
fn gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Reads `/proc/<pid>/stat` and its threads: `None` if the process is gone.
pub fn stat(pid: i32) -> Option<ProcStat> {
    stat_or_error(pid).ok().flatten()
}

/// [`stat`], telling a process that is gone (`None`) from a read that
/// failed for another reason — no descriptor left, say — which a scan must
/// not mistake for a missing process.
fn stat_or_error(pid: i32) -> std::io::Result<Option<ProcStat>> {
    let text = match read_stat(pid, 0) {
        Ok(text) => text,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    stat_from(pid, &text)
}

/// The process whose stat line is `text`, with its threads read from
/// `task/`: `Ok(None)` if it is gone meanwhile; an error if a thread
/// cannot be read for another reason (no descriptor left, say), which must
/// not pass for a process without threads.
fn stat_from(pid: i32, text: &str) -> std::io::Result<Option<ProcStat>> {
    let Some(StatLine { state, ppid, pgid, sid, flags, num_threads }) = parse_stat(text) else { return Ok(None) };
    let mut threads = 0;
    let mut live_state = (!matches!(state, 'Z' | 'X')).then_some(state);
    let mut all_exiting = live_state.is_none() || flags & PF_EXITING != 0;
    // `num_threads` counts the tasks not yet released, a zombie leader
    // included: with one, there is nothing more to read.
    if num_threads > 1 {
        let dir = match with_room(|| std::fs::read_dir(format!("/proc/{pid}/task"))) {
            Ok(dir) => dir,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        for entry in dir {
            let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if tid == pid {
                continue;
            }
            match task_stat_or_error(pid, tid)? {
                Some((s, f)) if !matches!(s, 'Z' | 'X') => {
                    threads += 1;
                    all_exiting &= f & PF_EXITING != 0;
                    // Stopped wins: a group stop stops every thread, and
                    // a thread that is not stopped yet will be.
                    if live_state.is_none() || matches!(s, 'T' | 't') {
                        live_state = Some(s);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Some(ProcStat { pid, ppid, state, pgid, sid, flags, threads, live_state, all_exiting }))
}

/// Every process of the namespace, in pid order.
pub fn scan() -> std::io::Result<Vec<ProcStat>> {
    let mut out = Vec::new();
    for pid in
        with_room(|| std::fs::read_dir("/proc"))?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
    {
        out.extend(stat_or_error(pid)?);
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// `PPid:` of `/proc/<pid>/status`.
pub fn status_ppid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok())
}

/// The calling process's (or, with `thread`, the calling thread's) id as
/// the sandbox's `/proc` numbers it: `/proc/self` links to the caller's
/// tgid in the procfs's namespace (`/proc/thread-self` to
/// `<tgid>/task/<tid>`). `getpid()` answers in the caller's own namespace,
/// which for a node in a nested one is not the number the helper sees (1
/// for its init).
pub fn own_id(thread: bool) -> Option<i32> {
    let link = std::fs::read_link(if thread { "/proc/thread-self" } else { "/proc/self" }).ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// What the observer knows of a node besides /proc: its name, attributes,
/// when it was created and the signals its handlers reported this step.
pub struct Known<'a> {
    pub name: &'a str,
    pub attrs: Attrs,
    pub seq: usize,
    pub got: Vec<Signal>,
}

/// Renders the canonical forest of the namespace from a scan. `known` maps a
/// pid in the namespace to the node that announced it; a process nobody
/// announced is shown as `unknown-<pid>` so that it cannot go unnoticed.
///
/// The attributes the kernel shows directly come from the scan: `threads`
/// (living extra threads), `pgrp` (leads its process group but not its
/// session) and `session` (leads its session). The rest are what the node
/// reported.
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
    // One process's node, its children not yet attached.
    let node = |pid: i32| -> Node {
        let p = by_pid[&pid];
        let (name, mut attrs, got) = match known.get(&pid) {
            Some(k) => (k.name.to_string(), k.attrs.clone(), k.got.clone()),
            None => (format!("unknown-{pid}"), Attrs::default(), Vec::new()),
        };
        attrs.threads = if p.is_exiting() { 0 } else { p.threads };
        attrs.session = p.sid == p.pid;
        attrs.pgrp = p.pgid == p.pid && !attrs.session;
        Node {
            name,
            attrs,
            markers: Markers {
                main_exited: p.main_exited(),
                exiting: p.is_exiting(),
                zombie: p.is_zombie(),
                stopped: p.is_stopped(),
                got,
            },
            children: Vec::new(),
        }
    };
    // No recursion, whatever the depth (a chain of thousands): every
    // process in depth-first order, then the nodes built from the last
    // back, so that each one's children are complete when it takes them.
    let mut order = Vec::with_capacity(procs.len());
    let mut stack: Vec<i32> = roots.iter().rev().copied().collect();
    while let Some(pid) = stack.pop() {
        order.push(pid);
        if let Some(v) = kids.get(&pid) {
            stack.extend(v.iter().rev());
        }
    }
    let mut done: HashMap<i32, Node> = HashMap::with_capacity(order.len());
    for &pid in order.iter().rev() {
        let mut n = node(pid);
        if let Some(v) = kids.get(&pid) {
            n.children = v.iter().filter_map(|c| done.remove(c)).collect();
        }
        done.insert(pid, n);
    }
    roots.iter().filter_map(|r| done.remove(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_come_after_the_last_parenthesis() {
        let line = "42 (a) b (c)) S 7 42 1 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 3 0";
        let s = parse_stat(line).expect("parses");
        assert_eq!((s.state, s.ppid, s.pgid, s.sid, s.flags, s.num_threads), ('S', 7, 42, 1, 4194564, 3));
    }

    /// A kept `stat` file reads the process it was opened for, live or a
    /// zombie, and once that process is reaped it is closed and the
    /// process is gone — never its last state read back.
    #[test]
    fn a_kept_stat_file_follows_its_process_to_its_reaping() {
        use std::process::{Command, Stdio};
        let kept = || STAT_FILES.with(|c| c.borrow().as_ref().map(|f| f.open.len()));
        keep_stat_files_open();
        assert_eq!(kept(), Some(0), "kept from now on");
        // `cat` exits at EOF on its stdin: no signal needed.
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("cat");
        let pid = child.id() as i32;
        let first = stat(pid).expect("cat is alive");
        assert_eq!((first.pid, first.ppid), (pid, std::process::id() as i32));
        assert_eq!(kept(), Some(1), "the file is kept");
        assert!(stat(pid).is_some_and(|s| s.ppid == first.ppid), "read again through the kept file");
        // Our own unreaped child: the pid names exactly it.
        let pidfd = crate::sys::os::pidfd_open(pid).expect("pidfd of cat");
        drop(child.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let exited =
            crate::sys::os::pidfd_wait(std::os::fd::AsFd::as_fd(&pidfd), crate::sys::os::PidfdState::Exited, deadline);
        assert_eq!(exited.ok(), Some(true), "cat did not exit at EOF");
        // Exited, not reaped: a zombie, read through the same file.
        assert!(stat(pid).is_some_and(|s| s.is_zombie()), "cat is a zombie");
        assert_eq!(kept(), Some(1));
        child.wait().expect("reap cat");
        assert!(stat(pid).is_none(), "a reaped process reads as gone");
        assert_eq!(kept(), Some(0), "and its file is closed");
        // With no room left, a read still works and keeps nothing.
        STAT_FILES.with(|c| *c.borrow_mut() = Some(StatFiles { open: Default::default(), cap: 0 }));
        assert!(stat(std::process::id() as i32).is_some(), "this process reads");
        assert_eq!(kept(), Some(0), "nothing kept past the cap");
        STAT_FILES.with(|c| *c.borrow_mut() = None);
    }

    #[test]
    fn a_dead_leader_with_living_threads_is_main_exited_not_zombie() {
        let p = ProcStat {
            pid: 5,
            ppid: 1,
            state: 'Z',
            pgid: 0,
            sid: 0,
            flags: 0,
            threads: 2,
            live_state: Some('S'),
            all_exiting: false,
        };
        assert!(p.main_exited() && !p.is_zombie() && !p.is_exiting() && !p.is_stopped());
        let z = ProcStat { threads: 0, live_state: None, ..p.clone() };
        assert!(z.is_zombie() && !z.main_exited());
        let e = ProcStat { state: 'S', flags: PF_EXITING, threads: 0, all_exiting: true, ..p.clone() };
        assert!(e.is_exiting() && !e.is_zombie() && !e.main_exited());
        // The last thread of an init in zap_pid_ns_processes() may be a
        // non-leader thread, the leader a zombie already.
        let t = ProcStat { state: 'Z', flags: PF_EXITING, threads: 1, all_exiting: true, ..p };
        assert!(t.is_exiting() && !t.main_exited() && !t.is_zombie());
        assert!(e.is_exiting() && !e.is_zombie());
    }
}
