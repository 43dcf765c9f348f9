//! `experiment figures`: the report's figures redrawn — the 3×3 grid of training images with
//! their class names (its Appendix B), and for both final models the loss/accuracy curves and
//! the training and test confusion matrices (its Figures 1–6) — beside the report's numbers.

use std::path::Path;

use plotters::prelude::*;

use super::{Events, Runner, Trial};
use crate::data::{Split, CLASS_NAMES, SIDE};
use crate::graph::model::{cnn, mlp};
use crate::report::{plot_err, render_png, write_text};

/// The validation accuracy the report printed for each final model.
pub const REPORT_VAL_ACCURACY: [(&str, f64); 2] = [("mlp", 0.9013), ("cnn", 0.9215)];

/// A 3×3 grid of the first nine images of `split`, each titled with its class name.
pub fn plot_grid(path: &Path, split: &Split) -> anyhow::Result<()> {
    let scale = 7i32;
    let cell = SIDE as i32 * scale;
    let (pad, title) = (16i32, 28i32);
    let size = (3 * (cell + pad) + pad) as u32;
    render_png(path, (size, size + title as u32 * 3 + 40), |area| {
        area.draw(&Text::new(
            "Fashion-MNIST: the training file's first nine images",
            (pad, 8),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(plot_err)?;
        for k in 0..9.min(split.len()) {
            let (x0, y0) = (pad + (k as i32 % 3) * (cell + pad), 40 + (k as i32 / 3) * (cell + pad + title));
            let name = CLASS_NAMES[split.labels[k] as usize];
            area.draw(&Text::new(name.to_string(), (x0, y0), ("sans-serif", 18).into_font()))
                .map_err(plot_err)?;
            let img = split.image(k);
            for (i, &p) in img.iter().enumerate() {
                let (r, c) = ((i / SIDE) as i32, (i % SIDE) as i32);
                let (x, y) = (x0 + c * scale, y0 + title + r * scale);
                // Dark garment on a light ground, as the report's matplotlib `binary` map draws it.
                let v = 255 - p;
                area.draw(&Rectangle::new([(x, y), (x + scale, y + scale)], RGBColor(v, v, v).filled()))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
}

/// Trains (or reuses) both final models with seed 1 under `WORK/figures/`, then writes the
/// figures and `FIGURES.md` under `DIR/figures/`.
pub fn write(runner: &Runner, events: &dyn Events) -> anyhow::Result<std::path::PathBuf> {
    let dir = runner.out.join("figures");
    let work = runner.work.join("figures");
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    // The training file's first images, as the report's `x_train[:9]`: they open the
    // validation split, which is the file's first 5,000.
    plot_grid(&dir.join("training-images.png"), &runner.data.val)?;
    let trials: Vec<Trial> = [mlp(), cnn()]
        .into_iter()
        .enumerate()
        .map(|(index, mut spec)| {
            if let Some(e) = runner.overrides.epochs {
                spec.training.epochs = e;
            }
            Trial {
                index,
                setting: spec.name.clone(),
                seed: 1,
                epochs: spec.training.epochs,
                subset: runner.overrides.subset,
                spec,
            }
        })
        .collect();
    runner.in_parallel(&trials, |t| runner.train("figures", t, &t.dir(&work), events))?;
    let mut md = String::from("# The report's figures, redrawn\n\n");
    md += "The training file's first nine images with their classes (the report's Appendix B):\n\n![training images](training-images.png)\n\n";
    md += "| model | report: validation accuracy | ours: validation accuracy | ours: test accuracy | epochs | training images |\n|---|---:|---:|---:|---:|---:|\n";
    let mut figure = 1;
    let mut pictures = String::new();
    for t in &trials {
        let tdir = t.dir(&work);
        let text = std::fs::read_to_string(tdir.join("metrics.json"))?;
        let m: serde_json::Value = serde_json::from_str(&text)?;
        let num = |k: &str| m.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        let report = REPORT_VAL_ACCURACY.iter().find(|(n, _)| *n == t.setting).map_or(f64::NAN, |r| r.1);
        md += &format!(
            "| {} | {:.2}% | {:.2}% | {:.2}% | {} | {} |\n",
            t.setting,
            100.0 * report,
            100.0 * num("val_accuracy"),
            100.0 * num("test_accuracy"),
            t.epochs,
            t.subset.map_or("55,000".into(), crate::graph::model::group)
        );
        let run = tdir.file_name().expect("a trial directory has a name").to_string_lossy().into_owned();
        for (file, what) in [
            ("curves.png", "loss and accuracy per epoch"),
            ("confusion_train.png", "confusion matrix, training set"),
            ("confusion_test.png", "confusion matrix, test set"),
        ] {
            let target = format!("figure-{figure}-{}-{}", t.setting, file);
            std::fs::copy(tdir.join(file), dir.join(&target))
                .map_err(|e| anyhow::anyhow!("{}: {e}", tdir.join(file).display()))?;
            pictures += &format!(
                "Figure {figure} — {}: {what} (run: `{run}/`)\n\n![{what}]({target})\n\n",
                t.setting
            );
            figure += 1;
        }
    }
    md += "\nThe report printed only the validation accuracies above; its Figures 1–6 are the curves and the training and test confusion matrices of the MLP (1–3) and the CNN (4–6), in that order.\n\n";
    md += &pictures;
    write_text(&dir.join("FIGURES.md"), &md)?;
    Ok(dir)
}
