//! `gpu-fmnist eval`: a checkpoint's loss, accuracy and confusion matrix on one split.

use std::path::Path;

use super::DeviceArgs;
use crate::data::{FashionMnist, SplitName, CLASSES, CLASS_NAMES};
use crate::report::confusion_table;
use crate::train::{self, Model};

pub fn run(
    checkpoint: &Path,
    split: SplitName,
    device: &DeviceArgs,
    data_dir: Option<&Path>,
    batch: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(batch != Some(0), "--batch-size must be at least 1");
    let model = Model::load(checkpoint)?;
    let data = FashionMnist::load(data_dir)?;
    let (executor, line) = device.open(None)?;
    if !json {
        println!("{line}");
    }
    let images = data.split(split);
    let batch = batch.unwrap_or(256).clamp(1, images.len().max(1));
    let (graph, mut engine) =
        train::inference(&executor, &model, split, &images.images, &images.labels, batch)?;
    let e = train::evaluate(engine.as_mut(), &graph, split, 0)?;
    if json {
        let rows: Vec<&[u64]> = e.confusion.chunks(CLASSES).collect();
        let out = serde_json::json!({
            "model": model.spec.name,
            "split": format!("{split:?}").to_lowercase(),
            "images": e.images,
            "loss": e.loss,
            "accuracy": e.accuracy,
            "classes": CLASS_NAMES,
            "confusion": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}, {split:?} split ({} images): loss {:.4} (with the L2 penalties, as Keras's evaluate), accuracy {:.4}",
        model.spec.name, e.images, e.loss, e.accuracy
    );
    println!("\nconfusion matrix (rows: true class):\n{}", confusion_table(&e.confusion));
    Ok(())
}
