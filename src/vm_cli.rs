//! `reparent vm` and `reparent matrix`: the command-line side of
//! `reparent_harness::vm` — options, what is printed while guests run, and
//! the exit status.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reparent_harness::vm::frame::Frame;
use reparent_harness::vm::host::{self, Accel, VmOptions, VmRun};
use reparent_harness::vm::image;

/// Options every guest run shares.
#[derive(Args, Clone)]
pub struct GuestArgs {
    /// The QEMU binary (default: qemu-system-x86_64 on PATH).
    #[arg(long, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
    /// Guest memory in MiB (kernels from 6.1 on need more than 64).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub memory: u32,
    /// Virtual CPUs per guest.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Seconds a guest may take, boot included, before it counts as hung.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Keep each guest's initramfs and console log (their directory is printed).
    #[arg(long)]
    pub keep: bool,
    /// The static (musl) build of reparent to pack (default: this binary if
    /// static, else reparent-static next to it, else
    /// target/x86_64-unknown-linux-musl/release/reparent).
    #[arg(long, value_name = "PATH")]
    pub static_binary: Option<PathBuf>,
    /// How QEMU runs guests: `kvm`, `tcg` (emulation), or `auto`: KVM when
    /// /dev/kvm can run this guest, else TCG.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    pub accel: String,
    /// Random cases of the default `check` in the guest.
    #[arg(long, default_value_t = 100)]
    pub cases: u32,
    /// Where the bundled scenarios are (packed into the guest).
    #[arg(long, env = "REPARENT_SCENARIOS")]
    pub scenarios: Option<PathBuf>,
}

/// `reparent vm`.
#[derive(Args)]
pub struct VmArgs {
    /// The kernel image to boot (a bzImage or a distribution's vmlinuz).
    #[arg(long, value_name = "IMAGE")]
    pub kernel: PathBuf,
    #[command(flatten)]
    pub guest: GuestArgs,
    /// The subcommand to run in the guest, after `--` (default: `kernel`,
    /// then `check --cases N`).
    #[arg(last = true, value_name = "SUBCOMMAND ARGS")]
    pub command: Vec<String>,
}

impl GuestArgs {
    /// The options of one guest run of `kernel` with `commands`.
    pub fn options(&self, kernel: &Path, commands: Vec<Vec<String>>, accel: Accel) -> Result<VmOptions, String> {
        let qemu = match &self.qemu {
            Some(q) => q.clone(),
            None => host::find_qemu().map_err(|e| e.to_string())?,
        };
        let static_binary = match &self.static_binary {
            Some(p) => p.clone(),
            None => {
                let running = std::env::current_exe().map_err(|e| format!("cannot tell where this binary is: {e}"))?;
                image::find_static(&running).map_err(|e| e.to_string())?
            }
        };
        if self.cpus == 0 || self.memory < 32 {
            return Err(format!(
                "--cpus {} --memory {}: a guest needs 1 CPU and 32 MiB at least",
                self.cpus, self.memory
            ));
        }
        Ok(VmOptions {
            kernel: kernel.to_path_buf(),
            qemu,
            memory_mib: self.memory,
            cpus: self.cpus,
            timeout: Duration::from_secs(self.timeout),
            keep: self.keep,
            static_binary,
            scenarios: self.scenarios.clone().unwrap_or_else(crate::default_scenarios_dir),
            commands,
            accel,
        })
    }
}

impl GuestArgs {
    /// `--accel` as an [`Accel`].
    pub fn accel(&self) -> Accel {
        match self.accel.as_str() {
            "kvm" => Accel::Kvm,
            "tcg" => Accel::Tcg("--accel tcg".into()),
            _ => Accel::detect(),
        }
    }
}

/// What the guest runs by default.
pub fn default_commands(cases: u32) -> Vec<Vec<String>> {
    vec![vec!["kernel".into()], vec!["check".into(), "--cases".into(), cases.to_string()]]
}

/// `reparent vm`: runs the commands in the guest, printing their output as
/// it arrives, as if they had run here, under a header naming the guest's
/// kernel.
pub fn cmd_vm(args: VmArgs) -> ExitCode {
    let commands = if args.command.is_empty() { default_commands(args.guest.cases) } else { vec![args.command] };
    let accel = args.guest.accel();
    let opts = match args.guest.options(&args.kernel, commands, accel.clone()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("reparent vm: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "reparent vm: booting {} under QEMU ({}), {} MiB, {} vCPU(s)",
        args.kernel.display(),
        accel.text(),
        opts.memory_mib,
        opts.cpus
    );
    let mut release = String::from("?");
    let accel_now = std::cell::Cell::new(accel.short());
    let printed = |f: &Frame| match f {
        Frame::Hello { release: r, uptime_ms } => {
            release = r.clone();
            eprintln!("reparent vm: Linux {r} is up ({:.1} s after its kernel started)", *uptime_ms as f64 / 1000.0);
        }
        Frame::Begin(argv) => {
            println!("== reparent {} -- in the guest, Linux {release} ({}) ==", argv.join(" "), accel_now.get());
        }
        Frame::Out(b) => {
            let _ = std::io::stdout().write_all(b);
        }
        Frame::Err(b) => {
            let _ = std::io::stderr().write_all(b);
        }
        Frame::End { status, millis } => {
            let _ = std::io::stdout().flush();
            println!("== {status} after {:.1} s, in the guest, Linux {release} ==", *millis as f64 / 1000.0);
        }
        Frame::Leak(text) => eprintln!("reparent vm: processes were left to the guest's PID 1: {text}"),
        Frame::Bye => {}
    };
    let fallback = |why: &str| {
        eprintln!("reparent vm: {why}");
        accel_now.set("TCG");
    };
    let run = match host::run_falling_back(&opts, printed, fallback) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reparent vm: {e}");
            return ExitCode::from(2);
        }
    };
    eprint!("{}", run_summary(&args.kernel, &run));
    if run.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The lines after a run: what went wrong (with the console's last lines),
/// and where the time went.
pub fn run_summary(kernel: &Path, run: &VmRun) -> String {
    let mut out = String::new();
    let release = run.release.as_deref().unwrap_or("(never reported)");
    if let Some(p) = &run.problem {
        out += &format!("reparent vm: {}: {p}\n", kernel.display());
        out += "  last lines of the guest's console:\n";
        for l in &run.console_tail {
            out += &format!("    {l}\n");
        }
    }
    for l in &run.leaks {
        out += &format!("reparent vm: Linux {release}: left to the guest's PID 1: {l}\n");
    }
    let mut times = format!("boot {:.1} s", run.boot.map_or(0.0, |d| d.as_secs_f64()));
    for c in &run.commands {
        times += &format!(", {} {:.1} s", c.argv.first().map_or("?", String::as_str), c.guest_time.as_secs_f64());
    }
    let verdict = if run.passed() { "passed" } else { "FAILED" };
    out += &format!("reparent vm: Linux {release}: {verdict}; {times}; {:.1} s in all\n", run.wall.as_secs_f64());
    if let Some(d) = &run.dir {
        out += &format!("reparent vm: kept {}/initramfs.cpio and console.log\n", d.display());
    }
    out
}
