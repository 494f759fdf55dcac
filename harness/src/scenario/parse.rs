//! Reading a `.tree` file into a [`Scenario`], or saying exactly where and why
//! it cannot be read.
//!
//! A scenario that is misread runs a different experiment from the one its
//! author wrote, and passes or fails for the wrong reason. So the parser is
//! strict: every line is either understood completely or rejected with the
//! file, line and column, what was found and what was expected. Besides the
//! syntax it rejects what the kernel would refuse before anything runs, so
//! that such a file fails here and not halfway through a run: `pgrp` with
//! `session` on one node (setsid() fails with EPERM for a process-group
//! leader), `clone-parent` by a namespace init (clone() fails with EINVAL),
//! `catch=SIGKILL`. It works line by line in one pass: headers, then `tree:`
//! and its node lines, then steps each followed by an optional `expect:`
//! block, checking as it goes that every name a step or an `expect:` block
//! uses was defined before it. It never panics, whatever the input.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::escape::escape;
use super::{Attrs, Markers, Name, Need, Node, OrphanHup, Scenario, Signal, Step, StepEntry, ThreadRef, INIT};

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ParseError {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    pub message: String,
}

/// Parses the text of the `.tree` file `file` (the name is only used in
/// errors).
pub fn parse(file: &str, text: &str) -> Result<Scenario, ParseError> {
    let mut parser = Parser::new(file);
    for (i, line) in text.split('\n').enumerate() {
        parser.line(i + 1, line)?;
    }
    parser.finish()
}

/// The largest file the loader reads: 32 MiB. A scenario is a few hundred
/// bytes, but indentation grows with depth: a chain of 5,000 nested
/// processes in `tree:` is 25 MB, mostly spaces, and must load. The limit
/// keeps `reparent explain /dev/zero` (or a runaway generated file) from
/// reading until memory runs out.
pub const MAX_FILE_BYTES: usize = 32 << 20;
/// The most processes a file can define, by `tree:` and `spawn` together.
/// Far beyond any hand-written scenario, and below the process limits a
/// sandbox can count on (`ulimit -u` is often 4096 to 63000).
pub const MAX_PROCESSES: usize = 10_000;
/// The most steps a file can have.
pub const MAX_STEPS: usize = 10_000;
/// How deep `pidns` processes can nest. The kernel allows 32 levels of PID
/// namespace below the initial one (`MAX_PID_NS_LEVEL`,
/// include/linux/pid_namespace.h; `create_pid_namespace()` fails with
/// ENOSPC beyond it) and the scenario's own namespace is one of them, so at
/// most 31 more, when the harness runs in the initial namespace.
pub const MAX_PIDNS_NESTING: usize = 31;

/// Parses a file's bytes: at most [`MAX_FILE_BYTES`] (a caller that reads
/// from a file reads one byte more, so that a longer file is refused here),
/// UTF-8, then [`parse`]. Both refusals name the line and column of the
/// offending byte.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Scenario, ParseError> {
    let at = |offset: usize, message: String| {
        let before = &bytes[..offset];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        ParseError {
            file: file.to_string(),
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            col: String::from_utf8_lossy(&before[line_start..]).chars().count() + 1,
            message,
        }
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(at(
            MAX_FILE_BYTES,
            format!(
                "the file is larger than the limit of {} MiB ({MAX_FILE_BYTES} bytes); expected a scenario \
                 file (this byte is the first past the limit)",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let bad: Vec<String> = bytes[offset..offset + e.error_len().unwrap_or(bytes.len() - offset)]
            .iter()
            .map(|b| format!("0x{b:02x}"))
            .collect();
        at(offset, format!("found a byte that is not UTF-8 ({}); expected UTF-8 text", bad.join(" ")))
    })?;
    parse(file, text)
}

/// The steps, in the order of the format's table.
const STEPS: [&str; 9] = ["kill", "exit", "subreaper", "spawn", "thread-exit", "exec", "reap", "setpgid", "setsid"];
/// Attribute words that take no value.
const ATTRIBUTE_FLAGS: [&str; 5] = ["subreaper", "noreap", "pgrp", "session", "pidns"];
/// Marker words that take no value.
const MARKER_FLAGS: [&str; 4] = ["main-exited", "exiting", "zombie", "stopped"];
/// Words of the form `key=VALUE` (besides `sigchld=ignore`), with the
/// placeholder the format writes for their value. `got` is a marker,
/// `thread` and `into` are options of `spawn`.
const VALUED: [(&str, &str); 6] =
    [("threads", "N"), ("pdeathsig", "SIG"), ("catch", "SIG,..."), ("got", "SIG,..."), ("thread", "K"), ("into", "N")];
/// The attributes, markers and spawn options as messages list them, in
/// canonical order.
const ATTRIBUTES_LISTED: &str = "subreaper, noreap, sigchld=ignore, threads=N, pdeathsig=SIG, catch=SIG,..., \
                                 pgrp, session, pidns";
const MARKERS_LISTED: &str = "main-exited, exiting, zombie, stopped, got=SIG,...";
const SPAWN_OPTIONS_LISTED: &str = "thread=K, clone-parent, into=N";
/// The most extra threads a node can have, so also the highest thread
/// number `thread=K` and `thread-exit A K` can name.
pub(super) const MAX_THREADS: u32 = 8;

/// Where a node's attribute words stand; it decides which words are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A node line of `tree:`.
    Tree,
    /// A node line of an `expect:` block, where markers are allowed too.
    Expect,
    /// The words after `spawn B by A`, where spawn options are allowed too.
    Spawn,
}

/// Where in the file the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    /// Before `tree:`.
    Headers,
    /// After `tree:`, before the first step.
    Tree,
    /// After the first step.
    Steps,
}

/// One space-separated word of a line, with its 1-based column.
#[derive(Clone, Copy, Debug)]
struct Word<'t> {
    text: &'t str,
    col: usize,
}

/// Node lines being assembled into a forest. `path` holds the last node
/// read and its open ancestors: a node is attached to its parent only once
/// a line at its depth or above shows that it has no more children.
#[derive(Debug, Default)]
struct Forest {
    roots: Vec<Node>,
    path: Vec<Node>,
}

impl Forest {
    fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.path.is_empty()
    }

    /// The depth of the last node read (1 for a root), 0 if none.
    fn depth(&self) -> usize {
        self.path.len()
    }

    /// Adds `node` at `depth` (1 for a root), which the caller has checked
    /// is at most one level below the last node.
    fn push(&mut self, depth: usize, node: Node) {
        while self.path.len() >= depth.max(1) {
            self.close();
        }
        self.path.push(node);
    }

    fn close(&mut self) {
        if let Some(node) = self.path.pop() {
            match self.path.last_mut() {
                Some(parent) => parent.children.push(node),
                None => self.roots.push(node),
            }
        }
    }

    fn finish(mut self) -> Vec<Node> {
        while !self.path.is_empty() {
            self.close();
        }
        self.roots
    }
}

/// An open `expect:` block; it belongs to the last step read.
#[derive(Debug, Default)]
struct Block {
    forest: Forest,
    /// The names listed so far, with their line.
    listed: HashMap<Name, usize>,
}

struct Parser<'f> {
    file: &'f str,
    /// The line being read.
    line: usize,
    /// The column just past the end of the line being read.
    eol: usize,
    section: Section,
    /// The `about:` text and its line.
    about: Option<(String, usize)>,
    needs: Vec<Need>,
    kernel_line: Option<usize>,
    root_line: Option<usize>,
    tree_line: usize,
    tree: Forest,
    steps: Vec<StepEntry>,
    expect: Option<Block>,
    /// Every process defined so far, by the tree or a `spawn`, with the line
    /// that defines it. Ordered so that suggestions are deterministic.
    defined: BTreeMap<Name, usize>,
    /// The processes defined with `pidns`: the inits of nested namespaces,
    /// which `into=` can name and which cannot `clone-parent`.
    namespaces: HashSet<Name>,
    /// How many `pidns` processes enclose each process's PID namespace
    /// (0: the scenario's own), to refuse nesting the kernel refuses.
    pidns_nesting: HashMap<Name, usize>,
}

impl<'f> Parser<'f> {
    fn new(file: &'f str) -> Self {
        Parser {
            file,
            line: 1,
            eol: 1,
            section: Section::Headers,
            about: None,
            needs: Vec::new(),
            kernel_line: None,
            root_line: None,
            tree_line: 0,
            tree: Forest::default(),
            steps: Vec::new(),
            expect: None,
            defined: BTreeMap::new(),
            namespaces: HashSet::new(),
            pidns_nesting: HashMap::new(),
        }
    }

    fn err(&self, col: usize, message: impl Into<String>) -> ParseError {
        ParseError { file: self.file.to_string(), line: self.line, col, message: message.into() }
    }

    fn err_eol(&self, message: impl Into<String>) -> ParseError {
        self.err(self.eol, message)
    }

    fn line(&mut self, no: usize, text: &str) -> Result<(), ParseError> {
        self.line = no;
        self.eol = text.chars().count() + 1;
        if let Some(i) = text.chars().position(|c| c == '\r') {
            return Err(self.err(
                i + 1,
                "found a carriage return (`\\r`): lines must end with `\\n` alone \
                 (convert the file from Windows line ends)",
            ));
        }
        let body = text.trim_start_matches([' ', '\t']);
        if body.is_empty() || body.starts_with('#') {
            return Ok(());
        }
        let indentation = &text[..text.len() - body.len()];
        if let Some(i) = indentation.chars().position(|c| c == '\t') {
            return Err(self.err(i + 1, "found a tab in the indentation; expected spaces, two per level"));
        }
        // Only spaces are left, so bytes and characters agree.
        let indent = indentation.len();
        match self.section {
            Section::Headers => self.header(indent, body),
            Section::Tree | Section::Steps if indent == 0 => self.top_level(body),
            Section::Tree | Section::Steps => self.node_line(indent, body),
        }
    }

    /// Splits `text`, which starts at column `first_col`, into words.
    fn words<'t>(&self, text: &'t str, first_col: usize) -> Result<Vec<Word<'t>>, ParseError> {
        let mut words = Vec::new();
        let mut start: Option<(usize, usize)> = None;
        for (col, (i, c)) in (first_col..).zip(text.char_indices()) {
            match c {
                ' ' => {
                    if let Some((b, wcol)) = start.take() {
                        words.push(Word { text: &text[b..i], col: wcol });
                    }
                }
                '\t' => {
                    return Err(self.err(col, "found a tab; expected words separated by spaces"));
                }
                '#' if start.is_none() => {
                    return Err(self.err(
                        col,
                        "found `#` after the start of the line; a comment must be on a line \
                         of its own",
                    ));
                }
                _ => {
                    if start.is_none() {
                        start = Some((i, col));
                    }
                }
            }
        }
        if let Some((b, wcol)) = start {
            words.push(Word { text: &text[b..], col: wcol });
        }
        Ok(words)
    }

    // ---- headers ----

    fn header(&mut self, indent: usize, body: &str) -> Result<(), ParseError> {
        if indent > 0 {
            return Err(self.err(
                indent + 1,
                "expected a header (`about:`, `needs:`) or `tree:` at column 1, found an \
                 indented line (node lines go under `tree:`)",
            ));
        }
        if let Some(rest) = body.strip_prefix("about:") {
            if let Some((_, first)) = &self.about {
                return Err(
                    self.err(1, format!("found a second `about:` header; expected one (the first is on line {first})"))
                );
            }
            let text = rest.trim();
            if text.is_empty() {
                return Err(self.err(7, "expected the text of `about:`, found the end of the line"));
            }
            self.about = Some((text.to_string(), self.line));
            return Ok(());
        }
        if let Some(rest) = body.strip_prefix("needs:") {
            let words = self.words(rest, 7)?;
            return self.needs(&words);
        }
        let words = self.words(body, 1)?;
        let Some((first, rest)) = words.split_first() else {
            return Ok(());
        };
        if first.text != "tree:" {
            let found = first.text;
            let hint = if STEPS.contains(&found) || found == "expect:" {
                " (steps come after the tree)".to_string()
            } else {
                did_you_mean(found, ["about:", "needs:", "tree:"])
            };
            return Err(self.err(
                first.col,
                format!("expected a header (`about:`, `needs:`) or `tree:`, found `{}`{hint}", escape(found)),
            ));
        }
        if let Some(extra) = rest.first() {
            return Err(self.err(
                extra.col,
                format!("unexpected `{}` after `tree:`; expected node lines on the lines below it", escape(extra.text)),
            ));
        }
        self.section = Section::Tree;
        self.tree_line = self.line;
        Ok(())
    }

    fn needs(&mut self, words: &[Word]) -> Result<(), ParseError> {
        let Some((what, rest)) = words.split_first() else {
            return Err(self.err_eol(
                "expected `kernel >= X.Y`, `root` or `orphan-hup` after `needs:`, found the end of the line",
            ));
        };
        match what.text {
            "root" => {
                if let Some(extra) = rest.first() {
                    return Err(self.err(
                        extra.col,
                        format!(
                            "unexpected `{}` after `needs: root`; expected the end of the line",
                            escape(extra.text)
                        ),
                    ));
                }
                if let Some(first) = self.root_line {
                    return Err(self.err(
                        what.col,
                        format!("found a second `needs: root`; expected one (the first is on line {first})"),
                    ));
                }
                self.root_line = Some(self.line);
                self.needs.push(Need::Root);
            }
            "kernel" => {
                if let Some(first) = self.kernel_line {
                    return Err(self.err(
                        what.col,
                        format!("found a second `needs: kernel`; expected one (the first is on line {first})"),
                    ));
                }
                let Some(op) = rest.first() else {
                    return Err(self.err_eol("expected `>=` after `needs: kernel`, found the end of the line"));
                };
                if op.text != ">=" {
                    return Err(
                        self.err(op.col, format!("expected `>=` after `needs: kernel`, found `{}`", escape(op.text)))
                    );
                }
                let Some(version) = rest.get(1) else {
                    return Err(
                        self.err_eol("expected a kernel version like `5.10` after `>=`, found the end of the line")
                    );
                };
                let (major, minor) = self.kernel_version(*version)?;
                if let Some(extra) = rest.get(2) {
                    return Err(self.err(
                        extra.col,
                        format!(
                            "unexpected `{}` after the kernel version; expected the end of the line",
                            escape(extra.text)
                        ),
                    ));
                }
                self.kernel_line = Some(self.line);
                self.needs.push(Need::Kernel { major, minor });
            }
            "orphan-hup" => {
                if self.needs.iter().any(|n| matches!(n, Need::OrphanHup(_))) {
                    return Err(self.err(what.col, "found a second `needs: orphan-hup`; expected one".to_string()));
                }
                let words: Vec<&str> = OrphanHup::ALL.iter().map(|(w, _)| *w).collect();
                let Some(value) = rest.first() else {
                    return Err(self.err_eol(format!(
                        "expected {} after `needs: orphan-hup`, found the end of the line",
                        quoted_list(&words)
                    )));
                };
                let Some(v) = OrphanHup::from_word(value.text) else {
                    return Err(self.err(
                        value.col,
                        format!(
                            "expected {} after `needs: orphan-hup`, found `{}`{}",
                            quoted_list(&words),
                            escape(value.text),
                            did_you_mean(value.text, words.iter().copied())
                        ),
                    ));
                };
                if let Some(extra) = rest.get(1) {
                    return Err(self.err(
                        extra.col,
                        format!(
                            "unexpected `{}` after `needs: orphan-hup {}`; expected the end of the line",
                            escape(extra.text),
                            escape(value.text)
                        ),
                    ));
                }
                self.needs.push(Need::OrphanHup(v));
            }
            other => {
                return Err(self.err(
                    what.col,
                    format!(
                        "expected `kernel >= X.Y`, `root` or `orphan-hup` after `needs:`, found `{}`{}",
                        escape(other),
                        did_you_mean(other, ["kernel", "root", "orphan-hup"])
                    ),
                ));
            }
        }
        Ok(())
    }

    fn kernel_version(&self, w: Word) -> Result<(u32, u32), ParseError> {
        let expected =
            || self.err(w.col, format!("expected a kernel version `X.Y` like `5.10`, found `{}`", escape(w.text)));
        let (major, minor) = w.text.split_once('.').ok_or_else(expected)?;
        let number = |s: &str| -> Result<u32, ParseError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(expected());
            }
            s.parse().map_err(|_| self.err(w.col, format!("kernel version `{}` is out of range", escape(w.text))))
        };
        Ok((number(major)?, number(minor)?))
    }

    // ---- steps and `expect:` ----

    fn top_level(&mut self, body: &str) -> Result<(), ParseError> {
        if self.section == Section::Tree && self.tree.is_empty() {
            return Err(self.err(
                1,
                format!(
                    "expected the root node `init`, indented two spaces under `tree:` (line {}), \
                     found `{}` at column 1",
                    self.tree_line,
                    escape(first_word(body))
                ),
            ));
        }
        self.section = Section::Steps;
        if body.starts_with("about:") || body.starts_with("needs:") {
            return Err(self.err(
                1,
                format!(
                    "found a header after `tree:` (line {}); headers (`about:`, `needs:`) must come before it",
                    self.tree_line
                ),
            ));
        }
        let words = self.words(body, 1)?;
        let Some((keyword, args)) = words.split_first() else {
            return Ok(());
        };
        match keyword.text {
            "expect:" => self.expect_header(args),
            "tree:" => {
                Err(self
                    .err(1, format!("found a second `tree:`; expected one (the first is on line {})", self.tree_line)))
            }
            _ => {
                self.close_expect();
                if self.steps.len() >= MAX_STEPS {
                    return Err(self.err(
                        keyword.col,
                        format!("found step {} of the file; expected at most {MAX_STEPS} steps", MAX_STEPS + 1),
                    ));
                }
                let step = self.step(*keyword, args)?;
                self.steps.push(StepEntry { step, line: self.line, expect: None });
                Ok(())
            }
        }
    }

    fn expect_header(&mut self, args: &[Word]) -> Result<(), ParseError> {
        let Some(step) = self.steps.last() else {
            return Err(self.err(
                1,
                format!("found `expect:` before any step; expected a step ({}) for it to follow", STEPS.join(", ")),
            ));
        };
        if self.expect.is_some() {
            return Err(
                self.err(1, format!("found a second `expect:` for the step on line {}; expected a step", step.line))
            );
        }
        if let Some(extra) = args.first() {
            return Err(self.err(
                extra.col,
                format!(
                    "unexpected `{}` after `expect:`; expected node lines on the lines below it",
                    escape(extra.text)
                ),
            ));
        }
        self.expect = Some(Block::default());
        Ok(())
    }

    fn close_expect(&mut self) {
        if let Some(block) = self.expect.take() {
            if let Some(step) = self.steps.last_mut() {
                step.expect = Some(block.forest.finish());
            }
        }
    }

    fn step(&mut self, keyword: Word, args: &[Word]) -> Result<Step, ParseError> {
        match keyword.text {
            "kill" => self.kill(args),
            "exit" => self.exit(args),
            "subreaper" => self.subreaper(args),
            "spawn" => self.spawn(args),
            "thread-exit" => self.thread_exit(args),
            "exec" => Ok(Step::Exec { target: self.one_target("exec", args)? }),
            "reap" => Ok(Step::Reap { target: self.one_target("reap", args)? }),
            "setpgid" => Ok(Step::Setpgid { target: self.one_target("setpgid", args)? }),
            "setsid" => Ok(Step::Setsid { target: self.one_target("setsid", args)? }),
            other => Err(self.err(
                keyword.col,
                format!(
                    "expected a step ({}), found `{}`{}",
                    STEPS.join(", "),
                    escape(other),
                    did_you_mean(other, STEPS.into_iter().chain(["expect:"]))
                ),
            )),
        }
    }

    /// The process of a step that takes exactly one, `keyword A`.
    fn one_target(&self, keyword: &str, args: &[Word]) -> Result<Name, ParseError> {
        let [target, rest @ ..] = args else {
            return Err(self.err_eol(format!("expected a process name after `{keyword}`, found the end of the line")));
        };
        let target = self.defined_name(*target)?;
        if let Some(extra) = rest.first() {
            return Err(
                self.err(extra.col, format!("unexpected `{}`: `{keyword}` takes one process", escape(extra.text)))
            );
        }
        Ok(target)
    }

    fn kill(&self, args: &[Word]) -> Result<Step, ParseError> {
        let mut targets = Vec::new();
        let mut seen = HashSet::new();
        let mut signal = None;
        for (i, w) in args.iter().enumerate() {
            if is_name(w.text) {
                let name = self.defined_name(*w)?;
                if !seen.insert(name.clone()) {
                    return Err(
                        self.err(w.col, format!("process `{name}` is named twice in this `kill`; expected each once"))
                    );
                }
                targets.push(name);
            } else if w.text.starts_with("SIG") {
                if let Some(next) = args.get(i + 1) {
                    return Err(self.err(
                        w.col,
                        format!(
                            "expected the signal as the last word of `kill`, found `{}` before `{}`",
                            escape(w.text),
                            escape(next.text)
                        ),
                    ));
                }
                signal = Some(self.signal(w.text, w.col)?);
            } else {
                return Err(self.err(
                    w.col,
                    format!("expected a process name or a signal such as `SIGTERM`, found `{}`", escape(w.text)),
                ));
            }
        }
        if targets.is_empty() {
            return Err(match args.first() {
                Some(sig) => {
                    self.err(sig.col, format!("expected a process name before the signal `{}`", escape(sig.text)))
                }
                None => self.err_eol("expected a process name after `kill`, found the end of the line"),
            });
        }
        Ok(Step::Kill { targets, signal: signal.unwrap_or(Signal::KILL) })
    }

    fn exit(&self, args: &[Word]) -> Result<Step, ParseError> {
        let [target, rest @ ..] = args else {
            return Err(self.err_eol("expected a process name after `exit`, found the end of the line"));
        };
        let target = self.defined_name(*target)?;
        let code = match rest {
            [] => 0,
            [code, extra @ ..] => {
                if let Some(extra) = extra.first() {
                    return Err(self.err(
                        extra.col,
                        format!(
                            "unexpected `{}`: `exit` takes a process and an optional exit code",
                            escape(extra.text)
                        ),
                    ));
                }
                let valid =
                    !code.text.is_empty() && code.text.len() <= 3 && code.text.bytes().all(|b| b.is_ascii_digit());
                match code.text.parse::<i32>() {
                    Ok(n) if valid && n <= 255 => n,
                    _ => {
                        return Err(self.err(
                            code.col,
                            format!("expected an exit code from 0 to 255, found `{}`", escape(code.text)),
                        ));
                    }
                }
            }
        };
        Ok(Step::Exit { target, code })
    }

    fn subreaper(&self, args: &[Word]) -> Result<Step, ParseError> {
        let [target, rest @ ..] = args else {
            return Err(self.err_eol("expected a process name after `subreaper`, found the end of the line"));
        };
        let name = self.defined_name(*target)?;
        let [value, extra @ ..] = rest else {
            return Err(
                self.err_eol(format!("expected `on` or `off` after `subreaper {name}`, found the end of the line"))
            );
        };
        let on = match value.text {
            "on" => true,
            "off" => false,
            other => {
                return Err(self.err(value.col, format!("expected `on` or `off`, found `{}`", escape(other))));
            }
        };
        if let Some(extra) = extra.first() {
            return Err(self.err(
                extra.col,
                format!(
                    "unexpected `{}` after `{}`; expected the end of the line",
                    escape(extra.text),
                    escape(value.text)
                ),
            ));
        }
        Ok(Step::Subreaper { target: name, on })
    }

    fn spawn(&mut self, args: &[Word]) -> Result<Step, ParseError> {
        let [child, rest @ ..] = args else {
            return Err(self.err_eol("expected the new process's name after `spawn`, found the end of the line"));
        };
        let child_name = self.name(*child)?;
        if let Some(line) = self.defined.get(&child_name) {
            return Err(self.err(
                child.col,
                format!(
                    "process `{child_name}` already exists (line {line}); expected a new name \
                     for the process `spawn` creates"
                ),
            ));
        }
        let [by, rest @ ..] = rest else {
            return Err(self.err_eol(format!("expected `by` after `spawn {child_name}`, found the end of the line")));
        };
        if by.text != "by" {
            return Err(
                self.err(by.col, format!("expected `by` after `spawn {child_name}`, found `{}`", escape(by.text)))
            );
        }
        let [parent, options @ ..] = rest else {
            return Err(self.err_eol(format!(
                "expected the parent's name after `spawn {child_name} by`, found the end of the line"
            )));
        };
        let parent = self.spawn_parent(*parent, &child_name)?;
        let mut thread = None;
        let mut clone_parent = None;
        let mut into = None;
        let mut attrs = Attrs::default();
        // Every word after the parent is an option or an attribute, never a
        // name, so `into=x` or `clone-parent` is read the same whatever the
        // processes are called.
        for w in options {
            let duplicate = |option: &str| {
                self.err(w.col, format!("duplicate spawn option `{option}`; expected each at most once"))
            };
            match w.text.split_once('=') {
                Some(("thread", value)) => {
                    if thread.is_some() {
                        return Err(duplicate("thread"));
                    }
                    let col = w.col + "thread=".len();
                    thread = Some(thread_number(value).ok_or_else(|| {
                        self.err(
                            col,
                            format!(
                                "expected `thread=K` with K from 1 to {MAX_THREADS}, found `{}` (K numbers an \
                                 extra thread; without `thread=` the main thread forks)",
                                escape(w.text)
                            ),
                        )
                    })?);
                }
                Some(("into", value)) => {
                    if into.is_some() {
                        return Err(duplicate("into"));
                    }
                    into = Some(self.namespace_to_join(value, w.col + "into=".len())?);
                }
                None if w.text == "clone-parent" => {
                    if clone_parent.is_some() {
                        return Err(duplicate("clone-parent"));
                    }
                    clone_parent = Some(w.col);
                }
                _ => self.attribute(*w, Place::Spawn, &child_name, &mut attrs, &mut Markers::default())?,
            }
        }
        if let Some(col) = clone_parent {
            if parent == INIT || self.namespaces.contains(&parent) {
                return Err(self.err(
                    col,
                    format!(
                        "`clone-parent` by `{parent}`, the init of a PID namespace: clone(CLONE_PARENT) fails \
                         with EINVAL for a namespace init (kernel/fork.c: an init may not create siblings); \
                         expected `clone-parent` by a process that is not a namespace init"
                    ),
                ));
            }
        }
        // The child is born in the namespace of `into=`, or else the forker's
        // (with `clone-parent` too: `pid_ns_for_children` is the forker's).
        let born_in = into.as_ref().unwrap_or(&parent);
        let nesting = self.pidns_nesting.get(born_in).copied().unwrap_or(0);
        self.define(&child_name, child.col, nesting, attrs.pidns)?;
        Ok(Step::Spawn { child: child_name, parent, thread, clone_parent: clone_parent.is_some(), into, attrs })
    }

    /// The word after `spawn B by`: the parent, which an option cannot
    /// stand for.
    fn spawn_parent(&self, w: Word, child: &str) -> Result<Name, ParseError> {
        let key = word_key(w.text);
        let is_option = matches!(key, "thread" | "into") && w.text.contains('=');
        if is_option || (w.text == "clone-parent" && !self.defined.contains_key(w.text)) {
            return Err(self.err(
                w.col,
                format!(
                    "expected the parent's name after `spawn {child} by`, found the spawn option `{}` \
                     (options come after the parent: `spawn {child} by PARENT {}`)",
                    escape(w.text),
                    escape(w.text)
                ),
            ));
        }
        self.defined_name(w)
    }

    /// The value of `into=`, which starts at column `col`: a `pidns` process
    /// defined before.
    fn namespace_to_join(&self, value: &str, col: usize) -> Result<Name, ParseError> {
        if value.is_empty() {
            return Err(self.err(col, "expected the name of a `pidns` process after `into=`, found nothing"));
        }
        let name = self.defined_name(Word { text: value, col })?;
        if !self.namespaces.contains(&name) {
            let line = self.defined.get(&name).copied().unwrap_or_default();
            return Err(self.err(
                col,
                format!(
                    "process `{name}` (line {line}) is not a `pidns` process; expected the init of a nested \
                     PID namespace for `into=` to join"
                ),
            ));
        }
        Ok(name)
    }

    fn thread_exit(&self, args: &[Word]) -> Result<Step, ParseError> {
        let [target, rest @ ..] = args else {
            return Err(self.err_eol("expected a process name after `thread-exit`, found the end of the line"));
        };
        let name = self.defined_name(*target)?;
        let [which, extra @ ..] = rest else {
            return Err(self.err_eol(format!(
                "expected a thread number from 1 to {MAX_THREADS} or `main` after `thread-exit {name}`, found \
                 the end of the line"
            )));
        };
        let thread = match which.text {
            "main" => ThreadRef::Main,
            number => ThreadRef::Extra(thread_number(number).ok_or_else(|| {
                self.err(
                    which.col,
                    format!("expected a thread number from 1 to {MAX_THREADS} or `main`, found `{}`", escape(number)),
                )
            })?),
        };
        if let Some(extra) = extra.first() {
            return Err(self.err(
                extra.col,
                format!(
                    "unexpected `{}` after `{}`; expected the end of the line",
                    escape(extra.text),
                    escape(which.text)
                ),
            ));
        }
        Ok(Step::ThreadExit { target: name, thread })
    }

    // ---- node lines ----

    fn node_line(&mut self, indent: usize, body: &str) -> Result<(), ParseError> {
        let col = indent + 1;
        let in_expect = self.section == Section::Steps;
        if in_expect && self.expect.is_none() {
            return Err(self.err(
                col,
                "found an indented line; expected a step at column 1 (node lines belong under \
                 `tree:` or `expect:`)",
            ));
        }
        if indent % 2 == 1 {
            return Err(
                self.err(col, format!("expected an even indentation (two spaces per level), found {indent} spaces"))
            );
        }
        let words = self.words(body, col)?;
        let Some((first, rest)) = words.split_first() else {
            return Ok(());
        };
        let mut node = Node::new(self.name(*first)?);
        let place = if in_expect { Place::Expect } else { Place::Tree };
        for w in rest {
            self.attribute(*w, place, &node.name, &mut node.attrs, &mut node.markers)?;
        }
        if in_expect {
            self.expect_node(indent, node)
        } else {
            self.tree_node(indent, node)
        }
    }

    /// Checks that a node line at `indent` spaces can follow the lines of
    /// `forest`: the first at one level, the others at most one level under
    /// the line above.
    fn check_depth(&self, forest: &Forest, indent: usize, first: &str) -> Result<(), ParseError> {
        let col = indent + 1;
        let depth = indent / 2;
        if forest.is_empty() && depth != 1 {
            return Err(self.err(col, format!("expected {first} indented two spaces, found {indent} spaces")));
        }
        if depth > forest.depth() + 1 {
            return Err(self.err(
                col,
                format!(
                    "indentation jumps more than one level: expected at most {} spaces (one level \
                     under the line above), found {indent}",
                    2 * (forest.depth() + 1)
                ),
            ));
        }
        Ok(())
    }

    fn tree_node(&mut self, indent: usize, node: Node) -> Result<(), ParseError> {
        let col = indent + 1;
        self.check_depth(&self.tree, indent, "the root node `init`")?;
        let name = &node.name;
        if self.tree.is_empty() && name != INIT {
            return Err(self.err(col, format!("expected the root of the tree to be `init`, found `{name}`")));
        }
        if !self.tree.is_empty() && indent == 2 {
            return Err(self.err(
                col,
                format!(
                    "found a second root `{name}`; expected a single root, `init` (indent `{name}` \
                     under its parent)"
                ),
            ));
        }
        if let Some(line) = self.defined.get(name) {
            return Err(self.err(
                col,
                format!(
                    "process `{name}` is already defined on line {line}; expected a new name \
                     (names are unique in a file)"
                ),
            ));
        }
        // The parent is the open node one level up.
        let parent = (indent / 2).checked_sub(2).and_then(|i| self.tree.path.get(i));
        let nesting = parent.and_then(|p| self.pidns_nesting.get(&p.name)).copied().unwrap_or(0);
        self.define(&node.name, col, nesting, node.attrs.pidns)?;
        self.tree.push(indent / 2, node);
        Ok(())
    }

    /// Records a new process `name` (its name at column `col`), born in a
    /// namespace that `nesting` `pidns` processes enclose, after checking
    /// the limits: [`MAX_PROCESSES`] and [`MAX_PIDNS_NESTING`].
    fn define(&mut self, name: &str, col: usize, nesting: usize, pidns: bool) -> Result<(), ParseError> {
        if self.defined.len() >= MAX_PROCESSES {
            return Err(self.err(
                col,
                format!(
                    "process `{name}` would be process {} of the file; expected at most {MAX_PROCESSES} \
                     processes (`tree:` and `spawn` together)",
                    MAX_PROCESSES + 1
                ),
            ));
        }
        let nesting = nesting + usize::from(pidns);
        if nesting > MAX_PIDNS_NESTING {
            return Err(self.err(
                col,
                format!(
                    "`pidns` process `{name}` would nest {nesting} PID namespaces below the scenario's; \
                     expected at most {MAX_PIDNS_NESTING}: the kernel allows 32 levels below the initial \
                     namespace (MAX_PID_NS_LEVEL) and the scenario's own is one, so clone(CLONE_NEWPID) \
                     would fail with ENOSPC"
                ),
            ));
        }
        self.defined.insert(name.to_string(), self.line);
        self.pidns_nesting.insert(name.to_string(), nesting);
        if pidns {
            self.namespaces.insert(name.to_string());
        }
        Ok(())
    }

    fn expect_node(&mut self, indent: usize, node: Node) -> Result<(), ParseError> {
        let col = indent + 1;
        let Some(mut block) = self.expect.take() else {
            return Ok(());
        };
        self.check_depth(&block.forest, indent, "the first node of `expect:`")?;
        let name = &node.name;
        if !self.defined.contains_key(name) {
            return Err(self.unknown_process(col, name));
        }
        if let Some(first) = block.listed.get(name) {
            return Err(self.err(
                col,
                format!(
                    "process `{name}` is listed twice in this `expect:` block (first on line \
                     {first}); expected each process once"
                ),
            ));
        }
        block.listed.insert(name.clone(), self.line);
        block.forest.push(indent / 2, node);
        self.expect = Some(block);
        Ok(())
    }

    /// Applies one attribute or marker word of the process `name`, at
    /// `place`, to its attributes or markers. Words may come in any order;
    /// each at most once.
    fn attribute(
        &self,
        w: Word,
        place: Place,
        name: &str,
        attrs: &mut Attrs,
        markers: &mut Markers,
    ) -> Result<(), ParseError> {
        let (key, value) = match w.text.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (w.text, None),
        };
        // Keys are ASCII, so bytes and characters agree.
        let value_col = w.col + key.len() + 1;
        if (MARKER_FLAGS.contains(&key) || key == "got") && place != Place::Expect {
            return Err(self.err(
                w.col,
                format!("marker `{}` is only allowed in `expect:` blocks; expected an attribute", escape(w.text)),
            ));
        }
        if matches!(key, "clone-parent" | "into") && place != Place::Spawn {
            return Err(self.err(
                w.col,
                format!(
                    "found `{}`, an option of the `spawn` step; expected an attribute ({ATTRIBUTES_LISTED})",
                    escape(w.text)
                ),
            ));
        }
        if name == INIT {
            let why = match key {
                "pidns" => Some("it already is PID 1 of the scenario's PID namespace"),
                "pdeathsig" => Some("its parent is the harness, outside the scenario, so no step can fire it"),
                _ => None,
            };
            if let Some(why) = why {
                return Err(self.err(w.col, format!("`init` cannot take `{key}`: {why}")));
            }
        }
        // `sigchld=ignore` is one attribute; the others are named by their key.
        let shown = if key == "sigchld" { w.text } else { key };
        let set = |flag: &mut bool, what: &str| {
            if *flag {
                return Err(self.err(w.col, format!("duplicate {what} `{shown}`; expected each at most once")));
            }
            *flag = true;
            Ok(())
        };
        let group_and_session = || {
            self.err(
                w.col,
                "found `pgrp` and `session` on one node; expected at most one of them: setsid() fails with \
                 EPERM for a process-group leader (and a session leader already leads its own group)",
            )
        };
        match (key, value) {
            ("subreaper", None) => set(&mut attrs.subreaper, "attribute"),
            ("noreap", None) => set(&mut attrs.noreap, "attribute"),
            ("sigchld", Some("ignore")) => set(&mut attrs.sigchld_ignore, "attribute"),
            ("sigchld", _) => Err(self.err(
                w.col,
                format!("expected `sigchld=ignore`, found `{}` (only `ignore` is supported)", escape(w.text)),
            )),
            ("threads", Some(value)) => {
                let mut seen = attrs.threads > 0;
                set(&mut seen, "attribute")?;
                attrs.threads = thread_number(value).ok_or_else(|| {
                    let hint =
                        if value == "0" { " (no extra threads is the default: leave `threads=` out)" } else { "" };
                    self.err(
                        value_col,
                        format!(
                            "expected `threads=N` with N from 1 to {MAX_THREADS}, found `{}`{hint}",
                            escape(w.text)
                        ),
                    )
                })?;
                Ok(())
            }
            ("pdeathsig", Some(value)) => {
                let mut seen = attrs.pdeathsig.is_some();
                set(&mut seen, "attribute")?;
                if value.is_empty() {
                    return Err(self.err(
                        value_col,
                        "expected a signal name after `pdeathsig=`, such as `pdeathsig=SIGKILL`, found nothing",
                    ));
                }
                attrs.pdeathsig = Some(self.signal(value, value_col)?);
                Ok(())
            }
            ("catch", Some(value)) => {
                let mut seen = !attrs.catch.is_empty();
                set(&mut seen, "attribute")?;
                attrs.catch = self.signal_list(key, value, value_col)?;
                Ok(())
            }
            ("pgrp", None) => {
                set(&mut attrs.pgrp, "attribute")?;
                if attrs.session {
                    return Err(group_and_session());
                }
                Ok(())
            }
            ("session", None) => {
                set(&mut attrs.session, "attribute")?;
                if attrs.pgrp {
                    return Err(group_and_session());
                }
                Ok(())
            }
            ("pidns", None) => set(&mut attrs.pidns, "attribute"),
            ("main-exited", None) => set(&mut markers.main_exited, "marker"),
            ("exiting", None) => set(&mut markers.exiting, "marker"),
            ("zombie", None) => set(&mut markers.zombie, "marker"),
            ("stopped", None) => set(&mut markers.stopped, "marker"),
            ("got", Some(value)) => {
                let mut seen = !markers.got.is_empty();
                set(&mut seen, "marker")?;
                markers.got = self.signal_list(key, value, value_col)?;
                Ok(())
            }
            _ => Err(self.unknown_attribute(w, place)),
        }
    }

    fn unknown_attribute(&self, w: Word, place: Place) -> ParseError {
        let word = w.text;
        let key = word_key(word);
        let mut flags = ATTRIBUTE_FLAGS.to_vec();
        let mut keys = vec!["sigchld", "threads", "pdeathsig", "catch"];
        match place {
            Place::Tree => {}
            Place::Expect => {
                flags.extend(MARKER_FLAGS);
                keys.push("got");
            }
            Place::Spawn => {
                flags.push("clone-parent");
                keys.extend(["thread", "into"]);
            }
        }
        if let (Some((_, placeholder)), false) = (VALUED.iter().find(|(k, _)| *k == key), word.contains('=')) {
            if place == Place::Spawn || !matches!(key, "thread" | "into") {
                return self
                    .err(w.col, format!("expected `{key}={placeholder}`, found `{}` without a value", escape(word)));
            }
        }
        if word.contains('=') && flags.contains(&key) {
            return self.err(
                w.col + key.len(),
                format!("expected `{key}` alone, found `{}`: `{key}` takes no value", escape(word)),
            );
        }
        let expected = match place {
            Place::Tree => format!("an attribute ({ATTRIBUTES_LISTED})"),
            Place::Expect => format!("an attribute ({ATTRIBUTES_LISTED}) or a marker ({MARKERS_LISTED})"),
            Place::Spawn => format!("a spawn option ({SPAWN_OPTIONS_LISTED}) or an attribute ({ATTRIBUTES_LISTED})"),
        };
        let hint = if let Some((key, _)) = word.split_once('=') {
            let keys: Vec<String> = keys.iter().map(|k| format!("{k}=")).collect();
            did_you_mean(&format!("{key}="), keys.iter().map(String::as_str))
        } else {
            did_you_mean(word, flags)
        };
        self.err(w.col, format!("expected {expected}, found `{}`{hint}", escape(word)))
    }

    // ---- signals ----

    /// A signal name that starts at column `col`.
    fn signal(&self, text: &str, col: usize) -> Result<Signal, ParseError> {
        Signal::from_name(text).ok_or_else(|| {
            let prefixed = format!("SIG{text}");
            let last = Signal::RTMAX - Signal::RTMIN;
            let realtime =
                |rest: Option<&str>| rest.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            let hint = if Signal::from_name(&prefixed).is_some() {
                format!(" (did you mean `{prefixed}`?)")
            } else if realtime(text.strip_prefix("SIGRTMIN+")) || realtime(text.strip_prefix("SIGRTMAX-")) {
                format!(
                    " (out of range: real-time signals run from SIGRTMIN ({}) to SIGRTMAX ({}), the kernel's last \
                     signal (_NSIG = 64), so from `SIGRTMIN` to `SIGRTMIN+{last}` or `SIGRTMAX-{last}` to `SIGRTMAX`)",
                    Signal::RTMIN,
                    Signal::RTMAX
                )
            } else {
                let standard: Vec<String> = Signal::all().filter(|s| s.0 < Signal::RTMIN).map(Signal::name).collect();
                did_you_mean(text, standard.iter().map(String::as_str))
            };
            self.err(
                col,
                format!(
                    "unknown signal `{}`; expected a name from signal(7) such as `SIGTERM` or \
                     `SIGRTMIN+2`{hint}",
                    escape(text)
                ),
            )
        })
    }

    /// The value of `catch=` or `got=` (`key`), which starts at column
    /// `col`: signal names separated by commas, as a set in number order.
    fn signal_list(&self, key: &str, value: &str, col: usize) -> Result<Vec<Signal>, ParseError> {
        let mut signals: Vec<Signal> = Vec::new();
        let mut item_col = col;
        for item in value.split(',') {
            if item.is_empty() {
                return Err(self.err(
                    item_col,
                    format!(
                        "expected a signal name, found an empty item in the `{key}=` list (names are separated \
                         by single commas, without spaces)"
                    ),
                ));
            }
            let signal = self.signal(item, item_col)?;
            let name = signal.name();
            let refused = match (key, signal) {
                (_, Signal::KILL | Signal::STOP) if key == "catch" => {
                    Some(format!("{name} cannot be caught: its action cannot be changed (signal(7))"))
                }
                (_, Signal::KILL | Signal::STOP) => {
                    Some(format!("{name} cannot be caught, so no handler can have recorded it"))
                }
                (_, Signal::CHLD) if key == "catch" => Some(
                    "SIGCHLD cannot be caught with `catch=`: how a process treats it is what `sigchld=ignore` \
                     and `noreap` say, and `got=` never lists it"
                        .to_string(),
                ),
                (_, Signal::CHLD) => {
                    Some("SIGCHLD is never listed in `got=` (every child's exit sends it)".to_string())
                }
                _ => None,
            };
            if let Some(why) = refused {
                return Err(self.err(item_col, format!("found `{}` in `{key}=`; {why}", escape(item))));
            }
            if signals.contains(&signal) {
                let same = if item == name { String::new() } else { format!(" (it is {name})") };
                return Err(self.err(
                    item_col,
                    format!("signal `{}` is listed twice in `{key}=`{same}; expected each signal once", escape(item)),
                ));
            }
            signals.push(signal);
            // Signal names are ASCII.
            item_col += item.len() + 1;
        }
        signals.sort();
        Ok(signals)
    }

    // ---- names ----

    fn name(&self, w: Word) -> Result<Name, ParseError> {
        if is_name(w.text) {
            Ok(w.text.to_string())
        } else {
            Err(self.err(w.col, format!("expected a process name (`[a-z][a-z0-9_-]*`), found `{}`", escape(w.text))))
        }
    }

    /// A name that the tree or an earlier `spawn` defines.
    fn defined_name(&self, w: Word) -> Result<Name, ParseError> {
        let name = self.name(w)?;
        if !self.defined.contains_key(&name) {
            return Err(self.unknown_process(w.col, &name));
        }
        Ok(name)
    }

    fn unknown_process(&self, col: usize, name: &str) -> ParseError {
        self.err(
            col,
            format!(
                "unknown process `{name}`; expected a process of the tree or of an earlier `spawn`{}",
                did_you_mean(name, self.defined.keys().map(String::as_str))
            ),
        )
    }

    // ---- end of file ----

    fn finish(mut self) -> Result<Scenario, ParseError> {
        // `line` and `eol` still describe the last line, which is where the
        // file ends.
        match self.section {
            Section::Headers => {
                return Err(self.err_eol("expected `tree:` before the end of the file"));
            }
            Section::Tree if self.tree.is_empty() => {
                return Err(self.err_eol(format!(
                    "expected the root node `init` under `tree:` (line {}), found the end of the file",
                    self.tree_line
                )));
            }
            Section::Tree | Section::Steps => {}
        }
        self.close_expect();
        let tree_line = self.tree_line;
        let Some(tree) = std::mem::take(&mut self.tree).finish().into_iter().next() else {
            return Err(self.err_eol(format!("expected the root node `init` under `tree:` (line {tree_line})")));
        };
        Ok(Scenario { about: self.about.map(|(text, _)| text), needs: self.needs, tree, steps: self.steps })
    }
}

/// Whether `s` matches `[a-z][a-z0-9_-]*`.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// A thread number, `1` to `MAX_THREADS`, written without leading zeros.
fn thread_number(text: &str) -> Option<u32> {
    let n: u32 = text.parse().ok()?;
    ((1..=MAX_THREADS).contains(&n) && text == n.to_string()).then_some(n)
}

/// The part of a `key=value` word before the `=`.
fn word_key(word: &str) -> &str {
    word.split('=').next().unwrap_or(word)
}

fn first_word(body: &str) -> &str {
    body.split([' ', '\t']).next().unwrap_or(body)
}

/// " (did you mean `x`?)" for the candidate closest to `found`, if one is
/// close enough to be a typo; otherwise "".
/// `` `a` or `b` `` for an error message.
fn quoted_list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

fn did_you_mean<'c>(found: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    if found.chars().count() > 64 {
        return String::new();
    }
    let best = candidates
        .into_iter()
        .map(|c| (edit_distance(found, c), c))
        .filter(|&(d, c)| d > 0 && d <= 2 && d * 3 <= c.chars().count())
        .min_by_key(|&(d, _)| d);
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// Edit distance in characters, counting a swap of two neighbours as one
/// edit (optimal string alignment), since `SIGTREM` means `SIGTERM` more
/// often than `SIGTRAP`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        for j in 0..b.len() {
            let substitute = prev[j] + usize::from(a[i] != b[j]);
            let mut d = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    //! What parses, and to what. Every error message, with its position, is
    //! snapshotted by `tests/parse_errors.rs`, one bad file of
    //! `tests/bad-scenarios/` each.

    use proptest::prelude::*;

    use super::*;
    use crate::scenario::{arbitrary, render};

    fn lines(ls: &[&str]) -> String {
        let mut text = ls.join("\n");
        text.push('\n');
        text
    }

    #[track_caller]
    fn parse_ok(ls: &[&str]) -> Scenario {
        match parse("t.tree", &lines(ls)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn n(name: &str, children: Vec<Node>) -> Node {
        Node { children, ..Node::new(name) }
    }

    fn subreaper(mut node: Node) -> Node {
        node.attrs.subreaper = true;
        node
    }

    const EXAMPLE_SUBREAPER: &str = "\
# A subreaper adopts its grandchild when the middle process dies.
about: killing bash hands sleep to the subreaper, not to PID 1

tree:
  init
    subreaper subreaper
      bash
        sleep

kill bash
expect:
  init
    subreaper subreaper
      sleep
";

    const EXAMPLE_CONTAINER: &str = "\
# Inside a container, PID 1 adopts the orphan.
tree:
  init
    ash
      ash2
        sleep

kill ash2
expect:
  init
    ash
      sleep
";

    #[test]
    fn format_example_subreaper_parses() {
        let s = parse("example.tree", EXAMPLE_SUBREAPER).unwrap();
        let expected = Scenario {
            about: Some("killing bash hands sleep to the subreaper, not to PID 1".into()),
            needs: vec![],
            tree: n("init", vec![subreaper(n("subreaper", vec![n("bash", vec![n("sleep", vec![])])]))]),
            steps: vec![StepEntry {
                step: Step::Kill { targets: vec!["bash".into()], signal: Signal::KILL },
                line: 10,
                expect: Some(vec![n("init", vec![subreaper(n("subreaper", vec![n("sleep", vec![])]))])]),
            }],
        };
        assert_eq!(s, expected);
        // Without its comment the example is canonical.
        let canonical = EXAMPLE_SUBREAPER.split_once('\n').unwrap().1;
        let s = parse("example.tree", canonical).unwrap();
        assert_eq!(render(&s), canonical);
    }

    /// Parsing only: the `expect:` of this example in scenario-format.md
    /// puts `sleep` under `ash`, but `ash` is no subreaper, so the kernel
    /// (and the model) put it under PID 1; the bundled
    /// scenarios/container-init-adopts.tree has the corrected block.
    #[test]
    fn format_example_container_parses() {
        let s = parse("example.tree", EXAMPLE_CONTAINER).unwrap();
        let expected = Scenario {
            about: None,
            needs: vec![],
            tree: n("init", vec![n("ash", vec![n("ash2", vec![n("sleep", vec![])])])]),
            steps: vec![StepEntry {
                step: Step::Kill { targets: vec!["ash2".into()], signal: Signal::KILL },
                line: 8,
                expect: Some(vec![n("init", vec![n("ash", vec![n("sleep", vec![])])])]),
            }],
        };
        assert_eq!(s, expected);
        let canonical = EXAMPLE_CONTAINER.split_once('\n').unwrap().1;
        assert_eq!(render(&parse("example.tree", canonical).unwrap()), canonical);
    }

    #[test]
    fn every_construct_parses() {
        let s = parse_ok(&[
            "about:   a scenario   ",
            "needs: kernel >= 5.10",
            "needs: root",
            "tree:",
            "  init subreaper noreap sigchld=ignore",
            "    a sigchld=ignore noreap",
            "      b",
            "    c",
            "kill a b SIGRTMIN+2",
            "",
            "# a comment",
            "   # an indented comment",
            "expect:",
            "  init",
            "    b zombie stopped",
            "  c",
            "exit b 255",
            "subreaper a off",
            "subreaper init on",
            "spawn d by c subreaper noreap",
            "expect:",
            "reap init",
            "kill d SIGKILL",
            "exit c",
        ]);
        assert_eq!(s.about.as_deref(), Some("a scenario"));
        assert_eq!(s.needs, vec![Need::Kernel { major: 5, minor: 10 }, Need::Root]);
        assert!(s.tree.attrs.subreaper && s.tree.attrs.noreap && s.tree.attrs.sigchld_ignore);
        let a = &s.tree.children[0];
        assert_eq!(a.name, "a");
        assert!(!a.attrs.subreaper && a.attrs.noreap && a.attrs.sigchld_ignore);
        assert_eq!(s.tree.children[1].name, "c");
        let steps: Vec<(Step, usize, Option<Vec<Node>>)> =
            s.steps.into_iter().map(|e| (e.step, e.line, e.expect)).collect();
        let mut b = Node::new("b");
        b.markers = Markers { zombie: true, stopped: true, ..Markers::default() };
        assert_eq!(
            steps[0],
            (
                Step::Kill { targets: vec!["a".into(), "b".into()], signal: Signal(36) },
                9,
                Some(vec![n("init", vec![b]), n("c", vec![])])
            )
        );
        assert_eq!(steps[1], (Step::Exit { target: "b".into(), code: 255 }, 17, None));
        assert_eq!(steps[2].0, Step::Subreaper { target: "a".into(), on: false });
        assert_eq!(steps[3].0, Step::Subreaper { target: "init".into(), on: true });
        let attrs = Attrs { subreaper: true, noreap: true, ..Attrs::default() };
        assert_eq!(
            steps[4],
            (
                Step::Spawn {
                    child: "d".into(),
                    parent: "c".into(),
                    thread: None,
                    clone_parent: false,
                    into: None,
                    attrs
                },
                20,
                Some(vec![])
            )
        );
        assert_eq!(steps[5].0, Step::Reap { target: "init".into() });
        assert_eq!(steps[6].0, Step::Kill { targets: vec!["d".into()], signal: Signal::KILL });
        assert_eq!(steps[7].0, Step::Exit { target: "c".into(), code: 0 });
    }

    #[test]
    fn names_that_are_format_words_are_names() {
        let s = parse_ok(&[
            "tree:",
            "  init",
            "    subreaper subreaper",
            "      by noreap",
            "      zombie",
            "kill by zombie SIGTERM",
            "expect:",
            "  init",
            "    subreaper subreaper",
            "      zombie zombie",
            "spawn on by by",
            "subreaper on on",
            "reap subreaper",
        ]);
        assert_eq!(s.tree.children[0].name, "subreaper");
        assert!(s.tree.children[0].attrs.subreaper);
        assert_eq!(
            s.steps[1].step,
            Step::Spawn {
                child: "on".into(),
                parent: "by".into(),
                thread: None,
                clone_parent: false,
                into: None,
                attrs: Attrs::default()
            }
        );
        assert_eq!(s.steps[2].step, Step::Subreaper { target: "on".into(), on: true });
        assert_eq!(s.steps[3].step, Step::Reap { target: "subreaper".into() });
    }

    /// After `spawn B by A` every word is an option or an attribute, so
    /// processes named like them stay unambiguous.
    #[test]
    fn names_that_are_new_format_words_are_names() {
        let s = parse_ok(&[
            "tree:",
            "  init",
            "    into pidns",
            "      main threads=1",
            "    clone-parent pgrp",
            "spawn thread by clone-parent clone-parent into=into thread=1 pidns",
            "thread-exit main main",
            "exec into",
            "setsid clone-parent",
            "setpgid thread",
            "spawn pidns by thread",
        ]);
        assert_eq!(
            s.steps[0].step,
            Step::Spawn {
                child: "thread".into(),
                parent: "clone-parent".into(),
                thread: Some(1),
                clone_parent: true,
                into: Some("into".into()),
                attrs: Attrs { pidns: true, ..Attrs::default() }
            }
        );
        assert_eq!(s.steps[1].step, Step::ThreadExit { target: "main".into(), thread: ThreadRef::Main });
        assert_eq!(s.steps[2].step, Step::Exec { target: "into".into() });
        assert_eq!(s.steps[3].step, Step::Setsid { target: "clone-parent".into() });
        assert_eq!(s.steps[4].step, Step::Setpgid { target: "thread".into() });
        assert!(matches!(&s.steps[5].step, Step::Spawn { child, .. } if child == "pidns"));
    }

    #[test]
    fn error_display_names_file_line_and_column() {
        let e = parse("scen.tree", "tree:\n  init\n\nkil init\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "scen.tree:4:1: expected a step (kill, exit, subreaper, spawn, thread-exit, exec, reap, setpgid, setsid), \
             found `kil` (did you mean `kill`?)"
        );
    }

    // ---- attributes and markers ----

    #[test]
    fn every_attribute_and_marker_parses_in_any_order() {
        let s = parse_ok(&[
            "tree:",
            "  init session catch=SIGUSR1 threads=2 sigchld=ignore",
            "    a pidns pgrp catch=SIGTERM,SIGHUP,SIGRTMIN+1 pdeathsig=SIGKILL threads=8 noreap subreaper",
            "kill a SIGTERM",
            "expect:",
            "  init session",
            "    a got=SIGTERM,SIGHUP zombie stopped exiting main-exited threads=1",
        ]);
        let init = Attrs {
            sigchld_ignore: true,
            threads: 2,
            catch: vec![Signal::from_name("SIGUSR1").unwrap()],
            session: true,
            ..Attrs::default()
        };
        assert_eq!(s.tree.attrs, init);
        let a = Attrs {
            subreaper: true,
            noreap: true,
            threads: 8,
            pdeathsig: Some(Signal::KILL),
            catch: vec![Signal::HUP, Signal::TERM, Signal(35)],
            pgrp: true,
            pidns: true,
            ..Attrs::default()
        };
        assert_eq!(s.tree.children[0].attrs, a);
        let expect = s.steps[0].expect.as_ref().unwrap();
        let a = &expect[0].children[0];
        assert_eq!(a.attrs, Attrs { threads: 1, ..Attrs::default() });
        let markers = Markers {
            main_exited: true,
            exiting: true,
            zombie: true,
            stopped: true,
            got: vec![Signal::HUP, Signal::TERM],
        };
        assert_eq!(a.markers, markers);
    }

    #[test]
    fn signal_lists_take_aliases_and_realtime_names() {
        let s = parse_ok(&["tree:", "  init", "    a catch=SIGRTMAX,SIGIOT,SIGRTMIN pdeathsig=SIGRTMIN+3"]);
        let a = &s.tree.children[0].attrs;
        assert_eq!(a.catch, vec![Signal(6), Signal(34), Signal(64)]);
        assert_eq!(a.pdeathsig, Some(Signal(37)));
    }

    #[test]
    fn init_takes_every_attribute_but_pidns_and_pdeathsig() {
        let s = parse_ok(&["tree:", "  init subreaper noreap sigchld=ignore threads=3 catch=SIGTERM pgrp"]);
        assert!(s.tree.attrs.pgrp && s.tree.attrs.threads == 3);
        assert!(parse_ok(&["tree:", "  init session"]).tree.attrs.session);
    }

    // ---- steps ----

    #[test]
    fn every_step_parses() {
        let s = parse_ok(&[
            "tree:",
            "  init",
            "    ns pidns",
            "    a threads=2",
            "spawn b by a",
            "spawn c by a noreap into=ns thread=2 clone-parent pidns",
            "thread-exit a 2",
            "thread-exit a main",
            "exec b",
            "setpgid b",
            "setsid c",
        ]);
        let steps: Vec<Step> = s.steps.into_iter().map(|e| e.step).collect();
        let spawn = |child: &str, thread, clone_parent, into: Option<&str>, attrs| Step::Spawn {
            child: child.into(),
            parent: "a".into(),
            thread,
            clone_parent,
            into: into.map(str::to_string),
            attrs,
        };
        assert_eq!(
            steps,
            vec![
                spawn("b", None, false, None, Attrs::default()),
                spawn("c", Some(2), true, Some("ns"), Attrs { noreap: true, pidns: true, ..Attrs::default() }),
                Step::ThreadExit { target: "a".into(), thread: ThreadRef::Extra(2) },
                Step::ThreadExit { target: "a".into(), thread: ThreadRef::Main },
                Step::Exec { target: "b".into() },
                Step::Setpgid { target: "b".into() },
                Step::Setsid { target: "c".into() },
            ]
        );
    }

    #[test]
    fn spawn_into_a_namespace_spawned_by_an_earlier_step() {
        let s = parse_ok(&["tree:", "  init", "spawn ns by init pidns", "spawn b by init into=ns"]);
        assert!(matches!(&s.steps[1].step, Step::Spawn { into: Some(ns), .. } if ns == "ns"));
    }

    #[test]
    fn a_process_named_like_a_spawn_option_can_be_the_parent() {
        let s = parse_ok(&["tree:", "  init", "    clone-parent", "spawn b by clone-parent clone-parent"]);
        assert!(matches!(&s.steps[0].step, Step::Spawn { parent, clone_parent: true, .. } if parent == "clone-parent"));
    }

    #[test]
    fn thread_exit_takes_the_highest_thread_number() {
        let s = parse_ok(&["tree:", "  init", "thread-exit init 8"]);
        assert_eq!(s.steps[0].step, Step::ThreadExit { target: "init".into(), thread: ThreadRef::Extra(8) });
    }

    // ---- limits ----

    #[test]
    fn more_processes_than_the_limit_are_refused_with_the_limit_named() {
        let mut text = String::from("tree:\n  init\n");
        for i in 1..MAX_PROCESSES {
            text.push_str(&format!("    p{i}\n"));
        }
        assert!(parse("t.tree", &text).is_ok());
        text.push_str("spawn last by init\n");
        let e = parse("t.tree", &text).unwrap_err();
        assert_eq!((e.line, e.col), (MAX_PROCESSES + 2, 7));
        assert!(e.message.contains("expected at most 10000 processes"), "{e}");
    }

    #[test]
    fn more_steps_than_the_limit_are_refused_with_the_limit_named() {
        let mut text = String::from("tree:\n  init\n");
        text.push_str(&"exec init\n".repeat(MAX_STEPS));
        assert!(parse("t.tree", &text).is_ok());
        text.push_str("exec init\n");
        let e = parse("t.tree", &text).unwrap_err();
        assert_eq!((e.line, e.col), (MAX_STEPS + 3, 1));
        assert!(e.message.contains("expected at most 10000 steps"), "{e}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_at_the_first_byte_past_it() {
        let mut bytes = b"tree:\n  init\n".to_vec();
        bytes.resize(MAX_FILE_BYTES, b'\n');
        assert!(parse_bytes("t.tree", &bytes).is_ok());
        bytes.push(b'x');
        let e = parse_bytes("t.tree", &bytes).unwrap_err();
        assert_eq!((e.line, e.col), (MAX_FILE_BYTES - 13 + 3, 1));
        assert!(e.message.contains("larger than the limit of 32 MiB (33554432 bytes)"), "{e}");
    }

    #[test]
    fn pidns_can_nest_to_the_kernel_limit() {
        let mut text = String::from("tree:\n  init\n");
        for i in 1..=MAX_PIDNS_NESTING {
            text.push_str(&format!("{}n{i} pidns\n", " ".repeat(2 * i + 2)));
        }
        // Siblings and processes spawned inside do not nest deeper.
        text.push_str("    m pidns\nspawn x by n31\nspawn y by init into=n31\nspawn z by m pidns\n");
        assert!(parse("t.tree", &text).is_ok(), "{:?}", parse("t.tree", &text).err());
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        assert_eq!(edit_distance("SIGTREM", "SIGTERM"), 1);
        assert_eq!(edit_distance("SIGTREM", "SIGTRAP"), 2);
        assert_eq!(edit_distance("kil", "kill"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("abc", "ca"), 3);
    }

    #[test]
    fn a_spawned_process_is_known_in_its_own_expect_block() {
        // The spawned process is known in the spawn's own expect block.
        let s = parse_ok(&["tree:", "  init", "spawn b by init", "expect:", "  init", "    b"]);
        assert_eq!(s.steps[0].expect, Some(vec![n("init", vec![n("b", vec![])])]));
    }

    #[test]
    fn expect_blocks_allow_several_roots_and_emptiness() {
        let s = parse_ok(&[
            "tree:",
            "  init",
            "    a",
            "    b",
            "kill init",
            "expect:",
            "  a zombie",
            "",
            "  b",
            "kill a b",
            "expect:",
        ]);
        let mut a = Node::new("a");
        a.markers.zombie = true;
        assert_eq!(s.steps[0].expect, Some(vec![a, Node::new("b")]));
        assert_eq!(s.steps[1].expect, Some(vec![]));
    }

    // ---- robustness ----

    /// Characters and words the format is made of, to reach deep states.
    const SOUP: [&str; 55] = [
        "\n",
        "\n",
        "\n",
        " ",
        " ",
        "  ",
        "    ",
        "\t",
        "\r",
        "#",
        "tree:",
        "expect:",
        "about: ",
        "needs: ",
        "kernel >= 5.10",
        "root",
        "init",
        "a",
        "b",
        "kill",
        "exit",
        "spawn",
        "by",
        "reap",
        "subreaper",
        "on",
        "noreap",
        "sigchld=ignore",
        "zombie",
        "stopped",
        "SIGTERM",
        "SIGRTMIN+",
        "255",
        "é",
        "threads=",
        "2",
        "pdeathsig=",
        "catch=",
        "got=",
        ",",
        "SIGKILL",
        "SIGCHLD",
        "pgrp",
        "session",
        "pidns",
        "main-exited",
        "exiting",
        "thread=",
        "clone-parent",
        "into=",
        "thread-exit",
        "main",
        "exec",
        "setpgid",
        "setsid",
    ];

    #[derive(Clone, Debug)]
    enum Mutation {
        DeleteChar(prop::sample::Index),
        Insert(prop::sample::Index, &'static str),
        DeleteLine(prop::sample::Index),
        DuplicateLine(prop::sample::Index),
        SwapLines(prop::sample::Index, prop::sample::Index),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        use prop::sample::{select, Index};
        prop_oneof![
            any::<Index>().prop_map(Mutation::DeleteChar),
            (any::<Index>(), select(SOUP.to_vec())).prop_map(|(i, s)| Mutation::Insert(i, s)),
            any::<Index>().prop_map(Mutation::DeleteLine),
            any::<Index>().prop_map(Mutation::DuplicateLine),
            (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        ]
    }

    fn apply(text: &str, m: &Mutation) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let mut lines: Vec<&str> = text.split('\n').collect();
        match m {
            Mutation::DeleteChar(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
                chars.into_iter().collect()
            }
            Mutation::Insert(i, s) => {
                let at = i.index(chars.len() + 1);
                chars.splice(at..at, s.chars());
                chars.into_iter().collect()
            }
            Mutation::DeleteLine(i) => {
                lines.remove(i.index(lines.len()));
                lines.join("\n")
            }
            Mutation::DuplicateLine(i) => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at]);
                lines.join("\n")
            }
            Mutation::SwapLines(a, b) => {
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
                lines.join("\n")
            }
            Mutation::DeleteChar(_) => text.to_string(),
        }
    }

    /// Whatever parses renders to a canonical file that parses back to the
    /// same scenario (step lines aside, as comments and blank lines move
    /// them).
    fn assert_stable(text: &str) {
        if let Ok(s) = parse("fuzz.tree", text) {
            let rendered = render(&s);
            let mut again = parse("rendered.tree", &rendered).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
            let mut s = s;
            for e in s.steps.iter_mut().chain(again.steps.iter_mut()) {
                e.line = 0;
            }
            assert_eq!(again, s, "{text:?} rendered as {rendered:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            assert_stable(&text);
        }

        #[test]
        fn soups_of_format_words_never_panic(words in proptest::collection::vec(prop::sample::select(SOUP.to_vec()), 0..80)) {
            assert_stable(&words.concat());
        }

        #[test]
        fn mutated_valid_files_never_panic(
            s in arbitrary::scenario(),
            mutations in proptest::collection::vec(mutation(), 1..6),
        ) {
            let mut text = render(&s);
            for m in &mutations {
                text = apply(&text, m);
            }
            assert_stable(&text);
        }
    }
}
