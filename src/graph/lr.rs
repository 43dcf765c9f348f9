//! Learning-rate schedules, as Keras 3 defines them (`keras.optimizers.schedules`). A schedule
//! gives the learning rate of each optimizer step, counted from 0 as Keras counts iterations;
//! the host turns it into the per-step rate table both executors read
//! ([`super::Optimizer::step_rates`]), so nothing about schedules runs on the device.
//! Checked against Keras's own rates: `tests/golden_ops.rs`, `keras-ops-extra.json`.

/// How the learning rate moves from step to step.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The optimizer's learning rate at every step.
    #[default]
    Constant,
    /// `CosineDecay`: after `warmup_steps` of linear warm-up from `initial` to `warmup_target`
    /// (when given), a half cosine from the peak down to `alpha` × peak over `decay_steps`, then
    /// `alpha` × peak.
    Cosine {
        initial: f64,
        decay_steps: u64,
        #[serde(default)]
        alpha: f64,
        #[serde(default)]
        warmup_target: Option<f64>,
        #[serde(default)]
        warmup_steps: u64,
    },
    /// `ExponentialDecay`: `initial` × `decay_rate`^(step / `decay_steps`), the exponent rounded
    /// down when `staircase`.
    Exponential {
        initial: f64,
        decay_steps: u64,
        decay_rate: f64,
        #[serde(default)]
        staircase: bool,
    },
    /// `PiecewiseConstantDecay`: `values[0]` up to and including step `boundaries[0]`,
    /// `values[1]` up to `boundaries[1]`, …, the last value after the last boundary.
    Piecewise { boundaries: Vec<u64>, values: Vec<f64> },
    /// `ReduceLROnPlateau` (a Keras callback, here a schedule): the optimizer's rate, × `factor`
    /// each time the validation loss has not improved on its best by more than `min_delta` for
    /// `patience` epochs, then `cooldown` epochs of rest; never below `min_lr`. A pure function
    /// of the validation losses so far ([`Schedule::plateau_rate`]), so a resumed run agrees.
    Plateau {
        #[serde(default = "plateau_factor")]
        factor: f64,
        #[serde(default = "plateau_patience")]
        patience: usize,
        #[serde(default = "plateau_min_delta")]
        min_delta: f64,
        #[serde(default)]
        cooldown: usize,
        #[serde(default)]
        min_lr: f64,
    },
}

fn plateau_factor() -> f64 {
    0.1
}
fn plateau_patience() -> usize {
    10
}
fn plateau_min_delta() -> f64 {
    1e-4
}

impl Schedule {
    /// The learning rate of step `step` (from 0); `lr` is the optimizer's, used by `Constant`.
    pub fn rate(&self, lr: f64, step: u64) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine { initial, decay_steps, alpha, warmup_target, warmup_steps } => {
                let peak = warmup_target.unwrap_or(*initial);
                if let (Some(target), true) = (warmup_target, step < *warmup_steps) {
                    return initial + (target - initial) * step as f64 / *warmup_steps as f64;
                }
                let done = (step - warmup_steps).min(*decay_steps) as f64 / (*decay_steps).max(1) as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * done).cos());
                peak * ((1.0 - alpha) * cosine + alpha)
            }
            Schedule::Exponential { initial, decay_steps, decay_rate, staircase } => {
                let mut p = step as f64 / (*decay_steps).max(1) as f64;
                if *staircase {
                    p = p.floor();
                }
                initial * decay_rate.powf(p)
            }
            Schedule::Piecewise { boundaries, values } => {
                let i = boundaries.iter().take_while(|&&b| step > b).count();
                values[i.min(values.len() - 1)]
            }
            Schedule::Plateau { .. } => lr,
        }
    }

    /// The learning rate after the epochs whose validation losses are `val_losses`, as Keras's
    /// `ReduceLROnPlateau` (mode `min`) sets it at their ends; `lr` for any other schedule.
    pub fn plateau_rate(&self, lr: f64, val_losses: &[f64]) -> f64 {
        let Schedule::Plateau { factor, patience, min_delta, cooldown, min_lr } = *self else { return lr };
        let (mut lr, mut best, mut wait, mut rest) = (lr, f64::INFINITY, 0, 0);
        for &current in val_losses {
            if rest > 0 {
                rest -= 1;
                wait = 0;
            }
            if current < best - min_delta {
                best = current;
                wait = 0;
            } else if rest == 0 {
                wait += 1;
                if wait >= patience && lr > min_lr as f32 as f64 {
                    lr = (lr * factor).max(min_lr);
                    rest = cooldown;
                    wait = 0;
                }
            }
        }
        lr
    }

    /// A one-line error where the schedule cannot be used.
    pub fn validate(&self) -> anyhow::Result<()> {
        match self {
            Schedule::Constant => {}
            Schedule::Cosine { decay_steps, alpha, .. } => {
                anyhow::ensure!(*decay_steps > 0, "a cosine schedule needs decay_steps > 0");
                anyhow::ensure!((0.0..=1.0).contains(alpha), "a cosine schedule's alpha is between 0 and 1");
            }
            Schedule::Exponential { decay_steps, decay_rate, .. } => {
                anyhow::ensure!(*decay_steps > 0, "an exponential schedule needs decay_steps > 0");
                anyhow::ensure!(*decay_rate > 0.0, "an exponential schedule needs decay_rate > 0");
            }
            Schedule::Piecewise { boundaries, values } => {
                anyhow::ensure!(
                    values.len() == boundaries.len() + 1,
                    "a piecewise schedule has one value more than boundaries ({} values, {} boundaries)",
                    values.len(),
                    boundaries.len()
                );
                anyhow::ensure!(
                    boundaries.windows(2).all(|w| w[0] < w[1]),
                    "a piecewise schedule's boundaries increase"
                );
            }
            Schedule::Plateau { factor, patience, min_lr, .. } => {
                anyhow::ensure!(
                    *factor > 0.0 && *factor < 1.0,
                    "a plateau schedule's factor is between 0 and 1"
                );
                anyhow::ensure!(*patience > 0, "a plateau schedule needs patience ≥ 1");
                anyhow::ensure!(*min_lr >= 0.0, "a plateau schedule's min_lr is ≥ 0");
            }
        }
        Ok(())
    }

    /// The command line's short form, for a run of `total_steps` steps (`steps_per_epoch` an
    /// epoch) whose optimizer's learning rate is `lr`: `constant`; `cosine[:warmup=E][,alpha=A]`
    /// (warm-up from 0 over E epochs, then a half cosine over the rest of the run down to A × lr);
    /// `exponential:rate=R[,every=E][,staircase]` (× R every E epochs, default 1);
    /// `plateau[:factor=F][,patience=P][,min_lr=M][,cooldown=C]` (Keras's ReduceLROnPlateau on the
    /// validation loss; defaults 0.1, 10, 0, 0).
    pub fn parse(text: &str, lr: f64, steps_per_epoch: u64, total_steps: u64) -> anyhow::Result<Schedule> {
        let (kind, args) = text.split_once(':').unwrap_or((text, ""));
        let mut options = std::collections::BTreeMap::new();
        for part in args.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            options.insert(k.trim(), v.trim());
        }
        let number = |key: &str, default: f64| -> anyhow::Result<f64> {
            match options.get(key) {
                None => Ok(default),
                Some(v) => {
                    v.parse().map_err(|_| anyhow::anyhow!("--lr-schedule: `{key}={v}` is not a number"))
                }
            }
        };
        let known: &[&str] = match kind {
            "constant" => &[],
            "cosine" => &["warmup", "alpha"],
            "exponential" => &["rate", "every", "staircase"],
            "plateau" => &["factor", "patience", "min_lr", "cooldown"],
            other => {
                anyhow::bail!(
                    "--lr-schedule: `{other}` is not a schedule (constant, cosine, exponential, plateau)"
                )
            }
        };
        if let Some(k) = options.keys().find(|k| !known.contains(k)) {
            anyhow::bail!("--lr-schedule {kind}: unknown option `{k}` (known: {})", known.join(", "));
        }
        let schedule = match kind {
            "constant" => Schedule::Constant,
            "cosine" => {
                let warmup = (number("warmup", 0.0)? * steps_per_epoch as f64).round() as u64;
                anyhow::ensure!(warmup < total_steps, "--lr-schedule: the warm-up is as long as the run");
                Schedule::Cosine {
                    initial: if warmup > 0 { 0.0 } else { lr },
                    decay_steps: total_steps - warmup,
                    alpha: number("alpha", 0.0)?,
                    warmup_target: (warmup > 0).then_some(lr),
                    warmup_steps: warmup,
                }
            }
            "plateau" => {
                let whole = |key: &str, default: f64| -> anyhow::Result<usize> {
                    let n = number(key, default)?;
                    anyhow::ensure!(n >= 0.0 && n.fract() == 0.0, "--lr-schedule: {key} is a whole number");
                    Ok(n as usize)
                };
                Schedule::Plateau {
                    factor: number("factor", 0.1)?,
                    patience: whole("patience", 10.0)?,
                    min_delta: plateau_min_delta(),
                    cooldown: whole("cooldown", 0.0)?,
                    min_lr: number("min_lr", 0.0)?,
                }
            }
            _ => Schedule::Exponential {
                initial: lr,
                decay_steps: ((number("every", 1.0)? * steps_per_epoch as f64).round() as u64).max(1),
                decay_rate: number("rate", f64::NAN)?,
                staircase: options.contains_key("staircase"),
            },
        };
        if let Schedule::Exponential { decay_rate, .. } = schedule {
            anyhow::ensure!(decay_rate.is_finite(), "--lr-schedule exponential needs rate=R");
        }
        schedule.validate()?;
        Ok(schedule)
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Cosine { decay_steps, alpha, warmup_steps, .. } => {
                write!(f, "cosine over {decay_steps} steps to {alpha}×")?;
                if *warmup_steps > 0 {
                    write!(f, " after {warmup_steps} warm-up steps")?;
                }
                Ok(())
            }
            Schedule::Exponential { decay_steps, decay_rate, staircase, .. } => {
                write!(
                    f,
                    "×{decay_rate} every {decay_steps} steps{}",
                    if *staircase { " (staircase)" } else { "" }
                )
            }
            Schedule::Piecewise { boundaries, values } => write!(f, "piecewise {values:?} at {boundaries:?}"),
            Schedule::Plateau { factor, patience, .. } => {
                write!(f, "×{factor} after {patience} epochs without a lower validation loss")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn the_command_line_forms_span_the_run() {
        let s = Schedule::parse("cosine:warmup=1", 0.1, 100, 1000).unwrap();
        assert_eq!(s.rate(0.1, 0), 0.0);
        assert!((s.rate(0.1, 100) - 0.1).abs() < 1e-12);
        assert!(s.rate(0.1, 999) < 1e-4);
        let e = Schedule::parse("exponential:rate=0.5,every=2,staircase", 0.1, 100, 1000).unwrap();
        assert_eq!((e.rate(0.1, 199), e.rate(0.1, 200)), (0.1, 0.05));
        let p = Schedule::parse("plateau:patience=2,factor=0.5", 0.1, 100, 1000).unwrap();
        assert_eq!(p.rate(0.1, 500), 0.1);
        for bad in [
            "cosine:warmup=10",
            "cosine:beta=1",
            "exponential",
            "linear",
            "cosine:alpha=x",
            "plateau:factor=2",
        ] {
            assert!(Schedule::parse(bad, 0.1, 100, 1000).is_err(), "{bad}");
        }
    }

    /// Keras's ReduceLROnPlateau, followed by hand on a constructed history: patience 2, factor
    /// 0.5, cooldown 1, min_lr 0.02, min_delta 1e-4.
    #[test]
    fn plateau_follows_keras_on_a_constructed_history() {
        let p = Schedule::Plateau { factor: 0.5, patience: 2, min_delta: 1e-4, cooldown: 1, min_lr: 0.02 };
        let losses = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8];
        // Epoch by epoch: best 1.0, 0.9; wait 1, 2 → 0.05 (rest 1); the rest ends and 0.89995 is
        // no better by 1e-4: wait 1; 0.7 best; wait 1, 2 → 0.025; rest, wait 1, 2 → 0.02 (the
        // floor); rest, wait 1, 2: at min_lr already, it stays.
        let want = [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02];
        for (n, w) in want.iter().enumerate() {
            let got = p.plateau_rate(0.1, &losses[..n]);
            assert!((got - w).abs() < 1e-12, "after {n} epochs: {got} ≠ {w}");
        }
        assert_eq!(Schedule::Constant.plateau_rate(0.1, &losses), 0.1);
    }
}
