//! `gpu-fmnist predict`: the class of each 28×28 grayscale image, with its probability.

use std::path::{Path, PathBuf};

use super::DeviceArgs;
use crate::data::image::load_image;
use crate::data::{SplitName, CLASSES, CLASS_NAMES, PIXELS};
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

pub fn run(
    checkpoint: &Path,
    images: &[PathBuf],
    device: &DeviceArgs,
    top: usize,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(!images.is_empty(), "give at least one image file");
    anyhow::ensure!((1..=CLASSES).contains(&top), "--top is between 1 and {CLASSES}");
    let model = Model::load(checkpoint)?;
    let pixels: Vec<Vec<u8>> = images.iter().map(|p| load_image(p)).collect::<anyhow::Result<_>>()?;
    let (executor, line) = device.open(None)?;
    eprintln!("{line}");
    let n = pixels.len();
    let (graph, mut engine) =
        train::inference(&executor, &model, SplitName::Test, &pixels.concat(), &vec![0; n], n.min(64))?;
    let mut records = Vec::new();
    for ((path, probs), px) in images.iter().zip(probabilities(engine.as_mut(), &graph, n)?).zip(&pixels) {
        let mut ranked: Vec<usize> = (0..CLASSES).collect();
        ranked.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / PIXELS as f64 / 255.0;
        let light = mean > 0.5;
        if json {
            records.push(serde_json::json!({
                "image": path.display().to_string(),
                "class": CLASS_NAMES[ranked[0]],
                "probabilities": probs,
                "top": ranked[..top].iter().map(|&c| serde_json::json!({"class": CLASS_NAMES[c], "index": c, "probability": probs[c]})).collect::<Vec<_>>(),
                "light_background": light,
            }));
            continue;
        }
        let hint = if light {
            "  (light background: Fashion-MNIST garments are light on dark; invert it?)"
        } else {
            ""
        };
        let shown: Vec<String> =
            ranked[..top].iter().map(|&c| format!("{} ({:.1}%)", CLASS_NAMES[c], 100.0 * probs[c])).collect();
        println!("{}: {}{hint}", path.display(), shown.join(", "));
    }
    if json {
        let out =
            serde_json::json!({ "model": model.spec.name, "classes": CLASS_NAMES, "predictions": records });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
