//! What a study leaves: `results.csv` (a row per trial), `REPORT.md` with the verdict, the
//! plots (`accuracy.png`, `curves.png`, `time.png`) and `summary.json`, which the merged
//! `DIR/REPORT.md` gathers, one row per claim.

use std::path::Path;

use plotters::prelude::*;

use super::verdict::{combine, mean_sd, Evidence, Judged, Verdict, RULE};
use super::{read_results, Overrides, Result as TrialResult, Study};
use crate::report::{legend, plot_err, render_png, write_text, Chart};

/// One setting's figures over its seeds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SettingStats {
    pub label: String,
    /// Seeds, and the final validation and test accuracies, in seed order.
    pub seeds: Vec<u64>,
    pub val: Vec<f64>,
    pub test: Vec<f64>,
    pub seconds: Vec<f64>,
    pub diverged: usize,
    /// Mean validation accuracy per epoch over the seeds.
    pub curve: Vec<f64>,
}

/// A study's outcome, as `summary.json` holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub name: String,
    pub claim: String,
    pub source: Option<String>,
    pub verdict: String,
    /// Statement, verdict, numbers.
    pub statements: Vec<(String, String, String)>,
    pub settings: Vec<SettingStats>,
    /// Curve study: the validation accuracy per seed at the epochs read.
    pub curve_points: Vec<(String, Vec<f64>)>,
    pub trials_done: usize,
    pub trials: usize,
    pub epochs: usize,
    pub train_images: Option<usize>,
    pub device: String,
}

fn stats(study: &Study, results: &[TrialResult]) -> Vec<SettingStats> {
    study
        .settings
        .iter()
        .map(|s| {
            let mine: Vec<&TrialResult> = results.iter().filter(|r| r.trial.setting == s.label).collect();
            let epochs = mine.iter().map(|r| r.curve.len()).max().unwrap_or(0);
            let curve = (0..epochs)
                .map(|e| mean_sd(&mine.iter().filter_map(|r| r.curve.get(e).copied()).collect::<Vec<_>>()).0)
                .collect();
            SettingStats {
                label: s.label.clone(),
                seeds: mine.iter().map(|r| r.trial.seed).collect(),
                val: mine.iter().map(|r| r.outcome.val_accuracy).collect(),
                test: mine.iter().map(|r| r.outcome.test_accuracy).collect(),
                seconds: mine.iter().map(|r| r.outcome.train_seconds).collect(),
                diverged: mine.iter().filter(|r| r.outcome.diverged).count(),
                curve,
            }
        })
        .collect()
}

/// Judges the study's statements on its finished trials.
pub fn judge(
    study: &Study,
    settings: &[SettingStats],
    results: &[TrialResult],
) -> (Vec<Judged>, Vec<(String, Vec<f64>)>) {
    let labels = study.labels();
    let curves: Vec<Vec<f64>> = results.iter().map(|r| r.curve.clone()).collect();
    let values: Vec<Vec<f64>> = match &study.curve {
        Some(epochs) => epochs
            .iter()
            .map(|&e| results.iter().filter_map(|r| r.curve.get(e - 1).copied()).collect())
            .collect(),
        None => settings.iter().map(|s| s.val.clone()).collect(),
    };
    let evidence = Evidence { labels: &labels, values: &values, curves: &curves };
    let judged = study.expect.iter().map(|s| evidence.judge(s)).collect();
    let points = if study.curve.is_some() { labels.into_iter().zip(values).collect() } else { vec![] };
    (judged, points)
}

/// Text for a markdown table cell: its pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// `89.70 ± 0.21`; `—` for a setting with no finished trial yet.
pub fn mean_pm(x: &[f64]) -> String {
    let (m, s) = mean_sd(x);
    if x.is_empty() {
        "—".into()
    } else if x.len() < 2 {
        pct(m)
    } else {
        format!("{} ± {}", pct(m), pct(s))
    }
}

/// `results.csv`: one row per finished trial. Columns other programs can read; the seconds
/// are the only ones that differ between two runs of the same trial.
pub fn results_csv(results: &[TrialResult]) -> String {
    let mut s = String::from(
        "trial,setting,seed,epochs,train_images,val_accuracy,test_accuracy,val_loss,test_loss,diverged,train_seconds\n",
    );
    for r in results {
        let quoted = format!("\"{}\"", r.trial.setting.replace('"', "\"\""));
        s += &format!(
            "{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{:.3}\n",
            r.trial.index,
            quoted,
            r.trial.seed,
            r.trial.epochs,
            r.trial.subset.map_or("all".to_string(), |n| n.to_string()),
            r.outcome.val_accuracy,
            r.outcome.test_accuracy,
            r.outcome.val_loss,
            r.outcome.test_loss,
            r.outcome.diverged,
            r.outcome.train_seconds
        );
    }
    s
}

/// (Re)writes the study's report from the trials finished under `study_dir`.
pub fn write_study(study: &Study, study_dir: &Path, o: &Overrides) -> anyhow::Result<Summary> {
    let results = read_results(study, study_dir, o)?;
    let mut adapters: Vec<&str> = results.iter().map(|r| r.adapter.as_str()).collect();
    adapters.sort();
    adapters.dedup();
    let trials = study.trials(o);
    let settings = stats(study, &results);
    let (judged, curve_points) = judge(study, &settings, &results);
    let verdict = combine(&judged.iter().map(|j| j.verdict).collect::<Vec<_>>());
    let epochs = trials.iter().map(|t| t.epochs).max().unwrap_or(0);
    let summary = Summary {
        name: study.name.clone(),
        claim: study.claim.clone(),
        source: study.source.clone(),
        verdict: verdict.to_string(),
        statements: judged
            .iter()
            .map(|j| (j.statement.clone(), j.verdict.to_string(), j.detail.clone()))
            .collect(),
        settings,
        curve_points,
        trials_done: results.len(),
        trials: trials.len(),
        epochs,
        train_images: results.iter().find_map(|r| r.train_images),
        device: adapters.join(", "),
    };
    write_text(&study_dir.join("results.csv"), &results_csv(&results))?;
    if !results.is_empty() {
        plot_accuracy(&study_dir.join("accuracy.png"), &summary)?;
        plot_curves(&study_dir.join("curves.png"), &summary)?;
        plot_time(&study_dir.join("time.png"), &summary)?;
    }
    write_text(&study_dir.join("REPORT.md"), &study_md(study, &summary, verdict))?;
    write_text(&study_dir.join("summary.json"), &serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

fn study_md(study: &Study, s: &Summary, verdict: Verdict) -> String {
    let mut md = format!("# {}\n\n> {}\n\n", s.name, s.claim);
    if let Some(src) = &s.source {
        md += &format!("Source: {src}\n\n");
    }
    md += &format!(
        "Base model `{}`; {}; {} epochs; seeds 1–{}; {} training images; device {}. {} of {} trials finished.\n\n",
        study.base,
        if study.knobs.is_empty() { "one setting, read along its curve".to_string() } else { format!("knob `{}`", study.knobs.join("`, `")) },
        s.epochs,
        s.trials / study.settings.len().max(1),
        s.train_images.map_or("?".to_string(), crate::graph::model::group),
        s.device,
        s.trials_done,
        s.trials
    );
    md += &format!("## Verdict: **{verdict}**\n\n| statement | verdict | numbers |\n|---|---|---|\n");
    for (st, v, d) in &s.statements {
        md += &format!("| {} | {v} | {} |\n", cell(st), cell(d));
    }
    md += &format!("\nThe rule: {RULE}\n\n## Results\n\nAccuracy in percent, mean ± standard deviation over seeds; each seed's value in brackets.\n\n");
    md += "| setting | validation accuracy | seeds | test accuracy | training seconds |\n|---|---:|---|---:|---:|\n";
    for st in &s.settings {
        let each: Vec<String> = st.val.iter().map(|v| pct(*v)).collect();
        let secs = match mean_sd(&st.seconds).0 {
            m if m.is_finite() => format!("{m:.0}"),
            _ => "—".into(),
        };
        let div = if st.diverged > 0 {
            format!(" ({} diverged, scored as chance)", st.diverged)
        } else {
            String::new()
        };
        md += &format!(
            "| {} | {} | [{}]{div} | {} | {} |\n",
            cell(&st.label),
            mean_pm(&st.val),
            each.join(", "),
            mean_pm(&st.test),
            secs
        );
    }
    if !s.curve_points.is_empty() {
        md += "\nValidation accuracy along the curve:\n\n| epoch | validation accuracy | seeds |\n|---|---:|---|\n";
        for (label, v) in &s.curve_points {
            let each: Vec<String> = v.iter().map(|x| pct(*x)).collect();
            md += &format!("| {label} | {} | [{}] |\n", mean_pm(v), each.join(", "));
        }
    }
    md += "\n![accuracy per setting](accuracy.png)\n\n![validation accuracy per epoch](curves.png)\n\n![training time](time.png)\n\n";
    md += "Each trial is an ordinary run directory beside this file (`<setting>-seed<N>/`: history, metrics, checkpoint, plots); `results.csv` has one row per trial.\n\n";
    md += &format!("## The study file\n\n```toml\n{}```\n", study.text);
    md
}

/// `DIR/REPORT.md`: one row per study found under `dir` (its `summary.json`), in the order of
/// `order` first, then by name.
pub fn write_merged(dir: &Path, order: &[&str]) -> anyhow::Result<usize> {
    let mut summaries = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("summary.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let s: Summary =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            summaries.push(s);
        }
    }
    let rank = |n: &str| order.iter().position(|o| *o == n).unwrap_or(usize::MAX);
    summaries.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
    let mut md = String::from("# The report's claims, tested\n\nEach row is one study: the claim in the report's words, our validation accuracy per setting (percent, mean ± standard deviation over seeds), and the verdict.\n\n| study | claim | our numbers | verdict |\n|---|---|---|---|\n");
    for s in &summaries {
        let numbers: Vec<String> = if s.curve_points.is_empty() {
            s.settings.iter().map(|st| format!("{}: {}", st.label, mean_pm(&st.val))).collect()
        } else {
            s.curve_points.iter().map(|(l, v)| format!("{l}: {}", mean_pm(v))).collect()
        };
        let setup = format!(
            "{} epochs, {} seeds, {} images",
            s.epochs,
            s.settings.first().map_or(0, |x| x.val.len()),
            s.train_images.map_or("?".to_string(), crate::graph::model::group)
        );
        md += &format!(
            "| [{}]({}/REPORT.md) | {} | {} ({setup}) | **{}**{} |\n",
            s.name,
            s.name,
            cell(&s.claim),
            cell(&numbers.join("; ")),
            s.verdict,
            if s.trials_done < s.trials {
                format!(" ({} of {} trials)", s.trials_done, s.trials)
            } else {
                String::new()
            }
        );
    }
    md += &format!("\nThe rule: {RULE}\n");
    write_text(&dir.join("REPORT.md"), &md)?;
    Ok(summaries.len())
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The y range that holds `values` with a margin.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.15).max(0.002);
    (lo - pad, hi + pad)
}

/// The labels of a categorical axis, drawn under the plot area.
fn category_labels(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    at: impl Fn(usize) -> (i32, i32),
    labels: &[String],
) -> anyhow::Result<()> {
    for (i, l) in labels.iter().enumerate() {
        let (x, y) = at(i);
        let style =
            TextStyle::from(("sans-serif", 16).into_font()).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ));
        area.draw(&Text::new(l.clone(), (x, y + 8), style)).map_err(plot_err)?;
    }
    Ok(())
}

/// A chart of `m` categories at x = 0, 1, …, m − 1 (labelled by [`category_labels`]) over `y`.
fn category_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    m: usize,
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> anyhow::Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.6f64..m as f64 - 0.4, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// `accuracy.png`: validation and test accuracy per setting, mean ± standard deviation, each
/// seed a dot.
fn plot_accuracy(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let points: Vec<(String, Vec<f64>)> = if s.curve_points.is_empty() {
        s.settings.iter().map(|st| (st.label.clone(), st.val.clone())).collect()
    } else {
        s.curve_points.clone()
    };
    let tests: Vec<Vec<f64>> = if s.curve_points.is_empty() {
        s.settings.iter().map(|st| st.test.clone()).collect()
    } else {
        vec![vec![]; points.len()]
    };
    let m = points.len();
    let (lo, hi) = span(
        points.iter().flat_map(|p| p.1.clone()).chain(tests.iter().flatten().copied()).map(|v| 100.0 * v),
    );
    render_png(path, (120 * m as u32 + 360, 560), |area| {
        let caption = format!("{}: accuracy per setting (mean ± sd, dots: seeds)", s.name);
        let mut chart = category_chart(area, &caption, m, lo..hi, "accuracy (%)")?;
        let series = [
            ("validation", PALETTE[0], -0.12, &points.iter().map(|p| p.1.clone()).collect::<Vec<_>>()),
            ("test", PALETTE[1], 0.12, &tests),
        ];
        for (name, color, dx, values) in series {
            let mut first = true;
            for (i, v) in values.iter().enumerate() {
                if v.is_empty() {
                    continue;
                }
                let x = i as f64 + dx;
                let (mean, sd) = mean_sd(v);
                let (mean, sd) = (100.0 * mean, 100.0 * if sd.is_finite() { sd } else { 0.0 });
                let bar = chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, mean - sd), (x, mean + sd)],
                        color.stroke_width(3),
                    )))
                    .map_err(plot_err)?;
                if first {
                    bar.label(name)
                        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled()));
                    first = false;
                }
                chart
                    .draw_series(std::iter::once(Cross::new((x, mean), 8, color.stroke_width(3))))
                    .map_err(plot_err)?;
                chart
                    .draw_series(
                        v.iter().map(|&a| Circle::new((x + 0.05, 100.0 * a), 4, color.mix(0.6).filled())),
                    )
                    .map_err(plot_err)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        let labels: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
        category_labels(area, |i| chart.backend_coord(&(i as f64, lo)), &labels)
    })
}

/// `curves.png`: mean validation accuracy per epoch, every setting on one chart.
fn plot_curves(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let epochs = s.settings.iter().map(|st| st.curve.len()).max().unwrap_or(1).max(1);
    let (lo, hi) = span(s.settings.iter().flat_map(|st| st.curve.iter().map(|v| 100.0 * v)));
    render_png(path, (960, 600), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{}: validation accuracy per epoch (mean over seeds)", s.name),
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.8f64..epochs as f64 + 0.2, lo..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("validation accuracy (%)")
            .x_labels(epochs.clamp(2, 25))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(plot_err)?;
        for (i, st) in s.settings.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = st
                .curve
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(e, v)| (e as f64 + 1.0, 100.0 * v))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
                .map_err(plot_err)?
                .label(st.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

/// `time.png`: training seconds per setting (mean over seeds).
fn plot_time(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let m = s.settings.len();
    let means: Vec<f64> = s.settings.iter().map(|st| mean_sd(&st.seconds).0).collect();
    let top = means.iter().copied().filter(|v| v.is_finite()).fold(1.0f64, f64::max) * 1.15;
    render_png(path, (120 * m as u32 + 360, 420), |area| {
        let caption = format!("{}: training time per trial (mean over seeds)", s.name);
        let mut chart = category_chart(area, &caption, m, 0f64..top, "seconds")?;
        chart
            .draw_series(means.iter().enumerate().map(|(i, &v)| {
                Rectangle::new(
                    [(i as f64 - 0.3, 0.0), (i as f64 + 0.3, if v.is_finite() { v } else { 0.0 })],
                    PALETTE[0].filled(),
                )
            }))
            .map_err(plot_err)?;
        let labels: Vec<String> = s.settings.iter().map(|st| st.label.clone()).collect();
        category_labels(area, |i| chart.backend_coord(&(i as f64, 0.0)), &labels)
    })
}
