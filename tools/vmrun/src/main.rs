// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox-vmrun`: boots FDBox's kernel in QEMU, lets the guest run its tests across a KHO
//! kexec, and reports one line per test case.

mod console;
mod results;
mod vm;

use results::{
    Case,
    Milestone,
    Outcome,
    Results, //
};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{
    Path,
    PathBuf, //
};
use std::process::ExitCode;
use std::time::Duration;
use vm::{
    End,
    Limits,
    Logs,
    Machine,
    Port, //
};

const USAGE: &str = "\
usage: fdbox-vmrun run|selftest|probe-kvm [options]

  run        boot the guest, run its tests, report one line per test case
  selftest   prove the runner reports a guest that panics, hangs or fails a test
  probe-kvm  exit 0 if a KVM guest shows signs of life within a few seconds

options:
  --kernel PATH      bzImage (required)
  --initrd PATH      initramfs from scripts/initramfs.sh (required)
  --flavour F        release or debug: sets timeouts and guest options (default release)
  --log-dir DIR      where console.log, results.log and guest.log go (required for run)
  --tests DIR        the guest's test tree (default /tests)
  --stages N         stages the guest must reach: 2 means a kexec (default 2)
  --append ARGS      extra kernel command line
  --memory MIB       guest memory (default by flavour: 1024 release, 3072 debug)
  --cpus N           guest vCPUs, 1 to 64 (default 2); TCG runs them in threads of their own
  --results FILE     append PASS/FAIL/SKIP lines here
  --timeout SECS     hard limit on the whole boot (default by flavour)
  --silence SECS     longest the guest may print nothing (default by flavour)
  --kvm              use KVM instead of TCG
  --echo             print the guest's results port as it arrives
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Release,
    Debug,
}

impl Flavour {
    /// The debug kernel runs about 7x slower under TCG, and kmemleak scans are silent for ~15 s.
    fn limits(self) -> Limits {
        match self {
            Flavour::Release => Limits {
                total: Duration::from_secs(180),
                silence: Duration::from_secs(30),
            },
            // `make test`'s two-stage debug run takes about 12 minutes alone, and shares the
            // machine's CPUs with the boot pairs that `scripts/test.sh` runs beside it.
            Flavour::Debug => Limits {
                total: Duration::from_secs(1800),
                silence: Duration::from_secs(120),
            },
        }
    }

    /// The debug kernel needs room for `kho_scratch` besides KASAN's shadow, and for what the
    /// tests preserve: preserved memory lies outside scratch, and a kexec must still be able to
    /// load the next kernel there.
    fn memory_mib(self) -> u32 {
        match self {
            Flavour::Release => 1024,
            Flavour::Debug => 3072,
        }
    }

    /// KASAN's early allocations leave KHO no room for its default scratch areas, and KHO then
    /// turns itself off.
    fn append(self) -> &'static str {
        match self {
            Flavour::Release => "",
            Flavour::Debug => "kho_scratch=128M,512M,128M kasan_multi_shot",
        }
    }
}

struct Options {
    kernel: PathBuf,
    initrd: PathBuf,
    flavour: Flavour,
    log_dir: Option<PathBuf>,
    tests: String,
    stages: u32,
    append: String,
    memory_mib: Option<u32>,
    cpus: u32,
    results: Option<PathBuf>,
    limits: Limits,
    kvm: bool,
    echo: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut kernel = None;
    let mut initrd = None;
    let mut flavour = Flavour::Release;
    let mut log_dir = None;
    let mut tests = "/tests".to_string();
    let mut stages = 2;
    let mut append = String::new();
    let mut memory_mib = None;
    let mut cpus = 2;
    let mut results = None;
    let mut timeout = None;
    let mut silence = None;
    let mut kvm = false;
    let mut echo = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        let secs = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{arg}: '{v}' is not a number of seconds"))
        };
        match arg.as_str() {
            "--kernel" => kernel = Some(PathBuf::from(value()?)),
            "--initrd" => initrd = Some(PathBuf::from(value()?)),
            "--flavour" => {
                flavour = match value()?.as_str() {
                    "release" => Flavour::Release,
                    "debug" => Flavour::Debug,
                    other => return Err(format!("unknown flavour '{other}'")),
                }
            }
            "--log-dir" => log_dir = Some(PathBuf::from(value()?)),
            "--tests" => tests = value()?,
            "--stages" => {
                let v = value()?;
                stages = v
                    .parse()
                    .map_err(|_| format!("--stages: '{v}' is not a number"))?;
            }
            "--append" => append = value()?,
            "--memory" => {
                let v = value()?;
                memory_mib = Some(
                    v.parse()
                        .map_err(|_| format!("--memory: '{v}' is not a number of MiB"))?,
                );
            }
            "--cpus" => {
                let v = value()?;
                cpus = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("--cpus: '{v}' is not a number from 1 to 64"))?;
            }
            "--results" => results = Some(PathBuf::from(value()?)),
            "--timeout" => timeout = Some(secs(value()?)?),
            "--silence" => silence = Some(secs(value()?)?),
            "--kvm" => kvm = true,
            "--echo" => echo = true,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let defaults = flavour.limits();
    Ok(Options {
        kernel: kernel.ok_or("--kernel is required")?,
        initrd: initrd.ok_or("--initrd is required")?,
        flavour,
        log_dir,
        tests,
        stages,
        append,
        memory_mib,
        cpus,
        results,
        limits: Limits {
            total: timeout.unwrap_or(defaults.total),
            silence: silence.unwrap_or(defaults.silence),
        },
        kvm,
        echo,
    })
}

/// Kernel errors after which a boot is stopped.
const MAX_KERNEL_FAILURES: usize = 20;

/// What one boot produced.
struct Report {
    cases: Vec<Case>,
    end: End,
    elapsed: Duration,
    /// Whether the guest's `/init` started, i.e. whether any test could have run.
    reached_init: bool,
    /// How many log lines were shown to explain a failure.
    tail_shown: usize,
}

impl Report {
    fn failed(&self) -> impl Iterator<Item = &Case> {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    fn passed(&self) -> bool {
        self.failed().next().is_none()
    }
}

fn machine(opts: &Options, tests: &str) -> Machine {
    let append = [
        "console=ttyS0 earlyprintk=serial,ttyS0 kho=on liveupdate=on panic=-1",
        // edu and igb, with igb's virtual functions, go to vfio-pci at boot in every kernel;
        // without interrupt remapping in the config, iommufd binds only with
        // allow_unsafe_interrupts.
        "intel_iommu=on iommufd.allow_unsafe_interrupts=1 \
         vfio_pci.ids=1234:11e8,8086:10c9,8086:10ca vfio_pci.enable_sriov=1",
        opts.flavour.append(),
        &format!("fdbox.tests={tests} fdbox.stages={}", opts.stages.max(1)),
        &opts.append,
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    Machine {
        kernel: opts.kernel.clone(),
        initrd: opts.initrd.clone(),
        append,
        memory_mib: opts.memory_mib.unwrap_or(opts.flavour.memory_mib()),
        cpus: opts.cpus,
        kvm: opts.kvm,
    }
}

/// Boots once and reports; `indent` prefixes every line printed.
fn run_vm(
    opts: &Options,
    tests: &str,
    stages: u32,
    limits: Limits,
    log_dir: &Path,
    indent: &str,
) -> std::io::Result<Report> {
    let machine = machine(opts, tests);
    let mut logs = Logs::create(log_dir)?;
    let mut results = Results::new();
    let mut timeline: Vec<(Milestone, Duration)> = Vec::new();
    let mut kernel_failures = Vec::new();
    println!(
        "{indent}booting {} ({} MiB, {}), logs in {}",
        machine.kernel.display(),
        machine.memory_mib,
        if machine.kvm { "KVM" } else { "TCG" },
        log_dir.display()
    );
    let end = vm::boot(&machine, limits, &mut logs, |port, at, line| match port {
        Port::Console => {
            if let Some(why) = console::fatal(line) {
                kernel_failures.push(format!("{why}: {}", line.trim()));
            }
            // A storm of reports says all there is to say; don't wait out the timeout.
            (kernel_failures.len() >= MAX_KERNEL_FAILURES)
                .then(|| format!("stopped after {MAX_KERNEL_FAILURES} kernel errors"))
        }
        Port::Results => {
            if opts.echo {
                if let Some(text) = narrative(line) {
                    println!("{indent}  {text}");
                }
            }
            for case in results.feed(line) {
                println!("{indent}{case}");
            }
            let known = timeline.len();
            for &milestone in &results.milestones()[known..] {
                timeline.push((milestone, at));
            }
            None
        }
    })?;

    let clean = matches!(end, End::Exited(Some(0)));
    for case in results.finish((!clean).then(|| end.describe()).as_deref(), stages) {
        println!("{indent}{case}");
    }
    // A kernel that complained fails the run even if every test passed.
    kernel_failures.dedup();
    for failure in kernel_failures.iter().take(5) {
        results.fail("kernel/log", failure.clone());
        println!("{indent}{}", results.cases().last().expect("just pushed"));
    }

    let elapsed = timeline.last().map_or(Duration::ZERO, |&(_, at)| at);
    for (milestone, at) in &timeline {
        let what = match milestone {
            Milestone::StageBegin(1) => "boot to stage 1".to_string(),
            Milestone::StageBegin(n) => format!("kexec to stage {n}"),
            Milestone::Kexec => "stage 1 done, kexec".to_string(),
            Milestone::Done => "all stages done".to_string(),
        };
        println!("{indent}  {:7.2} s  {what}", at.as_secs_f64());
    }

    let mut report = Report {
        cases: results.cases().to_vec(),
        end,
        elapsed,
        reached_init: !results.milestones().is_empty(),
        tail_shown: 0,
    };
    if !report.passed() {
        println!(
            "{indent}the guest failed ({}); last lines of its logs:",
            report.end.describe()
        );
        for (name, path, n) in [
            ("console", logs.console_path(), 30),
            ("results", logs.results_path(), 10),
        ] {
            for line in vm::tail(&path, n) {
                println!("{indent}  {name}| {line}");
                report.tail_shown += 1;
            }
        }
        println!("{indent}full logs: {}", log_dir.display());
    }
    Ok(report)
}

/// What `--echo` shows of a results line: the guest's diagnostics and other text, without the
/// markers and the KTAP structure the case lines already report.
fn narrative(line: &str) -> Option<&str> {
    if line.starts_with("# fdbox: ")
        || line.starts_with("TAP version ")
        || line.starts_with("1..")
        || line.starts_with("ok ")
        || line.starts_with("not ok ")
    {
        return None;
    }
    Some(line.strip_prefix("# ").unwrap_or(line))
}

/// Appends one line per case to `path` with a single write, so that runners sharing the file
/// never interleave within a line.
fn record(path: Option<&Path>, cases: &[Case]) -> std::io::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let mut lines = String::new();
    for case in cases {
        lines += &match &case.outcome {
            Outcome::Pass => format!("PASS {}\n", case.name),
            Outcome::Fail(why) => format!("FAIL {}: {why}\n", case.name),
            Outcome::Skip(why) => format!("SKIP {}: {why}\n", case.name),
        };
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(lines.as_bytes())
}

fn cmd_run(opts: &Options) -> Result<bool, String> {
    let log_dir = opts.log_dir.as_ref().ok_or("--log-dir is required")?;
    let mut report = run_vm(opts, &opts.tests, opts.stages, opts.limits, log_dir, "")
        .map_err(|e| e.to_string())?;
    // TCG occasionally crashes the kernel in early boot, before any of our code is loaded. Such
    // a boot gets one more try; the first stays on disk and in the results as a skip.
    if !report.passed() && !report.reached_init && !mentions_fdbox(&report) {
        let first = log_dir.with_extension("first-attempt");
        let _ = std::fs::remove_dir_all(&first);
        std::fs::rename(log_dir, &first).map_err(|e| e.to_string())?;
        println!(
            "the guest died before /init ({}); booting once more, first attempt's logs in {}",
            report.end.describe(),
            first.display()
        );
        let first_error = report
            .failed()
            .find(|c| c.name == "kernel/log")
            .map_or(String::new(), |c| format!("; {}", c.outcome_reason()));
        let retried = Case {
            name: "harness/early-boot-retry".into(),
            outcome: Outcome::Skip(format!(
                "first boot died before /init: {}{first_error}",
                report.end.describe()
            )),
        };
        report = run_vm(opts, &opts.tests, opts.stages, opts.limits, log_dir, "")
            .map_err(|e| e.to_string())?;
        report.cases.push(retried);
    }
    record(opts.results.as_deref(), &report.cases).map_err(|e| e.to_string())?;
    Ok(report.passed())
}

/// Whether a failed boot's errors involve KHO, liveupdate or FDBox, which a retry must never
/// paper over.
fn mentions_fdbox(report: &Report) -> bool {
    report.failed().any(|c| {
        let why = c.outcome_reason().to_ascii_lowercase();
        ["kho", "liveupdate", "luo", "fdbox"]
            .iter()
            .any(|word| why.contains(word))
    })
}

/// A planted guest failure and what the runner must make of it.
struct Planted {
    name: &'static str,
    limits: Limits,
    /// Returns why the report is wrong, if it is.
    judge: fn(&Report, Limits) -> Option<String>,
}

fn judge_panic(report: &Report, limits: Limits) -> Option<String> {
    if !report
        .failed()
        .any(|c| matches!(&c.outcome, Outcome::Fail(why) if why.contains("kernel panic")))
    {
        return Some("no failure names the kernel panic".into());
    }
    judge_common(report, limits)
}

fn judge_hang(report: &Report, limits: Limits) -> Option<String> {
    if report.end != End::Silent(limits.silence) {
        return Some(format!(
            "ended with '{}', not as silent",
            report.end.describe()
        ));
    }
    judge_common(report, limits)
}

fn judge_fail(report: &Report, limits: Limits) -> Option<String> {
    let failed: Vec<&str> = report.failed().map(|c| c.name.as_str()).collect();
    if failed != ["s1/fail/planted_failure"] {
        return Some(format!(
            "failures reported: {failed:?}, expected only the planted one"
        ));
    }
    if !report
        .cases
        .iter()
        .any(|c| c.name == "s1/fail/planted_pass" && c.outcome == Outcome::Pass)
    {
        return Some("the passing case next to it was not reported as passing".into());
    }
    judge_common(report, limits)
}

fn judge_common(report: &Report, limits: Limits) -> Option<String> {
    if report.tail_shown == 0 {
        return Some("no log tail shown".into());
    }
    // The deadline plus the grace the runner gives QEMU to die.
    if report.elapsed > limits.total + Duration::from_secs(10) {
        return Some(format!("took {} s", report.elapsed.as_secs()));
    }
    None
}

fn cmd_selftest(opts: &Options) -> Result<bool, String> {
    let log_root = opts.log_dir.as_ref().ok_or("--log-dir is required")?;
    let base = opts.flavour.limits();
    let short = |total: u64, silence: u64| Limits {
        total: Duration::from_secs(total).min(base.total),
        silence: Duration::from_secs(silence).min(base.silence),
    };
    // Long enough for a boot on a busy host (make test runs boot pairs beside this one): a
    // guest that is only slow must not pass for a hung one, nor miss the panic it planted.
    let (total, silence) = match opts.flavour {
        Flavour::Release => (120, 40),
        Flavour::Debug => (240, 40),
    };
    let planted = [
        Planted {
            name: "panic",
            limits: short(total, silence),
            judge: judge_panic,
        },
        Planted {
            name: "hang",
            limits: short(total, silence),
            judge: judge_hang,
        },
        Planted {
            name: "fail",
            limits: base,
            judge: judge_fail,
        },
    ];
    let mut cases = Vec::new();
    for planted in &planted {
        println!("runner self-test: a guest that planted '{}'", planted.name);
        let tests = format!("/planted/{}", planted.name);
        let log_dir = log_root.join(planted.name);
        let report =
            run_vm(opts, &tests, 1, planted.limits, &log_dir, "  | ").map_err(|e| e.to_string())?;
        let name = format!("harness/selftest/reports_{}", planted.name);
        let outcome = match (planted.judge)(&report, planted.limits) {
            None => Outcome::Pass,
            Some(why) => Outcome::Fail(why),
        };
        let case = Case { name, outcome };
        println!("{case}");
        cases.push(case);
    }
    record(opts.results.as_deref(), &cases).map_err(|e| e.to_string())?;
    Ok(cases.iter().all(|c| c.outcome == Outcome::Pass))
}

fn cmd_probe_kvm(opts: &Options) -> Result<bool, String> {
    if OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(false);
    }
    let dir = std::env::temp_dir().join(format!("fdbox-kvm-probe-{}", std::process::id()));
    let mut logs = Logs::create(&dir).map_err(|e| e.to_string())?;
    let mut opts_kvm = machine(opts, "/none");
    opts_kvm.kvm = true;
    let limits = Limits {
        total: Duration::from_secs(8),
        silence: Duration::from_secs(5),
    };
    let mut alive = false;
    vm::boot(&opts_kvm, limits, &mut logs, |port, _, line| {
        alive |= port == Port::Console && console::is_kernel_output(line);
        None
    })
    .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(alive)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if command == "--help" || command == "-h" {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse_options(rest) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("fdbox-vmrun: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "run" => cmd_run(&opts),
        "selftest" => cmd_selftest(&opts),
        "probe-kvm" => cmd_probe_kvm(&opts),
        other => {
            eprintln!("fdbox-vmrun: unknown command '{other}'\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fdbox-vmrun: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_shows_narrative_not_structure() {
        for line in [
            "# fdbox: run demo",
            "TAP version 13",
            "1..2",
            "ok 1 preserve",
            "not ok 2 restore",
        ] {
            assert_eq!(narrative(line), None, "{line}");
        }
        assert_eq!(narrative("# Kernel 1 is up"), Some("Kernel 1 is up"));
        assert_eq!(narrative("plain output"), Some("plain output"));
    }
}
