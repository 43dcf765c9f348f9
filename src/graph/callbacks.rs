//! Keras's `EarlyStopping` and the best-epoch rule of `ModelCheckpoint(save_best_only=True)`,
//! as pure functions of the monitored values of the epochs so far, so that a resumed run
//! decides as an uninterrupted one would. The training loop (src/report/run.rs `fit`) applies
//! them.

use serde::{Deserialize, Serialize};

/// The quantity a callback watches at each epoch's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Lower is better (Keras's default).
    #[default]
    ValLoss,
    /// Higher is better.
    ValAccuracy,
}

impl Monitor {
    /// The watched one of an epoch's validation loss and accuracy.
    pub fn pick(self, val_loss: f64, val_accuracy: f64) -> f64 {
        match self {
            Monitor::ValLoss => val_loss,
            Monitor::ValAccuracy => val_accuracy,
        }
    }

    /// `val_loss` or `val_accuracy`.
    pub fn parse(text: &str) -> anyhow::Result<Monitor> {
        match text {
            "val_loss" => Ok(Monitor::ValLoss),
            "val_accuracy" => Ok(Monitor::ValAccuracy),
            other => anyhow::bail!("`{other}` is not a monitor (val_loss, val_accuracy)"),
        }
    }

    /// Whether `current` improves on `best` by more than `min_delta`.
    fn improves(self, current: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Monitor::ValLoss => current < best - min_delta,
            Monitor::ValAccuracy => current > best + min_delta,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }
}

/// Keras's `EarlyStopping`: stop once `patience` epochs in a row have not improved on the best
/// by more than `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// What is watched (default: the validation loss).
    #[serde(default)]
    pub monitor: Monitor,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The smallest change that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f64,
    /// On stopping, go back to the best epoch's weights (default: yes; Keras's default is no).
    #[serde(default = "yes")]
    pub restore_best: bool,
}

fn yes() -> bool {
    true
}

/// The epoch (1-based) whose value, one per epoch so far, was the best, improvements of no more
/// than `min_delta` not counting: Keras's rule, the first of equals kept.
pub fn best_epoch(values: &[f64], monitor: Monitor, min_delta: f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        if best.is_none_or(|(_, b)| monitor.improves(v, b, min_delta)) {
            best = Some((i + 1, v));
        }
    }
    best.map(|(e, _)| e)
}

impl EarlyStopping {
    /// Whether training stops after the epochs whose monitored values are `values`: the last
    /// `patience` of them did not improve on the best before them.
    pub fn should_stop(&self, values: &[f64]) -> bool {
        best_epoch(values, self.monitor, self.min_delta)
            .is_some_and(|best| values.len() - best >= self.patience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a constructed history: the best loss is epoch 3's; patience 2 stops after epoch 5,
    /// not before; a min_delta larger than epoch 3's gain moves the best back to epoch 2.
    #[test]
    fn early_stopping_stops_at_the_right_epoch() {
        let h = [0.9, 0.7, 0.69, 0.71, 0.70, 0.5];
        let a = [0.6, 0.7, 0.71, 0.75, 0.74, 0.8];
        let es = EarlyStopping { monitor: Monitor::ValLoss, patience: 2, min_delta: 0.0, restore_best: true };
        let stops: Vec<bool> = (1..=6).map(|n| es.should_stop(&h[..n])).collect();
        assert_eq!(stops, [false, false, false, false, true, false]);
        assert_eq!(best_epoch(&h[..5], Monitor::ValLoss, 0.0), Some(3));
        assert_eq!(best_epoch(&h[..5], Monitor::ValLoss, 0.05), Some(2));
        let wide = EarlyStopping { min_delta: 0.05, ..es };
        assert!(wide.should_stop(&h[..4]));
        // Accuracy: best at epoch 4; patience 1 stops after epoch 5.
        let acc = EarlyStopping { monitor: Monitor::ValAccuracy, patience: 1, ..es };
        assert_eq!(best_epoch(&a[..5], Monitor::ValAccuracy, 0.0), Some(4));
        assert_eq!(
            (1..=5).map(|n| acc.should_stop(&a[..n])).collect::<Vec<_>>(),
            [false, false, false, false, true]
        );
        assert!(!es.should_stop(&[]));
    }
}
