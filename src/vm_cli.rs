//! `reparent vm` and `reparent matrix`: the command-line side of
//! `reparent_harness::vm` — options, what is printed while guests run, and
//! the exit status.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reparent_harness::vm::frame::Frame;
use reparent_harness::vm::guest::SCENARIOS_REST_PATH;
use reparent_harness::vm::host::{self, Accel, VmOptions, VmRun};
use reparent_harness::vm::image;
use reparent_harness::vm::matrix::{self, KernelRun, Times};

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
    /// The static build of reparent to pack (default: reparent-static next
    /// to this binary, else the `guest` profile's build
    /// (target/<target>/guest/reparent, `cargo build --profile guest`), else
    /// target/x86_64-unknown-linux-musl/release/reparent, else this binary
    /// if it is static).
    #[arg(long, value_name = "PATH")]
    pub static_binary: Option<PathBuf>,
    /// How QEMU runs guests: `kvm`, `tcg` (emulation), or `auto`: KVM when
    /// /dev/kvm can run this guest, else TCG.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    pub accel: String,
    /// More kernel command line for the guest.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub append: String,
    /// Random cases of the default `check` in the guest.
    #[arg(long, default_value_t = 100)]
    pub cases: u32,
    /// Where the bundled scenarios are (packed into the guest).
    #[arg(long, env = "REPARENT_SCENARIOS")]
    pub scenarios: Option<PathBuf>,
    /// Where a shrunk failing case that a guest's `check` wrote is saved
    /// on this machine.
    #[arg(long, value_name = "DIR", default_value = "reparent-failures")]
    pub failures_dir: PathBuf,
    /// The global model flags given here, as the environment of the
    /// guest's commands (set by `main` from `--model-kernel`,
    /// `--model-orphan-hup`, `--model-mutation`).
    #[arg(skip)]
    pub env: Vec<(String, String)>,
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
            append: self.append.clone(),
            env: self.env.clone(),
            inputs: Vec::new(),
        })
    }
}

impl GuestArgs {
    /// The global model flags passed to the guest, as `NAME=VALUE` words.
    pub fn env_text(&self) -> Option<String> {
        let words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (!words.is_empty()).then(|| words.join(" "))
    }

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
/// `check` runs the scenarios the table did not run (`kernel` ran the
/// others, each as a row), then the random cases.
pub fn default_commands(cases: u32) -> Vec<Vec<String>> {
    vec![vec!["kernel".into()], rest_check(cases)]
}

/// `check --cases N` over the scenarios no row of the table runs.
fn rest_check(cases: u32) -> Vec<String> {
    ["check", "--cases", &cases.to_string(), "--scenarios", SCENARIOS_REST_PATH].map(String::from).to_vec()
}

/// `reparent vm`: runs the commands in the guest, printing their output as
/// it arrives, as if they had run here, under a header naming the guest's
/// kernel.
pub fn cmd_vm(args: VmArgs) -> ExitCode {
    let (command, inputs) = pack_inputs(&args.command);
    let commands = if command.is_empty() { default_commands(args.guest.cases) } else { vec![command] };
    let accel = args.guest.accel();
    let opts = match args.guest.options(&args.kernel, commands, accel.clone()).and_then(|o| {
        host::check_inputs(&o).map_err(|e| e.to_string())?;
        Ok(VmOptions { inputs, ..o })
    }) {
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
    if let Some(flags) = args.guest.env_text() {
        eprintln!("reparent vm: for the guest's commands: {flags}");
    }
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
        // Saved once the run is over (save_files).
        Frame::File { .. } | Frame::Bye => {}
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
    for line in save_files(&args.guest.failures_dir, &args.kernel, &run) {
        eprintln!("reparent vm: {line}");
    }
    eprint!("{}", run_summary(&args.kernel, &run));
    if run.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The subcommand's arguments with every host `.tree` file it names
/// replaced by its place in the guest (`/inputs/NAME`), and those files.
pub fn pack_inputs(command: &[String]) -> (Vec<String>, Vec<PathBuf>) {
    let mut inputs = Vec::new();
    let argv = command
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = Path::new(a);
            match p.file_name() {
                Some(name) if i > 0 && a.ends_with(".tree") && p.is_file() => {
                    inputs.push(p.to_path_buf());
                    format!("{}/{}", host::INPUTS_PATH, name.to_string_lossy())
                }
                _ => a.clone(),
            }
        })
        .collect();
    (argv, inputs)
}

/// Writes the files the guest's commands sent back (shrunk failing cases)
/// into `dir`; one line per file: where it is and how to replay it.
pub fn save_files(dir: &Path, kernel: &Path, run: &VmRun) -> Vec<String> {
    let release = run.release.as_deref().unwrap_or("?");
    let mut lines = Vec::new();
    for (name, bytes) in run.commands.iter().flat_map(|c| &c.files) {
        // The name came from the guest: no directory part is taken from it.
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let safe = safe.trim_start_matches('.').to_string();
        let path = dir.join(if safe.is_empty() { "case.tree".to_string() } else { safe });
        match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, bytes)) {
            Ok(()) => lines.push(format!(
                "Linux {release}: a failing case from the guest is in {}; replay it: reparent vm --kernel {} -- run {}",
                path.display(),
                kernel.display(),
                path.display()
            )),
            Err(e) => lines.push(format!(
                "Linux {release}: cannot save the guest's failing case {} into {}: {e}",
                name.escape_debug(),
                dir.display()
            )),
        }
    }
    lines
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

/// `reparent matrix`.
#[derive(Args)]
pub struct MatrixArgs {
    /// Kernel images, or directories of them (every file in it that is one).
    #[arg(required = true, value_name = "KERNEL")]
    pub kernels: Vec<PathBuf>,
    /// Guests at once (1 vCPU each by default). Default: the number of CPUs.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Write matrix.json, matrix.md and matrix.html into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub guest: GuestArgs,
}

/// The images `args` name: files as given, directories expanded to the
/// kernel images in them, in version order.
fn kernel_images(args: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in args {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && image::check_kernel(f).is_ok())
                .collect();
            if found.is_empty() {
                return Err(format!("{} holds no kernel image", p.display()));
            }
            found.sort_by_key(|f| version_key(&f.to_string_lossy()));
            out.extend(found);
        } else {
            image::check_kernel(p).map_err(|e| e.to_string())?;
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Sorts `vmlinuz-6.1.0-57` before `vmlinuz-6.12.1`: runs of digits compare
/// as numbers.
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let text_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let (text, tail) = rest.split_at(text_len);
        let num_len = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
        let (num, tail) = tail.split_at(num_len);
        key.push((num.parse().unwrap_or(0), text.to_string()));
        rest = tail;
    }
    key
}

/// One kernel's guest run, as the matrix reads it.
fn matrix_run(guest: &GuestArgs, kernel: &Path, accel: &std::sync::Mutex<Accel>) -> KernelRun {
    let commands = vec![vec!["kernel".into(), "--json".into()], rest_check(guest.cases)];
    let image = kernel.display().to_string();
    let now = accel.lock().map(|a| a.clone()).unwrap_or_else(|p| p.into_inner().clone());
    let opts = match guest.options(kernel, commands, now) {
        Ok(o) => o,
        Err(e) => return KernelRun { image, problem: Some(e), ..KernelRun::default() },
    };
    let fallback = |why: &str| {
        eprintln!("reparent matrix: {}: {why}", kernel.display());
        if let Ok(mut a) = accel.lock() {
            *a = Accel::Tcg(why.to_string());
        }
    };
    let run = match host::run_falling_back(&opts, |_| {}, fallback) {
        Ok(r) => r,
        Err(e) => return KernelRun { image, problem: Some(e.to_string()), ..KernelRun::default() },
    };
    let mut out = KernelRun {
        image,
        release: run.release.clone(),
        accel: run.accel.as_ref().map_or("?", Accel::short).to_string(),
        times: Times {
            boot: run.boot.map_or(0.0, |d| d.as_secs_f64()),
            wall: run.wall.as_secs_f64(),
            ..Times::default()
        },
        ..KernelRun::default()
    };
    let mut problems = Vec::new();
    if let Some(p) = &run.problem {
        problems.push(format!("{p}\nlast lines of the guest's console:\n{}", run.console_tail.join("\n")));
    }
    for l in &run.leaks {
        problems.push(format!("left to the guest's PID 1: {l}"));
    }
    if let Some(k) = run.commands.first() {
        out.times.kernel = k.guest_time.as_secs_f64();
        out.kernel_status = k.status.as_ref().map(ToString::to_string);
        match matrix::parse_table(&String::from_utf8_lossy(&k.stdout)) {
            Ok(t) => out.table = Some(t),
            Err(e) if k.status.is_some() => problems.push(format!(
                "reparent kernel --json gave no table ({e}); its stderr:\n{}",
                String::from_utf8_lossy(&k.stderr)
            )),
            Err(_) => {}
        }
    }
    let saved = save_files(&guest.failures_dir, kernel, &run);
    for line in &saved {
        eprintln!("reparent matrix: {line}");
    }
    if let Some(c) = run.commands.get(1) {
        out.times.check = c.guest_time.as_secs_f64();
        let stdout = String::from_utf8_lossy(&c.stdout);
        let summary = stdout.lines().rev().find(|l| l.starts_with("summary:")).unwrap_or("").to_string();
        out.check_passed = c.status.as_ref().map(|s| s.success());
        out.check_summary = if out.check_passed == Some(false) {
            // A failure in full: what check printed, both streams.
            format!(
                "{}\n{stdout}{}",
                c.status.as_ref().map_or(String::new(), ToString::to_string),
                String::from_utf8_lossy(&c.stderr)
            )
        } else {
            summary
        };
        for line in &saved {
            out.check_summary += &format!("\n{line}");
        }
    }
    if !problems.is_empty() {
        out.problem = Some(problems.join("\n"));
    }
    out
}

/// `reparent matrix`: every kernel in a guest of its own, `--jobs` at once;
/// the grid, failures and times on stdout; the files under `--out`.
pub fn cmd_matrix(args: MatrixArgs) -> ExitCode {
    let kernels = match kernel_images(&args.kernels) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("reparent matrix: {e}");
            return ExitCode::from(2);
        }
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let accel = args.guest.accel();
    // Fail early on what every guest would fail on (no QEMU, no static binary).
    if let Err(e) = args
        .guest
        .options(&kernels[0], vec![], accel.clone())
        .and_then(|o| host::check_inputs(&o).map_err(|e| e.to_string()))
    {
        eprintln!("reparent matrix: {e}");
        return ExitCode::from(2);
    }
    eprintln!(
        "reparent matrix: {} kernel(s), {jobs} guest(s) at once, {} vCPU(s) and {} MiB each, under {}",
        kernels.len(),
        args.guest.cpus,
        args.guest.memory,
        accel.text()
    );
    if let Some(flags) = args.guest.env_text() {
        eprintln!("reparent matrix: for every guest's commands: {flags}");
    }
    let accel = std::sync::Mutex::new(accel);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<KernelRun>>> = std::sync::Mutex::new(vec![None; kernels.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(kernels.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(k) = kernels.get(i) else { break };
                let r = matrix_run(&args.guest, k, &accel);
                let table = r.table.as_ref().map_or("no table".to_string(), |t| {
                    let n = |v: &str| t.rows.iter().filter(|x| x.result == v).count();
                    format!("table {} pass, {} fail, {} skipped", n("pass"), n("fail"), n("skipped"))
                });
                let check = match r.check_passed {
                    Some(true) => "check passed",
                    Some(false) => "check FAILED",
                    None => "no check",
                };
                eprintln!(
                    "reparent matrix: Linux {} ({}): {table}, {check}{}; boot {:.1} s, kernel {:.1} s, check {:.1} s, {:.1} s in all",
                    r.release.as_deref().unwrap_or("?"),
                    k.display(),
                    if r.problem.is_some() { ", INCOMPLETE" } else { "" },
                    r.times.boot,
                    r.times.kernel,
                    r.times.check,
                    r.times.wall
                );
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let runs: Vec<KernelRun> = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(&kernels)
        .map(|(r, k)| {
            r.unwrap_or_else(|| KernelRun {
                image: k.display().to_string(),
                problem: Some("its worker thread died".into()),
                ..KernelRun::default()
            })
        })
        .collect();
    let m = matrix::build(runs);
    print!("{}", m.text());
    if let Some(dir) = &args.out {
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            std::fs::write(dir.join("matrix.json"), m.json())?;
            std::fs::write(dir.join("matrix.md"), m.markdown())?;
            std::fs::write(dir.join("matrix.html"), m.html())
        });
        match written {
            Ok(()) => {
                eprintln!("reparent matrix: wrote {0}/matrix.json, {0}/matrix.md, {0}/matrix.html", dir.display())
            }
            Err(e) => {
                eprintln!("reparent matrix: cannot write into {}: {e}", dir.display());
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::from(m.exit_status())
}
