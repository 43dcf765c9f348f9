//! `gpu-fmnist augment-preview`: a PNG grid of training images as augmentation changes them,
//! drawn exactly as a training run with the same seed draws them (src/data/augment.rs).

use std::path::PathBuf;

use clap::Args;

use crate::data::augment::{preview_grid, Augment};
use crate::data::{FashionMnist, PIXELS, SIDE};

#[derive(Debug, Args)]
pub struct AugmentPreviewArgs {
    /// The augmentation, as `train --augment` takes it.
    #[arg(long, value_name = "SPEC", default_value = "shift=2,flip,erase=0.25")]
    augment: String,
    /// Training images shown, one per row, from the first.
    #[arg(long, default_value_t = 8)]
    images: usize,
    /// Epochs shown, one per column after the original.
    #[arg(long, default_value_t = 7)]
    epochs: u32,
    /// The training run's seed (`train --seed`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Screen pixels per image pixel.
    #[arg(long, default_value_t = 3)]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "augment-preview.png", value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    data: super::DataDirArg,
}

pub fn run(args: &AugmentPreviewArgs) -> anyhow::Result<()> {
    let augment = Augment::parse(&args.augment)?;
    anyhow::ensure!((1..=64).contains(&args.images), "--images is between 1 and 64");
    anyhow::ensure!((1..=32).contains(&args.epochs), "--epochs is between 1 and 32");
    anyhow::ensure!((1..=16).contains(&args.scale), "--scale is between 1 and 16");
    let data = FashionMnist::load(args.data.data_dir.as_deref())?;
    let n = args.images.min(data.train.len());
    let images: Vec<(u32, &[u8])> =
        (0..n).map(|i| (i as u32, &data.train.images[i * PIXELS..(i + 1) * PIXELS])).collect();
    // The seed a training run's gather uses.
    let seed = crate::graph::schedule::augment_seed(crate::train::stream_seed(args.seed));
    let (pixels, w, h) = preview_grid(&augment, seed, &images, SIDE as u32, args.epochs, args.scale);
    let mut png = Vec::new();
    image::GrayImage::from_raw(w, h, pixels)
        .ok_or_else(|| anyhow::anyhow!("the grid's size is wrong"))?
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageOutputFormat::Png)?;
    crate::train::checkpoint::write_atomic(&args.out, &png)?;
    println!(
        "wrote {} ({w}×{h}): {n} training images (rows) as they are, then augmented `{augment}` in epochs 1 to {} (seed {})",
        args.out.display(),
        args.epochs,
        args.seed
    );
    Ok(())
}
