//! What a run leaves behind: CSV and JSON for programs, PNG plots and markdown for people.
//! Every file is written atomically, so an interrupted run never leaves a half-written one.

mod run;

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

pub use run::{adapter_name, fit, save_epoch, Finished, Provenance, RUN_FILES};

use crate::data::{CLASSES, CLASS_NAMES};
use crate::train::checkpoint::write_atomic;
use crate::train::EpochRow;

/// Text in plots uses DejaVu Sans, embedded, so that no system font is needed.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// `history.csv`: one line per epoch, with Keras's CSVLogger's names for what it means the same
/// (`loss` and `accuracy`: running means over the epoch in training mode), and the seconds.
pub fn history_csv(rows: &[EpochRow]) -> String {
    let mut s = String::from("epoch,loss,accuracy,val_loss,val_accuracy,seconds\n");
    for r in rows {
        s += &format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}\n",
            r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.seconds
        );
    }
    s
}

/// A confusion matrix as CSV: rows the true class, columns the prediction.
pub fn confusion_csv(counts: &[u64]) -> String {
    let mut s = String::from("true\\predicted");
    for name in CLASS_NAMES {
        s += &format!(",{name}");
    }
    s.push('\n');
    for (t, name) in CLASS_NAMES.iter().enumerate() {
        s += name;
        for p in 0..CLASSES {
            s += &format!(",{}", counts[t * CLASSES + p]);
        }
        s.push('\n');
    }
    s
}

/// A confusion matrix as a fixed-width table for the terminal and markdown code blocks.
pub fn confusion_table(counts: &[u64]) -> String {
    let short =
        ["T-shirt", "Trouser", "Pullovr", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];
    let mut s = format!("{:<12}", "true \\ pred");
    for name in short {
        s += &format!("{name:>8}");
    }
    s += "  accuracy\n";
    for t in 0..CLASSES {
        let row = &counts[t * CLASSES..(t + 1) * CLASSES];
        s += &format!("{:<12}", short[t]);
        for &c in row {
            s += &format!("{c:>8}");
        }
        let total: u64 = row.iter().sum();
        s += &format!("  {:>7.2}%\n", 100.0 * row[t] as f64 / total.max(1) as f64);
    }
    s
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    write_atomic(path, text.as_bytes())
}

/// Renders with plotters into an RGB buffer, then encodes a PNG and writes it atomically.
pub(crate) fn render_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    register_font();
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(&area)?;
        area.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let image = image::RgbImage::from_raw(w, h, pixels).ok_or_else(|| anyhow::anyhow!("bad image buffer"))?;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageOutputFormat::Png)?;
    write_atomic(path, &png)
}

pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

/// A curve of `curves.png`: its name, colour, and value per epoch.
type Series = (&'static str, RGBColor, fn(&EpochRow) -> f64);

/// `curves.png`: loss and accuracy of training and validation per epoch, on one chart, as a
/// Keras user plots `history.history`.
pub fn plot_curves(path: &Path, rows: &[EpochRow], title: &str) -> anyhow::Result<()> {
    render_png(path, (960, 600), |area| {
        let epochs = rows.len().max(1) as f64;
        // Headroom above the curves for the legend.
        let top = rows.iter().flat_map(|r| [r.train_loss, r.val_loss]).fold(1.0f64, f64::max) * 1.35;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.8f64..epochs + 0.2, 0f64..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss / accuracy")
            .x_labels(rows.len().clamp(2, 20))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(plot_err)?;
        let series: [Series; 4] = [
            ("train loss", RGBColor(31, 119, 180), |r| r.train_loss),
            ("validation loss", RGBColor(255, 127, 14), |r| r.val_loss),
            ("train accuracy", RGBColor(44, 160, 44), |r| r.train_accuracy),
            ("validation accuracy", RGBColor(214, 39, 40), |r| r.val_accuracy),
        ];
        for (name, color, value) in series {
            let points: Vec<(f64, f64)> = rows.iter().map(|r| (r.epoch as f64, value(r))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(plot_err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// A chart over (f64, f64), as every plot here draws.
pub(crate) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend of a chart's labelled series, in one style for every plot.
pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(plot_err)
}

/// A confusion matrix as a heat map: cells shaded by the fraction of the true class, labelled
/// with the counts; rows the true class, columns the prediction.
pub fn plot_confusion(path: &Path, counts: &[u64], title: &str) -> anyhow::Result<()> {
    let (w, h) = (900u32, 900u32);
    render_png(path, (w, h), |area| {
        let (left, top, cell) = (170i32, 90i32, 70i32);
        let text = |s: &str, size: u32| (s.to_string(), ("sans-serif", size).into_font());
        area.draw(&Text::new(text(title, 24).0, (left, 20), ("sans-serif", 24).into_font()))
            .map_err(plot_err)?;
        area.draw(&Text::new("predicted", (left + cell * 5 - 40, 52), ("sans-serif", 18).into_font()))
            .map_err(plot_err)?;
        for t in 0..CLASSES {
            let total: u64 = counts[t * CLASSES..(t + 1) * CLASSES].iter().sum::<u64>().max(1);
            for p in 0..CLASSES {
                let n = counts[t * CLASSES + p];
                let frac = n as f64 / total as f64;
                // White to dark blue by the fraction of the row.
                let shade = |lo: f64, hi: f64| (lo + (hi - lo) * frac.sqrt()) as u8;
                let color = RGBColor(shade(255.0, 8.0), shade(255.0, 48.0), shade(255.0, 107.0));
                let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
                area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color.filled()))
                    .map_err(plot_err)?;
                area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(200, 200, 200)))
                    .map_err(plot_err)?;
                let label = n.to_string();
                let ink = if frac.sqrt() > 0.55 { WHITE } else { BLACK };
                let style = ("sans-serif", 17).into_font().color(&ink);
                let dx = (label.len() as i32 * 10) / 2;
                area.draw(&Text::new(label, (x + cell / 2 - dx, y + cell / 2 - 9), style))
                    .map_err(plot_err)?;
            }
            let (name, font) = text(CLASS_NAMES[t], 15);
            area.draw(&Text::new(name, (40, top + t as i32 * cell + cell / 2 - 8), font))
                .map_err(plot_err)?;
        }
        for (p, name) in CLASS_NAMES.iter().enumerate() {
            let style = ("sans-serif", 15).into_font().transform(FontTransform::Rotate90);
            let x = left + p as i32 * cell + cell / 2 + 8;
            area.draw(&Text::new(name.to_string(), (x, top + cell * CLASSES as i32 + 8), style))
                .map_err(plot_err)?;
        }
        let style = ("sans-serif", 18).into_font().transform(FontTransform::Rotate270);
        area.draw(&Text::new("true class", (12, top + cell * 5 + 40), style)).map_err(plot_err)?;
        Ok(())
    })
}

/// What `summary.md` reports about a run.
pub struct RunSummary<'a> {
    pub spec: &'a crate::graph::ModelSpec,
    pub summary: &'a str,
    pub optimizer: &'a crate::graph::Optimizer,
    pub batch_size: usize,
    pub seed: u64,
    pub adapter: &'a str,
    pub history: &'a [EpochRow],
    pub test: &'a crate::train::Evaluation,
    pub train: &'a crate::train::Evaluation,
    pub train_seconds: f64,
    pub val_images: usize,
}

/// `summary.md`: the run in one page, with its pictures.
pub fn summary_md(r: &RunSummary) -> String {
    let last = r.history.last();
    let mut s = format!("# {} on {}\n\n", r.spec.name, r.adapter);
    s += &format!(
        "Optimizer {}, batch {}, seed {}, {} epochs in {:.0} s.\n\n",
        r.optimizer,
        r.batch_size,
        r.seed,
        r.history.len(),
        r.train_seconds
    );
    s += "| | loss | accuracy |\n|---|---:|---:|\n";
    if let Some(l) = last {
        s += &format!(
            "| training (last epoch, running mean, training mode) | {:.4} | {:.2}% |\n",
            l.train_loss,
            100.0 * l.train_accuracy
        );
        s += &format!(
            "| validation ({} held-out images) | {:.4} | {:.2}% |\n",
            crate::graph::model::group(r.val_images),
            l.val_loss,
            100.0 * l.val_accuracy
        );
    }
    s += &format!(
        "| training set, inference mode | {:.4} | {:.2}% |\n",
        r.train.loss,
        100.0 * r.train.accuracy
    );
    s += &format!(
        "| **test** ({} images) | {:.4} | **{:.2}%** |\n\n",
        crate::graph::model::group(r.test.images),
        r.test.loss,
        100.0 * r.test.accuracy
    );
    s += "![loss and accuracy per epoch](curves.png)\n\n## History\n\n";
    s += "| epoch | loss | accuracy | val_loss | val_accuracy | seconds |\n|---:|---:|---:|---:|---:|---:|\n";
    for h in r.history {
        s += &format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.1} |\n",
            h.epoch, h.train_loss, h.train_accuracy, h.val_loss, h.val_accuracy, h.seconds
        );
    }
    s += "\n## Confusion matrices\n\nRows are the true class, columns the prediction.\n\n";
    s += &format!(
        "Test set:\n\n```\n{}```\n\n![test confusion matrix](confusion_test.png)\n\n",
        confusion_table(&r.test.confusion)
    );
    s += &format!("Training set (inference mode):\n\n```\n{}```\n\n![training confusion matrix](confusion_train.png)\n\n", confusion_table(&r.train.confusion));
    s += &format!("## Model\n\n```\n{}```\n", r.summary);
    s
}

/// A horizontal bar chart (`bench --plot`): one bar per (label, value, colour group), top to
/// bottom, the value written at the bar's end; `log` puts the axis on a log scale (for times that
/// span decades), labelled at whole decades.
pub fn plot_bars(
    path: &Path,
    title: &str,
    axis: &str,
    bars: &[(String, f64, usize)],
    log: bool,
) -> anyhow::Result<()> {
    let height = 120 + 34 * bars.len().max(1) as u32;
    render_png(path, (1100, height), |area| {
        let n = bars.len().max(1) as f64;
        let max = bars.iter().map(|b| b.1).fold(1e-9f64, f64::max);
        let min = bars.iter().map(|b| b.1).filter(|v| *v > 0.0).fold(max, f64::min);
        // On a log axis the bars start a decade below the smallest value.
        let (lo, hi) =
            if log { ((min / 10.0).log10().floor(), (max * 3.0).log10()) } else { (0.0, max * 1.25) };
        let x = |v: f64| if log { v.max(1e-12).log10() } else { v };
        let (left, canvas) = area.split_horizontally(330);
        let mut chart = ChartBuilder::on(&canvas)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(40)
            .build_cartesian_2d(lo..hi, 0f64..n)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(axis)
            .x_labels(if log { ((hi - lo).ceil() as usize + 1) * 4 } else { 10 })
            .x_label_formatter(&|v| match log {
                // Whole decades only: 0.001, 0.01, 0.1, 1, 10, 100.
                true if (v - v.round()).abs() < 1e-6 => {
                    let p = v.round() as i32;
                    if p < 0 {
                        format!("{:.*}", (-p) as usize, 10f64.powi(p))
                    } else {
                        format!("{}", 10f64.powi(p))
                    }
                }
                true => String::new(),
                false => format!("{v:.1}"),
            })
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(plot_err)?;
        let palette = [
            RGBColor(31, 119, 180),
            RGBColor(120, 180, 220),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
        ];
        for (i, (label, value, group)) in bars.iter().enumerate() {
            let y = n - i as f64;
            let colour = palette[group % palette.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, y - 0.8), (x(*value), y - 0.2)],
                    colour.filled(),
                )))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {}", significant(*value)),
                    (x(*value), y - 0.75),
                    ("sans-serif", 14),
                )))
                .map_err(plot_err)?;
            // The label, right-aligned against the chart, on the left panel.
            let (_, top) = chart.backend_coord(&(lo, y - 0.5));
            let style =
                TextStyle::from(("sans-serif", 15).into_font()).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Right,
                    plotters::style::text_anchor::VPos::Center,
                ));
            left.draw(&Text::new(label.clone(), (322, top), style)).map_err(plot_err)?;
        }
        Ok(())
    })
}

/// Three significant digits: 0.0512, 1.81, 22.6, 1234.
fn significant(v: f64) -> String {
    let digits = if v <= 0.0 { 0 } else { (2 - v.log10().floor() as i32).max(0) as usize };
    format!("{v:.digits$}")
}
