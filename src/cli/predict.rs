//! `gpu-fmnist predict`: the class of each image (files, or directories of them), with its
//! probability; an image that cannot be read is reported and the others still classified.

use std::path::{Path, PathBuf};

use super::DeviceArgs;
use crate::data::image::{expand, light_background, load_image, Prepare};
use crate::data::{SplitName, CLASSES, CLASS_NAMES};
use crate::graph::ops::State;
use crate::graph::{Engine, Graph};
use crate::train::{self, Model};

/// Softmax probabilities for each image, a batch at a time.
pub fn probabilities(engine: &mut dyn Engine, graph: &Graph, n: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let pass = graph.eval_passes[&SplitName::Test];
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(graph.batch) {
        let size = graph.batch.min(n - start);
        let list = if size == graph.batch { pass.full } else { pass.last.unwrap().0 };
        engine.write_u32(graph.state, State { cursor: start as u32, ..State::default() }.words())?;
        engine.run(list, 1)?;
        let probs = engine.read_f32(graph.probs)?;
        out.extend(probs.chunks_exact(CLASSES).take(size).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// What `predict` is asked.
pub struct Ask<'a> {
    pub checkpoint: &'a Path,
    /// Image files and directories of them.
    pub images: &'a [PathBuf],
    pub prepare: Prepare,
    pub top: usize,
    pub json: bool,
}

pub fn run(ask: &Ask, device: &DeviceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!ask.images.is_empty(), "give at least one image file or directory");
    anyhow::ensure!((1..=CLASSES).contains(&ask.top), "--top is between 1 and {CLASSES}");
    let model = Model::load(ask.checkpoint)?;
    let files = expand(ask.images)?;
    // Each image that cannot be read is reported on its own line; the others are classified.
    let mut good: Vec<(&PathBuf, Vec<u8>)> = Vec::new();
    let mut failed: Vec<(&PathBuf, String)> = Vec::new();
    for path in &files {
        match load_image(path, ask.prepare) {
            Ok(px) => good.push((path, px)),
            Err(e) => failed.push((path, format!("{e:#}"))),
        }
    }
    if let ([], [(_, only)]) = (good.as_slice(), failed.as_slice()) {
        anyhow::bail!("{only}");
    }
    let (executor, line) = device.open(None)?;
    eprintln!("{line}");
    for (_, e) in &failed {
        eprintln!("error: {e}");
    }
    let n = good.len();
    let probs = if n == 0 {
        vec![]
    } else {
        let pixels: Vec<u8> = good.iter().flat_map(|(_, px)| px.iter().copied()).collect();
        let (graph, mut engine) =
            train::inference(&executor, &model, SplitName::Test, &pixels, &vec![0; n], n.min(64))?;
        probabilities(engine.as_mut(), &graph, n)?
    };
    let mut records = Vec::new();
    for ((path, px), probs) in good.iter().zip(probs) {
        let mut ranked: Vec<usize> = (0..CLASSES).collect();
        ranked.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let light = light_background(px);
        if ask.json {
            records.push(serde_json::json!({
                "image": path.display().to_string(),
                "class": CLASS_NAMES[ranked[0]],
                "probabilities": probs,
                "top": ranked[..ask.top].iter().map(|&c| serde_json::json!({"class": CLASS_NAMES[c], "index": c, "probability": probs[c]})).collect::<Vec<_>>(),
                "light_background": light,
            }));
            continue;
        }
        let hint = if light {
            "  (light background: Fashion-MNIST garments are light on dark; try --invert)"
        } else {
            ""
        };
        let shown: Vec<String> = ranked[..ask.top]
            .iter()
            .map(|&c| format!("{} ({:.1}%)", CLASS_NAMES[c], 100.0 * probs[c]))
            .collect();
        println!("{}: {}{hint}", path.display(), shown.join(", "));
    }
    if ask.json {
        let errors: Vec<serde_json::Value> = failed
            .iter()
            .map(|(p, e)| serde_json::json!({"image": p.display().to_string(), "error": e}))
            .collect();
        let out = serde_json::json!({ "model": model.spec.name, "classes": CLASS_NAMES, "predictions": records, "errors": errors });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} images could not be read (each is named above)",
        failed.len(),
        files.len()
    );
    Ok(())
}
