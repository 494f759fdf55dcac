//! The guest's side of `reparent vm`: this binary as the `/init` of the
//! initramfs that `vm::host` builds.
//!
//! The suite never runs as the machine's PID 1 (a PID 1 is special to every
//! rule it checks): `/init` mounts what a guest lacks (`/proc`, `/sys`,
//! `/dev`, `/tmp`), then runs each command of the plan as a **child**, with
//! its output streamed over a serial port of its own (`/dev/ttyS1`, framed
//! by `vm::frame`), reaps whatever reaches it, reports any process left to
//! it (none should: every case lives in a PID namespace that dies with its
//! owner), and stops the machine with the overall status through QEMU's
//! `isa-debug-exit` device. Nothing that mounts or stops a machine runs
//! unless this process is PID 1 with `reparent.vm=1` on the kernel command
//! line (`os::is_vm_guest_init`); run elsewhere as `reparent __vminit PLAN`
//! it only runs the plan and reports on stdout, which is how it is tested.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::frame::{Encoder, Frame, Status};
use crate::sys::os;

/// The first argument of this role when run by hand (the guest's kernel
/// starts it as `/init`).
pub const GUEST_ARG: &str = "__vminit";
/// Where the plan is in the initramfs.
pub const PLAN_PATH: &str = "/reparent-vm.json";
/// Where the scenarios are in the initramfs.
pub const SCENARIOS_PATH: &str = "/scenarios";
/// The bundled scenarios that no row of `reparent kernel`'s table runs: the
/// default `check` after `kernel` runs these, not all of them again.
pub const SCENARIOS_REST_PATH: &str = "/scenarios-rest";
/// The guest's report port (`ttyS0` is the kernel's console).
pub const REPORT_PORT: &str = "/dev/ttyS1";

/// What the guest runs: subcommands of this binary, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub commands: Vec<Vec<String>>,
    /// Where the commands find the scenarios.
    pub scenarios: PathBuf,
    /// Environment for every command: the host's global model flags
    /// (`REPARENT_MODEL_KERNEL`, `REPARENT_MODEL_ORPHAN_HUP`,
    /// `REPARENT_MODEL_MUTATION`, which the subcommands read as they read
    /// `--model-*`) and the deadlines of an emulated guest.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// The report port, one frame at a time, shared by the threads that read
/// a command's stdout and stderr.
struct Port {
    out: Box<dyn Write + Send>,
    enc: Encoder,
}

impl Port {
    fn send(&mut self, frame: &Frame) {
        let line = self.enc.line(frame);
        // Nothing else can carry the report: a failed write shows as a lost
        // or missing line on the host.
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

/// Runs as the guest's `/init` (or by hand with the plan's path): never
/// returns when it is a guest's init.
pub fn main(plan_path: &Path) -> std::process::ExitCode {
    // The marker is on the kernel command line, which is read from /proc:
    // a PID 1 mounts that first.
    if os::getpid() == 1 {
        let _ = std::fs::create_dir_all("/proc");
        if let Err(e) = os::mount("proc", "/proc", Some("proc"), 0) {
            eprintln!("reparent /init: {e}");
        }
    }
    let init = os::is_vm_guest_init();
    if init {
        for (src, target, fs) in
            [("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs"), ("tmpfs", "/tmp", "tmpfs")]
        {
            let _ = std::fs::create_dir_all(target);
            if let Err(e) = os::mount(src, target, Some(fs), 0) {
                eprintln!("reparent /init: {e}");
            }
        }
    }
    let out: Box<dyn Write + Send> = if init {
        match std::fs::OpenOptions::new().write(true).open(REPORT_PORT) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("reparent /init: cannot open the report port {REPORT_PORT}: {e}");
                return stop(init, 3);
            }
        }
    } else {
        Box::new(std::io::stdout())
    };
    let port = Arc::new(Mutex::new(Port { out, enc: Encoder::default() }));
    let send = |f: Frame| port.lock().unwrap_or_else(|p| p.into_inner()).send(&f);
    let uptime_ms = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0) as u64);
    send(Frame::Hello { release: os::kernel_release(), uptime_ms });
    let plan = std::fs::read_to_string(plan_path)
        .map_err(|e| format!("cannot read the plan {}: {e}", plan_path.display()))
        .and_then(|t| serde_json::from_str::<Plan>(&t).map_err(|e| format!("bad plan {}: {e}", plan_path.display())));
    let mut worst = 0u8;
    match plan {
        Err(why) => {
            send(Frame::Begin(vec!["(plan)".into()]));
            send(Frame::End { status: Status::NotStarted(why), millis: 0 });
            worst = 127;
        }
        Ok(plan) => {
            let failures = failures_dir(init);
            for argv in &plan.commands {
                let status = run_one(&port, argv, &plan, init, &failures);
                send_files(&port, &failures);
                if !status.success() && worst == 0 {
                    worst = status.code().max(1);
                }
                if init {
                    os::reap_all_exited();
                    let left = left_to_init();
                    if !left.is_empty() {
                        send(Frame::Leak(left.join(", ")));
                        worst = worst.max(1);
                    }
                }
            }
        }
    }
    send(Frame::Bye);
    stop(init, worst)
}

/// Runs one command, streaming its output; its status.
fn run_one(port: &Arc<Mutex<Port>>, argv: &[String], plan: &Plan, init: bool, failures: &Path) -> Status {
    let send = |f: Frame| port.lock().unwrap_or_else(|p| p.into_inner()).send(&f);
    send(Frame::Begin(argv.to_vec()));
    let started = Instant::now();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/init"));
    let mut cmd = Command::new(exe);
    cmd.args(argv).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("REPARENT_SCENARIOS", &plan.scenarios).env("CI", "1");
    cmd.envs(plan.env.iter().map(|(k, v)| (k, v)));
    // `check` writes its shrunk failing cases here; they go to the host.
    cmd.env("REPARENT_FAILURES", failures);
    if init {
        cmd.current_dir("/tmp").env("HOME", "/tmp").env("PATH", "/");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = Status::NotStarted(format!("spawn failed: {e}"));
            send(Frame::End { status: status.clone(), millis: 0 });
            return status;
        }
    };
    let pump = |stream: Option<Box<dyn Read + Send>>, err: bool| {
        let port = Arc::clone(port);
        std::thread::spawn(move || {
            let Some(mut s) = stream else { return };
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = buf[..n].to_vec();
                let f = if err { Frame::Err(chunk) } else { Frame::Out(chunk) };
                port.lock().unwrap_or_else(|p| p.into_inner()).send(&f);
            }
        })
    };
    let out = pump(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), false);
    let err = pump(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>), true);
    let status = match child.wait() {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(sig)) => Status::Killed(sig),
                (None, None) => Status::NotStarted("no status".into()),
            }
        }
        Err(e) => Status::NotStarted(format!("wait failed: {e}")),
    };
    let _ = out.join();
    let _ = err.join();
    send(Frame::End { status: status.clone(), millis: started.elapsed().as_millis() as u64 });
    status
}

/// Where the guest's commands write shrunk failing cases: `/tmp` of the
/// guest, or a directory of this process's own when run by hand.
fn failures_dir(init: bool) -> PathBuf {
    if init {
        PathBuf::from("/tmp/reparent-failures")
    } else {
        std::env::temp_dir().join(format!("reparent-vm-failures.{}", os::getpid()))
    }
}

/// Sends every `.tree` file in `dir` to the host as a `file` frame and
/// removes it (a later command does not send it again); removes `dir` when
/// it is left empty.
fn send_files(port: &Arc<Mutex<Port>>, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "tree"))
        .collect();
    files.sort();
    for f in files {
        let (Some(name), Ok(bytes)) = (f.file_name(), std::fs::read(&f)) else { continue };
        let frame = Frame::File { name: name.to_string_lossy().into_owned(), bytes };
        port.lock().unwrap_or_else(|p| p.into_inner()).send(&frame);
        let _ = std::fs::remove_file(&f);
    }
    let _ = std::fs::remove_dir(dir);
}

/// Processes other than this one whose parent is PID 1: what a command
/// left behind (kernel threads have parent 0 or 2).
fn left_to_init() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    let mut left = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || name == "1" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = tail.split_whitespace().nth(1).unwrap_or("");
        if ppid == "1" {
            left.push(format!("pid {name} ({comm})"));
        }
    }
    left
}

/// Drains the report port and, as a guest's init, stops the machine.
fn stop(init: bool, code: u8) -> std::process::ExitCode {
    if !init {
        return std::process::ExitCode::from(code);
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(REPORT_PORT) {
        use std::os::fd::AsFd;
        let _ = os::tcdrain(f.as_fd());
    }
    let e = os::stop_vm_guest(code);
    // PID 1 must not return: the kernel would panic, which `panic=-1` and
    // QEMU's `-no-reboot` turn into an exit; the host sees no `bye`.
    eprintln!("reparent /init: {e}");
    os::park()
}
