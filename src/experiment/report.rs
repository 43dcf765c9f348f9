//! What a study leaves beside its records: `results.csv` (a row per record), `REPORT.md` (every
//! statement's effect with its interval and verdict, the settings' numbers), the plots
//! (`effects.png`, `accuracy.png`, `curves.png`, `time.png`) and `summary.json`, which the merged
//! `DIR/REPORT.md` gathers, one row per claim, with Benjamini–Hochberg values across all.

use std::path::Path;

use plotters::prelude::*;

use super::record::Record;
use super::stats::{self, mean_sd};
use super::verdict::{combine, judge_claim, p_text, Judged, Plan, Verdict, RULE};
use super::{Overrides, Study};
use crate::report::{legend, plot_err, render_png, write_text, Chart};

/// One setting's numbers over its seeds (accuracies in percent).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SettingStats {
    pub label: String,
    /// Seeds of the runs that trained, and of those that failed.
    pub seeds: Vec<u64>,
    pub failed_seeds: Vec<u64>,
    pub held_out: Vec<f64>,
    pub val: Vec<f64>,
    pub test: Vec<f64>,
    /// Training accuracy (inference mode) minus validation accuracy, per run.
    pub gap: Vec<f64>,
    pub seconds: Vec<f64>,
    /// Validation accuracy per epoch, one curve per run that trained.
    pub curves: Vec<Vec<f64>>,
}

/// A study's outcome, as `summary.json` holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub name: String,
    pub claim: String,
    pub source: Option<String>,
    pub verdict: Verdict,
    pub statements: Vec<Judged>,
    pub settings: Vec<SettingStats>,
    pub plan: Plan,
    pub records: usize,
    pub epochs: usize,
    pub train_images: Option<usize>,
    pub devices: Vec<String>,
    pub builds: Vec<String>,
    /// Curve study: the epochs its tables show.
    pub curve: Vec<usize>,
    /// First-round trials without a record yet: while any are left, the verdict is interim.
    #[serde(default)]
    pub first_round_left: usize,
}

impl Summary {
    /// What follows the verdict while the first round is unfinished (empty once it is whole).
    pub fn interim(&self) -> String {
        match self.first_round_left {
            0 => String::new(),
            n => format!(" (interim: {n} first-round trials to go)"),
        }
    }
}

fn stats_of(study: &Study, records: &[Record]) -> Vec<SettingStats> {
    study
        .settings
        .iter()
        .map(|s| {
            let mine: Vec<&Record> = records.iter().filter(|r| r.setting == s.label).collect();
            let ok: Vec<&Record> = mine.iter().copied().filter(|r| r.failed.is_none()).collect();
            let pct = |v: Option<f64>| 100.0 * v.unwrap_or(f64::NAN);
            // Only the numbers a run has (an old record may lack its training accuracy).
            let finite = |v: Vec<f64>| v.into_iter().filter(|x| x.is_finite()).collect::<Vec<f64>>();
            SettingStats {
                label: s.label.clone(),
                seeds: ok.iter().map(|r| r.seed).collect(),
                failed_seeds: mine.iter().filter(|r| r.failed.is_some()).map(|r| r.seed).collect(),
                held_out: finite(ok.iter().map(|r| 100.0 * r.run(0).held_out()).collect()),
                val: finite(ok.iter().map(|r| pct(r.val_accuracy)).collect()),
                test: finite(ok.iter().map(|r| pct(r.test_accuracy)).collect()),
                gap: finite(ok.iter().map(|r| pct(r.train_accuracy) - pct(r.val_accuracy)).collect()),
                seconds: mine.iter().map(|r| r.train_seconds).collect(),
                curves: ok
                    .iter()
                    .map(|r| r.history.iter().map(|h| 100.0 * h.val_accuracy).collect())
                    .collect(),
            }
        })
        .collect()
}

/// Text for a markdown table cell: its pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// `89.70 ± 0.21` (mean ± standard deviation, percent); `—` with no value.
pub fn mean_pm(x: &[f64]) -> String {
    let (m, s) = mean_sd(x);
    match x.len() {
        0 => "—".into(),
        1 => format!("{m:.2}"),
        _ => format!("{m:.2} ± {s:.2}"),
    }
}

/// An effect with its interval: `+1.02 [+0.81, +1.23]`.
pub fn effect_text(j: &Judged) -> String {
    if j.effect.is_nan() {
        return "—".into();
    }
    if j.method == "binomial" {
        return format!("{:.0}% failed [{:.0}, {:.0}]", j.effect, j.lo, j.hi);
    }
    format!("{:+.2} [{:+.2}, {:+.2}]", j.effect, j.lo, j.hi)
}

/// `results.csv`: one row per record, each with its own training-image count.
pub fn results_csv(study: &Study, o: &Overrides, records: &[Record]) -> String {
    let mut s = String::from(
        "trial,setting,seed,epochs,train_images,val_accuracy,test_accuracy,held_out_accuracy,val_loss,test_loss,train_accuracy,failed,device,adapter,build,train_seconds\n",
    );
    let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
    for r in records {
        let index = study
            .settings
            .iter()
            .position(|x| x.label == r.setting)
            .map_or(String::new(), |i| study.trial(o, i, r.seed).index.to_string());
        let quoted = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        let held_out = r.run(0).held_out();
        s += &format!(
            "{index},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3}\n",
            quoted(&r.setting),
            r.seed,
            r.epochs,
            r.train_images,
            num(r.val_accuracy),
            num(r.test_accuracy),
            num(Some(held_out).filter(|v| v.is_finite())),
            num(r.val_loss),
            num(r.test_loss),
            num(r.train_accuracy),
            r.failed.is_some(),
            r.device,
            quoted(&r.adapter),
            quoted(&r.build),
            r.train_seconds
        );
    }
    s
}

/// Judges the study on `records` and (re)writes its report files under `study_dir`.
pub fn write_study(study: &Study, study_dir: &Path, o: &Overrides) -> anyhow::Result<Summary> {
    let records = study.records(o, study_dir, None)?;
    let plan = study.plan(o);
    let statements = judge_claim(&study.expect, &study.runs(&records), &study.labels(), &plan);
    let verdict = combine(&statements.iter().map(|j| j.verdict).collect::<Vec<_>>());
    let distinct = |f: &dyn Fn(&Record) -> String| {
        let mut v: Vec<String> = records.iter().map(f).collect();
        v.sort();
        v.dedup();
        v
    };
    let summary = Summary {
        name: study.name.clone(),
        claim: study.claim.clone(),
        source: study.source.clone(),
        verdict,
        statements,
        settings: stats_of(study, &records),
        plan,
        records: records.len(),
        epochs: study.trial(o, 0, 1).epochs,
        train_images: records.first().map(|r| r.train_images),
        devices: distinct(&|r| format!("{} ({})", r.device, r.adapter)),
        builds: distinct(&|r| r.build.clone()),
        curve: study.curve.clone().unwrap_or_default(),
        first_round_left: study.first_round_left(o, &records).len(),
    };
    write_text(&study_dir.join("results.csv"), &results_csv(study, o, &records))?;
    if !records.is_empty() {
        plot_effects(&study_dir.join("effects.png"), &summary)?;
        plot_accuracy(&study_dir.join("accuracy.png"), &summary)?;
        plot_curves(&study_dir.join("curves.png"), &summary)?;
        plot_time(&study_dir.join("time.png"), &summary)?;
    }
    write_text(&study_dir.join("REPORT.md"), &study_md(study, &summary))?;
    write_text(&study_dir.join("summary.json"), &serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

/// The statements table, as the study report and the merged report show it.
fn statements_table(statements: &[Judged]) -> String {
    let mut md = String::from(
        "| statement | effect, points [interval] | margin | method | p (Holm) | seeds | verdict |\n|---|---|---:|---|---|---:|---|\n",
    );
    for j in statements {
        let verdict = match j.seeds_needed {
            Some(n) if j.verdict == Verdict::Inconclusive => {
                format!("**{}** (≈ {n} seeds would decide it)", j.verdict)
            }
            _ => format!("**{}**", j.verdict),
        };
        md += &format!(
            "| {} | {} | {} | {} | {} ({}) | {} | {} |\n",
            cell(&j.statement),
            effect_text(j),
            if j.method == "binomial" { "—".into() } else { format!("±{}", j.margin) },
            if j.method.is_empty() { "—" } else { &j.method },
            p_text(j.p),
            p_text(j.p_holm),
            j.seeds,
            verdict
        );
    }
    md
}

fn study_md(study: &Study, s: &Summary) -> String {
    let mut md = format!("# {}\n\n> {}\n\n", s.name, s.claim);
    if let Some(src) = &s.source {
        md += &format!("Source: {src}\n\n");
    }
    let level = s.statements.first().map_or(0.95, |j| j.level);
    md += &format!(
        "Base model `{}`; {}; {} epochs; seeds `{}`; {} training images; {} records. Device: {}. Build: {}.\n\n",
        study.base,
        if study.knobs.is_empty() { "one setting, read along its curve".to_string() } else { format!("knob `{}`", study.knobs.join("`, `")) },
        s.epochs,
        s.plan,
        s.train_images.map_or("?".to_string(), crate::graph::model::group),
        s.records,
        if s.devices.is_empty() { "—".into() } else { s.devices.join(", ") },
        if s.builds.is_empty() { "—".into() } else { s.builds.join(", ") },
    );
    md += &format!(
        "## Verdict: **{}**{}\n\nEach effect is in points of held-out accuracy unless the statement names another quantity, with its {:.1}% interval.\n\n",
        s.verdict,
        s.interim(),
        100.0 * level
    );
    md += &statements_table(&s.statements);
    let details: Vec<String> = s
        .statements
        .iter()
        .filter(|j| !j.detail.is_empty())
        .map(|j| format!("- `{}`: {}", j.statement, j.detail))
        .collect();
    if !details.is_empty() {
        md += &format!("\n{}\n", details.join("\n"));
    }
    if let Some(note) = &study.note {
        md += &format!("\n**What this study cannot separate.** {note}\n");
    }
    md += "\n![effects with their intervals](effects.png)\n\n## Results\n\nAccuracy in percent, mean ± standard deviation over the runs that trained; held-out = validation and test images pooled; gap = training accuracy (inference mode) − validation accuracy.\n\n";
    md += "| setting | runs | failed | held-out accuracy | validation | test | gap | seconds |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for st in &s.settings {
        let secs = match mean_sd(&st.seconds).0 {
            m if m.is_finite() => format!("{m:.0}"),
            _ => "—".into(),
        };
        let failed = if st.failed_seeds.is_empty() {
            "0".to_string()
        } else {
            let seeds: Vec<String> = st.failed_seeds.iter().map(u64::to_string).collect();
            format!("{} (seeds {})", st.failed_seeds.len(), seeds.join(", "))
        };
        md += &format!(
            "| {} | {} | {failed} | {} | {} | {} | {} | {secs} |\n",
            cell(&st.label),
            st.seeds.len() + st.failed_seeds.len(),
            mean_pm(&st.held_out),
            mean_pm(&st.val),
            mean_pm(&st.test),
            mean_pm(&st.gap)
        );
    }
    if !s.curve.is_empty() {
        md += "\nValidation accuracy along the curve (mean ± sd over the runs that trained):\n\n| epoch |";
        md += &s.settings.iter().map(|st| format!(" {} |", cell(&st.label))).collect::<String>();
        md += "\n|---:|";
        md += &"---:|".repeat(s.settings.len());
        md += "\n";
        for &e in &s.curve {
            md += &format!("| {e} |");
            for st in &s.settings {
                let v: Vec<f64> = st.curves.iter().filter_map(|c| c.get(e - 1).copied()).collect();
                md += &format!(" {} |", mean_pm(&v));
            }
            md += "\n";
        }
    }
    md += "\n![held-out accuracy per setting](accuracy.png)\n\n![validation accuracy per epoch](curves.png)\n\n![training time](time.png)\n\n";
    md += "Every finished trial is a record in [`trials/`](trials/) (spec hash, seed, data, device, build, every epoch, final metrics); `results.csv` has one row per record.\n\n";
    md += &format!("## The rule\n\n{RULE}\n\n## The study file\n\n```toml\n{}```\n", study.text);
    md
}

/// `DIR/REPORT.md`: one section per study of `studies` (in that order) and then per other study
/// found under `dir` (its `summary.json`), by name; a study with no record yet is listed as
/// "not run yet". Benjamini–Hochberg-adjusted p-values over every judged statement.
pub fn write_merged(dir: &Path, studies: &[Study]) -> anyhow::Result<usize> {
    let mut found = std::collections::BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("summary.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let s: Summary =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            found.insert(s.name.clone(), s);
        }
    }
    // Every listed study in its order (a summary, or None: not run yet), then the others.
    let mut rows: Vec<(String, Option<Summary>)> =
        studies.iter().map(|s| (s.name.clone(), found.remove(&s.name).filter(|s| s.records > 0))).collect();
    rows.extend(found.into_iter().filter(|(_, s)| s.records > 0).map(|(n, s)| (n, Some(s))));
    let all_p: Vec<f64> =
        rows.iter().flat_map(|(_, s)| s.iter().flat_map(|s| s.statements.iter().map(|j| j.p))).collect();
    let q = stats::benjamini_hochberg(&all_p);
    let mut md = String::from("# The report's claims, tested\n\nOne row per claim: the report's words and where it says them, each statement's effect in points with its interval, and the verdicts (the rule is at the end). The last column adjusts every statement's p-value across all claims by Benjamini–Hochberg (the false discovery rate); verdicts use Holm within each claim.\n\n");
    let mut counts = std::collections::BTreeMap::new();
    for (_, s) in &rows {
        *counts.entry(s.as_ref().map_or(NOT_RUN.to_string(), |s| s.verdict.to_string())).or_insert(0usize) +=
            1;
    }
    let tally: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    md += &format!("{} claims: {}.\n\n", rows.len(), tally.join(", "));
    md += "| study | claim (source) | statement | effect, points [interval] | verdict | BH q |\n|---|---|---|---|---|---|\n";
    let mut i = 0;
    for (name, s) in &rows {
        let Some(s) = s else {
            let study = studies.iter().find(|s| &s.name == name).expect("a listed study");
            for (k, st) in study.expect.iter().enumerate() {
                let head = if k == 0 {
                    format!("{name} **{NOT_RUN}** | {}", claim_cell(&study.claim, study.source.as_deref()))
                } else {
                    " | ".to_string()
                };
                md += &format!("| {head} | {} | — | {NOT_RUN} | — |\n", cell(&st.text));
            }
            continue;
        };
        let setup = format!(
            "{} epochs, {} training images, seeds `{}`, {} records",
            s.epochs,
            s.train_images.map_or("?".to_string(), crate::graph::model::group),
            s.plan,
            s.records
        );
        for (k, j) in s.statements.iter().enumerate() {
            let head = if k == 0 {
                format!(
                    "[{}]({}/REPORT.md) **{}**{} | {} — {setup}",
                    s.name,
                    s.name,
                    s.verdict,
                    s.interim(),
                    claim_cell(&s.claim, s.source.as_deref())
                )
            } else {
                " | ".to_string()
            };
            let verdict = match j.seeds_needed {
                Some(n) if j.verdict == Verdict::Inconclusive => format!("{} (≈ {n} seeds)", j.verdict),
                _ => j.verdict.to_string(),
            };
            md += &format!(
                "| {head} | {} | {} | {verdict} | {} |\n",
                cell(&j.statement),
                effect_text(j),
                p_text(q[i])
            );
            i += 1;
        }
    }
    md += &format!("\n## The rule\n\n{RULE}\n");
    write_text(&dir.join("REPORT.md"), &md)?;
    Ok(rows.len())
}

/// The merged report's word for a study with no record yet.
const NOT_RUN: &str = "not run yet";

/// A claim and where the report says it, for a table cell.
fn claim_cell(claim: &str, source: Option<&str>) -> String {
    format!("{}{}", cell(claim), source.map_or(String::new(), |src| format!(" ({})", cell(src))))
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
const FAILED: RGBColor = RGBColor(200, 0, 0);
const FONT: u32 = 16;

/// The range that holds `values` with a margin.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.12).max(0.2);
    (lo - pad, hi + pad)
}

/// The labels of a categorical axis, drawn under the plot area.
fn category_labels(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    at: impl Fn(usize) -> (i32, i32),
    labels: &[String],
) -> anyhow::Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    for (i, l) in labels.iter().enumerate() {
        let (x, y) = at(i);
        let style = TextStyle::from(("sans-serif", FONT).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        area.draw(&Text::new(l.clone(), (x, y + 8), style)).map_err(plot_err)?;
    }
    Ok(())
}

/// A chart of `m` categories at x = 0, 1, …, m − 1 (labelled by [`category_labels`]) over `y`,
/// with the x axis titled `x_desc` under the labels.
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
        .x_label_area_size(64)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.6f64..m as f64 - 0.4, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", FONT))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// The x-axis title under a category chart.
fn x_title(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, title: &str) -> anyhow::Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from(("sans-serif", FONT).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    area.draw(&Text::new(title.to_string(), (w as i32 / 2, h as i32 - 8), style)).map_err(plot_err)
}

/// `effects.png`: every statement's effect with its interval, the ±margin band shaded.
fn plot_effects(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let shown: Vec<&Judged> =
        s.statements.iter().filter(|j| j.method != "binomial" && j.effect.is_finite()).collect();
    if shown.is_empty() {
        return Ok(());
    }
    let (lo, hi) = span(shown.iter().flat_map(|j| [j.lo, j.hi, -j.margin, j.margin, 0.0]));
    let m = shown.len();
    render_png(path, (980, 120 + 56 * m as u32), |area| {
        let (left, right) = area.split_horizontally(360);
        let mut chart = ChartBuilder::on(&right)
            .caption(format!("{}: effects, points (intervals; shaded: ±margin)", s.name), ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .build_cartesian_2d(lo..hi, -0.5f64..m as f64 - 0.5)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("effect (points of accuracy)")
            .x_label_formatter(&|v| format!("{v:.1}"))
            .label_style(("sans-serif", FONT))
            .draw()
            .map_err(plot_err)?;
        for (i, j) in shown.iter().enumerate() {
            let y = (m - 1 - i) as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(-j.margin, y - 0.4), (j.margin, y + 0.4)],
                    RGBColor(220, 220, 220).filled(),
                )))
                .map_err(plot_err)?;
            let color = match j.verdict {
                Verdict::Supported => PALETTE[2],
                Verdict::Contradicted => PALETTE[3],
                Verdict::NoDifference => PALETTE[7],
                Verdict::Inconclusive => PALETTE[1],
            };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(j.lo, y), (j.hi, y)],
                    color.stroke_width(4),
                )))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Circle::new((j.effect, y), 6, color.filled())))
                .map_err(plot_err)?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, m as f64 - 0.5)],
                BLACK.stroke_width(1),
            )))
            .map_err(plot_err)?;
        for (i, j) in shown.iter().enumerate() {
            let (_, py) = chart.backend_coord(&(lo, (m - 1 - i) as f64));
            let text = format!("{} — {}", j.statement, j.verdict);
            let text = if text.chars().count() > 44 {
                format!("{}…", text.chars().take(43).collect::<String>())
            } else {
                text
            };
            left.draw(&Text::new(text, (8, py - 8), ("sans-serif", 15).into_font())).map_err(plot_err)?;
        }
        Ok(())
    })
}

/// `accuracy.png`: held-out accuracy per setting — each run a dot, the mean with its 95%
/// interval — and the runs that failed to train as red crosses under the axis, never averaged.
fn plot_accuracy(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let m = s.settings.len();
    let (lo, hi) = span(s.settings.iter().flat_map(|st| st.held_out.clone()));
    let any_failed = s.settings.iter().any(|st| !st.failed_seeds.is_empty());
    let floor = if any_failed { lo - (hi - lo) * 0.15 } else { lo };
    render_png(path, (150 * m as u32 + 360, 560), |area| {
        let caption = format!("{}: held-out accuracy per setting", s.name);
        let mut chart = category_chart(area, &caption, m, floor..hi, "held-out accuracy (%)")?;
        for (i, st) in s.settings.iter().enumerate() {
            let x = i as f64;
            let color = PALETTE[0];
            if let Some(e) = stats::one_sample(&st.held_out) {
                // Clipped to the chart (two runs give an interval of ±12.7 standard errors).
                let (a, b) = e.ci(0.05);
                let (a, b) = (a.max(floor), b.min(hi));
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.12, a), (x - 0.12, b)],
                        color.stroke_width(3),
                    )))
                    .map_err(plot_err)?;
            }
            if !st.held_out.is_empty() {
                let mean = mean_sd(&st.held_out).0;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.22, mean), (x - 0.02, mean)],
                        color.stroke_width(3),
                    )))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(
                    st.held_out.iter().map(|&a| Circle::new((x + 0.1, a), 4, color.mix(0.6).filled())),
                )
                .map_err(plot_err)?;
            let y = floor + (lo - floor) * 0.4;
            chart
                .draw_series(
                    st.failed_seeds
                        .iter()
                        .enumerate()
                        .map(|(k, _)| Cross::new((x - 0.1 + 0.07 * k as f64, y), 6, FAILED.stroke_width(2))),
                )
                .map_err(plot_err)?;
        }
        let mut labels: Vec<String> = s.settings.iter().map(|st| st.label.clone()).collect();
        if any_failed {
            for (l, st) in labels.iter_mut().zip(&s.settings) {
                if !st.failed_seeds.is_empty() {
                    *l = format!("{l} ({} failed)", st.failed_seeds.len());
                }
            }
        }
        category_labels(area, |i| chart.backend_coord(&(i as f64, floor)), &labels)?;
        x_title(
            area,
            "setting — dots: runs; bar: mean with its 95% interval; red ×: runs that failed to train",
        )
    })
}

/// `curves.png`: validation accuracy per epoch, each setting's mean line with a band from its
/// lowest to its highest run.
fn plot_curves(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let epochs = s.settings.iter().flat_map(|st| st.curves.iter().map(Vec::len)).max().unwrap_or(1).max(1);
    let (lo, hi) = span(s.settings.iter().flat_map(|st| st.curves.iter().flatten().copied()));
    render_png(path, (960, 600), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{}: validation accuracy per epoch (line: mean; band: range over seeds)", s.name),
                ("sans-serif", 20),
            )
            .margin(20)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.8f64..epochs as f64 + 0.2, lo..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("validation accuracy (%)")
            .x_labels(epochs.clamp(2, 20))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(("sans-serif", FONT))
            .draw()
            .map_err(plot_err)?;
        for (i, st) in s.settings.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let at = |e: usize| -> Vec<f64> {
                st.curves.iter().filter_map(|c| c.get(e).copied()).filter(|v| v.is_finite()).collect()
            };
            let n = st.curves.iter().map(Vec::len).max().unwrap_or(0);
            let mut band: Vec<(f64, f64)> = (0..n)
                .filter_map(|e| at(e).into_iter().reduce(f64::max).map(|v| (e as f64 + 1.0, v)))
                .collect();
            let low: Vec<(f64, f64)> = (0..n)
                .filter_map(|e| at(e).into_iter().reduce(f64::min).map(|v| (e as f64 + 1.0, v)))
                .collect();
            band.extend(low.into_iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.15).filled())))
                .map_err(plot_err)?;
            let mean: Vec<(f64, f64)> = (0..n)
                .filter_map(|e| {
                    let v = at(e);
                    (!v.is_empty()).then(|| (e as f64 + 1.0, mean_sd(&v).0))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(mean, color.stroke_width(3)))
                .map_err(plot_err)?
                .label(st.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// `time.png`: training seconds per run, per setting.
fn plot_time(path: &Path, s: &Summary) -> anyhow::Result<()> {
    let m = s.settings.len();
    let top = s
        .settings
        .iter()
        .flat_map(|st| st.seconds.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.15;
    render_png(path, (150 * m as u32 + 360, 440), |area| {
        let caption = format!("{}: training time per run", s.name);
        let mut chart = category_chart(area, &caption, m, 0f64..top, "seconds")?;
        for (i, st) in s.settings.iter().enumerate() {
            let mean = mean_sd(&st.seconds).0;
            if mean.is_finite() {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(i as f64 - 0.3, 0.0), (i as f64 + 0.3, mean)],
                        PALETTE[0].mix(0.5).filled(),
                    )))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(st.seconds.iter().map(|&v| Circle::new((i as f64, v), 4, PALETTE[0].filled())))
                .map_err(plot_err)?;
        }
        let labels: Vec<String> = s.settings.iter().map(|st| st.label.clone()).collect();
        category_labels(area, |i| chart.backend_coord(&(i as f64, 0.0)), &labels)?;
        x_title(area, "setting — bar: mean; dots: runs")
    })
}
