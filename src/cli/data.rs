//! `gpu-fmnist data`: what was found, and what it holds.

use std::path::Path;

use crate::data::{FashionMnist, CLASSES, CLASS_NAMES};

pub fn run(data_dir: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let ds = FashionMnist::load(data_dir)?;
    let splits = [("train", &ds.train), ("val", &ds.val), ("test", &ds.test)];
    if json {
        let mut out = serde_json::json!({
            "dir": ds.dir.display().to_string(),
            "validation_rule": ds.validation_rule,
            "hash": ds.identity().hash,
            "classes": CLASS_NAMES,
        });
        for (name, split) in splits {
            let (mean, std) = split.pixel_mean_std();
            out[name] = serde_json::json!({
                "images": split.len(),
                "class_counts": split.class_counts(),
                "pixel_mean": mean,
                "pixel_std": std,
            });
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("Fashion-MNIST in {}", ds.dir.display());
    println!("validation set: {}", ds.validation_rule);
    println!("content hash: {} (runs and experiment records carry it)", ds.identity().hash);
    println!();
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
