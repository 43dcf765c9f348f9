//! `gpu-fmnist experiment`: list, run and report the hyperparameter studies.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::{DataDirArg, DeviceArgs};
use crate::data::FashionMnist;
use crate::experiment::record::Record;
use crate::experiment::report::{write_merged, write_study};
use crate::experiment::verdict::Plan;
use crate::experiment::{figures, Events, Overrides, Runner, Study, Trial, BUILTIN};

/// Run the report's hyperparameter studies (or your own study files) and give each claim a
/// verdict: `experiment --list`, `experiment NAME… | --all`, `experiment figures`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// Built-in study names (see --list), study files (.toml), or `figures` (the report's figures).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Every built-in study.
    #[arg(long)]
    all: bool,
    /// List the built-in studies with their claims.
    #[arg(long)]
    list: bool,
    /// Print one line per trial the study needs now (index, setting, seed), for job arrays: the
    /// first round, then — once it is recorded — the seeds its undecided statements ask for.
    #[arg(long)]
    trials: bool,
    /// Run only trial K of the study (see --trials), e.g. `--trial $SLURM_ARRAY_TASK_ID`.
    #[arg(long, value_name = "K")]
    trial: Option<usize>,
    /// (Re)write the reports from the trials finished so far; trains nothing.
    #[arg(long)]
    report: bool,
    /// Epochs per trial (default: the study's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Train on the first N training images only (validation and test stay whole).
    #[arg(long, value_name = "N")]
    subset: Option<usize>,
    /// Seeds per setting: K, or `auto[:MAX]` — a first round of 5, then more seeds up to MAX
    /// (10) for the settings of statements still undecided [default: the study's].
    #[arg(long, value_name = "K|auto[:MAX]")]
    seeds: Option<String>,
    /// Trials run at once (on the CPU path, 2 use both cores of a 2-core machine).
    #[arg(long, default_value_t = 1, value_name = "J")]
    jobs: usize,
    /// Where studies keep their trial records and reports: DIR/<study>/ and DIR/REPORT.md. A
    /// record there counts as a finished trial.
    #[arg(long, value_name = "DIR", default_value = "docs/experiments")]
    out: PathBuf,
    /// Where trials train: their run directories, with checkpoints to resume from.
    #[arg(long, value_name = "DIR", default_value = "runs/experiments")]
    work: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    data: DataDirArg,
}

/// One line per trial as it starts and ends.
struct Lines {
    start: Instant,
    done: Mutex<usize>,
    /// Of those done, the ones kept or copied rather than trained.
    reused: Mutex<usize>,
    total: usize,
}

impl Events for Lines {
    fn trial_end(&self, study: &str, t: &Trial, r: &Record) {
        let mut done = self.done.lock().expect("no panics hold it");
        *done += 1;
        let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.2}%", 100.0 * v));
        // The rest of the trials counted at the start, at this command's pace (trials copied or
        // kept count as done; a second round of seeds may add more).
        let elapsed = self.start.elapsed().as_secs_f64();
        let trained = *done - *self.reused.lock().expect("no panics hold it");
        let eta = match self.total.saturating_sub(*done) {
            0 => String::new(),
            left if trained > 0 => format!(
                ", about {:.0} min to go for {left} more",
                elapsed / trained as f64 * left as f64 / 60.0
            ),
            _ => String::new(),
        };
        let how = match &r.failed {
            Some(why) => format!("failed to train ({why})"),
            None => format!("val {}, test {}", pct(r.val_accuracy), pct(r.test_accuracy)),
        };
        // A second round of seeds runs past the first round's count.
        let count =
            if *done <= self.total { format!("{}/{}", *done, self.total) } else { format!("{}", *done) };
        println!(
            "[{count}] {study} trial {} ({}, seed {}): {how}, {:.0} s (elapsed {:.0} s{})",
            t.index, t.setting, t.seed, r.train_seconds, elapsed, eta
        );
    }

    fn trial_twin(&self, study: &str, t: &Trial, twin: &str) {
        *self.done.lock().expect("no panics hold it") += 1;
        *self.reused.lock().expect("no panics hold it") += 1;
        println!(
            "{study} trial {} ({}, seed {}): the same run finished in {twin}, copied",
            t.index, t.setting, t.seed
        );
    }

    fn trial_skipped(&self, study: &str, t: &Trial) {
        *self.done.lock().expect("no panics hold it") += 1;
        *self.reused.lock().expect("no panics hold it") += 1;
        println!("{study} trial {} ({}, seed {}): finished before, kept", t.index, t.setting, t.seed);
    }
}

fn order() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Every built-in study, in the merged report's order.
fn builtin() -> anyhow::Result<Vec<Study>> {
    BUILTIN.iter().map(|(n, _)| Study::load(n)).collect()
}

pub fn run(a: &ExperimentArgs) -> anyhow::Result<()> {
    if a.list {
        println!("{:<16} claim", "study");
        for (name, _) in BUILTIN {
            let s = Study::load(name)?;
            let trials = s.trials(&Overrides::default()).len();
            println!(
                "{name:<16} {} ({} settings × seeds {}: {trials} trials in the first round)",
                s.claim,
                s.settings.len(),
                s.plan
            );
        }
        return Ok(());
    }
    anyhow::ensure!(a.jobs >= 1, "--jobs must be at least 1");
    anyhow::ensure!(a.epochs != Some(0), "--epochs must be at least 1");
    anyhow::ensure!(a.subset != Some(0), "--subset must be at least 1");
    let plan =
        a.seeds.as_deref().map(Plan::parse).transpose().map_err(|e| anyhow::anyhow!("--seeds: {e}"))?;
    let overrides = Overrides { epochs: a.epochs, plan, subset: a.subset };
    let figures_only = a.names.len() == 1 && a.names[0] == "figures";
    let names: Vec<String> =
        if a.all { order().into_iter().map(String::from).collect() } else { a.names.clone() };
    anyhow::ensure!(!names.is_empty(), "name a study (see --list), or give --all, --list or `figures`");
    let studies = if figures_only {
        vec![]
    } else {
        names.iter().map(|n| Study::load(n)).collect::<anyhow::Result<Vec<_>>>()?
    };
    if a.trials || a.trial.is_some() {
        anyhow::ensure!(studies.len() == 1, "--trials and --trial take exactly one study");
    }
    if a.trials {
        let s = &studies[0];
        let done = s.records(&overrides, &a.out.join(&s.name), None)?;
        for t in s.pending(&overrides, &done) {
            println!("{}\t{}\tseed {}", t.index, t.setting, t.seed);
        }
        return Ok(());
    }
    if a.report {
        for s in &studies {
            let dir = a.out.join(&s.name);
            if a.all && !dir.is_dir() {
                continue; // the merged report lists it as not run yet
            }
            anyhow::ensure!(dir.is_dir(), "{}: no trials of {} there yet", dir.display(), s.name);
            let summary = write_study(s, &dir, &overrides)?;
            let verdict = match summary.records {
                0 => "not run yet".to_string(),
                _ => format!("{}{}", summary.verdict, summary.interim()),
            };
            println!(
                "{}: {verdict} ({} records) — {}",
                s.name,
                summary.records,
                dir.join("REPORT.md").display()
            );
        }
        let n = write_merged(&a.out, &builtin()?)?;
        println!("wrote {} ({n} studies)", a.out.join("REPORT.md").display());
        return Ok(());
    }

    let mut data = FashionMnist::load(a.data.data_dir.as_deref())?;
    let data_id = data.identity();
    if let Some(n) = a.subset {
        data.train = data.train.slice(0..n.min(data.train.len()));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (executor, device_line) = a.device.open(Some((cores / a.jobs).max(1)))?;
    println!("{device_line}");
    let runner = Runner {
        executor: &executor,
        device: a.device.pick.device,
        data: &data,
        data_id,
        out: a.out.clone(),
        work: a.work.clone(),
        overrides: overrides.clone(),
        jobs: a.jobs,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    if figures_only {
        let events = Lines { start: Instant::now(), done: Mutex::new(0), reused: Mutex::new(0), total: 2 };
        let dir = figures::write(&runner, &events)?;
        println!("wrote {}", dir.join("FIGURES.md").display());
        return Ok(());
    }
    let total = match a.trial {
        Some(_) => 1,
        None => studies.iter().map(|s| s.trials(&overrides).len()).sum(),
    };
    // (A study with `auto` seeds may run a second round past this count.)
    let events = Lines { start: Instant::now(), done: Mutex::new(0), reused: Mutex::new(0), total };
    super::stop_on_signals();
    for s in &studies {
        runner.run(s, a.trial, &events).map_err(|e| match e.downcast_ref::<crate::train::Interrupted>() {
            Some(_) => {
                anyhow::anyhow!("{e:#}; every trial checkpointed where it stopped: the same command resumes")
            }
            None => e,
        })?;
        if a.trial.is_none() {
            let summary = write_study(s, &runner.study_dir(s), &overrides)?;
            write_merged(&a.out, &builtin()?)?;
            println!("{}: {} — {}", s.name, summary.verdict, runner.study_dir(s).join("REPORT.md").display());
        }
    }
    if a.trial.is_none() {
        println!("wrote {}", a.out.join("REPORT.md").display());
    }
    Ok(())
}
