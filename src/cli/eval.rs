//! `gpu-fmnist eval`: a checkpoint's loss, accuracy and confusion matrix on one split.

use std::path::Path;

use super::DeviceArgs;
use crate::data::{FashionMnist, SplitName};
use crate::report::confusion_table;
use crate::train::{self, Checkpoint};

pub fn run(
    checkpoint: &Path,
    split: SplitName,
    device: &DeviceArgs,
    data_dir: Option<&Path>,
    batch: Option<usize>,
) -> anyhow::Result<()> {
    let ckpt = Checkpoint::load(checkpoint)?;
    let data = FashionMnist::load(data_dir)?;
    let (executor, line) = device.open(None)?;
    println!("{line}");
    let images = data.split(split);
    let batch = batch.unwrap_or(256).clamp(1, images.len().max(1));
    let (graph, mut engine) =
        train::inference(&executor, &ckpt, split, &images.images, &images.labels, batch)?;
    let e = train::evaluate(engine.as_mut(), &graph, split, ckpt.step)?;
    println!(
        "{} after {} epochs, {split:?} split ({} images): loss {:.4}, accuracy {:.4}",
        ckpt.spec.name, ckpt.epoch, e.images, e.loss, e.accuracy
    );
    println!("\nconfusion matrix (rows: true class):\n{}", confusion_table(&e.confusion));
    Ok(())
}
