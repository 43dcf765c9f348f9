//! The statistics a verdict rests on, and nothing else: Student's t, a two-way additive model
//! (settings × seed blocks) fitted by least squares, Welch–Satterthwaite and one-sample
//! intervals, binomial tails, Holm's and Benjamini–Hochberg's adjustments, and the seeds a
//! contrast would need. Plain f64 code with its own tests; [`super::verdict`] uses it.

/// An estimated quantity with its standard error and degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub se: f64,
    /// Degrees of freedom of the t reference (∞ allowed).
    pub df: f64,
    pub method: Method,
}

/// How an estimate was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A contrast in the two-way additive model: settings × seed blocks, the error pooled over
    /// every setting of the family.
    Blocked,
    /// Welch–Satterthwaite: each setting's own variance, no blocks.
    Welch,
    /// A one-sample t over per-seed values (differences within a seed, or a level against a
    /// constant).
    PerSeed,
    /// Counts of runs (binomial).
    Counts,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Method::Blocked => "seed-blocked",
            Method::Welch => "Welch",
            Method::PerSeed => "per-seed t",
            Method::Counts => "binomial",
        })
    }
}

impl Estimate {
    /// The two-sided `1 − alpha` confidence interval.
    pub fn ci(&self, alpha: f64) -> (f64, f64) {
        let h = t_quantile(1.0 - alpha / 2.0, self.df) * self.se;
        (self.value - h, self.value + h)
    }

    /// One-sided p-value against H0: the true value ≤ `at` (small when the value is surely above).
    pub fn p_above(&self, at: f64) -> f64 {
        if self.se == 0.0 {
            return if self.value > at { 0.0 } else { 1.0 };
        }
        1.0 - t_cdf((self.value - at) / self.se, self.df)
    }

    /// One-sided p-value against H0: the true value ≥ `at`.
    pub fn p_below(&self, at: f64) -> f64 {
        if self.se == 0.0 {
            return if self.value < at { 0.0 } else { 1.0 };
        }
        t_cdf((self.value - at) / self.se, self.df)
    }

    /// Two-sided p-value against H0: the true value is 0.
    pub fn p_zero(&self) -> f64 {
        (2.0 * self.p_above(0.0).min(self.p_below(0.0))).min(1.0)
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

/// The mean of `x` with its one-sample standard error (None under two values).
pub fn one_sample(x: &[f64]) -> Option<Estimate> {
    if x.len() < 2 {
        return None;
    }
    let (m, s) = mean_sd(x);
    Some(Estimate {
        value: m,
        se: s / (x.len() as f64).sqrt(),
        df: x.len() as f64 - 1.0,
        method: Method::PerSeed,
    })
}

/// Σ c_i · mean(groups_i) with Welch–Satterthwaite's standard error and degrees of freedom
/// (None when a group with a nonzero weight has under two values).
pub fn welch(groups: &[Vec<f64>], c: &[f64]) -> Option<Estimate> {
    let (mut value, mut var, mut denom) = (0.0, 0.0, 0.0);
    for (g, &w) in groups.iter().zip(c) {
        if w == 0.0 {
            continue;
        }
        if g.len() < 2 {
            return None;
        }
        let (m, s) = mean_sd(g);
        let v = w * w * s * s / g.len() as f64;
        value += w * m;
        var += v;
        denom += v * v / (g.len() as f64 - 1.0);
    }
    let df = if denom > 0.0 { var * var / denom } else { f64::INFINITY };
    Some(Estimate { value, se: var.sqrt(), df, method: Method::Welch })
}

/// The two-way additive model y = a[setting] + b[seed] + e, fitted by least squares over
/// whatever cells are present (missing and failed runs are simply absent), with the error
/// variance pooled over every cell.
#[derive(Debug, Clone)]
pub struct Blocked {
    /// (X'X)⁻¹ restricted to the setting effects.
    cov: Vec<Vec<f64>>,
    effects: Vec<f64>,
    /// Residual variance and its degrees of freedom.
    pub sigma2: f64,
    pub df: f64,
}

impl Blocked {
    /// Fits `obs` = (setting index < `settings`, seed, value). None when the settings are not
    /// connected through shared seeds (the model is then not identified), a setting has no
    /// value, or fewer than 2 residual degrees of freedom remain.
    pub fn fit(obs: &[(usize, u64, f64)], settings: usize) -> Option<Blocked> {
        let mut seeds: Vec<u64> = obs.iter().map(|o| o.1).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let p = settings + seeds.len().saturating_sub(1);
        let n = obs.len();
        if settings == 0 || n < p + 2 {
            return None;
        }
        // Columns: one per setting, then one per seed but the first.
        let cols = |o: &(usize, u64, f64)| -> Vec<usize> {
            let mut c = vec![o.0];
            let k = seeds.binary_search(&o.1).expect("collected above");
            if k > 0 {
                c.push(settings + k - 1);
            }
            c
        };
        let mut xtx = vec![vec![0.0; p]; p];
        let mut xty = vec![0.0; p];
        for o in obs {
            let c = cols(o);
            for &i in &c {
                xty[i] += o.2;
                for &j in &c {
                    xtx[i][j] += 1.0;
                }
            }
        }
        let inv = invert(&xtx)?;
        let beta: Vec<f64> = (0..p).map(|i| (0..p).map(|j| inv[i][j] * xty[j]).sum()).collect();
        let rss: f64 = obs
            .iter()
            .map(|o| {
                let fit: f64 = cols(o).iter().map(|&i| beta[i]).sum();
                (o.2 - fit).powi(2)
            })
            .sum();
        let df = (n - p) as f64;
        Some(Blocked {
            cov: inv[..settings].iter().map(|r| r[..settings].to_vec()).collect(),
            effects: beta[..settings].to_vec(),
            sigma2: rss / df,
            df,
        })
    }

    /// Σ c_i · a_i for weights `c` over the settings that sum to 0 (a within-seed comparison).
    pub fn contrast(&self, c: &[f64]) -> Estimate {
        let value = c.iter().zip(&self.effects).map(|(w, a)| w * a).sum();
        let mut q = 0.0;
        for (i, wi) in c.iter().enumerate() {
            for (j, wj) in c.iter().enumerate() {
                q += wi * wj * self.cov[i][j];
            }
        }
        Estimate { value, se: (self.sigma2 * q.max(0.0)).sqrt(), df: self.df, method: Method::Blocked }
    }
}

/// The inverse of a symmetric positive definite matrix by Gauss–Jordan with partial pivoting;
/// None when it is singular.
fn invert(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = r.clone();
            row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))?;
        if m[pivot][col].abs() < 1e-9 * scale {
            return None;
        }
        m.swap(col, pivot);
        let d = m[col][col];
        m[col].iter_mut().for_each(|v| *v /= d);
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            let f = row[col];
            if r != col && f != 0.0 {
                row.iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    Some(m.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// Holm's step-down adjustment of `p` (same order back).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; k];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((k - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg's adjusted p-values (q-values) of `p` (same order back).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut out = vec![0.0; k];
    let mut running = 1.0f64;
    for (i_desc, &i) in order.iter().enumerate() {
        let rank = k - i_desc; // 1-based rank in ascending order
        running = running.min(p[i] * k as f64 / rank as f64).min(1.0);
        out[i] = running;
    }
    out
}

/// P(X ≥ k) for X ~ Binomial(n, q).
pub fn binomial_upper(k: usize, n: usize, q: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    // P(X ≥ k) = I_q(k, n − k + 1).
    incomplete_beta(k as f64, (n - k + 1) as f64, q)
}

/// Seeds per setting a contrast with squared weight norm `c2` (Σ c_i² for a balanced design)
/// needs for its `1 − alpha` interval's half width to fall under `gap`, at noise `sigma`, when
/// each seed adds `df_per_seed` degrees of freedom. None when no count up to 100,000 would.
pub fn seeds_for(sigma: f64, c2: f64, gap: f64, alpha: f64, df_per_seed: f64) -> Option<usize> {
    if !(gap > 0.0 && sigma.is_finite() && c2 > 0.0) {
        return None;
    }
    let half = |n: usize| {
        t_quantile(1.0 - alpha / 2.0, (df_per_seed * (n as f64 - 1.0)).max(1.0))
            * sigma
            * (c2 / n as f64).sqrt()
    };
    // The half width falls with n: double to bracket, then bisect.
    let (mut lo, mut hi) = (1usize, 2usize);
    while half(hi) > gap {
        lo = hi;
        hi *= 2;
        if hi > 100_000 {
            return None;
        }
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if half(mid) > gap {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// Student's t cumulative distribution function.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_cdf(t);
    }
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `q` quantile of Student's t (bisection on [`t_cdf`]).
pub fn t_quantile(q: f64, df: f64) -> f64 {
    if q == 0.5 {
        return 0.0;
    }
    let (mut lo, mut hi) = (-1e6f64, 1e6f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal cumulative distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_distribution_matches_known_values() {
        // Student's t with 1 df is Cauchy: P(T < 1) = 3/4.
        assert!((t_cdf(1.0, 1.0) - 0.75).abs() < 1e-12);
        // Tables: t_{0.975, 4} = 2.776445, t_{0.975, 10} = 2.228139, z_{0.975} = 1.959964.
        assert!((t_quantile(0.975, 4.0) - 2.776_445).abs() < 1e-5);
        assert!((t_quantile(0.975, 10.0) - 2.228_139).abs() < 1e-5);
        assert!((t_quantile(0.975, f64::INFINITY) - 1.959_964).abs() < 1e-5);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // By hand: means 2.5 and 6, variances 5/3 and 10, so t = −3.5/√(5/12 + 2) = −2.25144 and
        // df = (29/12)² / ((5/12)²/3 + 2²/4) = 5.52079; p = 0.0691336 by integrating Student's
        // density numerically (Simpson, 200,000 intervals).
        let e = welch(&[vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 4.0, 6.0, 8.0, 10.0]], &[1.0, -1.0]).unwrap();
        assert!((e.value / e.se + 2.25144).abs() < 1e-5, "{e:?}");
        assert!((e.df - 5.52079).abs() < 1e-5, "{e:?}");
        assert!((e.p_zero() - 0.0691336).abs() < 1e-6, "{e:?}");
    }

    #[test]
    fn the_blocked_model_removes_seed_effects_and_pools_the_error() {
        // Three settings, four seeds; seed effects large, setting effects 0, +1, +3, noise tiny:
        // the contrast recovers +1 with a small standard error that Welch cannot reach.
        let seed = [0.0, 5.0, -3.0, 8.0];
        let noise = [[0.01, -0.02, 0.0, 0.01], [-0.01, 0.0, 0.02, -0.01], [0.0, 0.01, -0.01, 0.0]];
        let eff = [0.0, 1.0, 3.0];
        let mut obs = vec![];
        for s in 0..3 {
            for k in 0..4 {
                obs.push((s, k as u64 + 1, eff[s] + seed[k] + noise[s][k]));
            }
        }
        let fit = Blocked::fit(&obs, 3).unwrap();
        assert_eq!(fit.df, 6.0);
        let e = fit.contrast(&[-1.0, 1.0, 0.0]);
        assert!((e.value - 1.0).abs() < 0.03, "{e:?}");
        assert!(e.se < 0.02, "{e:?}");
        let groups: Vec<Vec<f64>> =
            (0..3).map(|s| obs.iter().filter(|o| o.0 == s).map(|o| o.2).collect()).collect();
        let w = welch(&groups, &[-1.0, 1.0, 0.0]).unwrap();
        assert!(w.se > 2.0, "{w:?}");
        // Balanced and complete: the contrast equals the difference of means, and its variance
        // σ²·Σc²/n with σ² the two-way residual mean square.
        let means: Vec<f64> = groups.iter().map(|g| mean_sd(g).0).collect();
        assert!((e.value - (means[1] - means[0])).abs() < 1e-12);
        assert!((e.se - (fit.sigma2 * 2.0 / 4.0).sqrt()).abs() < 1e-12);
        // A missing cell is fine; a setting that shares no seed with the others is not identified.
        obs.remove(5);
        assert!(Blocked::fit(&obs, 3).is_some());
        let apart = vec![(0, 1, 1.0), (0, 2, 2.0), (1, 3, 1.0), (1, 4, 3.0), (0, 5, 1.0), (1, 6, 2.0)];
        assert!(Blocked::fit(&apart, 2).is_none());
    }

    #[test]
    fn holm_and_benjamini_hochberg_adjust_as_published() {
        // Holm: sorted p 0.01, 0.02, 0.03, 0.04 → 0.04, 0.06, 0.06, 0.06.
        let h = holm(&[0.03, 0.01, 0.04, 0.02]);
        for (a, b) in h.iter().zip([0.06, 0.04, 0.06, 0.06]) {
            assert!((a - b).abs() < 1e-12, "{h:?}");
        }
        // BH: sorted 0.01, 0.02, 0.03, 0.04 → 0.04 each.
        let q = benjamini_hochberg(&[0.03, 0.01, 0.04, 0.02]);
        assert!(q.iter().all(|v| (v - 0.04).abs() < 1e-12), "{q:?}");
        let q = benjamini_hochberg(&[0.001, 0.5]);
        assert!((q[0] - 0.002).abs() < 1e-12 && (q[1] - 0.5).abs() < 1e-12, "{q:?}");
    }

    #[test]
    fn binomial_tails_and_seed_counts() {
        assert!((binomial_upper(5, 5, 0.5) - 1.0 / 32.0).abs() < 1e-12);
        assert!((binomial_upper(3, 4, 0.5) - 5.0 / 16.0).abs() < 1e-12);
        assert_eq!(binomial_upper(0, 4, 0.5), 1.0);
        // A difference of two means (Σc² = 2) of noise 1 to a half width of 1 at 95%, n − 1
        // degrees of freedom: n = 10 gives 2.262·√0.2 = 1.012, n = 11 gives 2.228·√(2/11) = 0.950.
        assert_eq!(seeds_for(1.0, 2.0, 1.0, 0.05, 1.0), Some(11));
        assert_eq!(seeds_for(1.0, 2.0, 0.0, 0.05, 1.0), None);
    }
}
