//! From finished trials to a verdict on a claim: every statement an effect in points with a
//! confidence interval, judged against a margin that comes from the claim's words.
//!
//! The rule is stated once, in [`RULE`] (every report quotes it). The statements a study's
//! `expect` may hold (`L`, `R` are a setting's label or several joined by `|`, whose mean is
//! meant; a suffix `(slightly)`, `(much)`, `(margin 0.5)` … sets the margin):
//!
//! | statement | effect | supported when |
//! |---|---|---|
//! | `L > R` | L − R | the interval lies above 0 (and not inside ±margin) |
//! | `L >= R` | L − R | the interval's lower end is above −margin (non-inferiority) |
//! | `L ~ R` | L − R | the whole interval lies inside ±margin |
//! | `best G` | mean of G − mean of the rest | as `>`; Holm-adjusted pairs shown beside |
//! | `trend up\|down A, B, C` | the fitted change from A to the last, along a line over the listed order | as `>` in the named direction |
//! | `fails A` | the share of A's runs that failed to train | its interval lies above ½ |
//! | `most confused C1 and C2` | the test-set share of C1↔C2 mistakes minus the largest other pair's | as `>` |
//!
//! A side may read another quantity than held-out accuracy: `train A` (accuracy on the training
//! images at the end, inference mode), `gap A` (that minus validation accuracy), `running gap A`
//! (the last epoch's running training accuracy, dropout on, minus validation accuracy: the gap
//! between the curves Keras draws), `A at epoch N`
//! (validation accuracy after epoch N; `at epochs N-M`: its mean over those epochs; in a curve
//! study `epoch N` or `epochs N-M` alone), or a constant such as
//! `0 points`.

use super::stats::{self, Blocked, Estimate, Method};
use crate::data::CLASS_NAMES;

/// The family-wise error rate of a claim's verdicts (split over the looks of a sequential plan).
pub const ALPHA: f64 = 0.05;
/// The margin of a statement whose words give none, in points.
pub const DEFAULT_MARGIN: f64 = 0.5;
/// Words of a claim and the margin they mean, in points.
pub const WORDS: &[(&str, f64)] =
    &[("slightly", 0.2), ("a little", 0.2), ("clearly", 1.0), ("much", 1.5), ("almost identical", 1.0)];
/// A run whose final training loss is at least this is counted as failed to train: chance
/// level over ten classes is ln 10 ≈ 2.303.
pub const FAILED_LOSS: f64 = 2.28;

/// The rule in one paragraph, for reports.
pub const RULE: &str = "Each statement of a claim is an effect in points — held-out accuracy unless the statement names another quantity — with a confidence interval, judged against a margin that comes from the claim's words (\"slightly\" or \"a little\": 0.2 points; \"clearly\": 1; \"much\": 1.5; no such word: 0.5; a study may set its own). The held-out accuracy is measured on all 15,000 images no run trains on (the 5,000 validation and 10,000 test images pooled), because a study chooses nothing on either set and pooling them cuts the evaluation images' share of the noise; curve statements read validation accuracy per epoch, the only per-epoch figure a run records. Runs of different settings with the same seed share the shuffle order, so a study is analysed as settings × seed blocks: a two-way additive least-squares model with the error pooled over every setting (`seed-blocked`; a setting with runs that failed to train joins the pool only of statements that read it); where the settings share too few seeds for that, each setting keeps its own variance (Welch); a statement comparing two quantities of the same runs uses their per-seed differences (`per-seed t`). Runs that fail to train (a loss that is not a number, or a final loss at chance, ln 10) are counted per setting and kept out of the accuracy statistics. A statement is *no meaningful difference* when its whole interval lies inside ±margin; otherwise *supported* when the interval lies on the side the claim says, *contradicted* when it lies on the other side, and *inconclusive* when it straddles 0 — with the seeds per setting that would decide it at the observed noise. `A >= B` is non-inferiority: supported when the interval's lower end is above −margin. `fails A` is supported when the interval of A's failure rate lies above ½. The verdicts of one claim control the family-wise error at 5% by Holm's step-down over its statements. Studies that add seeds where statements are undecided (`seeds = \"auto:MAX\"`) look twice, after the first round and at MAX seeds, and split the 5% over the two looks (Bonferroni): every interval of such a study is a 97.5% interval, and a statement keeps the verdict of the first look that decided it. A claim is contradicted if any statement is, else no meaningful difference if any statement is, else inconclusive if any is, else supported.";

/// What the data say of a statement or a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Supported,
    Contradicted,
    /// The whole interval lies inside ±margin.
    NoDifference,
    Inconclusive,
}

impl Verdict {
    pub fn decided(self) -> bool {
        self != Verdict::Inconclusive
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::NoDifference => "no meaningful difference",
            Verdict::Inconclusive => "inconclusive",
        })
    }
}

/// A claim's verdict from its statements': contradicted, else no meaningful difference, else
/// inconclusive, else (all supported) supported.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    [Verdict::Contradicted, Verdict::NoDifference, Verdict::Inconclusive]
        .into_iter()
        .find(|v| verdicts.contains(v))
        .unwrap_or(if verdicts.is_empty() { Verdict::Inconclusive } else { Verdict::Supported })
}

/// What a statement reads of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Accuracy on validation and test images pooled, after the last epoch.
    HeldOut,
    /// Accuracy on the training images at the end, in inference mode.
    Train,
    /// [`Metric::Train`] minus the final validation accuracy.
    Gap,
    /// The last epoch's running training accuracy (training mode, dropout on: what Keras's
    /// `fit` reports and its curves show) minus its validation accuracy.
    RunningGap,
    /// Validation accuracy after epoch N, or its mean over epochs N..=M (a window smooths out
    /// the epoch-to-epoch wobble that a statement about convergence should not read).
    Val(usize, usize),
}

impl Metric {
    /// Quantities compared within one pooled model must be of one family.
    fn family(self) -> u8 {
        match self {
            Metric::HeldOut => 0,
            Metric::Train => 1,
            Metric::Gap => 2,
            Metric::Val(..) => 3,
            Metric::RunningGap => 4,
        }
    }
}

/// One side of a comparison: the mean of a metric over a group of settings, or a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    Group(Metric, Vec<usize>),
    Number(f64),
}

/// A statement's form.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `L > R` (`at_least`: `L >= R`).
    Beats { left: Side, right: Side, at_least: bool },
    /// `L ~ R`
    Same { left: Side, right: Side },
    /// `best G`: the group against the rest.
    Best { metric: Metric, group: Vec<usize> },
    /// `trend up|down A, B, …`
    Trend { metric: Metric, up: bool, settings: Vec<usize> },
    /// `fails A`
    Fails(usize),
    /// `most confused C1 and C2` (class indices).
    Confused(usize, usize),
}

/// One testable statement of a claim, as a study file writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    pub kind: Kind,
    /// In points.
    pub margin: f64,
}

/// A finished trial as the statistics read it: accuracies are fractions.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub setting: usize,
    pub seed: u64,
    pub failed: bool,
    pub val: f64,
    pub test: f64,
    /// Images in each held-out set, the pooling weights.
    pub val_images: usize,
    pub test_images: usize,
    /// Training images, inference mode, after the last epoch (NaN if not measured).
    pub train: f64,
    /// Validation accuracy per epoch.
    pub curve: Vec<f64>,
    /// The last epoch's running training accuracy (training mode).
    pub train_running: f64,
    /// Test-set confusion counts, row = true class (empty if not recorded).
    pub confusion: Vec<u64>,
}

impl Run {
    /// Validation and test accuracy pooled by their image counts.
    pub fn held_out(&self) -> f64 {
        let (v, t) = (self.val_images as f64, self.test_images as f64);
        if v + t == 0.0 {
            return f64::NAN;
        }
        (v * self.val + t * self.test) / (v + t)
    }

    /// The metric in points (None when this run does not have it).
    pub fn points(&self, m: Metric) -> Option<f64> {
        let v = match m {
            Metric::HeldOut => self.held_out(),
            Metric::Train => self.train,
            Metric::Gap => self.train - self.val,
            Metric::RunningGap => self.train_running - self.val,
            Metric::Val(a, b) => {
                let window = self.curve.get(a.checked_sub(1)?..b)?;
                window.iter().sum::<f64>() / window.len() as f64
            }
        };
        v.is_finite().then_some(100.0 * v)
    }
}

impl Statement {
    /// Parses one `expect` line. `labels` are the study's settings; `curve` is true in a curve
    /// study (one setting read along its epochs, `epoch N` naming a point); `margin` is the
    /// study's default in points.
    pub fn parse(text: &str, labels: &[String], curve: bool, margin: f64) -> anyhow::Result<Statement> {
        let t = text.trim();
        let (body, margin) = match t.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
            Some((body, words)) => (body.trim(), margin_of(words.trim())?),
            None => (t, margin),
        };
        let setting = |l: &str| -> anyhow::Result<usize> {
            let l = l.trim();
            let number = |s: &str| s.parse::<f64>().ok();
            labels
                .iter()
                .position(|x| x == l || (number(x).is_some() && number(x) == number(l)))
                .ok_or_else(|| anyhow::anyhow!("`{l}` is not one of the settings ({})", labels.join(", ")))
        };
        // `… at epoch N` applies to the whole statement or to one side.
        let at_epoch = |s: &str| -> anyhow::Result<(String, Option<Metric>)> {
            match s.rsplit_once(" at epoch") {
                Some((head, n)) => Ok((head.trim().to_string(), Some(epochs_of(n)?))),
                None => Ok((s.trim().to_string(), None)),
            }
        };
        let side = |s: &str| -> anyhow::Result<Side> {
            let (s, epoch) = at_epoch(s)?;
            // A constant says its unit, so that it is never taken for a setting named by a number.
            if let Some(x) = s.strip_suffix(" points").or(s.strip_suffix(" point")) {
                return x
                    .trim()
                    .parse()
                    .map(Side::Number)
                    .map_err(|_| anyhow::anyhow!("`{s}` is not a number of points"));
            }
            if curve {
                if let Some(n) = s.strip_prefix("epoch") {
                    return Ok(Side::Group(epochs_of(n)?, vec![0]));
                }
            }
            let (metric, rest) = if let Some(r) = s.strip_prefix("running gap ") {
                (Metric::RunningGap, r)
            } else if let Some(r) = s.strip_prefix("train ") {
                (Metric::Train, r)
            } else if let Some(r) = s.strip_prefix("gap ") {
                (Metric::Gap, r)
            } else {
                (Metric::HeldOut, s.as_str())
            };
            let metric = match (metric, epoch) {
                (Metric::HeldOut, Some(e)) => e,
                (_, Some(_)) => {
                    anyhow::bail!("`{s}`: `at epoch` reads validation accuracy; drop `train`/`gap`")
                }
                (m, None) => m,
            };
            Ok(Side::Group(metric, rest.split('|').map(setting).collect::<anyhow::Result<_>>()?))
        };
        let kind = if let Some(rest) = body.strip_prefix("best ") {
            let (rest, epoch) = at_epoch(rest)?;
            let group: Vec<usize> = rest.split('|').map(setting).collect::<anyhow::Result<_>>()?;
            anyhow::ensure!(group.len() < labels.len(), "`{body}`: the group must leave some settings out");
            Kind::Best { metric: epoch.unwrap_or(Metric::HeldOut), group }
        } else if let Some(rest) = body.strip_prefix("trend ") {
            let (up, rest) = match rest.split_once(' ') {
                Some(("up", r)) => (true, r),
                Some(("down", r)) => (false, r),
                _ => anyhow::bail!("`{body}`: write trend up A, B, C or trend down A, B, C"),
            };
            let (rest, epoch) = at_epoch(rest)?;
            let settings: Vec<usize> = rest.split(',').map(setting).collect::<anyhow::Result<_>>()?;
            anyhow::ensure!(settings.len() >= 3, "`{body}`: a trend needs at least three settings");
            Kind::Trend { metric: epoch.unwrap_or(Metric::HeldOut), up, settings }
        } else if let Some(rest) = body.strip_prefix("fails ") {
            Kind::Fails(setting(rest)?)
        } else if let Some(rest) = body.strip_prefix("most confused ") {
            let class = |c: &str| {
                CLASS_NAMES.iter().position(|n| n.eq_ignore_ascii_case(c.trim())).ok_or_else(|| {
                    anyhow::anyhow!("`{}` is not a class ({})", c.trim(), CLASS_NAMES.join(", "))
                })
            };
            let (a, b) = rest
                .split_once(" and ")
                .ok_or_else(|| anyhow::anyhow!("`{body}`: write most confused CLASS and CLASS"))?;
            let (a, b) = (class(a)?, class(b)?);
            anyhow::ensure!(a != b, "`{body}`: two different classes");
            Kind::Confused(a, b)
        } else if let Some((l, r)) = body.split_once(">=") {
            Kind::Beats { left: side(l)?, right: side(r)?, at_least: true }
        } else if let Some((l, r)) = body.split_once('>') {
            Kind::Beats { left: side(l)?, right: side(r)?, at_least: false }
        } else if let Some((l, r)) = body.split_once('~') {
            Kind::Same { left: side(l)?, right: side(r)? }
        } else {
            anyhow::bail!(
                "`{body}` is not `A > B`, `A >= B`, `A ~ B`, `best A | B`, `trend up|down A, B, C`, `fails A` or `most confused C1 and C2`"
            )
        };
        if let Kind::Beats { left, right, .. } | Kind::Same { left, right } = &kind {
            anyhow::ensure!(
                matches!(left, Side::Group(..)) || matches!(right, Side::Group(..)),
                "`{body}`: compare at least one setting"
            );
        }
        Ok(Statement { text: t.to_string(), kind, margin })
    }

    /// The settings whose runs the statement reads.
    pub fn settings(&self, count: usize) -> Vec<usize> {
        let mut s: Vec<usize> = match &self.kind {
            Kind::Beats { left, right, .. } | Kind::Same { left, right } => [left, right]
                .iter()
                .flat_map(|s| if let Side::Group(_, g) = s { g.clone() } else { vec![] })
                .collect(),
            Kind::Best { .. } => (0..count).collect(),
            Kind::Trend { settings, .. } => settings.clone(),
            Kind::Fails(a) => vec![*a],
            Kind::Confused(..) => (0..count).collect(),
        };
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The epochs this statement reads validation accuracy at.
    pub fn epochs(&self) -> Vec<usize> {
        let of = |m: &Metric| if let Metric::Val(a, b) = m { vec![*a, *b] } else { vec![] };
        match &self.kind {
            Kind::Beats { left, right, .. } | Kind::Same { left, right } => [left, right]
                .iter()
                .flat_map(|s| if let Side::Group(m, _) = s { of(m) } else { vec![] })
                .collect(),
            Kind::Best { metric, .. } | Kind::Trend { metric, .. } => of(metric),
            _ => vec![],
        }
    }
}

/// `10` after `epoch`, or `6-10` after `epochs`: the validation accuracy read there.
fn epochs_of(text: &str) -> anyhow::Result<Metric> {
    let bad = || anyhow::anyhow!("`epoch{text}`: write epoch N or epochs N-M (N ≥ 1, M > N)");
    let number = |n: &str| n.trim().parse::<usize>().ok().filter(|&e| e >= 1);
    if let Some(range) = text.strip_prefix("s ") {
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let (a, b) = (number(a).ok_or_else(bad)?, number(b).ok_or_else(bad)?);
        anyhow::ensure!(b > a, bad());
        return Ok(Metric::Val(a, b));
    }
    let n = text.strip_prefix(' ').and_then(number).ok_or_else(bad)?;
    Ok(Metric::Val(n, n))
}

/// The margin that `(words)` after a statement means, in points.
pub fn margin_of(words: &str) -> anyhow::Result<f64> {
    if let Some(m) = words.strip_prefix("margin ") {
        return m.trim().parse::<f64>().ok().filter(|m| m.is_finite() && *m > 0.0).ok_or_else(|| {
            anyhow::anyhow!("`{words}`: a margin is a number of points above 0, e.g. (margin 0.5)")
        });
    }
    WORDS.iter().find(|(w, _)| *w == words).map(|w| w.1).ok_or_else(|| {
        let known: Vec<&str> = WORDS.iter().map(|w| w.0).collect();
        anyhow::anyhow!("`({words})`: say the margin as (margin 0.5) or one of: {}", known.join(", "))
    })
}

/// How many seeds a study runs: a fixed number, or a first round and more seeds where
/// statements are undecided, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub first: usize,
    pub max: usize,
}

/// The first round of `seeds = "auto:MAX"`.
pub const FIRST_ROUND: usize = 5;

impl Plan {
    /// `5`, `auto` (first round 5, up to 10) or `auto:MAX`.
    pub fn parse(text: &str) -> anyhow::Result<Plan> {
        let t = text.trim();
        let count = |s: &str| s.parse::<usize>().ok().filter(|&n| n >= 1);
        if let Some(n) = count(t) {
            return Ok(Plan { first: n, max: n });
        }
        let max = match t.strip_prefix("auto") {
            Some("") => 10,
            Some(r) => r
                .strip_prefix(':')
                .and_then(count)
                .ok_or_else(|| anyhow::anyhow!("`{t}`: write auto:MAX, e.g. auto:10"))?,
            None => anyhow::bail!("`{t}` is not a number of seeds, `auto` or `auto:MAX`"),
        };
        anyhow::ensure!(max > FIRST_ROUND, "`{t}`: MAX must be above the first round's {FIRST_ROUND} seeds");
        Ok(Plan { first: FIRST_ROUND, max })
    }

    /// The seed counts at which verdicts are taken.
    pub fn looks(&self) -> Vec<usize> {
        if self.max > self.first {
            vec![self.first, self.max]
        } else {
            vec![self.first]
        }
    }

    /// The error rate each look spends.
    pub fn alpha(&self) -> f64 {
        ALPHA / self.looks().len() as f64
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.max > self.first {
            write!(f, "auto:{}", self.max)
        } else {
            write!(f, "{}", self.first)
        }
    }
}

/// A statement judged: its effect (points) with the interval, the verdict and the numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Judged {
    pub statement: String,
    pub verdict: Verdict,
    /// The effect in points (a failure statement: the failure rate in percent).
    #[serde(deserialize_with = "nan_if_null")]
    pub effect: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub lo: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub hi: f64,
    /// The interval's level (0.95, or 0.975 in a two-look study).
    pub level: f64,
    pub margin: f64,
    pub method: String,
    /// The p-value of the verdict's test, and Holm's adjustment of it within the claim.
    pub p: f64,
    pub p_holm: f64,
    /// Seeds per setting at the look that gave the verdict (the most a setting had).
    pub seeds: usize,
    /// For an inconclusive statement: seeds per setting that would decide it at this noise.
    pub seeds_needed: Option<usize>,
    pub detail: String,
}

/// JSON writes NaN as null; read null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Judges a claim's statements on `runs` by `plan`: each look restricted to its seeds, Holm
/// within the claim at the look's level, and each statement keeping the first decisive look.
pub fn judge_claim(statements: &[Statement], runs: &[Run], labels: &[String], plan: &Plan) -> Vec<Judged> {
    let alpha = plan.alpha();
    let mut out: Vec<Option<Judged>> = vec![None; statements.len()];
    for k in plan.looks() {
        let seen: Vec<Run> = runs.iter().filter(|r| r.seed <= k as u64).cloned().collect();
        let mut judged: Vec<Judged> = statements.iter().map(|s| judge(s, &seen, labels, alpha)).collect();
        let holm = stats::holm(&judged.iter().map(|j| j.p).collect::<Vec<_>>());
        for (j, h) in judged.iter_mut().zip(holm) {
            j.p_holm = h;
            if j.verdict.decided() && h >= alpha {
                j.detail = format!("{} (not significant after Holm's adjustment within the claim)", j.detail);
                j.verdict = Verdict::Inconclusive;
            }
        }
        for (slot, j) in out.iter_mut().zip(judged) {
            if !slot.as_ref().is_some_and(|s| s.verdict.decided()) {
                *slot = Some(j);
            }
        }
    }
    out.into_iter().map(|j| j.expect("one look at least")).collect()
}

/// The settings that need more seeds after the first look: those read by statements it left
/// undecided (empty for a fixed plan).
pub fn wants_more(statements: &[Statement], runs: &[Run], labels: &[String], plan: &Plan) -> Vec<usize> {
    if plan.max <= plan.first {
        return vec![];
    }
    // Judged at the first look exactly as `judge_claim` judges it (its level included).
    let seen: Vec<Run> = runs.iter().filter(|r| r.seed <= plan.first as u64).cloned().collect();
    let alpha = plan.alpha();
    let mut judged: Vec<Judged> = statements.iter().map(|s| judge(s, &seen, labels, alpha)).collect();
    let holm = stats::holm(&judged.iter().map(|j| j.p).collect::<Vec<_>>());
    for (j, h) in judged.iter_mut().zip(holm) {
        if h >= alpha {
            j.verdict = Verdict::Inconclusive;
        }
    }
    let settings = labels.len();
    let mut want: Vec<usize> = statements
        .iter()
        .zip(&judged)
        .filter(|(_, j)| !j.verdict.decided())
        .flat_map(|(s, _)| s.settings(settings))
        .collect();
    want.sort_unstable();
    want.dedup();
    want
}

/// An estimate of Σ w·quantity over runs, by the best method the runs allow, in points.
fn estimate(
    terms: &[(Metric, usize, f64)],
    constant: f64,
    runs: &[Run],
    settings: usize,
) -> Option<(Estimate, usize)> {
    let ok = |r: &&Run| !r.failed;
    let one_family = terms.windows(2).all(|w| w[0].0.family() == w[1].0.family());
    let zero_sum = terms.iter().map(|t| t.2).sum::<f64>().abs() < 1e-9;
    let seeds_of = |s: usize| runs.iter().filter(ok).filter(|r| r.setting == s).count();
    let seeds = terms.iter().map(|t| seeds_of(t.1)).max().unwrap_or(0);
    if one_family && zero_sum && constant == 0.0 {
        // Arms: (metric, setting) of this family — every setting at the same metric (and, for
        // epochs, every epoch the terms read) — so the error is pooled over the whole study.
        let mut arms: Vec<(Metric, usize)> = vec![];
        let metrics: Vec<Metric> = {
            let mut m: Vec<Metric> = terms.iter().map(|t| t.0).collect();
            m.dedup();
            m
        };
        for m in &metrics {
            for s in 0..settings {
                if !arms.contains(&(*m, s)) {
                    arms.push((*m, s));
                }
            }
        }
        // A setting with runs that failed to train is unstable (its runs that trained are a
        // selected few): it joins the pooled error only of statements that read it.
        let read = |s: usize| terms.iter().any(|t| t.1 == s);
        let stable = |s: usize| !runs.iter().any(|r| r.setting == s && r.failed);
        let present: Vec<(Metric, usize)> = arms
            .into_iter()
            .filter(|&(_, s)| read(s) || stable(s))
            .filter(|&(m, s)| runs.iter().filter(ok).any(|r| r.setting == s && r.points(m).is_some()))
            .collect();
        let obs: Vec<(usize, u64, f64)> = present
            .iter()
            .enumerate()
            .flat_map(|(i, &(m, s))| {
                runs.iter()
                    .filter(ok)
                    .filter(move |r| r.setting == s)
                    .filter_map(move |r| Some((i, r.seed, r.points(m)?)))
            })
            .collect();
        let weights: Option<Vec<f64>> = {
            let mut c = vec![0.0; present.len()];
            let mut all = true;
            for &(m, s, w) in terms {
                match present.iter().position(|&a| a == (m, s)) {
                    Some(i) => c[i] += w,
                    None => all = false,
                }
            }
            all.then_some(c)
        };
        let weights = weights?;
        if let Some(fit) = Blocked::fit(&obs, present.len()) {
            return Some((fit.contrast(&weights), seeds));
        }
        let groups: Vec<Vec<f64>> =
            (0..present.len()).map(|i| obs.iter().filter(|o| o.0 == i).map(|o| o.2).collect()).collect();
        return stats::welch(&groups, &weights).map(|e| (e, seeds));
    }
    // Per seed: the weighted sum over the seed's runs, where every term has one.
    let mut seed_ids: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seed_ids.sort_unstable();
    seed_ids.dedup();
    let values: Vec<f64> = seed_ids
        .iter()
        .filter_map(|&k| {
            let mut v = -constant;
            for &(m, s, w) in terms {
                let r = runs.iter().filter(ok).find(|r| r.seed == k && r.setting == s)?;
                v += w * r.points(m)?;
            }
            Some(v)
        })
        .collect();
    stats::one_sample(&values).map(|e| (e, values.len()))
}

/// Terms of a side: (metric, setting, weight) with the mean over its group, and its constant.
fn terms(side: &Side, sign: f64) -> (Vec<(Metric, usize, f64)>, f64) {
    match side {
        Side::Number(x) => (vec![], sign * x),
        Side::Group(m, g) => (g.iter().map(|&s| (*m, s, sign / g.len() as f64)).collect(), 0.0),
    }
}

/// The per-seed margin (in points) of the C1↔C2 confusion over the largest other pair.
fn confusion_margin(r: &Run, a: usize, b: usize) -> Option<f64> {
    let c = CLASS_NAMES.len();
    if r.confusion.len() != c * c || r.failed {
        return None;
    }
    let total: u64 = r.confusion.iter().sum();
    let pair = |i: usize, j: usize| (r.confusion[i * c + j] + r.confusion[j * c + i]) as f64;
    let mut other = 0.0f64;
    for i in 0..c {
        for j in i + 1..c {
            if (i, j) != (a.min(b), a.max(b)) {
                other = other.max(pair(i, j));
            }
        }
    }
    Some(100.0 * (pair(a, b) - other) / total.max(1) as f64)
}

/// One statement on `runs` at level `1 − alpha` (before Holm).
pub fn judge(s: &Statement, runs: &[Run], labels: &[String], alpha: f64) -> Judged {
    let settings = labels.len();
    let m = s.margin;
    let mut judged = Judged {
        statement: s.text.clone(),
        verdict: Verdict::Inconclusive,
        effect: f64::NAN,
        lo: f64::NAN,
        hi: f64::NAN,
        level: 1.0 - alpha,
        margin: m,
        method: String::new(),
        p: 1.0,
        p_holm: 1.0,
        seeds: 0,
        seeds_needed: None,
        detail: String::new(),
    };
    if let Kind::Fails(a) = s.kind {
        return judge_failures(judged, runs, a, alpha);
    }
    // (estimate, the direction the claim expects: +1 above, −1 below, 0 none, non-inferiority)
    enum Shape {
        Directed,
        AtLeast,
        Equivalent,
    }
    let (est, shape, extra) = match &s.kind {
        Kind::Beats { left, right, at_least } => {
            let (mut t, c1) = terms(left, 1.0);
            let (t2, c2) = terms(right, -1.0);
            t.extend(t2);
            (
                estimate(&t, -(c1 + c2), runs, settings),
                if *at_least { Shape::AtLeast } else { Shape::Directed },
                String::new(),
            )
        }
        Kind::Same { left, right } => {
            let (mut t, c1) = terms(left, 1.0);
            let (t2, c2) = terms(right, -1.0);
            t.extend(t2);
            (estimate(&t, -(c1 + c2), runs, settings), Shape::Equivalent, String::new())
        }
        Kind::Best { metric, group } => {
            let rest: Vec<usize> = (0..settings).filter(|x| !group.contains(x)).collect();
            let mut t: Vec<(Metric, usize, f64)> =
                group.iter().map(|&g| (*metric, g, 1.0 / group.len() as f64)).collect();
            t.extend(rest.iter().map(|&r| (*metric, r, -1.0 / rest.len() as f64)));
            // Beside it: every member against every other setting, Holm-adjusted.
            let mut pairs = vec![];
            for &g in group {
                for &r in &rest {
                    if let Some((e, _)) =
                        estimate(&[(*metric, g, 1.0), (*metric, r, -1.0)], 0.0, runs, settings)
                    {
                        pairs.push((g, r, e));
                    }
                }
            }
            let adjusted = stats::holm(&pairs.iter().map(|p| p.2.p_zero()).collect::<Vec<_>>());
            let text: Vec<String> = pairs
                .iter()
                .zip(adjusted)
                .map(|((g, r, e), h)| {
                    format!("{} − {} = {:+.2} (Holm p = {})", labels[*g], labels[*r], e.value, p_text(h))
                })
                .collect();
            (estimate(&t, 0.0, runs, settings), Shape::Directed, text.join("; "))
        }
        Kind::Trend { metric, up, settings: listed } => {
            let k = listed.len() as f64;
            let mean_x = (k - 1.0) / 2.0;
            let sxx: f64 = (0..listed.len()).map(|i| (i as f64 - mean_x).powi(2)).sum();
            let dir = if *up { 1.0 } else { -1.0 };
            // Fitted change from the first to the last listed setting, signed as claimed.
            let t: Vec<(Metric, usize, f64)> = listed
                .iter()
                .enumerate()
                .map(|(i, &x)| (*metric, x, dir * (i as f64 - mean_x) / sxx * (k - 1.0)))
                .collect();
            (estimate(&t, 0.0, runs, settings), Shape::Directed, String::new())
        }
        Kind::Confused(a, b) => {
            let values: Vec<f64> = runs.iter().filter_map(|r| confusion_margin(r, *a, *b)).collect();
            (stats::one_sample(&values).map(|e| (e, values.len())), Shape::Directed, String::new())
        }
        Kind::Fails(_) => unreachable!("judged above"),
    };
    let Some((e, seeds)) = est else {
        judged.detail = "too few runs for an interval (two seeds at least, of runs that trained)".into();
        return judged;
    };
    let (lo, hi) = e.ci(alpha);
    judged.effect = e.value;
    judged.lo = lo;
    judged.hi = hi;
    judged.method = e.method.to_string();
    judged.seeds = seeds;
    let p_zero = e.p_zero();
    let p_inside = (2.0 * e.p_above(-m).max(e.p_below(m))).min(1.0);
    let p_not_worse = (2.0 * e.p_above(-m)).min(1.0);
    let inside = lo > -m && hi < m;
    let (verdict, p) = match shape {
        Shape::Directed if inside => (Verdict::NoDifference, p_inside),
        Shape::Directed if lo > 0.0 => (Verdict::Supported, p_zero),
        Shape::Directed if hi < 0.0 => (Verdict::Contradicted, p_zero),
        Shape::Directed => (Verdict::Inconclusive, p_zero.min(p_inside)),
        Shape::AtLeast if lo > -m => (Verdict::Supported, p_not_worse),
        Shape::AtLeast if hi < 0.0 => (Verdict::Contradicted, p_zero),
        Shape::AtLeast => (Verdict::Inconclusive, p_zero.min(p_not_worse)),
        Shape::Equivalent if inside => (Verdict::Supported, p_inside),
        Shape::Equivalent if lo > 0.0 || hi < 0.0 => (Verdict::Contradicted, p_zero),
        Shape::Equivalent => (Verdict::Inconclusive, p_zero.min(p_inside)),
    };
    judged.verdict = verdict;
    judged.p = p;
    if verdict == Verdict::Inconclusive {
        // At this noise, the seeds a setting would need for the interval to clear 0 (if the
        // effect is what it seems) or to fit inside ±margin, whichever comes first.
        let n = seeds.max(2) as f64;
        let sigma = e.se * n.sqrt();
        let df_per_seed = if e.df.is_finite() { e.df / (n - 1.0) } else { 1.0 };
        let gaps = [e.value.abs(), m - e.value.abs()];
        judged.seeds_needed =
            gaps.iter().filter_map(|&g| stats::seeds_for(sigma, 1.0, g, alpha, df_per_seed.max(0.5))).min();
    }
    judged.detail = extra;
    judged
}

/// `fails A`: the share of A's runs that failed, against ½ (an exact binomial test).
fn judge_failures(mut j: Judged, runs: &[Run], a: usize, alpha: f64) -> Judged {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.setting == a).collect();
    let (n, k) = (mine.len(), mine.iter().filter(|r| r.failed).count());
    j.method = Method::Counts.to_string();
    j.seeds = n;
    if n == 0 {
        j.detail = "no runs yet".into();
        return j;
    }
    let (lo, hi) = clopper_pearson(k, n, alpha);
    j.effect = 100.0 * k as f64 / n as f64;
    j.lo = 100.0 * lo;
    j.hi = 100.0 * hi;
    let p_many = stats::binomial_upper(k, n, 0.5);
    let p_few = 1.0 - stats::binomial_upper(k + 1, n, 0.5);
    let p = (2.0 * p_many.min(p_few)).min(1.0);
    j.p = p;
    j.verdict = if lo > 0.5 {
        Verdict::Supported
    } else if hi < 0.5 {
        Verdict::Contradicted
    } else {
        Verdict::Inconclusive
    };
    if !j.verdict.decided() {
        // The seeds at which the same failure rate would decide it.
        let rate = k as f64 / n as f64;
        j.seeds_needed = (n + 1..=200).find(|&n2| {
            let k2 = (rate * n2 as f64).round() as usize;
            let (l, h) = clopper_pearson(k2, n2, alpha);
            l > 0.5 || h < 0.5
        });
    }
    j.detail = format!("{k} of {n} runs failed to train");
    j
}

/// The exact (Clopper–Pearson) `1 − alpha` interval of a binomial proportion.
pub fn clopper_pearson(k: usize, n: usize, alpha: f64) -> (f64, f64) {
    let solve = |f: &dyn Fn(f64) -> bool| {
        // The boundary of a monotone predicate on [0, 1] by bisection.
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if f(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let lower = if k == 0 { 0.0 } else { solve(&|q| stats::binomial_upper(k, n, q) >= alpha / 2.0) };
    let upper = if k == n { 1.0 } else { solve(&|q| 1.0 - stats::binomial_upper(k + 1, n, q) < alpha / 2.0) };
    (lower, upper)
}

/// p as people read it.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn labels() -> Vec<String> {
        ["a", "b", "c", "d"].map(String::from).to_vec()
    }

    fn run(setting: usize, seed: u64, acc: f64) -> Run {
        Run {
            setting,
            seed,
            failed: false,
            val: acc,
            test: acc,
            val_images: 5000,
            test_images: 10000,
            train: f64::NAN,
            curve: vec![],
            train_running: f64::NAN,
            confusion: vec![],
        }
    }

    /// Runs of `effects.len()` settings × `seeds` seeds: a shared seed effect, the setting's
    /// effect and noise, all in points, around 89%.
    fn study(rng: &mut Rng, effects: &[f64], seeds: u64, noise: f64, block: f64) -> Vec<Run> {
        let mut out = vec![];
        for k in 1..=seeds {
            let b = block * normal(rng);
            for (s, e) in effects.iter().enumerate() {
                out.push(run(s, k, (89.0 + e + b + noise * normal(rng)) / 100.0));
            }
        }
        out
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut Rng) -> f64 {
        let u = |rng: &mut Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (a, b) = (u(rng), u(rng));
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }

    fn parse(text: &str) -> Statement {
        Statement::parse(text, &labels(), false, DEFAULT_MARGIN).unwrap()
    }

    /// What the runner does under a plan: the first round, then more seeds only for the
    /// settings the first look wants.
    fn sequential(rng: &mut Rng, effects: &[f64], st: &[Statement], plan: &Plan, noise: f64) -> Vec<Judged> {
        let all = study(rng, effects, plan.max as u64, noise, 0.5);
        let first: Vec<Run> = all.iter().filter(|r| r.seed <= plan.first as u64).cloned().collect();
        let names: Vec<String> = labels()[..effects.len()].to_vec();
        let want = wants_more(st, &first, &names, plan);
        let runs: Vec<Run> =
            all.into_iter().filter(|r| r.seed <= plan.first as u64 || want.contains(&r.setting)).collect();
        judge_claim(st, &runs, &names, plan)
    }

    fn rates(sims: usize, effects: &[f64], st: &[Statement], plan: &Plan, seed: u64) -> [f64; 4] {
        let mut rng = Rng::new(seed);
        let mut counts = [0usize; 4];
        for _ in 0..sims {
            let j = sequential(&mut rng, effects, st, plan, 0.4);
            let i = match j[0].verdict {
                Verdict::Supported => 0,
                Verdict::Contradicted => 1,
                Verdict::NoDifference => 2,
                Verdict::Inconclusive => 3,
            };
            counts[i] += 1;
        }
        counts.map(|c| c as f64 / sims as f64)
    }

    /// 5% plus two binomial standard errors of a 5% rate over `sims` studies.
    fn five_percent(sims: usize) -> f64 {
        0.05 + 2.0 * (0.05f64 * 0.95 / sims as f64).sqrt()
    }

    #[test]
    fn with_no_true_effect_supported_or_contradicted_is_at_most_five_percent() {
        let sims = 2000;
        let st = [parse("a > b")];
        for plan in [Plan { first: 5, max: 5 }, Plan::parse("auto:10").unwrap()] {
            let r = rates(sims, &[0.0, 0.0, 0.0, 0.0], &st, &plan, 11);
            assert!(r[0] + r[1] <= five_percent(sims), "{plan}: {r:?}");
        }
        // A trend and a group contrast under no effect, with auto seeds.
        let plan = Plan::parse("auto:10").unwrap();
        for text in ["trend down a, b, c, d", "best a | b"] {
            let r = rates(sims, &[0.0; 4], &[parse(text)], &plan, 12);
            assert!(r[0] + r[1] <= five_percent(sims), "{text}: {r:?}");
        }
    }

    #[test]
    fn a_true_effect_of_two_noise_deviations_is_found_at_the_cap() {
        // Noise 0.4 points: an effect of 0.8; margin 0.2 ("slightly").
        let sims = 2000;
        let st = [parse("a > b (slightly)")];
        let r = rates(sims, &[0.8, 0.0, 0.0, 0.0], &st, &Plan::parse("auto:10").unwrap(), 13);
        assert!(r[0] >= 0.80, "{r:?}");
        assert!(r[1] < 0.001, "{r:?}");
    }

    #[test]
    fn no_meaningful_difference_is_rare_when_the_effect_is_the_margin() {
        let sims = 2000;
        let st = [parse("a > b")];
        let plan = Plan::parse("auto:10").unwrap();
        let r = rates(sims, &[DEFAULT_MARGIN, 0.0, 0.0, 0.0], &st, &plan, 14);
        assert!(r[2] <= five_percent(sims), "{r:?}");
        // Non-inferiority when A is worse by exactly the margin: supported at most 5%.
        let r = rates(sims, &[-DEFAULT_MARGIN, 0.0, 0.0, 0.0], &[parse("a >= b")], &plan, 15);
        assert!(r[0] <= five_percent(sims), "{r:?}");
        // And, where the noise is well under the margin, no difference at all is declared no
        // meaningful difference most of the time.
        let mut rng = Rng::new(16);
        let nmd = (0..sims)
            .filter(|_| sequential(&mut rng, &[0.0; 4], &st, &plan, 0.1)[0].verdict == Verdict::NoDifference)
            .count();
        assert!(nmd as f64 / sims as f64 > 0.8, "{nmd} of {sims}");
    }

    #[test]
    fn constructed_studies_get_each_verdict() {
        let mut rng = Rng::new(3);
        let fixed = Plan { first: 6, max: 6 };
        let v = |effects: &[f64], text: &str, rng: &mut Rng| {
            let runs = study(rng, effects, 6, 0.05, 0.3);
            judge_claim(&[parse(text)], &runs, &labels(), &fixed)[0].verdict
        };
        assert_eq!(v(&[2.0, 0.0, 0.0, 0.0], "a > b", &mut rng), Verdict::Supported);
        assert_eq!(v(&[0.0, 2.0, 0.0, 0.0], "a > b", &mut rng), Verdict::Contradicted);
        assert_eq!(v(&[0.0, 0.01, 0.0, 0.0], "a > b", &mut rng), Verdict::NoDifference);
        assert_eq!(v(&[0.0, 0.01, 0.0, 0.0], "a >= b", &mut rng), Verdict::Supported);
        assert_eq!(v(&[0.0, 2.0, 0.0, 0.0], "a >= b", &mut rng), Verdict::Contradicted);
        assert_eq!(v(&[0.0, 0.01, 0.0, 0.0], "a ~ b", &mut rng), Verdict::Supported);
        assert_eq!(v(&[0.0, 2.0, 0.0, 0.0], "a ~ b", &mut rng), Verdict::Contradicted);
        assert_eq!(v(&[3.0, 2.0, 1.0, 0.0], "trend down a, b, c, d", &mut rng), Verdict::Supported);
        assert_eq!(v(&[3.0, 2.0, 1.0, 0.0], "trend up a, b, c, d", &mut rng), Verdict::Contradicted);
        assert_eq!(v(&[3.0, 2.0, 1.0, 0.0], "trend up d, c, b, a", &mut rng), Verdict::Supported);
        assert_eq!(v(&[1.0, 1.0, 0.0, 0.0], "best a | b", &mut rng), Verdict::Supported);
        assert_eq!(v(&[0.0, 0.0, 1.0, 0.0], "best a | b", &mut rng), Verdict::Contradicted);
        // "much" needs 1.5 points: a sure 0.4 is no meaningful difference for it.
        assert_eq!(v(&[0.4, 0.0, 0.0, 0.0], "a > b (much)", &mut rng), Verdict::NoDifference);
        // Noise as large as the effect: inconclusive, with the seeds that would decide it.
        let runs = study(&mut rng, &[0.3, 0.0, 0.0, 0.0], 3, 1.0, 0.3);
        let j = &judge_claim(&[parse("a > b")], &runs, &labels(), &Plan { first: 3, max: 3 })[0];
        assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
        assert!(j.seeds_needed.is_some_and(|n| n > 3), "{j:?}");
    }

    #[test]
    fn failures_are_counted_and_kept_out_of_the_accuracy() {
        let mut runs = study(&mut Rng::new(5), &[0.0, -0.5, 0.0, 0.0], 8, 0.1, 0.2);
        for r in runs.iter_mut().filter(|r| r.setting == 2) {
            r.failed = true;
            r.val = 0.1;
            r.test = 0.1;
        }
        let fixed = Plan { first: 8, max: 8 };
        let j = judge_claim(&[parse("fails c"), parse("fails a")], &runs, &labels(), &fixed);
        assert_eq!(j[0].verdict, Verdict::Supported, "{:?}", j[0]);
        assert_eq!(j[1].verdict, Verdict::Contradicted, "{:?}", j[1]);
        // The failed setting's chance-level runs do not enter a comparison or the pooled error.
        let j = judge_claim(&[parse("a > b")], &runs, &labels(), &fixed);
        assert_eq!(j[0].verdict, Verdict::Supported, "{:?}", j[0]);
        assert!(j[0].hi - j[0].lo < 0.5, "{:?}", j[0]);
        // Half the runs failing cannot be told from ½ with eight seeds.
        for r in runs.iter_mut().filter(|r| r.setting == 3 && r.seed <= 4) {
            r.failed = true;
        }
        let j = judge_claim(&[parse("fails d")], &runs, &labels(), &fixed);
        assert_eq!(j[0].verdict, Verdict::Inconclusive, "{:?}", j[0]);
        // The runs of that unstable setting that did train, however erratic, stay out of the
        // pooled error of statements that do not read it.
        for r in runs.iter_mut().filter(|r| r.setting == 3 && !r.failed) {
            r.val = if r.seed % 2 == 0 { 0.6 } else { 0.95 };
            r.test = r.val;
        }
        let j = judge_claim(&[parse("a > b")], &runs, &labels(), &fixed);
        assert!(j[0].verdict == Verdict::Supported && j[0].hi - j[0].lo < 0.5, "{:?}", j[0]);
        let j = judge_claim(&[parse("a > d")], &runs, &labels(), &fixed);
        assert!(j[0].hi - j[0].lo > 5.0, "{:?}", j[0]);
        let (lo, hi) = clopper_pearson(0, 5, 0.05);
        assert!(lo == 0.0 && (hi - 0.5218).abs() < 1e-3, "{hi}");
    }

    #[test]
    fn quantities_other_than_held_out_accuracy() {
        let labels = vec!["relu".to_string(), "none".to_string()];
        let mut runs = vec![];
        for k in 1..=6u64 {
            for s in 0..2 {
                let mut r = run(s, k, 0.89 + 0.001 * k as f64);
                r.train = r.val + if s == 0 { 0.02 } else { 0.04 } + 0.0005 * (k % 2) as f64;
                r.curve = vec![0.85, 0.87, r.val];
                r.train_running = r.val + 0.002 * (k % 3) as f64;
                out_confusion(&mut r);
                runs.push(r);
            }
        }
        let fixed = Plan { first: 6, max: 6 };
        let p = |t: &str| Statement::parse(t, &labels, false, DEFAULT_MARGIN).unwrap();
        let j = judge_claim(
            &[
                p("gap none > gap relu"),
                p("gap relu ~ 0 points (margin 1)"),
                p("relu at epoch 3 > relu at epoch 1"),
                p("running gap relu ~ 0 points (almost identical)"),
            ],
            &runs,
            &labels,
            &fixed,
        );
        assert_eq!(j[0].verdict, Verdict::Supported, "{:?}", j[0]);
        assert!((j[0].effect - 2.0).abs() < 1e-6, "{:?}", j[0]);
        // The gap is 2 points: "almost identical" within 1 point is contradicted.
        assert_eq!(j[1].verdict, Verdict::Contradicted, "{:?}", j[1]);
        assert_eq!(j[1].method, "per-seed t");
        assert_eq!(j[2].verdict, Verdict::Supported, "{:?}", j[2]);
        assert_eq!(j[3].verdict, Verdict::Supported, "{:?}", j[3]);
        assert!((j[3].effect - 0.2).abs() < 1e-6, "{:?}", j[3]);
        let j = judge_claim(
            &[p("most confused T-shirt/top and Shirt"), p("most confused Coat and Bag")],
            &runs,
            &labels,
            &fixed,
        );
        assert_eq!(j[0].verdict, Verdict::Supported, "{:?}", j[0]);
        assert_eq!(j[1].verdict, Verdict::Contradicted, "{:?}", j[1]);
    }

    /// A confusion matrix whose largest mistake is T-shirt ↔ Shirt.
    fn out_confusion(r: &mut Run) {
        let c = CLASS_NAMES.len();
        r.confusion = vec![1; c * c];
        for i in 0..c {
            r.confusion[i * c + i] = 900;
        }
        r.confusion[6] = 80 + r.seed; // T-shirt/top (0) predicted as Shirt (6)
        r.confusion[6 * c] = 60;
        r.confusion[4 * c + 2] = 40; // Coat as Pullover
    }

    #[test]
    fn statements_parse_and_bad_ones_say_why() {
        let s = parse("a | b > c (much)");
        assert_eq!(s.margin, 1.5);
        assert!(
            matches!(&s.kind, Kind::Beats { left: Side::Group(Metric::HeldOut, g), .. } if g == &vec![0, 1])
        );
        assert!(matches!(
            parse("a at epoch 3 > b at epoch 3").kind,
            Kind::Beats { left: Side::Group(Metric::Val(3, 3), _), .. }
        ));
        let curve =
            Statement::parse("epoch 25 >= epoch 40 (margin 0.2)", &["mlp".into()], true, 0.5).unwrap();
        assert!(matches!(curve.kind, Kind::Beats { at_least: true, .. }));
        assert_eq!(curve.epochs(), vec![25, 25, 40, 40]);
        let window = Statement::parse("epochs 36-40 > epochs 5-9", &["mlp".into()], true, 0.5).unwrap();
        assert!(matches!(
            window.kind,
            Kind::Beats {
                left: Side::Group(Metric::Val(36, 40), _),
                right: Side::Group(Metric::Val(5, 9), _),
                ..
            }
        ));
        assert!(Statement::parse("epochs 9-5 > epoch 1", &["mlp".into()], true, 0.5).is_err());
        let e = |t: &str| Statement::parse(t, &labels(), false, 0.5).unwrap_err().to_string();
        assert!(e("a > z").contains("`z` is not one of the settings"));
        assert!(e("a ? b").contains("is not `A > B`"));
        assert!(e("a > b (hugely)").contains("say the margin as"));
        assert!(e("a > b (margin -1)").contains("above 0"));
        assert!(e("trend up a, b").contains("at least three"));
        assert!(e("best a | b | c | d").contains("leave some settings out"));
        assert!(e("most confused Shirt and Hat").contains("not a class"));
        assert_eq!(Plan::parse("auto:12").unwrap(), Plan { first: 5, max: 12 });
        assert_eq!(Plan::parse("7").unwrap(), Plan { first: 7, max: 7 });
        assert!(Plan::parse("auto:3").is_err());
        assert!(Plan::parse("many").is_err());
        assert_eq!(combine(&[Verdict::Supported, Verdict::Inconclusive]), Verdict::Inconclusive);
        assert_eq!(combine(&[Verdict::NoDifference, Verdict::Inconclusive]), Verdict::NoDifference);
        assert_eq!(combine(&[Verdict::Supported, Verdict::Contradicted]), Verdict::Contradicted);
        assert_eq!(combine(&[Verdict::Supported, Verdict::Supported]), Verdict::Supported);
    }
}
