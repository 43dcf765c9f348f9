//! `gpu-fmnist data`: what was found, and what it holds.

use std::path::Path;

use crate::data::{FashionMnist, CLASSES, CLASS_NAMES};

pub fn run(data_dir: Option<&Path>) -> anyhow::Result<()> {
    let ds = FashionMnist::load(data_dir)?;
    println!("Fashion-MNIST in {}", ds.dir.display());
    println!("validation set: {}", ds.validation_rule);
    println!("content hash: {} (runs and experiment records carry it)", ds.identity().hash);
    println!();
    let splits = [("train", &ds.train), ("val", &ds.val), ("test", &ds.test)];
    print!("{:<14}", "class");
    for (name, _) in splits {
        print!("{name:>8}");
    }
    println!();
    let counts: Vec<[usize; CLASSES]> = splits.iter().map(|(_, s)| s.class_counts()).collect();
    for (c, class) in CLASS_NAMES.iter().enumerate() {
        print!("{c} {class:<12}");
        for count in &counts {
            print!("{:>8}", count[c]);
        }
        println!();
    }
    print!("{:<14}", "total");
    for (_, split) in splits {
        print!("{:>8}", split.len());
    }
    println!();
    println!();
    for (name, split) in splits {
        let (mean, std) = split.pixel_mean_std();
        println!("{name:<5} pixels /255: mean {mean:.4}, std {std:.4}");
    }
    Ok(())
}
