//! The framing of what a guest reports to the host.
//!
//! The guest writes to a serial port of its own (`ttyS1`; the kernel's
//! console is `ttyS0`), but a port is still a byte stream the host cannot
//! trust blindly: a guest that panics mid-line, a reset that cuts a write
//! short, a tty that turns `\n` into `\r\n`. So every report is one line of
//! plain ASCII, `@reparent:SEQ:KIND:PAYLOAD:CRC`, where binary payloads are
//! hex, `SEQ` counts lines from 0 (a lost line is noticed) and `CRC` is the
//! CRC-32 of `SEQ:KIND:PAYLOAD` (a damaged line is noticed). Anything before
//! the marker on a line (console noise) is ignored; so are lines without one.
//!
//! A run is `hello`, then per command `begin`, `out`/`err` chunks, `end`
//! (and `leak` when processes were left to the guest's PID 1), then `bye`.
//! The host judges a run complete only when it has read `bye`.

const MARKER: &str = "@reparent:";

/// How a guest command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Killed(i32),
    /// It could not be started at all.
    NotStarted(String),
}

impl Status {
    pub fn success(&self) -> bool {
        *self == Status::Exited(0)
    }

    /// The shell's convention: the exit code, or 128 + the signal.
    pub fn code(&self) -> u8 {
        match self {
            Status::Exited(c) => *c as u8,
            Status::Killed(s) => (128 + s) as u8,
            Status::NotStarted(_) => 127,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Killed(s) => write!(f, "killed by signal {s}"),
            Status::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// One report line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The guest is up: its kernel release and uptime in milliseconds.
    Hello {
        release: String,
        uptime_ms: u64,
    },
    /// A command starts.
    Begin(Vec<String>),
    Out(Vec<u8>),
    Err(Vec<u8>),
    /// The command ended, after `millis` of guest time.
    End {
        status: Status,
        millis: u64,
    },
    /// Processes that reached the guest's PID 1 (none should).
    Leak(String),
    /// A file the command just ended wrote for the host: a shrunk failing
    /// case (`name` is its file name, no directory).
    File {
        name: String,
        bytes: Vec<u8>,
    },
    /// Every command is done.
    Bye,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// CRC-32 (IEEE 802.3, as zlib), bit by bit: the lines are short.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

impl Frame {
    fn kind_and_payload(&self) -> (&'static str, String) {
        match self {
            Frame::Hello { release, uptime_ms } => ("hello", format!("{}.{uptime_ms}", hex(release.as_bytes()))),
            Frame::Begin(argv) => ("begin", hex(argv.join("\0").as_bytes())),
            Frame::Out(b) => ("out", hex(b)),
            Frame::Err(b) => ("err", hex(b)),
            Frame::End { status, millis } => (
                "end",
                match status {
                    Status::Exited(c) => format!("exit.{c}.{millis}"),
                    Status::Killed(s) => format!("signal.{s}.{millis}"),
                    Status::NotStarted(why) => format!("none.{}.{millis}", hex(why.as_bytes())),
                },
            ),
            Frame::Leak(text) => ("leak", hex(text.as_bytes())),
            Frame::File { name, bytes } => ("file", format!("{}.{}", hex(name.as_bytes()), hex(bytes))),
            Frame::Bye => ("bye", String::new()),
        }
    }

    fn from_parts(kind: &str, payload: &str) -> Option<Frame> {
        let text = |s: &str| unhex(s).and_then(|b| String::from_utf8(b).ok());
        Some(match kind {
            "hello" => {
                let (r, up) = payload.split_once('.')?;
                Frame::Hello { release: text(r)?, uptime_ms: up.parse().ok()? }
            }
            "begin" => Frame::Begin(text(payload)?.split('\0').map(String::from).collect()),
            "out" => Frame::Out(unhex(payload)?),
            "err" => Frame::Err(unhex(payload)?),
            "end" => {
                let mut it = payload.split('.');
                let (how, what, ms) = (it.next()?, it.next()?, it.next()?);
                let millis = ms.parse().ok()?;
                let status = match how {
                    "exit" => Status::Exited(what.parse().ok()?),
                    "signal" => Status::Killed(what.parse().ok()?),
                    "none" => Status::NotStarted(text(what)?),
                    _ => return None,
                };
                Frame::End { status, millis }
            }
            "leak" => Frame::Leak(text(payload)?),
            "file" => {
                let (name, bytes) = payload.split_once('.')?;
                Frame::File { name: text(name)?, bytes: unhex(bytes)? }
            }
            "bye" if payload.is_empty() => Frame::Bye,
            _ => return None,
        })
    }
}

/// Writes frames with consecutive sequence numbers.
#[derive(Default)]
pub struct Encoder {
    seq: u64,
}

impl Encoder {
    /// The line (with its `\n`) that carries `frame`.
    pub fn line(&mut self, frame: &Frame) -> String {
        let (kind, payload) = frame.kind_and_payload();
        let body = format!("{}:{kind}:{payload}", self.seq);
        self.seq += 1;
        format!("{MARKER}{body}:{:08x}\n", crc32(body.as_bytes()))
    }
}

/// Why a line could not be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("report line {seq} is damaged: {line:?}")]
    Damaged { seq: String, line: String },
    #[error("report line {expected} is missing (line {got} came instead)")]
    Lost { expected: u64, got: u64 },
}

/// Reads frames back from the port's lines, in order.
#[derive(Default)]
pub struct Decoder {
    next: u64,
}

impl Decoder {
    /// The frame on `line`, `Ok(None)` for a line that carries none (noise).
    pub fn line(&mut self, line: &str) -> Result<Option<Frame>, FrameError> {
        let Some(at) = line.find(MARKER) else { return Ok(None) };
        let framed = line[at + MARKER.len()..].trim_end_matches(['\r', '\n']);
        let damaged = || FrameError::Damaged {
            seq: framed.split(':').next().unwrap_or("").chars().take(20).collect(),
            line: framed.chars().take(200).collect(),
        };
        let (body, crc) = framed.rsplit_once(':').ok_or_else(damaged)?;
        if u32::from_str_radix(crc, 16).ok() != Some(crc32(body.as_bytes())) || crc.len() != 8 {
            return Err(damaged());
        }
        let mut parts = body.splitn(3, ':');
        let (seq, kind, payload) = match (parts.next(), parts.next(), parts.next()) {
            (Some(s), Some(k), Some(p)) => (s, k, p),
            _ => return Err(damaged()),
        };
        let seq: u64 = seq.parse().map_err(|_| damaged())?;
        if seq != self.next {
            return Err(FrameError::Lost { expected: self.next, got: seq });
        }
        let frame = Frame::from_parts(kind, payload).ok_or_else(damaged)?;
        self.next += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Frame> {
        vec![
            Frame::Hello { release: "6.1.0-57-cloud-amd64".into(), uptime_ms: 1234 },
            Frame::Begin(vec!["kernel".into(), "--json".into(), "a b:c".into()]),
            Frame::Out(b"{\"rows\": []}\n\x00\xff".to_vec()),
            Frame::Err(b"warning: \x1b[31m\n".to_vec()),
            Frame::End { status: Status::Exited(1), millis: 99 },
            Frame::End { status: Status::Killed(9), millis: 0 },
            Frame::End { status: Status::NotStarted("ENOENT: no /init".into()), millis: 0 },
            Frame::Leak("pid 7 (reparent)".into()),
            Frame::File { name: "case-7.tree".into(), bytes: b"tree:\n  init\n\x00.".to_vec() },
            Frame::Bye,
        ]
    }

    #[test]
    fn every_frame_round_trips_through_noise_and_crlf() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        assert_eq!(dec.line("[    1.234] random: crng init done").unwrap(), None);
        for f in all() {
            let line = enc.line(&f);
            assert!(line.is_ascii() && line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
            let noisy = format!("[    2.5] noise {}\r\n", line.trim_end());
            assert_eq!(dec.line(&noisy).unwrap(), Some(f));
        }
    }

    #[test]
    fn a_damaged_line_and_a_lost_line_are_errors() {
        let mut enc = Encoder::default();
        let a = enc.line(&Frame::Out(b"hello".to_vec()));
        let b = enc.line(&Frame::Out(b"world".to_vec()));
        let c = enc.line(&Frame::Bye);
        // One payload digit changed: the CRC no longer matches.
        let bad = a.replacen("68656c", "68656d", 1);
        assert!(matches!(Decoder::default().line(&bad), Err(FrameError::Damaged { .. })), "{bad}");
        // A line cut short.
        assert!(Decoder::default().line(&a[..a.len() - 4]).is_err());
        let mut dec = Decoder::default();
        dec.line(&a).unwrap();
        assert_eq!(dec.line(&c), Err(FrameError::Lost { expected: 1, got: 2 }));
        let mut dec = Decoder::default();
        dec.line(&a).unwrap();
        assert_eq!(dec.line(&b).unwrap(), Some(Frame::Out(b"world".to_vec())));
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
