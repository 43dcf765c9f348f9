//! From trial results to a verdict on a claim, accounting for seed noise.
//!
//! The rule, stated once (REPORT.md quotes [`RULE`]): settings are compared on their final
//! validation accuracy over seeds with Welch's two-sided t-test at p < 0.05, never one run
//! against one run.
//! - `A > B` (A beats B) is **supported** when A's mean is higher and the difference is
//!   significant, **contradicted** when B's is higher and significant, else **inconclusive**.
//! - `A >= B` (A is not worse than B) is contradicted when B is significantly better, else
//!   supported: it can only be refuted.
//! - `best A | B …` is supported when the setting with the best mean is one of A, B, … and it
//!   beats every setting outside the group significantly; contradicted when a setting outside
//!   the group beats the group's best significantly; else inconclusive.
//! - `plateau LO..HI` (curve studies) is supported when every seed's plateau epoch — the first
//!   epoch after which validation accuracy never rises more than 0.5 points above it — lies in
//!   LO..HI, contradicted when none does, else inconclusive.
//!
//! A claim is contradicted if any of its statements is, supported if all are, else
//! inconclusive. A setting with fewer than two seeds makes every comparison inconclusive.

/// The significance level of every test.
pub const ALPHA: f64 = 0.05;
/// How far above an epoch's validation accuracy a later epoch may rise for the curve to count
/// as having reached its plateau there.
pub const PLATEAU_TOLERANCE: f64 = 0.005;

/// The rule in one paragraph, for reports.
pub const RULE: &str = "Each setting is judged by its validation accuracy after the last epoch (curve studies: at the epoch named), over seeds. `A > B` holds when A's mean is higher and Welch's two-sided t-test gives p < 0.05; it is contradicted when B's mean is higher with p < 0.05, and inconclusive otherwise. `A >= B` is contradicted only when B is better with p < 0.05. `best A | B` holds when the best mean belongs to the group and beats every setting outside it with p < 0.05, and is contradicted when a setting outside the group beats the group's best with p < 0.05. `plateau LO..HI` holds when every seed's plateau epoch (the first epoch after which validation accuracy never rises more than 0.5 points above it) lies in LO..HI, and is contradicted when none does. A claim is contradicted if any of its statements is, supported if all are, inconclusive otherwise; fewer than two seeds per setting is always inconclusive.";

/// What the data say of a statement or a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Supported,
    Contradicted,
    Inconclusive,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive",
        })
    }
}

/// Combines statements: any contradicted → contradicted; all supported → supported.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    if verdicts.contains(&Verdict::Contradicted) {
        Verdict::Contradicted
    } else if !verdicts.is_empty() && verdicts.iter().all(|&v| v == Verdict::Supported) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// One testable statement of a claim, as a study file writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `A > B`
    Beats(String, String),
    /// `A >= B`
    NotWorse(String, String),
    /// `best A | B`
    Best(Vec<String>),
    /// `plateau LO..HI`
    Plateau(usize, usize),
}

impl Statement {
    /// Parses one `expect` line; `labels` are the study's settings.
    pub fn parse(text: &str, labels: &[String]) -> anyhow::Result<Statement> {
        // A setting by its label, or by its number (`1e-3` names the setting `0.001`).
        let known = |l: &str| -> anyhow::Result<String> {
            let l = l.trim();
            let number = |s: &str| s.parse::<f64>().ok();
            labels
                .iter()
                .find(|x| *x == l || (number(x).is_some() && number(x) == number(l)))
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("`{l}` is not one of the settings ({})", labels.join(", ")))
        };
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("best ") {
            return Ok(Statement::Best(rest.split('|').map(known).collect::<anyhow::Result<_>>()?));
        }
        if let Some(rest) = t.strip_prefix("plateau ") {
            let (lo, hi) = rest
                .split_once("..")
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .filter(|(lo, hi)| lo <= hi)
                .ok_or_else(|| anyhow::anyhow!("`{t}`: write plateau LO..HI, e.g. plateau 10..25"))?;
            return Ok(Statement::Plateau(lo, hi));
        }
        if let Some((a, b)) = t.split_once(">=") {
            return Ok(Statement::NotWorse(known(a)?, known(b)?));
        }
        if let Some((a, b)) = t.split_once('>') {
            return Ok(Statement::Beats(known(a)?, known(b)?));
        }
        anyhow::bail!("`{t}` is not `A > B`, `A >= B`, `best A | B` or `plateau LO..HI`")
    }
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Statement::Beats(a, b) => write!(f, "{a} > {b}"),
            Statement::NotWorse(a, b) => write!(f, "{a} ≥ {b}"),
            Statement::Best(g) => write!(f, "best: {}", g.join(" | ")),
            Statement::Plateau(lo, hi) => write!(f, "plateau in epochs {lo}–{hi}"),
        }
    }
}

/// Mean and sample standard deviation (n − 1).
pub fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    if x.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Welch's t-test of a against b: (mean a − mean b, t, degrees of freedom, two-sided p).
/// None with fewer than two values on either side.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Comparison> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, sa), (mb, sb)) = (mean_sd(a), mean_sd(b));
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let diff = ma - mb;
    if va + vb == 0.0 {
        // No spread at all: any difference is certain, none is none.
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Comparison { diff, t: f64::INFINITY.copysign(diff), df: f64::INFINITY, p, needed: 0.0 });
    }
    let se = (va + vb).sqrt();
    let t = diff / se;
    let df = (va + vb).powi(2) / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    let p = two_sided_p(t, df);
    // The smallest |difference| this spread would have made significant: t_crit · se, with
    // t_crit found by bisection (p falls as |t| grows).
    let (mut lo, mut hi) = (0.0f64, 1e4f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if two_sided_p(mid, df) > ALPHA {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(Comparison { diff, t, df, p, needed: hi * se })
}

/// A two-sample test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Mean of the first minus mean of the second.
    pub diff: f64,
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// The smallest |difference| that would have been significant with this spread.
    pub needed: f64,
}

/// The two-sided p-value of Student's t with `df` degrees of freedom.
fn two_sided_p(t: f64, df: f64) -> f64 {
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

impl Comparison {
    /// +1 when the first is significantly higher, −1 when lower, 0 when not significant.
    pub fn sign(&self) -> i32 {
        if self.p >= ALPHA || self.diff == 0.0 {
            0
        } else if self.diff > 0.0 {
            1
        } else {
            -1
        }
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..].iter().enumerate().fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where that converges faster.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp() / a;
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut f = d;
    for m in 1..500 {
        let m = m as f64;
        // Even step, then odd step.
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + numerator / c;
            c = if c.abs() < TINY { TINY } else { c };
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f
}

/// The results a verdict reads: per setting label, the metric per seed (in seed order), and
/// for curve statements every seed's validation accuracy per epoch.
pub struct Evidence<'a> {
    pub labels: &'a [String],
    pub values: &'a [Vec<f64>],
    pub curves: &'a [Vec<f64>],
}

/// A statement's verdict and the numbers behind it, in words.
#[derive(Debug, Clone)]
pub struct Judged {
    pub statement: String,
    pub verdict: Verdict,
    pub detail: String,
}

impl Evidence<'_> {
    fn of(&self, label: &str) -> &[f64] {
        let i = self.labels.iter().position(|l| l == label).expect("labels are checked when parsed");
        &self.values[i]
    }

    fn mean(&self, label: &str) -> f64 {
        mean_sd(self.of(label)).0
    }

    fn test(&self, a: &str, b: &str) -> (i32, String) {
        match welch(self.of(a), self.of(b)) {
            None => (0, format!("{a} vs {b}: too few seeds for a test")),
            Some(c) => (
                c.sign(),
                format!(
                    "{a} − {b} = {:+.2} points, t = {:.2}, df = {:.1}, p = {} (significant from ±{:.2})",
                    100.0 * c.diff,
                    c.t,
                    c.df,
                    p_text(c.p),
                    100.0 * c.needed
                ),
            ),
        }
    }

    /// Judges one statement.
    pub fn judge(&self, s: &Statement) -> Judged {
        let (verdict, detail) = match s {
            Statement::Beats(a, b) => {
                let (sign, d) = self.test(a, b);
                let v = match sign {
                    1 => Verdict::Supported,
                    -1 => Verdict::Contradicted,
                    _ => Verdict::Inconclusive,
                };
                (v, d)
            }
            Statement::NotWorse(a, b) => {
                let (sign, d) = self.test(a, b);
                let v = match sign {
                    -1 => Verdict::Contradicted,
                    _ if self.of(a).len() < 2 || self.of(b).len() < 2 => Verdict::Inconclusive,
                    _ => Verdict::Supported,
                };
                (v, d)
            }
            Statement::Best(group) => {
                let by_mean = |x: &&String, y: &&String| self.mean(x).total_cmp(&self.mean(y));
                let inside = group.iter().max_by(by_mean).expect("a group is never empty");
                let outside: Vec<&String> = self.labels.iter().filter(|l| !group.contains(l)).collect();
                let mut details = Vec::new();
                let mut signs = Vec::new();
                for o in &outside {
                    let (sign, d) = self.test(inside, o);
                    signs.push(sign);
                    details.push(d);
                }
                let best_overall = self.labels.iter().max_by(by_mean).expect("labels");
                let v = if signs.contains(&-1) {
                    Verdict::Contradicted
                } else if group.contains(best_overall) && signs.iter().all(|&s| s == 1) {
                    Verdict::Supported
                } else {
                    Verdict::Inconclusive
                };
                (v, format!("best mean: {best_overall}; {}", details.join("; ")))
            }
            Statement::Plateau(lo, hi) => {
                let epochs: Vec<usize> = self.curves.iter().map(|c| plateau_epoch(c)).collect();
                let inside = epochs.iter().filter(|e| (lo..=hi).contains(e)).count();
                let v = if epochs.len() < 2 {
                    Verdict::Inconclusive
                } else if inside == epochs.len() {
                    Verdict::Supported
                } else if inside == 0 {
                    Verdict::Contradicted
                } else {
                    Verdict::Inconclusive
                };
                let list: Vec<String> = epochs.iter().map(usize::to_string).collect();
                (v, format!("plateau epoch per seed: {}", list.join(", ")))
            }
        };
        Judged { statement: s.to_string(), verdict, detail }
    }
}

/// p as people read it.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// The first epoch (1-based) after which the curve never rises more than
/// [`PLATEAU_TOLERANCE`] above its value there.
pub fn plateau_epoch(curve: &[f64]) -> usize {
    (0..curve.len())
        .find(|&i| curve[i..].iter().all(|&v| v <= curve[i] + PLATEAU_TOLERANCE))
        .map_or(curve.len(), |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_known_values() {
        // By hand: means 2.5 and 6, variances 5/3 and 10, so t = −3.5/√(5/12 + 2) = −2.25144 and
        // df = (29/12)² / ((5/12)²/3 + 2²/4) = 5.52079; p = 0.0691336 by integrating Student's
        // density numerically (Simpson, 200,000 intervals).
        let c = welch(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap();
        assert!((c.t + 2.25144).abs() < 1e-5, "{c:?}");
        assert!((c.df - 5.52079).abs() < 1e-5, "{c:?}");
        assert!((c.p - 0.0691336).abs() < 1e-6, "{c:?}");
        // At exactly the needed difference, p is α.
        assert!((two_sided_p(c.needed / (c.diff / c.t), c.df) - ALPHA).abs() < 1e-9, "{c:?}");
        // Student's t with 1 df is Cauchy: P(|T| > 1) = 0.5.
        assert!((incomplete_beta(0.5, 0.5, 0.5) - 0.5).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }

    fn labels() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    fn judge(values: &[Vec<f64>], text: &str) -> Verdict {
        let l = labels();
        let e = Evidence { labels: &l, values, curves: &[] };
        e.judge(&Statement::parse(text, &l).unwrap()).verdict
    }

    #[test]
    fn a_clear_win_a_clear_loss_and_a_tie_within_noise() {
        let win = vec![vec![0.90, 0.901, 0.899], vec![0.85, 0.852, 0.849], vec![0.80, 0.81, 0.79]];
        assert_eq!(judge(&win, "a > b"), Verdict::Supported);
        assert_eq!(judge(&win, "b > a"), Verdict::Contradicted);
        assert_eq!(judge(&win, "b >= a"), Verdict::Contradicted);
        assert_eq!(judge(&win, "a >= b"), Verdict::Supported);
        assert_eq!(judge(&win, "best a"), Verdict::Supported);
        assert_eq!(judge(&win, "best c"), Verdict::Contradicted);
        assert_eq!(judge(&win, "best a | b"), Verdict::Supported);
        // A difference smaller than the seed spread.
        let tie = vec![vec![0.900, 0.880, 0.910], vec![0.895, 0.905, 0.885], vec![0.5, 0.5, 0.51]];
        assert_eq!(judge(&tie, "a > b"), Verdict::Inconclusive);
        assert_eq!(judge(&tie, "b > a"), Verdict::Inconclusive);
        assert_eq!(judge(&tie, "a >= b"), Verdict::Supported);
        assert_eq!(judge(&tie, "best a"), Verdict::Inconclusive);
        // One run against one run is never a verdict.
        let single = vec![vec![0.9], vec![0.1], vec![0.5]];
        assert_eq!(judge(&single, "a > b"), Verdict::Inconclusive);
        assert_eq!(judge(&single, "a >= b"), Verdict::Inconclusive);
        assert_eq!(combine(&[Verdict::Supported, Verdict::Inconclusive]), Verdict::Inconclusive);
        assert_eq!(combine(&[Verdict::Supported, Verdict::Contradicted]), Verdict::Contradicted);
        assert_eq!(combine(&[Verdict::Supported, Verdict::Supported]), Verdict::Supported);
    }

    #[test]
    fn plateaus_are_read_per_seed() {
        let rising =
            |stop: usize| -> Vec<f64> { (1..=25).map(|e| 0.8 + 0.01 * e.min(stop) as f64).collect() };
        assert_eq!(plateau_epoch(&rising(12)), 12);
        let l = labels();
        let judge = |curves: &[Vec<f64>]| {
            Evidence { labels: &l, values: &[], curves }.judge(&Statement::Plateau(10, 25)).verdict
        };
        assert_eq!(judge(&[rising(12), rising(15), rising(11)]), Verdict::Supported);
        assert_eq!(judge(&[rising(3), rising(4), rising(5)]), Verdict::Contradicted);
        assert_eq!(judge(&[rising(3), rising(14), rising(5)]), Verdict::Inconclusive);
    }

    #[test]
    fn statements_name_unknown_settings() {
        let e = Statement::parse("a > d", &labels()).unwrap_err().to_string();
        assert!(e.contains("`d` is not one of the settings"), "{e}");
        assert!(Statement::parse("a ~ b", &labels()).is_err());
        assert!(Statement::parse("plateau 25..10", &labels()).is_err());
    }
}
