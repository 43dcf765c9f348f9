//! Where a CPU training step goes, op by op: `cargo run --release --example cpu_profile -- cnn`.

use gpu_fmnist::cpu::CpuEngine;
use gpu_fmnist::data::{FashionMnist, SplitName};
use gpu_fmnist::graph::{Engine, Graph, ModelSpec};

fn main() -> anyhow::Result<()> {
    let model = std::env::args().nth(1).unwrap_or_else(|| "cnn".into());
    let spec = ModelSpec::load(&model)?;
    let data = FashionMnist::load(None)?;
    let graph =
        Graph::build(&spec, 32, &[(SplitName::Train, data.train.len())], Some(spec.training.optimizer), 1)?;
    let mut cpu = CpuEngine::new(&graph.program);
    graph.upload_split(&mut cpu, SplitName::Train, &data.train.images, &data.train.labels)?;
    let order: Vec<u32> = (0..data.train.len() as u32).collect();
    cpu.write_u32(graph.splits[&SplitName::Train].index, &order)?;
    let list = graph.train_pass.unwrap().full;
    cpu.run(list, 1)?;
    let profile = cpu.profile(list, 20);
    let total: f64 = profile.iter().map(|p| p.1).sum();
    let mut by: Vec<(String, usize, f64)> = Vec::new();
    for (name, s) in profile {
        match by.iter_mut().find(|e| e.0 == name) {
            Some(e) => {
                e.1 += 1;
                e.2 += s
            }
            None => by.push((name, 1, s)),
        }
    }
    by.sort_by(|a, b| b.2.total_cmp(&a.2));
    println!("{model}: {:.2} ms per step", 1e3 * total);
    for (n, c, s) in by {
        println!("{:>8.3} ms {:>4.0}%  {c}× {n}", 1e3 * s, 100.0 * s / total);
    }
    Ok(())
}
