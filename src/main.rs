//! `reparent`: the command line of the reparenting conformance suite.
//!
//! The same binary is also the sandbox helper: run as `reparent __sandbox`
//! it serves one case (see `reparent_harness::sys::sandbox`), as
//! `reparent __sandbox-server` it forks such helpers for a run of many
//! cases (`reparent_harness::sys::server`), and as
//! `reparent __probe NAME` it runs one probe of `reparent kernel` (see
//! `reparent_harness::sys::probe`). That is why these arguments are routed
//! before anything else, and why those helpers never start a thread before
//! they create their namespaces.

use std::io::IsTerminal;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use reparent_harness::driver::bench;
use reparent_harness::driver::calibrate;
use reparent_harness::driver::explain;
use reparent_harness::driver::kernel_table;
use reparent_harness::driver::pool;
use reparent_harness::driver::random::{self, RandomParams, Tick};
use reparent_harness::driver::replay::Replay;
use reparent_harness::driver::report;
use reparent_harness::driver::scenario_run::{self, Progress, Verdict};
use reparent_harness::driver::under_init;
use reparent_harness::gate;
use reparent_harness::kernel;
use reparent_harness::model::{BuildTraits, ModelConfig, Mutation, OrphanHup};
use reparent_harness::scenario::Scenario;
use reparent_harness::sys::{client::HELPER_ARG, os, probe, SandboxOptions};
use reparent_harness::vm::guest as vm_guest;

mod vm_cli;

#[derive(Parser)]
#[command(
    name = "reparent",
    version,
    about = "Conformance suite for Linux process reparenting: orphans, subreapers and PID 1"
)]
struct Cli {
    /// The kernel the model predicts for, as X.Y (default: the running kernel).
    #[arg(long, global = true, env = "REPARENT_MODEL_KERNEL", value_parser = parse_version)]
    model_kernel: Option<(u32, u32)>,
    /// Make the model wrong on purpose, to see the suite catch it (the
    /// names are listed by `--help`, from `Mutation::ALL`).
    #[arg(long, global = true, env = "REPARENT_MODEL_MUTATION", value_parser = parse_mutation)]
    model_mutation: Option<Mutation>,
    /// Who gets a newly orphaned process group's SIGHUP on this kernel
    /// build: `all` members (mainline) or `stopped-only`. Default: observed
    /// on the running kernel (`explain`: all).
    #[arg(long, global = true, env = "REPARENT_MODEL_ORPHAN_HUP", value_parser = parse_orphan_hup)]
    model_orphan_hup: Option<OrphanHup>,
    /// Run this init under test as PID 1 instead of the built-in init, e.g.
    /// "/usr/bin/tini --". It is given `reparent __node` as the command to
    /// run, which becomes `init`'s only child in `tree:`.
    #[arg(long, global = true, env = "REPARENT_INIT")]
    init: Option<String>,
    /// With --init: how long the init may leave a zombie it adopted
    /// unreaped, from the zombie's exit to its reap, before the case fails
    /// with the zombies left (default 1000; env REPARENT_REAP_DEADLINE_MS).
    #[arg(long, global = true, value_name = "MS")]
    reap_deadline_ms: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenario files in fresh namespaces and check every step.
    Run {
        /// `.tree` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print only failures and the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Show what the model predicts for a scenario, step by step, and why.
    Explain { file: PathBuf },
    /// The main job: every bundled scenario, then random cases, on this kernel.
    Check {
        /// Random cases to run.
        #[arg(long, env = "REPARENT_CASES", default_value_t = 256)]
        cases: u32,
        /// Seed of the random cases (default: drawn, and printed).
        #[arg(long, env = "REPARENT_SEED")]
        seed: Option<u64>,
        /// Largest random starting tree, init included.
        #[arg(long, env = "REPARENT_MAX_NODES", default_value_t = 24)]
        max_nodes: usize,
        /// Most steps in a random case.
        #[arg(long, default_value_t = 8)]
        max_steps: usize,
        /// Where the bundled scenarios are.
        #[arg(long, env = "REPARENT_SCENARIOS")]
        scenarios: Option<PathBuf>,
        /// Where a shrunk failing case is written.
        #[arg(long, env = "REPARENT_FAILURES", default_value = "reparent-failures")]
        failures_dir: PathBuf,
        /// Print how often the random cases exercised each step kind,
        /// attribute and marker, and how many steps moved a process.
        #[arg(long)]
        stats: bool,
        /// Leave each case's processes to the scheduler, on any CPU. By
        /// default, with at least as many jobs as CPUs, each job and every
        /// process of its cases stay on a CPU of their own: faster, since
        /// no wake-up crosses CPUs. Spread, a case's processes can truly
        /// run at once, which some kernel races need in order to show.
        #[arg(long, env = "REPARENT_SPREAD")]
        spread: bool,
        #[command(flatten)]
        jobs: Jobs,
    },
    /// A conformance table of the running kernel: one row per rule of
    /// kernel-rules.md, checked by a probe or a bundled scenario. Exits 0
    /// only if no row failed.
    Kernel {
        /// Print the table as JSON instead of text (kernel release, model,
        /// binary, every row with its key, result, evidence and duration
        /// and, for version-dependent rules, what each range of kernels
        /// should give), for comparing kernels.
        #[arg(long)]
        json: bool,
        /// Also write the JSON to FILE (the same run gives both).
        #[arg(long, value_name = "FILE")]
        json_out: Option<PathBuf>,
        /// Compare with a table saved before (`--json`/`--json-out`) and
        /// show what changed; the exit status is then 1 only on a
        /// regression (a row that passed or was skipped and now fails).
        #[arg(long, value_name = "OLD.json")]
        baseline: Option<PathBuf>,
        /// Run only this row: a rule id (R6.6g, every row of it), a check
        /// (deep-chain.tree, mt-init-leader-blocks) or a key. Repeatable.
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// Leave this row out (named as for --only). Repeatable.
        #[arg(long, value_name = "ID")]
        skip: Vec<String>,
        /// Where the bundled scenarios are.
        #[arg(long, env = "REPARENT_SCENARIOS")]
        scenarios: Option<PathBuf>,
        /// Check the table itself instead of the kernel, with no kernel
        /// needed: every scenario row must fail under the model mutation
        /// that breaks its rule (and pass without it). Exits 1 if a row
        /// cannot be made to fail.
        #[arg(long)]
        self_test: bool,
        #[command(flatten)]
        jobs: Jobs,
    },
    /// What changed between two saved tables of `reparent kernel --json`:
    /// rows newly failing (a regression: exit 1), newly passing, newly
    /// skipped, appeared or gone, and recorded values that changed.
    Diff {
        #[arg(value_name = "OLD.json")]
        old: PathBuf,
        #[arg(value_name = "NEW.json")]
        new: PathBuf,
    },
    /// Grade an init (tini, dumb-init, catatonit, your own) as PID 1 of a
    /// fresh namespace: reaping, exit status, signal forwarding, teardown,
    /// process group and hygiene (shared/init-gate.md). Exits 0 only when
    /// every hard check passes and every pinned value holds, 1 otherwise,
    /// 2 when the gate cannot run.
    Gate {
        /// Run INIT as an ordinary child of the gate (a subreaper), not as
        /// PID 1: the S and T3 checks.
        #[arg(long)]
        subreaper: bool,
        /// How long any one wait may take before it fails, naming what it
        /// waited for (milliseconds).
        #[arg(long, value_name = "MS", default_value_t = 3000)]
        deadline: u64,
        /// How long to wait for what may never happen: a reap, a signal the
        /// init may not forward, its exit while a descendant lives
        /// (milliseconds; also R4's bound for `never`).
        #[arg(long, value_name = "MS", default_value_t = 500)]
        patience: u64,
        /// F5's window: how long a main child that ignores SIGTERM is
        /// watched for the init's SIGKILL (milliseconds; `no` rests on it).
        #[arg(long, value_name = "MS", default_value_t = gate::DEFAULT_ESCALATION.as_millis() as u64)]
        escalation: u64,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write the report as JUnit XML to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// RT: random trees to run under the init (init-gate.md section 4);
        /// 0 skips RT.
        #[arg(long, value_name = "N", default_value_t = gate::DEFAULT_CASES)]
        cases: u32,
        /// RT: the seed of its random trees (fixed by default, so that a
        /// red gate runs again the same way).
        #[arg(long, default_value_t = gate::DEFAULT_SEED)]
        seed: u64,
        /// RT: where a failing random case is written, shrunk, as a
        /// `.tree` file.
        #[arg(long, value_name = "DIR", env = "REPARENT_FAILURES", default_value = "reparent-failures")]
        failures_dir: PathBuf,
        /// Pinned policy values, one `ID value` per line (e.g. `T1
        /// immediate`, `P1 own-group`, `X3 127/126`): a value that differs
        /// fails the gate.
        #[arg(long, value_name = "FILE")]
        expect: Option<PathBuf>,
        /// INIT and its arguments; the workload's command is appended, or
        /// put at the place of a `{}` argument.
        #[arg(last = true, required = true, value_name = "INIT")]
        init: Vec<String>,
    },
    /// Boot a kernel image under QEMU and run this suite inside it (default:
    /// `kernel`, then `check --cases N`), shown as if run here.
    Vm(vm_cli::VmArgs),
    /// Run `vm` on many kernel images and set their tables side by side:
    /// one row per rule, one column per kernel. Exits 1 on any unexpected FAIL.
    Matrix(vm_cli::MatrixArgs),
    /// A fixed workload: cases per second and where the time goes.
    Bench {
        /// Cases to run.
        #[arg(long, default_value_t = 200)]
        cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Processes per tree, init included.
        #[arg(long, default_value_t = bench::NODES)]
        nodes: usize,
    },
}

/// How many cases (or rows) run at once.
#[derive(Args)]
struct Jobs {
    /// Cases (or rows) to run at once, each in its own sandbox; the results
    /// and the output do not depend on it. Default: REPARENT_JOBS, else the
    /// number of CPUs.
    #[arg(long, value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,
}

impl Jobs {
    /// The flag, else `REPARENT_JOBS`, else the number of CPUs.
    fn resolve(&self) -> Result<usize, String> {
        if let Some(n) = self.jobs {
            return Ok(n);
        }
        match std::env::var("REPARENT_JOBS") {
            Ok(v) => parse_jobs(&v).map_err(|e| format!("REPARENT_JOBS={v:?}: {e}")),
            Err(std::env::VarError::NotUnicode(v)) => Err(format!("REPARENT_JOBS={v:?} is not text")),
            Err(std::env::VarError::NotPresent) => {
                Ok(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            }
        }
    }
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number of jobs, 1 or more, found {s:?}")),
    }
}

fn parse_version(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s.split_once('.').ok_or_else(|| format!("expected X.Y, found {s:?}"))?;
    Ok((
        a.parse().map_err(|_| format!("bad major version in {s:?}"))?,
        b.parse().map_err(|_| format!("bad minor version in {s:?}"))?,
    ))
}

fn parse_orphan_hup(s: &str) -> Result<OrphanHup, String> {
    OrphanHup::from_word(s).ok_or_else(|| {
        let words: Vec<&str> = OrphanHup::ALL.iter().map(|(w, _)| *w).collect();
        format!("unknown value {s:?}; expected one of: {}", words.join(", "))
    })
}

fn parse_mutation(s: &str) -> Result<Mutation, String> {
    Mutation::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Mutation::ALL.iter().map(|(n, _)| *n).collect();
        format!("unknown mutation {s:?}; expected one of: {}", names.join(", "))
    })
}

/// The command line, with the help of `--model-mutation` listing every
/// mutation of `Mutation::ALL`.
fn parse_cli() -> Cli {
    let names: Vec<&str> = Mutation::ALL.iter().map(|(n, _)| *n).collect();
    let help = format!("Make the model wrong on purpose, to see the suite catch it: one of {}", names.join(", "));
    let cmd = Cli::command().mut_arg("model_mutation", |a| a.help(help.clone()).long_help(help));
    Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some(HELPER_ARG) => reparent_harness::sys::sandbox::main(),
        Some(reparent_harness::sys::server::SERVER_ARG) => reparent_harness::sys::server::main(),
        Some(reparent_harness::sys::node::NODE_ARG) => reparent_harness::sys::node::main_from_env(),
        Some(probe::PROBE_ARG) => probe::main(&std::env::args().collect::<Vec<_>>()),
        Some(probe::PROBE_EXEC_ARG) => probe::exec_main(&std::env::args().collect::<Vec<_>>()),
        Some(gate::trial::TRIAL_ARG) => gate::trial::main(&std::env::args().collect::<Vec<_>>()),
        Some(gate::workload::WORKLOAD_ARG) => gate::workload::main(),
        Some(vm_guest::GUEST_ARG) => {
            let plan = std::env::args().nth(2).unwrap_or_else(|| vm_guest::PLAN_PATH.into());
            return vm_guest::main(Path::new(&plan));
        }
        _ => {}
    }
    // The guest's kernel starts this binary as the initramfs's /init.
    if os::getpid() == 1 && std::env::args().next().as_deref() == Some("/init") {
        return vm_guest::main(Path::new(vm_guest::PLAN_PATH));
    }
    let cli = parse_cli();
    // A guest run needs nothing of this machine's kernel: no calibration.
    // The global model flags reach the guest's subcommands as the
    // environment they read the same flags from.
    let mut model_env = Vec::new();
    if let Some((a, b)) = cli.model_kernel {
        model_env.push(("REPARENT_MODEL_KERNEL".to_string(), format!("{a}.{b}")));
    }
    if let Some(h) = cli.model_orphan_hup {
        model_env.push(("REPARENT_MODEL_ORPHAN_HUP".to_string(), h.word().to_string()));
    }
    if let Some(m) = cli.model_mutation {
        model_env.push(("REPARENT_MODEL_MUTATION".to_string(), m.name().to_string()));
    }
    let cli = match cli.cmd {
        Cmd::Vm(mut args) => {
            args.guest.env = model_env;
            return vm_cli::cmd_vm(args);
        }
        Cmd::Matrix(mut args) => {
            args.guest.env = model_env;
            return vm_cli::cmd_matrix(args);
        }
        cmd => Cli { cmd, ..cli },
    };
    let jobs = match &cli.cmd {
        Cmd::Check { jobs, .. } | Cmd::Kernel { jobs, .. } => jobs.resolve(),
        _ => Ok(1),
    };
    let jobs = match jobs {
        Ok(j) => j,
        Err(e) => {
            eprintln!("reparent: {e}");
            return ExitCode::from(2);
        }
    };
    if let Cmd::Diff { old, new } = &cli.cmd {
        return cmd_diff(old, new);
    }
    if let Cmd::Gate {
        subreaper,
        deadline,
        patience,
        escalation,
        cases,
        seed,
        failures_dir,
        json,
        junit,
        expect,
        init,
    } = &cli.cmd
    {
        let g = gate::Gate::new(init.iter().cloned())
            .subreaper(*subreaper)
            .deadline(Duration::from_millis(*deadline))
            .patience(Duration::from_millis(*patience))
            .escalation(Duration::from_millis(*escalation))
            .random_trees(*cases, *seed)
            .failures_dir(failures_dir);
        return cmd_gate(g, *json, junit.as_deref(), expect.as_deref());
    }
    if let Cmd::Kernel { self_test: true, scenarios, .. } = &cli.cmd {
        // The model of the kernel the rules were checked against, unless
        // asked otherwise: the self-test needs no kernel.
        let kernel = cli.model_kernel.unwrap_or(ModelConfig::default().kernel);
        return cmd_kernel_self_test(ModelConfig { kernel, ..ModelConfig::default() }, scenarios.clone());
    }
    let mut cfg = ModelConfig {
        kernel: cli.model_kernel.unwrap_or_else(os::kernel_version),
        mutation: cli.model_mutation,
        build: BuildTraits { orphan_hup: cli.model_orphan_hup.unwrap_or_default(), ..BuildTraits::default() },
        init: None,
    };
    if let Some(m) = cfg.mutation {
        eprintln!("reparent: the model is deliberately wrong ({m:?}): failures are expected");
    }
    let opts = match std::env::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|exe| SandboxOptions::new(exe).map_err(|e| e.to_string()))
    {
        Ok(mut o) => {
            o.init = cli.init.as_ref().map(|cmd| cmd.split_whitespace().map(String::from).collect());
            if let Some(ms) = cli.reap_deadline_ms {
                o.reap_deadline = Duration::from_millis(ms);
            }
            o
        }
        Err(e) => {
            eprintln!("reparent: {e}");
            return ExitCode::from(2);
        }
    };
    // Every command that runs the kernel first fits the model to this
    // kernel build (one small sandbox), unless a flag pins it.
    if !matches!(cli.cmd, Cmd::Explain { .. }) {
        match calibrate::build_traits(&opts, cli.model_orphan_hup) {
            Ok(b) => cfg.build = b,
            Err(e) => {
                eprintln!("reparent: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // An init under test: its policies are observed before anything runs
    // under it, and the model takes them (driver::under_init).
    if opts.init.is_some() && !matches!(cli.cmd, Cmd::Explain { .. }) {
        match under_init::observe_policy(&opts) {
            Ok(p) => {
                println!("init under test: {}: {} ({})", under_init::init_text(&opts), p.policy.text(), p.evidence);
                cfg.init = Some(p.policy);
            }
            Err(e) => {
                eprintln!("reparent: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // argv[0]: the binary as it was invoked, so the replay runs the same.
    let exe = std::env::args().next().unwrap_or_else(|| "reparent".into());
    let mut replay =
        Replay::new(exe, cfg, cli.model_kernel.is_some(), cli.init.clone()).with_orphan_hup(cli.model_orphan_hup);
    replay.reap_deadline_ms = cli.reap_deadline_ms;
    match cli.cmd {
        Cmd::Run { files, quiet } => cmd_run(&opts, cfg, &replay, &files, quiet),
        Cmd::Explain { file } => cmd_explain(cfg, cli.model_orphan_hup.is_some(), &file),
        Cmd::Check { cases, seed, max_nodes, max_steps, scenarios, failures_dir, stats, spread, .. } => {
            let seed = seed.unwrap_or_else(|| {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
            });
            let params = RandomParams {
                cases,
                seed,
                max_nodes,
                max_steps,
                failures_dir,
                replay: replay.clone(),
                jobs,
                one_cpu_each: !spread,
            };
            // Many cases in a row: each thread makes its next sandbox
            // ahead and tears the last one down in the background.
            let opts = SandboxOptions { pipeline: true, ..opts };
            let code = cmd_check(&opts, cfg, &replay, scenarios, &params, stats);
            reparent_harness::sys::client::finish_thread();
            code
        }
        Cmd::Kernel { json, json_out, baseline, only, skip, scenarios, .. } => {
            let out = KernelOutput { json, json_out, baseline };
            cmd_kernel(&opts, cfg, &replay, &out, kernel::Selection { only, skip }, scenarios, jobs)
        }
        // Handled above, before any sandbox or calibration.
        Cmd::Diff { old, new } => cmd_diff(&old, &new),
        Cmd::Bench { cases, seed, nodes } => {
            let opts = SandboxOptions { pipeline: true, ..opts };
            cmd_bench(&opts, cfg, cases, seed, nodes)
        }
        Cmd::Gate { .. } => unreachable!("handled above"),
        // Handled before the model is fitted to this machine (above).
        Cmd::Vm(args) => vm_cli::cmd_vm(args),
        Cmd::Matrix(args) => vm_cli::cmd_matrix(args),
    }
}

/// Loads every file first: one that does not load stops everything.
fn load_all(files: &[PathBuf], cfg: ModelConfig) -> Result<Vec<(PathBuf, Scenario)>, ExitCode> {
    let mut out = Vec::new();
    let mut bad = false;
    for f in files {
        match scenario_run::load(f, cfg) {
            Ok(s) => out.push((f.clone(), s)),
            Err(e) => {
                eprintln!("error: {e}");
                bad = true;
            }
        }
    }
    if bad {
        eprintln!("nothing was run: fix the file(s) above first");
        return Err(ExitCode::from(2));
    }
    Ok(out)
}

/// `check --stats`: what the passing random cases exercised.
fn stats_text(s: &random::Stats, cases: u32) -> String {
    let mut out = format!("statistics of the {cases} passing random cases:\n");
    let pct = |n: u64| 100.0 * n as f64 / s.total_steps.max(1) as f64;
    out += &format!("  steps: {} in all\n", s.total_steps);
    for (k, n) in &s.steps {
        out += &format!("    {k:<24} {n:>7}  {:>5.1}%\n", pct(*n));
    }
    out += &format!(
        "  steps that moved at least one process: {} ({:.1}%); steps with racing outcomes: {}\n",
        s.moved,
        pct(s.moved),
        s.racing
    );
    out += "  processes created with each attribute:\n";
    for (k, n) in &s.attrs {
        out += &format!("    {k:<24} {n:>7}\n");
    }
    out += "  observed node lines with each marker:\n";
    for (k, n) in &s.markers {
        out += &format!("    {k:<24} {n:>7}\n");
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    steps: usize,
}

/// A progress bar on stderr, or a hidden one when either stream is not a
/// terminal or `CI` is set (logs stay free of escape codes). Whatever is
/// printed while it shows goes through [`ProgressBar::suspend`].
fn progress_bar(len: usize, unit: &str) -> ProgressBar {
    let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if !tty || std::env::var_os("CI").is_some() {
        return ProgressBar::hidden();
    }
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{msg}}, {{rate}} [{{elapsed}}]");
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}/s", state.per_sec());
        },
    );
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr()).with_style(style);
    bar.set_message("0 failed");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One scenario's verdict, and what it prints.
struct ScenarioResult {
    text: String,
    verdict: Verdict,
    steps: usize,
}

/// Runs one loaded scenario; its output is gathered rather than printed,
/// so that scenarios run at once still print in order.
fn run_scenario(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    replay: &Replay,
    path: &Path,
    s: &Scenario,
    verbose: bool,
) -> ScenarioResult {
    let mut out = String::new();
    if verbose {
        out += &format!("{}\n", path.display());
        if let Some(a) = &s.about {
            out += &format!("  about: {a}\n");
        }
    }
    let rep = scenario_run::run(opts, cfg, s, |p| match p {
        _ if !verbose => {}
        Progress::Started(tree) => {
            out += "  tree:\n";
            out += &indent(&report::tree_text(tree), "  ");
        }
        Progress::Step(entry, rec) => {
            let race = if rec.outcomes > 1 {
                format!("  (a race: the model allowed {} outcomes)", rec.outcomes)
            } else {
                String::new()
            };
            out += &format!("  {}{race}\n", entry.step);
            out += &indent(&report::tree_text(&rec.observed), "  ");
        }
    });
    let steps = rep.steps.len();
    match &rep.verdict {
        Verdict::Passed if verbose => {
            out += &format!("  ok: {steps} step(s) checked against the model{}\n\n", expects(s));
        }
        Verdict::Passed => out += &format!("  ok    {} ({steps} steps)\n", path.display()),
        Verdict::Skipped(why) => out += &format!("  SKIP  {}: {why}\n", path.display()),
        Verdict::Failed(e) => {
            out += &format!("  FAIL  {}\n", path.display());
            out += &indent(&e.to_string(), "    ");
            out += &format!("    replay: {}\n\n", replay.command(path));
        }
    }
    ScenarioResult { text: out, verdict: rep.verdict, steps }
}

/// Runs loaded scenarios on `jobs` threads, printing each one's output in
/// file order as soon as it and those before it are done.
fn run_scenarios(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    replay: &Replay,
    loaded: &[(PathBuf, Scenario)],
    verbose: bool,
    jobs: impl Into<pool::Workers>,
    bar: &ProgressBar,
) -> Tally {
    let mut t = Tally::default();
    let job = |i: usize| run_scenario(opts, cfg, replay, &loaded[i].0, &loaded[i].1, verbose);
    pool::ordered(
        loaded.len(),
        jobs,
        job,
        |_| false,
        |results| {
            for (_, r) in results {
                bar.suspend(|| print!("{}", r.text));
                t.steps += r.steps;
                match r.verdict {
                    Verdict::Passed => t.passed += 1,
                    Verdict::Skipped(_) => t.skipped += 1,
                    Verdict::Failed(_) => t.failed += 1,
                }
                bar.inc(1);
                bar.set_message(format!("{} failed", t.failed));
            }
        },
    );
    t
}

fn expects(s: &Scenario) -> String {
    let n = s.steps.iter().filter(|e| e.expect.is_some()).count();
    if n == 0 {
        String::new()
    } else {
        format!(" and {n} expect block(s)")
    }
}

fn cmd_run(opts: &SandboxOptions, cfg: ModelConfig, replay: &Replay, files: &[PathBuf], quiet: bool) -> ExitCode {
    let loaded = match load_all(files, cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // One at a time: `run` is for reading a scenario's trace as it goes.
    let t = run_scenarios(opts, cfg, replay, &loaded, !quiet, 1, &ProgressBar::hidden());
    println!(
        "{} scenario(s): {} passed, {} failed, {} skipped; {} steps checked",
        loaded.len(),
        t.passed,
        t.failed,
        t.skipped,
        t.steps
    );
    if t.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_explain(cfg: ModelConfig, pinned: bool, file: &Path) -> ExitCode {
    let loaded = match load_all(&[file.to_path_buf()], cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let s = &loaded[0].1;
    let cfg = if pinned { cfg } else { cfg.for_needs(s) };
    // A step at a time: a long scenario's explanation need not fit in
    // memory, and `| head` ends it early (write errors stop it quietly).
    let mut stdout = std::io::stdout().lock();
    match explain::explain_to(&file.display().to_string(), s, cfg, |chunk| stdout.write_all(chunk.as_bytes()).is_ok()) {
        Ok(()) => {
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn default_scenarios_dir() -> PathBuf {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    if bundled.is_dir() {
        bundled
    } else {
        PathBuf::from("scenarios")
    }
}

fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tree"))
        .collect();
    files.sort();
    Ok(files)
}

fn cmd_check(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    replay: &Replay,
    scenarios: Option<PathBuf>,
    params: &RandomParams,
    stats: bool,
) -> ExitCode {
    let start = Instant::now();
    let dir = scenarios.unwrap_or_else(default_scenarios_dir);
    println!(
        "reparent check: Linux {} as uid {}{}; model of {}",
        os::kernel_release(),
        os::uid(),
        if os::is_root() { " (root)" } else { "" },
        explain::model_text(cfg)
    );
    let files = match scenario_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot list scenarios in {}: {e} (pass --scenarios DIR)", dir.display());
            return ExitCode::from(2);
        }
    };
    let loaded = match load_all(&files, cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    println!("scenarios in {}:", dir.display());
    let bar = progress_bar(loaded.len(), "scenarios");
    let workers = pool::Workers { jobs: params.jobs, one_cpu_each: params.one_cpu_each };
    let t = run_scenarios(opts, cfg, replay, &loaded, false, workers, &bar);
    bar.finish_and_clear();
    let placed = if workers.cpus(params.cases as usize).is_empty() { "" } else { ", each on a CPU of its own" };
    println!(
        "random cases: {} (seed {}, up to {} processes, up to {} steps each, {} at once{placed})",
        params.cases, params.seed, params.max_nodes, params.max_steps, params.jobs
    );
    let rstart = Instant::now();
    let bar = progress_bar(params.cases as usize, "cases");
    let r = random::run(opts, cfg, params, |tick| match tick {
        Tick::Cases { done, failed } => {
            bar.set_position(done.into());
            bar.set_message(format!("{failed} failed"));
        }
        Tick::Shrinking => bar.set_message("1 failed, shrinking it"),
    });
    bar.finish_and_clear();
    let rsecs = rstart.elapsed().as_secs_f64();
    let mut write_failed = false;
    if let Some(f) = &r.failure {
        if f.shrunk {
            println!("  FAIL  random case {} (shrunk after {} runs):", f.case, r.runs);
        } else {
            println!("  FAIL  random case {} (shrinking lost it after {} runs; written as generated):", f.case, r.runs);
        }
        print!("{}", indent(&f.message, "    "));
        match &f.path {
            Ok(p) => {
                let what = if f.shrunk { "minimal case" } else { "case" };
                println!("    {what} written to {}", p.display());
                println!("    replay: {}", replay.command(p));
            }
            Err(e) => {
                println!("    (it could not be written; here it is:)");
                print!("{}", indent(&f.text, "    "));
                eprintln!("error: {e}");
                write_failed = true;
            }
        }
    } else {
        println!("  ok    {} cases, {} steps checked", r.passed, r.steps);
    }
    if stats {
        print!("{}", stats_text(&r.stats, r.passed));
    }
    let random_ok = r.failure.is_none();
    println!(
        "summary: scenarios {}/{} passed ({} skipped), random cases {}/{} passed, {} steps checked, {:.1} cases/s, {:.1} s",
        t.passed,
        loaded.len(),
        t.skipped,
        r.passed,
        params.cases,
        t.steps + r.steps,
        r.runs as f64 / rsecs.max(1e-9),
        start.elapsed().as_secs_f64()
    );
    if write_failed {
        // An error of the tool, beyond the failure it found.
        ExitCode::from(2)
    } else if t.failed == 0 && random_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Where `reparent kernel` puts its table, and what it compares it with.
struct KernelOutput {
    /// JSON on stdout instead of text.
    json: bool,
    json_out: Option<PathBuf>,
    baseline: Option<PathBuf>,
}

/// The binary, as a table records it.
fn binary_version() -> kernel::BinaryVersion {
    kernel::BinaryVersion {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git: option_env!("REPARENT_GIT_DESCRIBE").map(str::to_string),
    }
}

fn cmd_kernel(
    opts: &SandboxOptions,
    cfg: ModelConfig,
    replay: &Replay,
    out: &KernelOutput,
    selection: kernel::Selection,
    scenarios: Option<PathBuf>,
    jobs: usize,
) -> ExitCode {
    let dir = scenarios.unwrap_or_else(default_scenarios_dir);
    let json = out.json;
    let rules = match kernel::select(kernel::RULES, &selection.only, &selection.skip) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reparent kernel: {e}");
            return ExitCode::from(2);
        }
    };
    // A baseline that cannot be read stops everything before the run.
    let baseline = match &out.baseline {
        Some(p) => match kernel::read_json_file(p) {
            Ok(t) => Some((p, t)),
            Err(e) => {
                eprintln!("reparent kernel: --baseline {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let userns = match kernel_table::preflight(opts) {
        Ok(u) => u,
        Err(why) => {
            eprintln!("reparent kernel: nothing was checked: {why}");
            return ExitCode::from(2);
        }
    };
    if !json {
        println!(
            "reparent kernel: Linux {} as uid {}{}; scenarios in {}, model of {}",
            os::kernel_release(),
            os::uid(),
            if os::is_root() { " (root)" } else { "" },
            dir.display(),
            explain::model_text(cfg)
        );
        println!("{}", kernel::header_text());
    }
    let from = kernel::Provenance {
        model: kernel::ModelVersion {
            kernel: cfg.kernel,
            orphan_hup: cfg.build.orphan_hup.word().to_string(),
            mutation: cfg.mutation.map(|m| m.name().to_string()),
        },
        binary: binary_version(),
        selection,
    };
    let bar = progress_bar(rules.len(), "rows");
    let mut failed = 0;
    let table = kernel_table::run(opts, cfg, &dir, &rules, userns, from, jobs, |row| {
        if !json {
            bar.suspend(|| println!("{}", kernel::row_text(row)));
        }
        failed += usize::from(row.result == kernel::Verdict::Fail);
        bar.inc(1);
        bar.set_message(format!("{failed} failed"));
    });
    bar.finish_and_clear();
    let table = match table {
        Ok(t) => t,
        Err(why) => {
            eprintln!("reparent kernel: stopped, no sandbox could be created: {why}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!("{}", table.to_json());
    } else {
        match table.userns {
            Some(true) => println!("(each probe ran in fresh user + PID + mount namespaces)"),
            Some(false) => {
                println!("(each probe ran in fresh PID + mount namespaces, as root without a user namespace)")
            }
            None => {}
        }
        print!("{}", table.footer_text(&dir, |f| replay.command(f)));
    }
    let mut status = table.exit_status();
    if let Some(path) = &out.json_out {
        if let Err(e) = std::fs::write(path, table.to_json() + "\n") {
            eprintln!("reparent kernel: cannot write the JSON to {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some((path, old)) = &baseline {
        let d = kernel::diff(old, &table);
        let text = kernel::diff_text(&path.display().to_string(), old, "this run", &table, &d);
        // With --json, stdout holds the JSON alone.
        if json {
            eprint!("\nchanges since the baseline:\n{text}");
        } else {
            print!("\nchanges since the baseline:\n{text}");
        }
        status = d.exit_status();
    }
    ExitCode::from(status)
}

/// `reparent diff OLD NEW`: 1 on a regression, 2 on a file that is not a
/// table this binary reads.
fn cmd_diff(old: &Path, new: &Path) -> ExitCode {
    let mut tables = Vec::new();
    for p in [old, new] {
        match kernel::read_json_file(p) {
            Ok(t) => tables.push(t),
            Err(e) => {
                eprintln!("reparent diff: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let d = kernel::diff(&tables[0], &tables[1]);
    print!("{}", kernel::diff_text(&old.display().to_string(), &tables[0], &new.display().to_string(), &tables[1], &d));
    ExitCode::from(d.exit_status())
}

/// `reparent kernel --self-test`: the proof that every row can fail.
fn cmd_kernel_self_test(cfg: ModelConfig, scenarios: Option<PathBuf>) -> ExitCode {
    let dir = scenarios.unwrap_or_else(default_scenarios_dir);
    println!(
        "reparent kernel --self-test: each scenario row against the model of Linux {}.{} with the mutation \
         that breaks its rule, each probe row's judgement fed observations that break its rule; scenarios in {} \
         (no kernel is used)",
        cfg.kernel.0,
        cfg.kernel.1,
        dir.display()
    );
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string());
    let proofs = kernel::prove(kernel::RULES, cfg, read);
    print!("{}", kernel::proof::proof_text(&proofs));
    let (killed, scenario_left, probes_left) = kernel::proof::summary(&proofs);
    println!(
        "summary: {} rows, {killed} killed; {scenario_left} scenario row(s) and {probes_left} probe or build \
         row(s) not killed",
        proofs.len()
    );
    if scenario_left == 0 && probes_left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn cmd_bench(opts: &SandboxOptions, cfg: ModelConfig, cases: usize, seed: u64, nodes: usize) -> ExitCode {
    println!(
        "bench: {cases} cases of {} processes ({} subreapers), {} sequential SIGKILLs each, the tree checked after every kill",
        nodes,
        bench::subreapers(nodes),
        bench::KILLS
    );
    let r = match bench::run(opts, cfg, cases, seed, nodes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "  {} cases, {} steps in {:.2} s: {:.1} cases/s, {:.2} ms per case",
        r.cases,
        r.steps,
        r.wall.as_secs_f64(),
        r.cases_per_second(),
        r.wall.as_secs_f64() * 1000.0 / r.cases.max(1) as f64
    );
    let total = r.times.total().as_secs_f64().max(1e-9);
    let per = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / r.cases.max(1) as f64;
    println!("  where the time goes, per case:");
    for (name, d) in [
        ("namespace set-up (helper, unshare, PID 1)", r.times.setup),
        ("building the tree (a fork per process)", r.times.build),
        ("kill and wait (pidfds, pings, /proc scan)", r.times.act_and_wait),
        ("render the observed tree", r.times.observe),
        ("model and compare", r.times.model),
        ("teardown (kill PID 1, wait)", r.times.teardown),
        ("helper fork, runner <-> helper I/O, the rest", r.times.other),
    ] {
        println!("    {name:<44} {:>7.3} ms  {:>5.1}%", per(d), 100.0 * d.as_secs_f64() / total);
    }
    ExitCode::SUCCESS
}

/// `reparent gate`: runs every trial of the gate on INIT and prints the
/// verdicts.
fn cmd_gate(g: gate::Gate, json: bool, junit: Option<&Path>, expect: Option<&Path>) -> ExitCode {
    let expect = match expect.map(gate::Expectations::load).transpose() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut report = match g.run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reparent gate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(e) = &expect {
        report.pin(e);
    }
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if let Some(path) = junit {
        let written = report.junit().and_then(|xml| std::fs::write(path, xml).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("reparent gate: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
