//! `gpu-fmnist bench`: every engine side by side in one run — our GPU path, our CPU path at each
//! thread count, PyTorch and Keras (benches/peers.py) — as a markdown epoch table (JSON, CSV and
//! a PNG bar chart on request), then the kernel table and per-op profiles of both paths.

use crate::bench::{self, EpochTiming, Peer};
use crate::data::FashionMnist;
use crate::device::Executor;
use crate::graph::ModelSpec;

use super::BenchArgs;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (reps, steps) = (args.reps, args.steps);
    anyhow::ensure!(reps >= 1, "--reps must be at least 1");
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    anyhow::ensure!(args.threads.iter().all(|&t| t >= 1), "--threads must be at least 1");
    anyhow::ensure!(args.batch.iter().all(|&b| b >= 1), "--batch must be at least 1");
    let specs = args.model.iter().map(|m| ModelSpec::load(m)).collect::<anyhow::Result<Vec<_>>>()?;
    let data = FashionMnist::load(args.data.data_dir.as_deref())?;
    let largest = args.batch.iter().copied().max().unwrap_or(32);
    anyhow::ensure!(
        data.train.len() >= largest,
        "bench times batches of {largest}, and {} holds {} training images",
        data.dir.display(),
        data.train.len()
    );
    let (exec, line) = Executor::open(args.device.device, args.device.adapter.as_deref())?;
    if let Some(json) = &args.profile_step {
        return profile_steps(&exec, &line, &data, &specs, args.batch[0], json.as_deref());
    }
    let epoch_steps = |batch: usize| data.train.len() / batch;
    let each = if steps == 0 { "a whole epoch".to_string() } else { format!("{steps} steps") };
    let timed =
        if reps == 1 { format!("one run of {each}") } else { format!("medians of {reps} runs of {each}") };
    let rounds = match args.rounds {
        1 => String::new(),
        r => format!("; {r} rounds, ours and the peers alternating who goes first, medians over the rounds"),
    };
    println!("{line}; {timed}{rounds}; an epoch is {} images", data.train.len());

    // Our engines, model by model and batch by batch.
    let ours = || -> anyhow::Result<Vec<EpochTiming>> {
        let mut rows = Vec::new();
        for spec in &specs {
            for &batch in &args.batch {
                let cpus: Vec<(Executor, usize)> =
                    args.threads.iter().map(|&t| (Executor::Cpu { threads: t }, t)).collect();
                let mut executors: Vec<(&Executor, usize)> = cpus.iter().map(|(e, t)| (e, *t)).collect();
                if let Executor::Gpu(_) = &exec {
                    executors.insert(0, (&exec, 0));
                }
                for &(executor, ref threads) in &executors {
                    let t = bench::train_steps(executor, &data, spec, batch, steps, reps)?;
                    let gpu = matches!(executor, Executor::Gpu(_));
                    rows.push(EpochTiming {
                        engine: "gpu-fmnist".into(),
                        device: match executor {
                            Executor::Gpu(ctx) => ctx.adapter.info.name.clone(),
                            Executor::Cpu { .. } => "cpu".into(),
                        },
                        model: spec.name.clone(),
                        batch,
                        threads: *threads,
                        seconds_per_step: t.seconds_per_step,
                        epoch_seconds: t.seconds_per_step * epoch_steps(batch) as f64,
                        images_per_second: t.images_per_second,
                        dispatches_per_step: gpu.then_some(t.dispatches_per_step),
                    });
                }
            }
        }
        Ok(rows)
    };
    // The peers, each engine and thread count in a process of its own (benches/peers.py).
    let peers = || -> anyhow::Result<(Vec<EpochTiming>, Vec<String>)> {
        let (mut rows, mut missing) = (Vec::new(), Vec::new());
        if args.no_peers {
            return Ok((rows, missing));
        }
        let models: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let found = bench::peers(
            &args.python,
            &["torch", "keras"],
            &data.dir,
            &models,
            &args.batch,
            &args.threads,
            args.peer_steps,
            epoch_steps,
        )?;
        for p in found {
            match p {
                Peer::Timed(t) => rows.push(t),
                Peer::Missing { engine, reason } => missing.push(format!("{engine}: {reason}")),
            }
        }
        Ok((rows, missing))
    };
    // Rounds alternate who goes first (ours, then the peers; then the peers, then ours; …), so
    // that neither side always meets a machine the other has just warmed or loaded.
    let mut rounds: Vec<EpochTiming> = Vec::new();
    let mut missing = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        for our_turn in order {
            if our_turn {
                rounds.extend(ours()?);
            } else {
                let (r, m) = peers()?;
                rounds.extend(r);
                missing = m;
            }
        }
    }
    let mut rows = bench::median_rows(rounds);

    // The floor: each step's products at the rate of a large product on this CPU.
    let mut rates = Vec::new();
    for &t in &args.threads {
        rates.push((t, bench::product_rate(t)?));
    }
    let mut flops = Vec::new();
    for spec in &specs {
        for &batch in &args.batch {
            let f = bench::step_flops(&data, spec, batch)?;
            flops.push((spec.name.clone(), batch, f));
            for &(threads, rate) in &rates {
                let seconds_per_step = f / rate;
                rows.push(EpochTiming {
                    engine: "floor".into(),
                    device: "cpu".into(),
                    model: spec.name.clone(),
                    batch,
                    threads,
                    seconds_per_step,
                    epoch_seconds: seconds_per_step * epoch_steps(batch) as f64,
                    images_per_second: batch as f64 / seconds_per_step,
                    dispatches_per_step: None,
                });
            }
        }
    }

    println!();
    println!("| model | batch | engine | device | threads | ms/step | epoch s | images/s | ÷ fastest peer | × floor | dispatches/step |");
    println!("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for spec in &specs {
        for &batch in &args.batch {
            let here: Vec<&EpochTiming> =
                rows.iter().filter(|r| r.model == spec.name && r.batch == batch).collect();
            let fastest_peer = here
                .iter()
                .filter(|r| r.engine != "gpu-fmnist" && r.engine != "floor")
                .map(|r| r.seconds_per_step)
                .fold(f64::INFINITY, f64::min);
            for r in &here {
                let ratio = if fastest_peer.is_finite() {
                    format!("{:.2}×", r.seconds_per_step / fastest_peer)
                } else {
                    "—".into()
                };
                // Against the floor at the same thread count (CPU rows only).
                let floor = here
                    .iter()
                    .find(|f| f.engine == "floor" && f.threads == r.threads && r.device == "cpu")
                    .map_or("—".into(), |f| format!("{:.1}×", r.seconds_per_step / f.seconds_per_step));
                let threads = if r.threads == 0 { "—".to_string() } else { r.threads.to_string() };
                let dispatches = r.dispatches_per_step.map_or("—".into(), |d| d.to_string());
                println!(
                    "| {} | {} | {} | {} | {threads} | {:.3} | {:.2} | {:.0} | {ratio} | {floor} | {dispatches} |",
                    r.model,
                    r.batch,
                    r.engine,
                    r.device,
                    r.seconds_per_step * 1e3,
                    r.epoch_seconds,
                    r.images_per_second
                );
            }
        }
    }
    println!();
    let per_step: Vec<String> =
        flops.iter().map(|(m, b, f)| format!("{m} at batch {b}: {:.1} MFLOP", f / 1e6)).collect();
    let at: Vec<String> =
        rates.iter().map(|(t, r)| format!("{:.0} GFLOP/s on {}", r / 1e9, threads(*t))).collect();
    println!(
        "Floor: a training step's products ({}) at the rate of a 1024³ product on this CPU ({}); every other pass of a step is memory traffic it leaves out, so no CPU engine trains faster without doing fewer FLOPs. × floor is ms/step over the floor's at the same thread count.",
        per_step.join(", "),
        at.join(", ")
    );
    if args.no_peers {
        println!("Peers not timed (--no-peers).");
    } else {
        println!(
            "Peers: benches/peers.py with `{}`, each timed over {} after a warm-up step (ours: {timed}); ÷ fastest peer is ms/step over the fastest peer's at that model and batch.",
            args.python,
            if args.peer_steps == 0 { "a whole epoch".to_string() } else { format!("{} consecutive steps", args.peer_steps) }
        );
        for m in &missing {
            println!("Missing peer — {m}");
        }
    }
    if let Some(path) = &args.json {
        crate::report::write_text(path, &serde_json::to_string_pretty(&rows)?)?;
    }
    if let Some(path) = &args.csv {
        let mut csv = String::from(
            "model,batch,engine,device,threads,seconds_per_step,epoch_seconds,images_per_second,dispatches_per_step\n",
        );
        for r in &rows {
            csv += &format!(
                "{},{},{},\"{}\",{},{:.6e},{:.4},{:.1},{}\n",
                r.model,
                r.batch,
                r.engine,
                r.device.replace('"', "'"),
                r.threads,
                r.seconds_per_step,
                r.epoch_seconds,
                r.images_per_second,
                r.dispatches_per_step.map_or(String::new(), |d| d.to_string())
            );
        }
        crate::report::write_text(path, &csv)?;
    }
    if let Some(path) = &args.plot {
        // Grouped by model and batch; colours: our GPU, our CPU, PyTorch, Keras, the floor.
        let group = |r: &EpochTiming| match (r.engine.as_str(), r.device.as_str()) {
            ("gpu-fmnist", "cpu") => 1,
            ("gpu-fmnist", _) => 0,
            ("torch", _) => 2,
            ("floor", _) => 4,
            _ => 3,
        };
        let mut sorted: Vec<&EpochTiming> = rows.iter().collect();
        sorted.sort_by_key(|r| {
            let model = specs.iter().position(|s| s.name == r.model);
            (model, r.batch, group(r), r.threads)
        });
        let bars: Vec<(String, f64, usize)> = sorted
            .iter()
            .map(|r| {
                let threads = match r.threads {
                    0 => String::new(),
                    1 => ", 1 thread".into(),
                    t => format!(", {t} threads"),
                };
                // The adapter's first word (llvmpipe, NVIDIA, …) for GPU rows.
                let device = match r.device.as_str() {
                    "cpu" => "CPU".to_string(),
                    name => format!("GPU ({})", name.split([' ', '(']).next().unwrap_or(name)),
                };
                let engine = if r.engine == "floor" { "FLOP floor," } else { r.engine.as_str() };
                let label = format!("{} b{}: {engine} {device}{threads}", r.model, r.batch);
                (label, r.epoch_seconds, group(r))
            })
            .collect();
        let title = format!("One training epoch of {} images, batch as labelled", data.train.len());
        crate::report::plot_bars(path, &title, "seconds per epoch (log scale)", &bars, true)?;
    }
    if args.epochs_only {
        return Ok(());
    }

    if let Executor::Gpu(ctx) = &exec {
        println!();
        println!(
            "GPU kernels timed {}.",
            if ctx.has_timestamps() {
                "on the device, by timestamp queries around each kernel's launches"
            } else {
                "on the host, around a wait (this adapter has no timestamp queries)"
            }
        );
        println!();
        println!("| matmul | GPU ms | GPU GFLOP/s | CPU ms | CPU GFLOP/s | GPU speed / CPU |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (label, op) in bench::matmul_shapes() {
            let t = bench::matmul(ctx, op, reps, &label)?;
            println!(
                "| {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.2}× |",
                t.label,
                t.gpu_seconds * 1e3,
                t.flop / t.gpu_seconds / 1e9,
                t.cpu_seconds * 1e3,
                t.flop / t.cpu_seconds / 1e9,
                t.cpu_seconds / t.gpu_seconds
            );
        }
    }
    let batch = args.batch[0];
    for spec in &specs {
        let ops = bench::profile_cpu_step(&data, spec, batch)?;
        print_profile(
            &format!("Where a CPU training step of `{}` goes, one thread (each op timed alone", spec.name),
            "op",
            &ops,
        );
        if let Executor::Gpu(ctx) = &exec {
            let kernels = bench::profile_step(ctx, &data, spec, batch)?;
            print_profile(
                &format!("Where a GPU training step of `{}` goes (each kernel timed alone", spec.name),
                "kernel",
                &kernels,
            );
        }
    }
    Ok(())
}

/// The twelve largest entries of a profile, as a markdown table under `title`.
fn print_profile(title: &str, what: &str, entries: &[(String, usize, f64)]) {
    let total: f64 = entries.iter().map(|k| k.2).sum();
    println!();
    println!("{title}; {:.2} ms in all):", total * 1e3);
    println!();
    println!("| {what} | count | ms | share |");
    println!("|---|---:|---:|---:|");
    for (name, n, seconds) in entries.iter().take(12) {
        println!("| {name} | {n} | {:.3} | {:.0}% |", seconds * 1e3, 100.0 * seconds / total);
    }
}

/// `bench --profile-step`: one real GPU training step of each model, dispatch by dispatch — its
/// time on the device and the gap to the next — against the step's wall time; JSON to `json`.
fn profile_steps(
    exec: &Executor,
    line: &str,
    data: &FashionMnist,
    specs: &[ModelSpec],
    batch: usize,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Executor::Gpu(ctx) = exec else {
        anyhow::bail!("--profile-step times a GPU's dispatches; {line}: pick a GPU --device")
    };
    anyhow::ensure!(
        ctx.has_timestamps(),
        "--profile-step reads the GPU's clock, and {} has no timestamp queries",
        ctx.adapter.info.name
    );
    println!(
        "{line}; one training step at batch {batch}, each dispatch in a pass of its own with timestamps"
    );
    let mut all = Vec::new();
    for spec in specs {
        let p = bench::profile_whole_step(ctx, data, spec, batch)?.expect("timestamps were checked");
        println!();
        println!("`{}`: {} dispatches", p.model, p.dispatches.len());
        println!();
        println!("| # | dispatch | µs | gap to next, µs |");
        println!("|---:|---|---:|---:|");
        for (i, d) in p.dispatches.iter().enumerate() {
            println!("| {} | {} | {:.1} | {:.1} |", i + 1, d.name, d.seconds * 1e6, d.gap * 1e6);
        }
        let gaps: f64 = p.dispatches.iter().map(|d| d.gap).sum();
        println!();
        println!(
            "dispatches {:.3} ms + gaps {:.3} ms = {:.3} ms on the device, first start to last end ({:.3} ms on the host's clock); the same step as training runs it (one pass, submit and wait on the host): {:.3} ms",
            p.busy * 1e3,
            gaps * 1e3,
            p.span * 1e3,
            p.profiled_wall * 1e3,
            p.wall * 1e3
        );
        all.push(p);
    }
    if let Some(path) = json {
        crate::report::write_text(path, &serde_json::to_string_pretty(&all)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// "1 thread", "2 threads".
fn threads(n: usize) -> String {
    if n == 1 {
        "1 thread".into()
    } else {
        format!("{n} threads")
    }
}
