//! The host's side of `reparent vm`: builds the guest's initramfs, boots
//! the kernel image under QEMU, and reads the guest's report back.
//!
//! The initramfs (`vm::cpio`) holds the static build of this binary as
//! `/init`, the scenarios, the plan, and the directories and device nodes a
//! kernel needs to start `/init` with its standard streams. QEMU gets two
//! serial ports: `ttyS0`, the kernel's console, goes to a log file (shown
//! when a guest hangs or panics); `ttyS1`, the guest's report port, comes
//! to us on QEMU's stdout, framed (`vm::frame`), so console noise never
//! mixes into a result. A run is judged by its frames — every command's
//! `end` and the final `bye` — never by QEMU's exit status (QEMU exits 0 when
//! a guest resets early). QEMU dies with the thread that starts it
//! (`PR_SET_PDEATHSIG`), is signalled only through its pidfd, and a
//! deadline turns a hung guest into a failure that shows the console.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cpio::Archive;
use super::frame::{Decoder, Frame, Status};
use super::guest::{Plan, PLAN_PATH, SCENARIOS_PATH, SCENARIOS_REST_PATH};
use super::image::{self, ImageError};
use crate::scenario::escape;
use crate::sys::os;

/// How QEMU runs the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Emulation, and why not KVM.
    Tcg(String),
}

impl Accel {
    /// KVM when `/dev/kvm` can create a VM here, else TCG.
    pub fn detect() -> Accel {
        match os::kvm_usable() {
            Ok(()) => Accel::Kvm,
            Err(why) => Accel::Tcg(why),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Accel::Kvm => "KVM".into(),
            Accel::Tcg(why) => format!("TCG emulation, no KVM: {why}"),
        }
    }

    pub fn short(&self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg(_) => "TCG",
        }
    }
}

/// What to boot and run.
#[derive(Clone, Debug)]
pub struct VmOptions {
    pub kernel: PathBuf,
    pub qemu: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Keep the initramfs and the console log (their directory is
    /// [`VmRun::dir`]).
    pub keep: bool,
    pub static_binary: PathBuf,
    pub scenarios: PathBuf,
    /// Subcommands of this binary, run in the guest in order.
    pub commands: Vec<Vec<String>>,
    pub accel: Accel,
    /// More kernel command line, after [`KERNEL_CMDLINE`].
    pub append: String,
    /// Environment for the guest's commands ([`Plan::env`]): the global
    /// model flags given on the host. Under TCG, [`guest_env`] adds the
    /// scaled deadline.
    pub env: Vec<(String, String)>,
    /// Host files the commands name (a `.tree` to replay), packed as
    /// `/inputs/NAME` ([`INPUTS_PATH`]); the caller rewrites the arguments.
    pub inputs: Vec<PathBuf>,
}

/// Where [`VmOptions::inputs`] are in the initramfs.
pub const INPUTS_PATH: &str = "/inputs";

/// How many times longer the deadlines of a guest under TCG are than
/// native ones, unless `REPARENT_DEADLINE_MS` is given. Measured on this
/// suite's 2-core machine: a guest process costs 8-50 times what it costs
/// natively (`reparent vm -- bench`: 199 ms a case against 24 ms, more
/// when other work shares the cores), and a deadline only turns a hang
/// into a named failure, so a longer one costs nothing on a run that
/// passes.
pub const TCG_DEADLINE_FACTOR: u64 = 6;

/// The rounds of R9.2's probe in a guest under TCG (`REPARENT_READINESS_ROUNDS`;
/// 64 natively): each round is a victim of 25 processes.
pub const TCG_READINESS_ROUNDS: usize = 16;

/// The environment of the guest's commands under `accel`: `env`, then, for
/// what `env` does not set, this machine's `REPARENT_DEADLINE_MS` and
/// `REPARENT_READINESS_ROUNDS` (`host` looks a variable up), and under TCG
/// a deadline [`TCG_DEADLINE_FACTOR`] times the host's (default 5000 ms)
/// and [`TCG_READINESS_ROUNDS`] rounds.
pub fn guest_env(
    env: &[(String, String)],
    accel: &Accel,
    host: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut out = env.to_vec();
    let tcg = matches!(accel, Accel::Tcg(_));
    let given = |out: &[(String, String)], name: &str| out.iter().any(|(k, _)| k == name);
    if !given(&out, "REPARENT_DEADLINE_MS") {
        let value = match (host("REPARENT_DEADLINE_MS"), tcg) {
            (Some(v), true) => {
                Some(v.parse::<u64>().map_or(v, |ms| ms.saturating_mul(TCG_DEADLINE_FACTOR).to_string()))
            }
            (Some(v), false) => Some(v),
            (None, true) => Some((5000 * TCG_DEADLINE_FACTOR).to_string()),
            (None, false) => None,
        };
        out.extend(value.map(|v| ("REPARENT_DEADLINE_MS".to_string(), v)));
    }
    if !given(&out, "REPARENT_READINESS_ROUNDS") {
        let value = host("REPARENT_READINESS_ROUNDS").or_else(|| tcg.then(|| TCG_READINESS_ROUNDS.to_string()));
        out.extend(value.map(|v| ("REPARENT_READINESS_ROUNDS".to_string(), v)));
    }
    out
}

#[cfg(test)]
mod guest_env_tests {
    use super::*;

    #[test]
    fn an_emulated_guest_gets_longer_deadlines_and_fewer_rounds_unless_told() {
        let none = |_: &str| None;
        let tcg = Accel::Tcg("test".into());
        let get = |env: &[(String, String)], k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let e = guest_env(&[], &tcg, none);
        assert_eq!(get(&e, "REPARENT_DEADLINE_MS").as_deref(), Some("30000"));
        assert_eq!(get(&e, "REPARENT_READINESS_ROUNDS").as_deref(), Some("16"));
        assert!(guest_env(&[], &Accel::Kvm, none).is_empty(), "KVM runs at native speed");
        // The host's own settings are scaled (deadline) or passed (rounds).
        let host = |k: &str| match k {
            "REPARENT_DEADLINE_MS" => Some("1000".to_string()),
            "REPARENT_READINESS_ROUNDS" => Some("32".to_string()),
            _ => None,
        };
        let e = guest_env(&[], &tcg, host);
        assert_eq!(get(&e, "REPARENT_DEADLINE_MS").as_deref(), Some("6000"));
        assert_eq!(get(&e, "REPARENT_READINESS_ROUNDS").as_deref(), Some("32"));
        let model = vec![("REPARENT_MODEL_KERNEL".to_string(), "6.1".to_string())];
        let e = guest_env(&model, &Accel::Kvm, host);
        assert_eq!(get(&e, "REPARENT_MODEL_KERNEL").as_deref(), Some("6.1"), "the model flags go through");
        assert_eq!(get(&e, "REPARENT_DEADLINE_MS").as_deref(), Some("1000"));
    }
}

/// Under KVM a guest reports within a few seconds of QEMU's start; one that
/// has not after this long is taken for a KVM that cannot run this guest
/// (nested KVM can create a VM and still stall a Linux guest's boot).
pub const KVM_BOOT_LIMIT: Duration = Duration::from_secs(20);

/// Why a guest could not even be started.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "QEMU not found ({0}): install it (Debian/Ubuntu: `apt-get install qemu-system-x86`; on Debian 12 with \
         qemu-utils from bookworm-backports, `ci/kernels --install-qemu` installs the matching one), or give --qemu PATH"
    )]
    NoQemu(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("cannot start QEMU ({qemu}): {source}")]
    Spawn { qemu: PathBuf, source: crate::sys::SysError },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// `qemu-system-x86_64` on `PATH`.
pub fn find_qemu() -> Result<PathBuf, VmError> {
    let name = "qemu-system-x86_64";
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| VmError::NoQemu(format!("{name} is not on PATH")))
}

/// One command the guest ran.
#[derive(Clone, Debug, Default)]
pub struct CommandRun {
    pub argv: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None`: it never ended (the guest stopped or hung first).
    pub status: Option<Status>,
    /// Its time in the guest.
    pub guest_time: Duration,
    /// Files it left for the host (shrunk failing cases): name, contents.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What a guest run gave.
#[derive(Clone, Debug, Default)]
pub struct VmRun {
    /// The guest's `uname -r`, from its first report line.
    pub release: Option<String>,
    /// From QEMU's start to the guest's first report line.
    pub boot: Option<Duration>,
    /// The guest kernel's uptime at its first report line.
    pub guest_boot: Duration,
    pub commands: Vec<CommandRun>,
    /// Processes left to the guest's PID 1.
    pub leaks: Vec<String>,
    /// Why the run is incomplete (a hang, a panic, a damaged report), if it is.
    pub problem: Option<String>,
    /// The last lines of the kernel's console, escaped, when there was a problem.
    pub console_tail: Vec<String>,
    pub wall: Duration,
    /// Where the initramfs and console log are, when kept.
    pub dir: Option<PathBuf>,
    /// How QEMU ran it.
    pub accel: Option<Accel>,
    /// Under KVM, the guest did not report within [`KVM_BOOT_LIMIT`].
    pub kvm_stalled: bool,
}

impl VmRun {
    /// Complete, every command exited 0, nothing leaked.
    pub fn passed(&self) -> bool {
        self.problem.is_none()
            && self.leaks.is_empty()
            && self.commands.iter().all(|c| c.status.as_ref().is_some_and(Status::success))
    }
}

/// A directory of our own for one run, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(keep: bool) -> Result<WorkDir, VmError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "reparent-vm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(io(format!("create {}", path.display())))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The initramfs: `/init` (the static binary), the scenarios, the plan.
pub fn initramfs(static_binary: &Path, scenarios: &Path, plan: &Plan, inputs: &[PathBuf]) -> Result<Vec<u8>, VmError> {
    let mut a = Archive::new();
    for d in ["dev", "proc", "sys", "tmp", "scenarios", "scenarios-rest", "inputs"] {
        a.dir(d);
    }
    for f in inputs {
        let data = std::fs::read(f).map_err(io(format!("read {}", f.display())))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        a.file(&format!("{}/{name}", INPUTS_PATH.trim_start_matches('/')), 0o644, &data);
    }
    a.char_device("dev/console", 0o600, 5, 1);
    a.char_device("dev/ttyS1", 0o600, 4, 65);
    let bin = std::fs::read(static_binary).map_err(io(format!("read {}", static_binary.display())))?;
    a.file("init", 0o755, &bin);
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .map_err(io(format!("read the scenarios directory {}", scenarios.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tree"))
        .collect();
    files.sort();
    for f in files {
        let data = std::fs::read(&f).map_err(io(format!("read {}", f.display())))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        a.file(&format!("{}/{name}", SCENARIOS_PATH.trim_start_matches('/')), 0o644, &data);
        if !table_runs(&name) {
            a.file(&format!("{}/{name}", SCENARIOS_REST_PATH.trim_start_matches('/')), 0o644, &data);
        }
    }
    let plan =
        serde_json::to_vec_pretty(plan).map_err(|e| VmError::Io { what: "write the plan".into(), source: e.into() })?;
    a.file(PLAN_PATH.trim_start_matches('/'), 0o644, &plan);
    Ok(a.finish())
}

/// Whether a row of `reparent kernel`'s table runs the scenario file `name`.
pub fn table_runs(name: &str) -> bool {
    use crate::kernel::catalogue::{Check, RULES};
    RULES.iter().any(|r| matches!(r.check, Check::Scenario(n) if n == name))
}

/// The kernel command line: the console on ttyS0, a panic ends the machine
/// at once (with `-no-reboot`, QEMU exits), and the marker without which
/// `/init` neither mounts nor stops anything.
pub const KERNEL_CMDLINE: &str = "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init reparent.vm=1";

/// What [`run`] checks before it starts anything: QEMU is there, the
/// kernel is a boot image, the binary is static.
pub fn check_inputs(opts: &VmOptions) -> Result<(), VmError> {
    if !opts.qemu.is_file() {
        return Err(VmError::NoQemu(format!("{} does not exist", opts.qemu.display())));
    }
    image::check_kernel(&opts.kernel)?;
    image::check_static(&opts.static_binary)?;
    Ok(())
}

/// Boots `opts.kernel` and runs the plan; `on_frame` sees every report as
/// it arrives. Errors only when nothing could be started; a guest that
/// fails, hangs or panics is a [`VmRun`] with a `problem`.
pub fn run(opts: &VmOptions, mut on_frame: impl FnMut(&Frame)) -> Result<VmRun, VmError> {
    check_inputs(opts)?;
    let dir = WorkDir::new(opts.keep)?;
    let plan = Plan {
        commands: opts.commands.clone(),
        scenarios: PathBuf::from(SCENARIOS_PATH),
        env: guest_env(&opts.env, &opts.accel, |k| std::env::var(k).ok()),
    };
    let initrd = dir.path.join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&opts.static_binary, &opts.scenarios, &plan, &opts.inputs)?)
        .map_err(io(format!("write {}", initrd.display())))?;
    let console = dir.path.join("console.log");
    let mut cmd = Command::new(&opts.qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    match opts.accel {
        Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg(_) => cmd.args(["-accel", "tcg"]),
    };
    cmd.arg("-m").arg(format!("{}M", opts.memory_mib)).arg("-smp").arg(opts.cpus.to_string());
    cmd.arg("-kernel")
        .arg(&opts.kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!("{KERNEL_CMDLINE} {}", opts.append).trim_end());
    cmd.arg("-serial").arg(format!("file:{}", console.display()));
    cmd.args(["-chardev", "stdio,id=report,signal=off", "-serial", "chardev:report"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x01"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let (mut child, pidfd) =
        os::spawn_linked(&mut cmd, "qemu").map_err(|source| VmError::Spawn { qemu: opts.qemu.clone(), source })?;
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text
        })
    });
    let mut out = VmRun::default();
    let deadline = started + opts.timeout;
    let boot_deadline = match opts.accel {
        Accel::Kvm => deadline.min(started + KVM_BOOT_LIMIT),
        Accel::Tcg(_) => deadline,
    };
    out.accel = Some(opts.accel.clone());
    if let Some(stdout) = child.stdout.take() {
        let deadlines = (boot_deadline, deadline);
        read_reports(OwnedFd::from(stdout), deadlines, opts.timeout, &mut out, started, &mut on_frame);
    }
    // After `bye` the guest stops by itself; give it a moment, then make sure.
    let stop_by = Instant::now() + Duration::from_secs(10);
    if !os::pidfd_wait(pidfd.as_fd(), os::PidfdState::Exited, stop_by).unwrap_or(false) {
        let _ = os::pidfd_send_signal(pidfd.as_fd(), libc_sigkill());
    }
    let qemu_status = child.wait().ok();
    let qemu_err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    out.wall = started.elapsed();
    if out.problem.is_some() || !out.passed() {
        out.console_tail = tail(&console, 25);
        if !qemu_err.trim().is_empty() {
            out.console_tail.extend(qemu_err.lines().map(|l| format!("qemu: {}", escape(l))));
        }
        if let (Some(p), Some(s)) = (out.problem.as_mut(), qemu_status) {
            p.push_str(&format!(" (QEMU {s})"));
        }
    }
    if opts.keep {
        out.dir = Some(dir.path.clone());
    }
    Ok(out)
}

/// Runs as [`run`] does; when KVM stalls the guest's boot, runs it again
/// under TCG (`fallback` is told why first).
pub fn run_falling_back(
    opts: &VmOptions,
    mut on_frame: impl FnMut(&Frame),
    fallback: impl FnOnce(&str),
) -> Result<VmRun, VmError> {
    let first = run(opts, &mut on_frame)?;
    // Under KVM, a guest that never reported: stalled (nested KVM), or QEMU
    // died before it could (here: an assertion on an MSR KVM refused).
    let died = matches!(opts.accel, Accel::Kvm) && first.release.is_none() && first.problem.is_some();
    if !first.kvm_stalled && !died {
        return Ok(first);
    }
    let why = if first.kvm_stalled {
        format!("KVM did not boot this guest within {} s (nested KVM?); running it under TCG", KVM_BOOT_LIMIT.as_secs())
    } else {
        let last = first.console_tail.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
        format!(
            "QEMU stopped under KVM before the guest reported ({}; last console line: {last}); running it under TCG",
            first.problem.as_deref().unwrap_or("")
        )
    };
    fallback(&why);
    let tcg = VmOptions { accel: Accel::Tcg(why), ..opts.clone() };
    run(&tcg, on_frame)
}

/// SIGKILL, without a `libc` call outside the syscall seam.
fn libc_sigkill() -> i32 {
    9
}

/// Reads report lines until `bye`, EOF, a damaged report, or the deadline.
fn read_reports(
    fd: OwnedFd,
    (boot_deadline, deadline): (Instant, Instant),
    timeout: Duration,
    out: &mut VmRun,
    started: Instant,
    on_frame: &mut impl FnMut(&Frame),
) {
    let mut lines = os::Lines::new(fd);
    let mut dec = Decoder::default();
    loop {
        let by = if out.release.is_none() { boot_deadline } else { deadline };
        let line = match lines.line(by, "the guest's report") {
            Ok(l) => l,
            Err(crate::sys::SysError::Timeout(_)) if out.release.is_none() && by < deadline => {
                out.kvm_stalled = true;
                out.problem = Some(format!("under KVM the guest did not report within {} s", KVM_BOOT_LIMIT.as_secs()));
                return;
            }
            Err(crate::sys::SysError::Timeout(_)) => {
                out.problem = Some(format!("the guest did not finish within {} s (--timeout)", timeout.as_secs()));
                return;
            }
            Err(_) => {
                out.problem = Some(match out.commands.last() {
                    Some(c) if c.status.is_none() => format!(
                        "the guest stopped while running `{}` (a panic, a reset or a crash: see its console)",
                        c.argv.join(" ")
                    ),
                    _ => "the guest stopped before it reported the end of its run (a panic, a reset or a crash: \
                          see its console)"
                        .into(),
                });
                return;
            }
        };
        let frame = match dec.line(&line) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                out.problem = Some(e.to_string());
                return;
            }
        };
        on_frame(&frame);
        match frame {
            Frame::Hello { release, uptime_ms } => {
                out.release = Some(release);
                out.boot = Some(started.elapsed());
                out.guest_boot = Duration::from_millis(uptime_ms);
            }
            Frame::Begin(argv) => out.commands.push(CommandRun { argv, ..CommandRun::default() }),
            Frame::Out(b) => out.commands.last_mut().map_or((), |c| c.stdout.extend(b)),
            Frame::Err(b) => out.commands.last_mut().map_or((), |c| c.stderr.extend(b)),
            Frame::End { status, millis } => {
                if let Some(c) = out.commands.last_mut() {
                    c.status = Some(status);
                    c.guest_time = Duration::from_millis(millis);
                }
            }
            Frame::Leak(text) => out.leaks.push(text),
            Frame::File { name, bytes } => out.commands.last_mut().map_or((), |c| c.files.push((name, bytes))),
            Frame::Bye => return,
        }
    }
}

/// The last `n` lines of a console log, escaped (a console carries
/// anything).
fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else { return vec![format!("(no console log at {})", path.display())] };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| escape(l.trim_end_matches('\r')).into_owned()).collect()
}
