//! `gpu-fmnist import`: weights trained by Keras or PyTorch, written as a checkpoint of ours.

use std::path::Path;

use crate::graph::ModelSpec;
use crate::train::import::import;

pub fn run(weights: &Path, model: &str, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(!out.exists(), "{} exists already: choose another --out", out.display());
    let spec = ModelSpec::load(model)?;
    let (imported, layout, table) = import(weights, &spec)?;
    println!("{}: {layout} names and layouts, onto the model `{}`", weights.display(), spec.name);
    let shape = |s: &[usize]| format!("({})", s.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
    let width = table.iter().map(|m| m.from.len() + shape(&m.from_shape).len() + 1).max().unwrap_or(0);
    for m in &table {
        let from = format!("{} {}", m.from, shape(&m.from_shape));
        if m.to.is_empty() {
            println!("  {from:<width$}  {}", m.how);
        } else {
            println!("  {from:<width$}  → {} {}  {}", m.to, shape(&m.to_shape), m.how);
        }
    }
    imported.save(out, &weights.display().to_string())?;
    println!("wrote {} (eval and predict read it)", out.display());
    Ok(())
}
