//! Models as Keras writes them: a Sequential list of layers, from a preset or a TOML/JSON file,
//! with shapes inferred layer by layer and weights initialized as Keras does.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::callbacks::{EarlyStopping, Monitor};
use super::ops::{Act, Optimizer, Padding, Window};
use crate::data::{Augment, CLASSES, SIDE};
use crate::rng::Rng;

/// A layer's activation. Softmax is allowed on the last layer only, where it is fused with the
/// cross-entropy loss (the layer's output before it is the logits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

impl Activation {
    /// The element-wise part (softmax's logits are linear).
    pub fn act(self) -> Act {
        match self {
            Activation::Linear | Activation::Softmax => Act::Linear,
            Activation::Relu => Act::Relu,
            Activation::Sigmoid => Act::Sigmoid,
            Activation::Tanh => Act::Tanh,
        }
    }
}

/// A window size or stride: one number for both axes, or `[rows, columns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Rect([usize; 2]),
}

impl Size2 {
    pub fn pair(self) -> (usize, usize) {
        match self {
            Size2::Square(n) => (n, n),
            Size2::Rect([a, b]) => (a, b),
        }
    }
}

fn default_momentum() -> f32 {
    0.99
}

fn default_epsilon() -> f32 {
    1e-3
}

fn one() -> Size2 {
    Size2::Square(1)
}

/// One layer, with Keras's names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// Collapses (h, w, c) into one vector (NHWC order, as Keras).
    #[serde(alias = "Flatten")]
    Flatten,
    /// `act(x·W + b)` over the last axis.
    #[serde(alias = "Dense")]
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        /// L2 factor c: the loss gains c·Σ kernel².
        #[serde(default)]
        l2: f32,
    },
    #[serde(alias = "Conv2D")]
    Conv2d {
        filters: usize,
        #[serde(alias = "kernel_size")]
        kernel: Size2,
        #[serde(default = "one")]
        strides: Size2,
        #[serde(default = "valid")]
        padding: Padding,
        #[serde(default)]
        activation: Activation,
        #[serde(default)]
        l2: f32,
    },
    #[serde(alias = "MaxPooling2D", alias = "max_pooling2d")]
    MaxPool2d {
        #[serde(alias = "pool_size")]
        pool: Size2,
        /// Defaults to the pool size, as in Keras.
        #[serde(default)]
        strides: Option<Size2>,
        #[serde(default = "valid")]
        padding: Padding,
    },
    #[serde(alias = "AveragePooling2D", alias = "average_pooling2d")]
    AvgPool2d {
        #[serde(alias = "pool_size")]
        pool: Size2,
        #[serde(default)]
        strides: Option<Size2>,
        #[serde(default = "valid")]
        padding: Padding,
    },
    /// The mean of each channel over the whole image: (h, w, c) → (c). It runs as an average pool
    /// whose window is the image.
    #[serde(alias = "GlobalAveragePooling2D", alias = "global_average_pooling2d")]
    GlobalAvgPool2d,
    /// Zeroes each input with probability `rate` in training and scales the rest by 1/(1 − rate).
    #[serde(alias = "Dropout")]
    Dropout { rate: f32 },
    /// Normalizes the last axis with batch statistics in training and moving ones in inference.
    #[serde(alias = "BatchNormalization", alias = "batch_normalization")]
    BatchNorm {
        #[serde(default = "default_momentum")]
        momentum: f32,
        #[serde(default = "default_epsilon")]
        epsilon: f32,
    },
    #[serde(alias = "Activation")]
    Activation { activation: Activation },
}

fn valid() -> Padding {
    Padding::Valid
}

impl Layer {
    /// The Keras class name, for summaries and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Flatten => "Flatten",
            Layer::Dense { .. } => "Dense",
            Layer::Conv2d { .. } => "Conv2D",
            Layer::MaxPool2d { .. } => "MaxPooling2D",
            Layer::AvgPool2d { .. } => "AveragePooling2D",
            Layer::GlobalAvgPool2d => "GlobalAveragePooling2D",
            Layer::Dropout { .. } => "Dropout",
            Layer::BatchNorm { .. } => "BatchNormalization",
            Layer::Activation { .. } => "Activation",
        }
    }

    fn activation(&self) -> Option<Activation> {
        match *self {
            Layer::Dense { activation, .. }
            | Layer::Conv2d { activation, .. }
            | Layer::Activation { activation } => Some(activation),
            _ => None,
        }
    }
}

/// Training settings a model file may carry; the command line overrides them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainDefaults {
    /// The optimizer and its hyperparameters (Keras 3's definitions).
    pub optimizer: Optimizer,
    /// Passes over the 55,000 training images.
    pub epochs: usize,
    /// Images per optimizer step; the last partial batch of an epoch is kept, as Keras does.
    pub batch_size: usize,
    /// How the learning rate moves over the steps (Keras's schedules; default: constant).
    pub schedule: super::lr::Schedule,
    /// Label smoothing ε of the cross-entropy (Keras's `label_smoothing`; 0: none): the target
    /// is (1 − ε)·onehot + ε/10, in training and evaluation alike.
    pub label_smoothing: f32,
    /// Random changes to the training images (translation, flip, erasing; default: none).
    pub augment: Augment,
    /// The command line's short form of a schedule (`cosine:warmup=1`, …), resolved against
    /// the run's epochs and batch size; it takes the place of `schedule` when given.
    pub lr_schedule: Option<String>,
    /// Stop when the validation loss (or accuracy) stops improving (default: never).
    pub early_stopping: Option<EarlyStopping>,
    /// Keep the best epoch's checkpoint as `best.safetensors` beside the last one: best by
    /// validation accuracy, or by early stopping's monitor when that restores the best weights.
    pub save_best: bool,
}

impl TrainDefaults {
    /// What decides which epoch `best.safetensors` keeps, and its min_delta, when one is kept.
    pub fn best_rule(&self) -> Option<(Monitor, f64)> {
        match self.early_stopping {
            Some(e) if e.restore_best => Some((e.monitor, e.min_delta)),
            _ => self.save_best.then_some((Monitor::ValAccuracy, 0.0)),
        }
    }

    /// The schedule of a run of `epochs` epochs of `steps_per_epoch` steps at learning rate
    /// `lr`: `short` (the command line's form) if given, else `lr_schedule`, else `schedule`.
    pub fn schedule_for(
        &self,
        short: Option<&str>,
        lr: f32,
        steps_per_epoch: u64,
        epochs: usize,
    ) -> anyhow::Result<super::lr::Schedule> {
        let schedule = match short.or(self.lr_schedule.as_deref()) {
            // The learning rate as written (0.1, not f32's 0.10000000149011612).
            Some(text) => super::lr::Schedule::parse(
                text,
                lr.to_string().parse()?,
                steps_per_epoch,
                steps_per_epoch * epochs as u64,
            )?,
            None => self.schedule.clone(),
        };
        schedule.validate()?;
        Ok(schedule)
    }
}

impl Default for TrainDefaults {
    fn default() -> Self {
        TrainDefaults {
            optimizer: Optimizer::adam(0.0),
            epochs: 10,
            batch_size: 32,
            schedule: super::lr::Schedule::Constant,
            label_smoothing: 0.0,
            augment: Augment::default(),
            lr_schedule: None,
            early_stopping: None,
            save_best: false,
        }
    }
}

/// A model: its layers, and how to train it by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Shown in summaries and run directory names (a model file's stem when left out).
    #[serde(default)]
    pub name: String,
    /// The layers after the 28×28×1 input image.
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub training: TrainDefaults,
}

/// The shape of one sample between layers (the batch axis is not included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Image { h: usize, w: usize, c: usize },
    Flat(usize),
}

impl Shape {
    pub fn len(self) -> usize {
        match self {
            Shape::Image { h, w, c } => h * w * c,
            Shape::Flat(n) => n,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Size of the last axis, which Dense and BatchNorm act on.
    pub fn last(self) -> usize {
        match self {
            Shape::Image { c, .. } => c,
            Shape::Flat(n) => n,
        }
    }

    /// How many vectors of `last()` one sample holds.
    pub fn rows(self) -> usize {
        self.len() / self.last().max(1)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Shape::Image { h, w, c } => write!(f, "(None, {h}, {w}, {c})"),
            Shape::Flat(n) => write!(f, "(None, {n})"),
        }
    }
}

/// The input every model starts from.
pub const INPUT: Shape = Shape::Image { h: SIDE, w: SIDE, c: 1 };

/// A weight tensor of a layer, as Keras lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSpec {
    /// `layer_name/kernel`, `…/bias`, `…/gamma`, `…/beta`, `…/moving_mean`, `…/moving_variance`.
    pub name: String,
    /// Shape in Keras's layout: dense (in, out), conv (kh, kw, in, out).
    pub keras_shape: Vec<usize>,
    /// Updated by the optimizer (else a running statistic).
    pub trainable: bool,
    /// The L2 factor on this tensor (kernels only).
    pub l2: f32,
}

impl WeightSpec {
    pub fn len(&self) -> usize {
        self.keras_shape.iter().product()
    }

    fn is_kernel(&self) -> bool {
        self.name.ends_with("/kernel")
    }

    /// Keras's layout → ours. A kernel is stored output-major: a dense kernel (out, in), a conv
    /// kernel (out, kh, kw, in), so that each output's weights are one contiguous row. That is a
    /// transpose of Keras's (kh·kw·in, out). Other tensors are the same in both.
    pub fn to_storage(&self, keras: &[f32]) -> Vec<f32> {
        if !self.is_kernel() {
            return keras.to_vec();
        }
        let out = *self.keras_shape.last().unwrap();
        let patch = self.len() / out;
        (0..self.len()).map(|i| keras[(i % patch) * out + i / patch]).collect()
    }

    /// Ours → Keras's layout (what checkpoints hold).
    pub fn to_keras(&self, stored: &[f32]) -> Vec<f32> {
        if !self.is_kernel() {
            return stored.to_vec();
        }
        let out = *self.keras_shape.last().unwrap();
        let patch = self.len() / out;
        (0..self.len()).map(|i| stored[(i % out) * patch + i / out]).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A layer with its input and output shapes and its weights.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub layer: Layer,
    /// Keras-style name: `dense`, `dense_1`, `conv2d`, …
    pub name: String,
    pub input: Shape,
    pub output: Shape,
    pub weights: Vec<WeightSpec>,
}

impl ModelSpec {
    /// A preset ([`PRESETS`]: `mlp`, `cnn`, `strong`), or a TOML/JSON file.
    pub fn load(name_or_path: &str) -> anyhow::Result<ModelSpec> {
        if let Some((_, preset, _)) = PRESETS.iter().find(|(n, _, _)| *n == name_or_path) {
            return Ok(preset());
        }
        let path = name_or_path;
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("{path}: {e} (a model is `mlp`, `cnn`, `strong`, or a .toml/.json file)")
        })?;
        let json = Path::new(path).extension().is_some_and(|e| e == "json");
        let stem = Path::new(path).file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned());
        ModelSpec::parse(&text, json, &stem).map_err(|e| anyhow::anyhow!("{path}: {e}"))
    }

    /// A model file's text (TOML, or JSON when `json`), checked: every layer's shapes resolve.
    /// `stem` names the model when the file does not.
    pub fn parse(text: &str, json: bool, stem: &str) -> anyhow::Result<ModelSpec> {
        let mut spec: ModelSpec = if json {
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?
        };
        if spec.name.is_empty() {
            spec.name = stem.to_string();
        }
        spec.resolve()?;
        spec.training.augment.validate()?;
        Ok(spec)
    }

    /// Weights of every layer, trainable or not.
    pub fn parameters(&self) -> anyhow::Result<usize> {
        Ok(self.resolve()?.iter().flat_map(|l| &l.weights).map(WeightSpec::len).sum())
    }

    /// Infers every layer's shapes and weights; an error names the layer that does not fit.
    pub fn resolve(&self) -> anyhow::Result<Vec<Resolved>> {
        anyhow::ensure!(!self.layers.is_empty(), "the model has no layers");
        let mut counts = std::collections::HashMap::new();
        let mut shape = INPUT;
        let mut out = Vec::new();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let base = match layer {
                Layer::Conv2d { .. } => "conv2d",
                Layer::MaxPool2d { .. } => "max_pooling2d",
                Layer::AvgPool2d { .. } => "average_pooling2d",
                Layer::GlobalAvgPool2d => "global_average_pooling2d",
                Layer::BatchNorm { .. } => "batch_normalization",
                other => match other.kind() {
                    "Flatten" => "flatten",
                    "Dense" => "dense",
                    "Dropout" => "dropout",
                    _ => "activation",
                },
            };
            let n = counts.entry(base).or_insert(0);
            let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
            *n += 1;
            let at = || format!("layer {} ({} `{name}`)", i + 1, layer.kind());
            if layer.activation() == Some(Activation::Softmax) && i != last {
                anyhow::bail!(
                    "{}: softmax is only supported on the last layer, where it is fused with the loss",
                    at()
                );
            }
            let (output, weights) =
                infer(layer, shape, &name).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            anyhow::ensure!(!output.is_empty(), "{}: the output {output} is empty", at());
            out.push(Resolved { layer: layer.clone(), name, input: shape, output, weights });
            shape = output;
        }
        anyhow::ensure!(
            shape == Shape::Flat(CLASSES),
            "the last layer outputs {shape}, not the {CLASSES} class scores (None, {CLASSES}); end with Dense({CLASSES}, softmax)"
        );
        Ok(out)
    }
}

fn window_of(input: Shape, k: Size2, s: Size2, padding: Padding) -> anyhow::Result<Window> {
    let Shape::Image { h, w, c } = input else {
        anyhow::bail!("needs an image input (h, w, c), got {input}; remove the Flatten before it")
    };
    let ((kh, kw), (sh, sw)) = (k.pair(), s.pair());
    anyhow::ensure!(kh > 0 && kw > 0 && sh > 0 && sw > 0, "window and strides must be at least 1");
    Window::new(1, (h, w, c), (kh, kw), (sh, sw), padding)
        .ok_or_else(|| anyhow::anyhow!("a {kh}×{kw} valid window does not fit the {h}×{w} input {input}"))
}

fn infer(layer: &Layer, input: Shape, name: &str) -> anyhow::Result<(Shape, Vec<WeightSpec>)> {
    let weight = |what: &str, shape: Vec<usize>, trainable, l2| WeightSpec {
        name: format!("{name}/{what}"),
        keras_shape: shape,
        trainable,
        l2,
    };
    Ok(match *layer {
        Layer::Flatten => (Shape::Flat(input.len()), vec![]),
        Layer::GlobalAvgPool2d => match input {
            Shape::Image { c, .. } => (Shape::Flat(c), vec![]),
            Shape::Flat(_) => {
                anyhow::bail!("needs an image input (h, w, c), got {input}; remove the Flatten before it")
            }
        },
        Layer::Dense { units, l2, .. } => {
            anyhow::ensure!(units > 0, "units must be at least 1");
            let out = match input {
                Shape::Image { h, w, .. } => Shape::Image { h, w, c: units },
                Shape::Flat(_) => Shape::Flat(units),
            };
            (
                out,
                vec![
                    weight("kernel", vec![input.last(), units], true, l2),
                    weight("bias", vec![units], true, 0.0),
                ],
            )
        }
        Layer::Conv2d { filters, kernel, strides, padding, l2, .. } => {
            anyhow::ensure!(filters > 0, "filters must be at least 1");
            let g = window_of(input, kernel, strides, padding)?;
            (
                Shape::Image { h: g.oh, w: g.ow, c: filters },
                vec![
                    weight("kernel", vec![g.kh, g.kw, g.c, filters], true, l2),
                    weight("bias", vec![filters], true, 0.0),
                ],
            )
        }
        Layer::MaxPool2d { pool, strides, padding } | Layer::AvgPool2d { pool, strides, padding } => {
            let g = window_of(input, pool, strides.unwrap_or(pool), padding)?;
            (Shape::Image { h: g.oh, w: g.ow, c: g.c }, vec![])
        }
        Layer::Dropout { rate } => {
            anyhow::ensure!((0.0..1.0).contains(&rate), "rate {rate} is not in [0, 1)");
            (input, vec![])
        }
        Layer::BatchNorm { momentum, epsilon } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&momentum) && epsilon > 0.0,
                "momentum must be in [0, 1] and epsilon > 0"
            );
            let c = input.last();
            (
                input,
                vec![
                    weight("gamma", vec![c], true, 0.0),
                    weight("beta", vec![c], true, 0.0),
                    weight("moving_mean", vec![c], false, 0.0),
                    weight("moving_variance", vec![c], false, 0.0),
                ],
            )
        }
        Layer::Activation { .. } => (input, vec![]),
    })
}

/// The report's MLP: 13 epochs of SGD at 0.1.
pub fn mlp() -> ModelSpec {
    let dense = |units, activation, l2| Layer::Dense { units, activation, l2 };
    ModelSpec {
        name: "mlp".into(),
        layers: vec![
            Layer::Flatten,
            Layer::BatchNorm { momentum: 0.99, epsilon: 1e-3 },
            dense(350, Activation::Relu, 1e-6),
            Layer::Dropout { rate: 0.1 },
            dense(80, Activation::Relu, 1e-6),
            Layer::Dropout { rate: 0.2 },
            dense(10, Activation::Softmax, 1e-6),
        ],
        training: TrainDefaults {
            optimizer: Optimizer::Sgd { lr: 0.1, momentum: 0.0, nesterov: false },
            epochs: 13,
            batch_size: 32,
            schedule: super::lr::Schedule::Constant,
            label_smoothing: 0.0,
            augment: Default::default(),
            lr_schedule: None,
            early_stopping: None,
            save_best: false,
        },
    }
}

/// A preset: its name, the function that builds it, and what it is in one line.
pub type Preset = (&'static str, fn() -> ModelSpec, &'static str);

/// The preset models (`gpu-fmnist models`).
pub const PRESETS: [Preset; 3] = [
    ("mlp", mlp, "the report's MLP: BatchNorm, Dense 350 → 80 (ReLU, dropout 0.1/0.2, L2 1e-6), softmax; SGD 0.1"),
    ("cnn", cnn, "the report's CNN: Conv 64 4×4 → max pool 4 → Conv 64 4×4 → max pool 2 → dropout 0.6 → Dense 256 → 84; Adam"),
    ("strong", strong, "past the report: Conv-BN-ReLU blocks (32, 64, 128, 128), Dense 256; AdamW, cosine schedule, mirrored images"),
];

/// `gpu-fmnist models`: each preset with its parameters, epochs, batch and what it is.
pub fn presets_table() -> anyhow::Result<String> {
    let mut out =
        format!("{:<7} {:>10}  {:>6}  {:>5}  what it is\n", "model", "parameters", "epochs", "batch");
    for (name, preset, what) in PRESETS {
        let spec = preset();
        out += &format!(
            "{name:<7} {:>10}  {:>6}  {:>5}  {what}\n",
            group(spec.parameters()?),
            spec.training.epochs,
            spec.training.batch_size
        );
    }
    Ok(out)
}

/// The report's CNN: 10 epochs of Adam at 0.001.
pub fn cnn() -> ModelSpec {
    let conv = |padding| Layer::Conv2d {
        filters: 64,
        kernel: Size2::Square(4),
        strides: Size2::Square(1),
        padding,
        activation: Activation::Relu,
        l2: 0.0,
    };
    let pool = |n| Layer::MaxPool2d { pool: Size2::Square(n), strides: None, padding: Padding::Valid };
    let dense = |units, activation| Layer::Dense { units, activation, l2: 1e-4 };
    ModelSpec {
        name: "cnn".into(),
        layers: vec![
            conv(Padding::Same),
            pool(4),
            conv(Padding::Valid),
            pool(2),
            Layer::Dropout { rate: 0.6 },
            Layer::Flatten,
            dense(256, Activation::Relu),
            dense(84, Activation::Relu),
            dense(10, Activation::Softmax),
        ],
        training: TrainDefaults::default(),
    }
}

/// Past the report: blocks of Conv2D 3×3 (same) → BatchNorm → ReLU, each block ending in 2×2
/// max pooling — one convolution of 32 filters, one of 64, two of 128 (28 → 14 → 7 → 3) — then
/// dropout 0.3, Dense 256 → BatchNorm → ReLU, dropout 0.4 and the softmax. Trained 15 epochs at
/// batch 64 with AdamW (lr 0.001, decay 0.05) on a cosine schedule after one warm-up epoch,
/// with label smoothing 0.1, on left–right mirrored images half the time. (Shifts, erasing and
/// dropout after the conv blocks left the model underfitting in 15 epochs; a decay of 0.05
/// rather than 0.01 raised mean test accuracy by 0.12 points over three seeds, within their
/// spread: README "Past the report".)
pub fn strong() -> ModelSpec {
    let conv = |filters| {
        [
            Layer::Conv2d {
                filters,
                kernel: Size2::Square(3),
                strides: Size2::Square(1),
                padding: Padding::Same,
                activation: Activation::Linear,
                l2: 0.0,
            },
            Layer::BatchNorm { momentum: 0.99, epsilon: 1e-3 },
            Layer::Activation { activation: Activation::Relu },
        ]
    };
    let pool = Layer::MaxPool2d { pool: Size2::Square(2), strides: None, padding: Padding::Valid };
    let block = |convs: &[usize]| {
        let mut layers: Vec<Layer> = convs.iter().flat_map(|&f| conv(f)).collect();
        layers.push(pool.clone());
        layers
    };
    let mut layers: Vec<Layer> = [&[32][..], &[64], &[128, 128]].into_iter().flat_map(block).collect();
    layers.extend([
        Layer::Flatten,
        Layer::Dropout { rate: 0.3 },
        Layer::Dense { units: 256, activation: Activation::Linear, l2: 0.0 },
        Layer::BatchNorm { momentum: 0.99, epsilon: 1e-3 },
        Layer::Activation { activation: Activation::Relu },
        Layer::Dropout { rate: 0.4 },
        Layer::Dense { units: CLASSES, activation: Activation::Softmax, l2: 0.0 },
    ]);
    ModelSpec {
        name: "strong".into(),
        layers,
        training: TrainDefaults {
            optimizer: Optimizer::adam(0.05),
            epochs: 15,
            batch_size: 64,
            schedule: super::lr::Schedule::Constant,
            lr_schedule: Some("cosine:warmup=1".into()),
            label_smoothing: 0.1,
            augment: Augment { shift: 0, flip: true, erase: 0.0 },
            early_stopping: None,
            save_best: false,
        },
    }
}

/// Initial values of a weight in Keras's layout: Glorot-uniform kernels with limit
/// √(6 / (fan_in + fan_out)) (for a conv kernel fan_in = kh·kw·in, fan_out = kh·kw·out), zero
/// biases and betas, unit gammas and moving variances, zero moving means.
pub fn initial_values(w: &WeightSpec, rng: &mut Rng) -> Vec<f32> {
    let what = w.name.rsplit('/').next().unwrap_or("");
    match what {
        "kernel" => {
            let s = &w.keras_shape;
            let receptive: usize = s[..s.len() - 2].iter().product();
            let (fan_in, fan_out) = (receptive * s[s.len() - 2], receptive * s[s.len() - 1]);
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            rng.vec(w.len(), -limit, limit)
        }
        "gamma" | "moving_variance" => vec![1.0; w.len()],
        _ => vec![0.0; w.len()],
    }
}

/// A Keras-style summary: layer (type), output shape, parameter count, totals.
pub fn summary(spec: &ModelSpec) -> anyhow::Result<String> {
    use std::fmt::Write;
    let layers = spec.resolve()?;
    let mut s = String::new();
    writeln!(s, "Model: \"{}\"", spec.name)?;
    writeln!(s, "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┓")?;
    writeln!(s, "┃ {:<42} ┃ {:<21} ┃ {:>12} ┃", "Layer (type)", "Output Shape", "Param #")?;
    writeln!(s, "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━┩")?;
    let (mut trainable, mut frozen) = (0, 0);
    for (i, l) in layers.iter().enumerate() {
        let params: usize = l.weights.iter().map(WeightSpec::len).sum();
        trainable += l.weights.iter().filter(|w| w.trainable).map(WeightSpec::len).sum::<usize>();
        frozen += l.weights.iter().filter(|w| !w.trainable).map(WeightSpec::len).sum::<usize>();
        let label = format!("{} ({})", l.name, l.layer.kind());
        writeln!(s, "│ {:<42} │ {:<21} │ {:>12} │", label, l.output.to_string(), group(params))?;
        if i + 1 < layers.len() {
            writeln!(
                s,
                "├────────────────────────────────────────────┼───────────────────────┼──────────────┤"
            )?;
        }
    }
    writeln!(s, "└────────────────────────────────────────────┴───────────────────────┴──────────────┘")?;
    writeln!(s, " Total params: {}", group(trainable + frozen))?;
    writeln!(s, " Trainable params: {}", group(trainable))?;
    writeln!(s, " Non-trainable params: {}", group(frozen))?;
    Ok(s)
}

/// 306776 → "306,776".
pub fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_reports_parameter_counts() {
        let count = |spec: &ModelSpec| -> usize {
            spec.resolve().unwrap().iter().flat_map(|l| &l.weights).map(WeightSpec::len).sum()
        };
        assert_eq!(count(&mlp()), 306_776);
        assert_eq!(count(&cnn()), 154_918);
        let cnn_layers = cnn().resolve().unwrap();
        assert_eq!(cnn_layers[5].output, Shape::Flat(256));
        assert_eq!(cnn_layers[2].name, "conv2d_1");
    }

    #[test]
    fn misfit_layers_are_named() {
        let spec = ModelSpec {
            name: "bad".into(),
            layers: vec![
                Layer::Flatten,
                Layer::MaxPool2d { pool: Size2::Square(2), strides: None, padding: Padding::Valid },
            ],
            training: TrainDefaults::default(),
        };
        let e = spec.resolve().unwrap_err().to_string();
        assert!(e.contains("layer 2 (MaxPooling2D `max_pooling2d`)") && e.contains("image input"), "{e}");
        let spec = ModelSpec {
            name: "small".into(),
            layers: vec![Layer::Conv2d {
                filters: 4,
                kernel: Size2::Square(29),
                strides: Size2::Square(1),
                padding: Padding::Valid,
                activation: Activation::Relu,
                l2: 0.0,
            }],
            training: TrainDefaults::default(),
        };
        assert!(spec.resolve().unwrap_err().to_string().contains("does not fit"));
    }

    #[test]
    fn model_files_parse() {
        let text = r#"
            name = "tiny"
            [[layers]]
            type = "conv2d"
            filters = 8
            kernel = [3, 3]
            padding = "same"
            activation = "relu"
            [[layers]]
            type = "max_pool2d"
            pool = 2
            [[layers]]
            type = "flatten"
            [[layers]]
            type = "dense"
            units = 10
            activation = "softmax"
            [training]
            epochs = 2
            batch_size = 64
            optimizer = { name = "sgd", lr = 0.05, momentum = 0.9, nesterov = true }
        "#;
        let spec: ModelSpec = toml::from_str(text).unwrap();
        let layers = spec.resolve().unwrap();
        assert_eq!(layers[1].output, Shape::Image { h: 14, w: 14, c: 8 });
        assert_eq!(spec.training.batch_size, 64);
    }

    #[test]
    fn model_files_accept_the_names_keras_users_write() {
        let text = r#"
            [[layers]]
            type = "Conv2D"
            filters = 8
            kernel_size = 3
            padding = "same"
            activation = "relu"
            [[layers]]
            type = "BatchNormalization"
            [[layers]]
            type = "MaxPooling2D"
            pool_size = [2, 2]
            [[layers]]
            type = "Dropout"
            rate = 0.25
            [[layers]]
            type = "Flatten"
            [[layers]]
            type = "Dense"
            units = 10
            activation = "softmax"
        "#;
        let dir = std::env::temp_dir().join(format!("keras-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("my-keras-model.toml");
        std::fs::write(&path, text).unwrap();
        let spec = ModelSpec::load(path.to_str().unwrap()).unwrap();
        assert_eq!(spec.name, "my-keras-model", "the name defaults to the file's stem");
        let layers = spec.resolve().unwrap();
        assert_eq!(layers[2].output, Shape::Image { h: 14, w: 14, c: 8 });
        assert!(matches!(spec.layers[3], Layer::Dropout { rate } if rate == 0.25));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn storage_layout_round_trips_and_puts_outputs_first() {
        let w = WeightSpec {
            name: "conv2d/kernel".into(),
            keras_shape: vec![2, 3, 4, 5],
            trainable: true,
            l2: 0.0,
        };
        let keras: Vec<f32> = (0..w.len()).map(|i| i as f32).collect();
        let ours = w.to_storage(&keras);
        // ours[o][i][j][c] = keras[i][j][c][o], here at (o, i, j, c) = (3, 1, 2, 1)
        let (o, i, j, c) = (3, 1, 2, 1);
        assert_eq!(ours[o * 24 + (i * 3 + j) * 4 + c], keras[((i * 3 + j) * 4 + c) * 5 + o]);
        assert_eq!(w.to_keras(&ours), keras);
    }

    #[test]
    fn glorot_limits() {
        let w = WeightSpec {
            name: "conv2d/kernel".into(),
            keras_shape: vec![4, 4, 1, 64],
            trainable: true,
            l2: 0.0,
        };
        let v = initial_values(&w, &mut Rng::new(3));
        let limit = (6.0f32 / (16.0 + 1024.0)).sqrt();
        assert!(v.iter().all(|x| x.abs() <= limit) && v.iter().any(|x| x.abs() > 0.9 * limit));
    }
}
