//! Knobs: the things a user varies in a study, in the words they think in, each mapped onto
//! the model spec and the training settings here and nowhere else.
//!
//! | knob | value | what it changes |
//! |---|---|---|
//! | `model` | `mlp`, `cnn`, `strong` | the whole model and its training, replaced by the preset's |
//! | `activation` | `relu`, `sigmoid`, `tanh`, `linear` | every Dense and Conv2D layer but the softmax output |
//! | `conv_activation` | as `activation` | every Conv2D layer |
//! | `dense_activation` | as `activation` | every Dense layer but the softmax output |
//! | `hidden` | widths `"350,80"`, or `"none"` | the Dense layers between the last Flatten and the output: their number and units (a new layer copies the activation, L2 and the Dropout after it from the last one before it) |
//! | `lr` | number | the optimizer's learning rate |
//! | `optimizer` | `sgd`, `adam` | the optimizer, with Keras's defaults (the base's own settings when it is the same kind) |
//! | `momentum` | number in [0, 1) | SGD's momentum (the optimizer must be SGD) |
//! | `l2` | number | the L2 factor of every Dense kernel |
//! | `dropout` | `0` (none), a rate for every Dropout layer, or rates in order `"0.1,0.2"` | the Dropout layers' rates; 0 removes them |
//! | `batchnorm` | `true` / `false` | false removes every BatchNormalization layer; true adds one after the first Flatten when there is none |
//! | `filters` | `"32,64"` | the Conv2D layers' filters, in order |
//! | `padding` | `"same,valid"`, or one for all | the Conv2D layers' padding, in order |
//! | `pooling` | `max`, `avg` | the kind of every pooling layer |
//! | `epochs` | number | passes over the training set |
//! | `batch_size` | number | images per step |
//! | `augment` | `"shift=2,flip,erase=0.25"`, `"none"` | the training images' augmentation (`train --augment`) |
//! | `schedule` | `"cosine:warmup=1"`, `"constant"`, … | the learning-rate schedule, in `train --lr-schedule`'s form |

use crate::graph::model::{Activation, Layer};
use crate::graph::{ModelSpec, Optimizer, Padding};

/// The knob names, in the order they are applied.
pub const KNOBS: &[&str] = &[
    "model",
    "optimizer",
    "momentum",
    "lr",
    "activation",
    "conv_activation",
    "dense_activation",
    "hidden",
    "l2",
    "dropout",
    "batchnorm",
    "filters",
    "padding",
    "pooling",
    "epochs",
    "batch_size",
    "augment",
    "schedule",
];

/// A study's knobs in the order they are applied: [`KNOBS`]' order, so that `model` and
/// `optimizer` (which replace what the others adjust) come first; unknown names last, where
/// [`apply`] names them.
pub fn in_order<V>(vary: &std::collections::BTreeMap<String, V>) -> Vec<(&String, &V)> {
    let mut v: Vec<(&String, &V)> = vary.iter().collect();
    v.sort_by_key(|(k, _)| KNOBS.iter().position(|n| n == k).unwrap_or(usize::MAX));
    v
}

/// A knob's value as the study file wrote it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    /// The value as a label: numbers as written (1e-7 stays 1e-7).
    pub fn label(&self) -> String {
        match self {
            Value::Bool(b) => if *b { "on" } else { "off" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => number_label(*f),
            Value::Text(s) => s.clone(),
        }
    }

    fn number(&self) -> anyhow::Result<f64> {
        match self {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Text(s) => s.trim().parse().map_err(|_| anyhow::anyhow!("`{s}` is not a number")),
            Value::Bool(_) => anyhow::bail!("expected a number, not a boolean"),
        }
    }

    fn count(&self) -> anyhow::Result<usize> {
        let n = self.number()?;
        anyhow::ensure!(n >= 1.0 && n.fract() == 0.0, "`{}` is not a whole number ≥ 1", self.label());
        Ok(n as usize)
    }

    /// A comma-separated list (`"350,80"`) or a single value.
    fn list(&self) -> Vec<String> {
        let text = self.label();
        text.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    }
}

/// 1e-7 → "1e-7", 0.1 → "0.1", 3.0 → "3".
pub fn number_label(f: f64) -> String {
    if f != 0.0 && f.abs() < 1e-3 {
        format!("{f:e}")
    } else {
        format!("{f}")
    }
}

fn parse_activation(s: &str) -> anyhow::Result<Activation> {
    Ok(match s {
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "linear" => Activation::Linear,
        _ => anyhow::bail!("`{s}` is not an activation (relu, sigmoid, tanh, linear)"),
    })
}

fn is_pool(l: &Layer) -> bool {
    matches!(l, Layer::MaxPool2d { .. } | Layer::AvgPool2d { .. })
}

/// Sets one knob of `spec` (its layers and its training section) to `value`.
pub fn apply(spec: &mut ModelSpec, knob: &str, value: &Value) -> anyhow::Result<()> {
    let last = spec.layers.len().saturating_sub(1);
    match knob {
        "model" => {
            let name = value.label();
            anyhow::ensure!(
                ["mlp", "cnn", "strong"].contains(&name.as_str()),
                "`{name}` is not a preset (mlp, cnn, strong)"
            );
            *spec = ModelSpec::load(&name)?;
        }
        "activation" | "conv_activation" | "dense_activation" => {
            let a = parse_activation(&value.label())?;
            let (conv, dense) = (knob != "dense_activation", knob != "conv_activation");
            for (i, layer) in spec.layers.iter_mut().enumerate() {
                match layer {
                    Layer::Dense { activation, .. } if dense && i != last => *activation = a,
                    Layer::Conv2d { activation, .. } if conv => *activation = a,
                    _ => {}
                }
            }
        }
        "momentum" => {
            let m = value.number()?;
            anyhow::ensure!((0.0..1.0).contains(&m), "a momentum is a number in [0, 1)");
            match &mut spec.training.optimizer {
                Optimizer::Sgd { momentum, .. } => *momentum = m as f32,
                // No momentum is what Adam has anyway (a zipped study gives every setting one).
                _ if m == 0.0 => {}
                other => anyhow::bail!("momentum is SGD's; the optimizer here is {other}"),
            }
        }
        "hidden" => {
            let label = value.label();
            let widths: Vec<usize> = if label.trim() == "none" {
                vec![]
            } else {
                value
                    .list()
                    .iter()
                    .map(|w| w.parse().ok().filter(|&w| w > 0))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        anyhow::anyhow!("`{label}` is not a list of widths like \"350,80\" or \"none\"")
                    })?
            };
            set_hidden(spec, &widths)?;
        }
        "lr" => {
            let lr = value.number()?;
            anyhow::ensure!(lr.is_finite() && lr >= 0.0, "a learning rate is a number ≥ 0");
            match &mut spec.training.optimizer {
                Optimizer::Sgd { lr: l, .. } | Optimizer::Adam { lr: l, .. } => *l = lr as f32,
            }
        }
        "optimizer" => spec.training.optimizer = spec.training.optimizer.of_kind(&value.label())?,
        "l2" => {
            let c = value.number()?;
            anyhow::ensure!(c.is_finite() && c >= 0.0, "an L2 factor is a number ≥ 0");
            for layer in &mut spec.layers {
                if let Layer::Dense { l2, .. } = layer {
                    *l2 = c as f32;
                }
            }
        }
        "dropout" => {
            let rates: Vec<f32> = value
                .list()
                .iter()
                .map(|r| r.parse::<f32>().ok().filter(|r| (0.0..1.0).contains(r)))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    anyhow::anyhow!("`{}` is not a rate in [0, 1) or a list of them", value.label())
                })?;
            let count = spec.layers.iter().filter(|l| matches!(l, Layer::Dropout { .. })).count();
            anyhow::ensure!(count > 0, "the base model has no Dropout layer");
            anyhow::ensure!(
                rates.len() == 1 || rates.len() == count,
                "{} rates for {count} Dropout layers",
                rates.len()
            );
            let mut i = 0;
            for layer in &mut spec.layers {
                if let Layer::Dropout { rate } = layer {
                    *rate = rates[i.min(rates.len() - 1)];
                    i += 1;
                }
            }
            spec.layers.retain(|l| !matches!(l, Layer::Dropout { rate } if *rate == 0.0));
        }
        "augment" => spec.training.augment = crate::data::Augment::parse(&value.label())?,
        "schedule" => {
            let text = value.label();
            // Checked here, resolved against each trial's epochs when it runs.
            crate::graph::lr::Schedule::parse(&text, 0.001, 100, 1000)?;
            spec.training.lr_schedule = Some(text);
        }
        "batchnorm" => {
            let on = match value {
                Value::Bool(b) => *b,
                other => match other.label().as_str() {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    s => anyhow::bail!("`{s}` is not on/off"),
                },
            };
            let has = spec.layers.iter().any(|l| matches!(l, Layer::BatchNorm { .. }));
            if !on {
                spec.layers.retain(|l| !matches!(l, Layer::BatchNorm { .. }));
            } else if !has {
                let at = spec.layers.iter().position(|l| matches!(l, Layer::Flatten)).map_or(0, |i| i + 1);
                spec.layers.insert(at, Layer::BatchNorm { momentum: 0.99, epsilon: 1e-3 });
            }
        }
        "filters" => {
            let filters: Vec<usize> = value
                .list()
                .iter()
                .map(|f| f.parse().ok().filter(|&f| f > 0))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    anyhow::anyhow!("`{}` is not a list of filter counts like \"32,64\"", value.label())
                })?;
            let mut convs: Vec<&mut usize> = spec
                .layers
                .iter_mut()
                .filter_map(|l| match l {
                    Layer::Conv2d { filters, .. } => Some(filters),
                    _ => None,
                })
                .collect();
            anyhow::ensure!(
                convs.len() == filters.len(),
                "{} filter counts for {} Conv2D layers",
                filters.len(),
                convs.len()
            );
            for (c, f) in convs.iter_mut().zip(filters) {
                **c = f;
            }
        }
        "padding" => {
            let list: Vec<Padding> = value
                .list()
                .iter()
                .map(|p| match p.as_str() {
                    "same" => Ok(Padding::Same),
                    "valid" => Ok(Padding::Valid),
                    other => Err(anyhow::anyhow!("`{other}` is not a padding (same, valid)")),
                })
                .collect::<anyhow::Result<_>>()?;
            let mut convs: Vec<&mut Padding> = spec
                .layers
                .iter_mut()
                .filter_map(|l| match l {
                    Layer::Conv2d { padding, .. } => Some(padding),
                    _ => None,
                })
                .collect();
            anyhow::ensure!(
                list.len() == 1 || list.len() == convs.len(),
                "{} paddings for {} Conv2D layers",
                list.len(),
                convs.len()
            );
            for (i, p) in convs.iter_mut().enumerate() {
                **p = list[i.min(list.len() - 1)];
            }
        }
        "pooling" => {
            let kind = value.label();
            anyhow::ensure!(kind == "max" || kind == "avg", "`{kind}` is not a pooling (max, avg)");
            anyhow::ensure!(spec.layers.iter().any(is_pool), "the base model has no pooling layer");
            for layer in &mut spec.layers {
                if let Layer::MaxPool2d { pool, strides, padding }
                | Layer::AvgPool2d { pool, strides, padding } = *layer
                {
                    *layer = if kind == "max" {
                        Layer::MaxPool2d { pool, strides, padding }
                    } else {
                        Layer::AvgPool2d { pool, strides, padding }
                    };
                }
            }
        }
        "epochs" => spec.training.epochs = value.count()?,
        "batch_size" => spec.training.batch_size = value.count()?,
        other => anyhow::bail!("`{other}` is not a knob ({})", KNOBS.join(", ")),
    }
    Ok(())
}

/// Replaces the hidden Dense blocks (a Dense and the non-Dense layers after it) between the
/// last Flatten and the output layer by one block per width.
fn set_hidden(spec: &mut ModelSpec, widths: &[usize]) -> anyhow::Result<()> {
    let out = spec.layers.len().saturating_sub(1);
    anyhow::ensure!(
        matches!(spec.layers.get(out), Some(Layer::Dense { .. })),
        "the base model does not end with a Dense layer"
    );
    let head = spec.layers.iter().rposition(|l| matches!(l, Layer::Flatten)).map_or(0, |i| i + 1);
    let first = (head..out).find(|&i| matches!(spec.layers[i], Layer::Dense { .. })).unwrap_or(out);
    // The blocks as they are: each a Dense and what follows it up to the next Dense.
    let mut blocks: Vec<Vec<Layer>> = Vec::new();
    for layer in &spec.layers[first..out] {
        match layer {
            Layer::Dense { .. } => blocks.push(vec![layer.clone()]),
            other => blocks.last_mut().expect("starts with a Dense").push(other.clone()),
        }
    }
    let template = blocks.last().cloned().unwrap_or_else(|| {
        let l2 = match spec.layers[out] {
            Layer::Dense { l2, .. } => l2,
            _ => 0.0,
        };
        vec![Layer::Dense { units: 1, activation: Activation::Relu, l2 }]
    });
    let mut new = Vec::new();
    for (i, &w) in widths.iter().enumerate() {
        let mut block = blocks.get(i).cloned().unwrap_or_else(|| template.clone());
        if let Layer::Dense { units, .. } = &mut block[0] {
            *units = w;
        }
        new.extend(block);
    }
    spec.layers.splice(first..out, new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::{cnn, mlp};

    fn units(spec: &ModelSpec) -> Vec<usize> {
        spec.layers
            .iter()
            .filter_map(|l| match l {
                Layer::Dense { units, .. } => Some(*units),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn hidden_changes_depth_and_widths_and_keeps_each_blocks_dropout() {
        let mut s = mlp();
        apply(&mut s, "hidden", &Value::Text("350,200,80".into())).unwrap();
        assert_eq!(units(&s), [350, 200, 80, 10]);
        let rates: Vec<f32> = s
            .layers
            .iter()
            .filter_map(|l| if let Layer::Dropout { rate } = l { Some(*rate) } else { None })
            .collect();
        assert_eq!(rates, [0.1, 0.2, 0.2]);
        s.resolve().unwrap();
        apply(&mut s, "hidden", &Value::Int(128)).unwrap();
        assert_eq!(units(&s), [128, 10]);
        let mut c = cnn();
        apply(&mut c, "hidden", &Value::Text("none".into())).unwrap();
        assert_eq!(units(&c), [10]);
        assert!(matches!(c.layers[c.layers.len() - 2], Layer::Flatten));
        apply(&mut c, "hidden", &Value::Text("256,84".into())).unwrap();
        assert_eq!(units(&c), [256, 84, 10]);
    }

    #[test]
    fn knobs_change_what_they_name() {
        let mut s = mlp();
        apply(&mut s, "activation", &Value::Text("tanh".into())).unwrap();
        assert!(matches!(s.layers[2], Layer::Dense { activation: Activation::Tanh, .. }));
        assert!(matches!(s.layers.last(), Some(Layer::Dense { activation: Activation::Softmax, .. })));
        apply(&mut s, "dropout", &Value::Int(0)).unwrap();
        assert!(!s.layers.iter().any(|l| matches!(l, Layer::Dropout { .. })));
        apply(&mut s, "batchnorm", &Value::Bool(false)).unwrap();
        assert!(!s.layers.iter().any(|l| matches!(l, Layer::BatchNorm { .. })));
        apply(&mut s, "batchnorm", &Value::Bool(true)).unwrap();
        assert!(matches!(s.layers[1], Layer::BatchNorm { .. }));
        apply(&mut s, "lr", &Value::Float(0.5)).unwrap();
        assert_eq!(s.training.optimizer.lr(), 0.5);
        let mut c = cnn();
        apply(&mut c, "filters", &Value::Text("32,64".into())).unwrap();
        apply(&mut c, "padding", &Value::Text("valid".into())).unwrap();
        apply(&mut c, "pooling", &Value::Text("avg".into())).unwrap();
        apply(&mut c, "optimizer", &Value::Text("sgd".into())).unwrap();
        assert!(matches!(c.layers[0], Layer::Conv2d { filters: 32, padding: Padding::Valid, .. }));
        assert!(matches!(c.layers[2], Layer::Conv2d { filters: 64, .. }));
        assert!(matches!(c.layers[1], Layer::AvgPool2d { .. }));
        assert_eq!(c.training.optimizer, Optimizer::Sgd { lr: 0.01, momentum: 0.0, nesterov: false });
        apply(&mut c, "momentum", &Value::Float(0.9)).unwrap();
        assert_eq!(c.training.optimizer, Optimizer::Sgd { lr: 0.01, momentum: 0.9, nesterov: false });
        c.resolve().unwrap();
        let mut c = cnn();
        apply(&mut c, "conv_activation", &Value::Text("tanh".into())).unwrap();
        assert!(matches!(c.layers[0], Layer::Conv2d { activation: Activation::Tanh, .. }));
        assert!(matches!(c.layers[6], Layer::Dense { activation: Activation::Relu, .. }));
        apply(&mut c, "dense_activation", &Value::Text("sigmoid".into())).unwrap();
        assert!(matches!(c.layers[2], Layer::Conv2d { activation: Activation::Tanh, .. }));
        assert!(matches!(c.layers[7], Layer::Dense { activation: Activation::Sigmoid, .. }));
        assert!(matches!(c.layers[8], Layer::Dense { activation: Activation::Softmax, .. }));
        apply(&mut c, "model", &Value::Text("mlp".into())).unwrap();
        assert_eq!(c, mlp());
    }

    #[test]
    fn bad_values_say_why() {
        let e = |k: &str, v: Value| apply(&mut cnn(), k, &v).unwrap_err().to_string();
        assert!(e("activation", Value::Text("gelu".into())).contains("not an activation"));
        assert!(e("filters", Value::Text("32".into())).contains("1 filter counts for 2"));
        assert!(e("dropout", Value::Float(1.5)).contains("not a rate"));
        assert!(e("depth", Value::Int(2)).contains("not a knob"));
        assert!(e("momentum", Value::Float(0.9)).contains("SGD's"));
        assert!(e("momentum", Value::Float(1.0)).contains("[0, 1)"));
        assert!(e("model", Value::Text("vgg".into())).contains("not a preset"));
        assert_eq!(number_label(1e-7), "1e-7");
        assert_eq!(number_label(0.1), "0.1");
    }
}
