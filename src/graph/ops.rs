//! The ops a schedule is made of. Both executors run exactly these: `src/cpu/` plainly on
//! ndarray, `src/gpu/` with the WGSL kernels in `shaders/`. Shapes are fixed when the schedule
//! is built, so an op carries every size it needs; tensors are named by [`T`].

use crate::data::Augment;

/// A tensor of the program, by index into [`super::Program::tensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct T(pub usize);

/// Element types. WGSL has no u8: images travel as u32 words holding four pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

/// Element-wise activations (softmax is fused with the loss: [`Op::SoftmaxXent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
}

impl Act {
    /// The code the kernels use (`activate` in shaders/common.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Act::Linear => 0,
            Act::Relu => 1,
            Act::Sigmoid => 2,
            Act::Tanh => 3,
        }
    }
}

/// Keras's two paddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: only windows entirely inside the image.
    Valid,
    /// Output size ceil(in / stride); the padding is split with the extra row/column after.
    Same,
}

/// The geometry of a sliding window over NHWC images: a convolution's kernel or a pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Output size and padding before, along one axis, as Keras computes them.
pub fn out_size(input: usize, k: usize, stride: usize, padding: Padding) -> Option<(usize, usize)> {
    match padding {
        Padding::Valid => (input >= k).then(|| ((input - k) / stride + 1, 0)),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(input);
            Some((out, total / 2))
        }
    }
}

impl Window {
    /// The window of a `kh`×`kw` kernel or pool at strides (`sh`, `sw`) over (batch, h, w, c);
    /// `None` when a `valid` window does not fit in the image.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        (h, w, c): (usize, usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        padding: Padding,
    ) -> Option<Window> {
        let (oh, pad_top) = out_size(h, kh, sh, padding)?;
        let (ow, pad_left) = out_size(w, kw, sw, padding)?;
        Some(Window { batch, h, w, c, kh, kw, sh, sw, pad_top, pad_left, oh, ow })
    }

    /// Elements of the input (B·H·W·C).
    pub fn input_len(&self) -> usize {
        self.batch * self.h * self.w * self.c
    }

    /// Output pixels (B·OH·OW): the rows of the im2col matrix.
    pub fn out_pixels(&self) -> usize {
        self.batch * self.oh * self.ow
    }

    /// Length of one im2col row (KH·KW·C): the reduction length of a convolution.
    pub fn patch(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// The uniform block of conv.wgsl and pool.wgsl.
    pub fn words(&self) -> Vec<u32> {
        [
            self.batch,
            self.h,
            self.w,
            self.c,
            self.kh,
            self.kw,
            self.sh,
            self.sw,
            self.pad_top,
            self.pad_left,
            self.oh,
            self.ow,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }
}

/// `c (m, n) = act(op(a) · op(b) + bias)` with op(a) (m, k) and op(b) (k, n).
/// `a` is stored (m, k), or (k, m) when `trans_a`; `b` is stored (k, n), or (n, k) when `trans_b`;
/// all densely (row stride = row length).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matmul {
    pub a: T,
    pub b: T,
    pub c: T,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: Option<T>,
    pub act: Act,
    /// A dropout folded into the epilogue: its `y` (m, n) = c under the mask (c is written too).
    pub dropout: Option<Dropped>,
}

/// Inverted dropout's mask for one step: element i is kept and scaled by 1/(1 − rate) where
/// `uniform01(seed, state.step, i) ≥ rate` (src/rng.rs, shaders/common.wgsl), else zeroed.
/// A pure function of (seed, step, i): the backward pass recomputes it instead of storing it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mask {
    pub state: T,
    pub rate: f32,
    pub seed: u32,
}

/// A dropout folded into the op that produces its input (`graph::fuse`): `y` = that op's
/// output under `mask`, written beside the output itself. One dispatch instead of two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropped {
    pub y: T,
    pub mask: Mask,
}

/// An optimizer's update rule and hyperparameters, as Keras 3 defines them (and its defaults).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum Optimizer {
    /// `w −= lr·g`, or with momentum `v = μv − lr·g; w += v` (Nesterov: `w += μv − lr·g`).
    Sgd {
        #[serde(default = "defaults::sgd_lr")]
        lr: f32,
        #[serde(default)]
        momentum: f32,
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam with bias correction; ε is added after the square root, as Keras does. With a
    /// `weight_decay`, decoupled decay first, as Keras 3 applies it (AdamW):
    /// `w −= lr·weight_decay·w`, then the Adam step.
    Adam {
        #[serde(default = "defaults::adam_lr")]
        lr: f32,
        #[serde(default = "defaults::beta1")]
        beta1: f32,
        #[serde(default = "defaults::beta2")]
        beta2: f32,
        #[serde(default = "defaults::eps")]
        eps: f32,
        #[serde(default)]
        weight_decay: f32,
    },
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match *self {
            Optimizer::Sgd { lr, momentum, nesterov } => {
                write!(f, "SGD lr {lr}")?;
                if momentum != 0.0 {
                    write!(f, ", momentum {momentum}{}", if nesterov { " (Nesterov)" } else { "" })?;
                }
                Ok(())
            }
            Optimizer::Adam { lr, beta1, beta2, eps, weight_decay: 0.0 } => {
                write!(f, "Adam lr {lr} (β1 {beta1}, β2 {beta2}, ε {eps:e})")
            }
            Optimizer::Adam { lr, beta1, beta2, eps, weight_decay } => {
                write!(f, "AdamW lr {lr} (β1 {beta1}, β2 {beta2}, ε {eps:e}), weight decay {weight_decay}")
            }
        }
    }
}

/// Keras's defaults, in one place.
pub mod defaults {
    pub fn sgd_lr() -> f32 {
        0.01
    }
    pub fn adam_lr() -> f32 {
        0.001
    }
    pub fn beta1() -> f32 {
        0.9
    }
    pub fn beta2() -> f32 {
        0.999
    }
    pub fn eps() -> f32 {
        1e-7
    }
    /// Keras's `AdamW`.
    pub fn adamw_weight_decay() -> f32 {
        0.004
    }
}

impl Optimizer {
    /// Adam with Keras's defaults (see [`defaults`]) and decoupled `weight_decay` (0: plain Adam).
    pub fn adam(weight_decay: f32) -> Optimizer {
        Optimizer::Adam {
            lr: defaults::adam_lr(),
            beta1: defaults::beta1(),
            beta2: defaults::beta2(),
            eps: defaults::eps(),
            weight_decay,
        }
    }

    /// The optimizer called `name` (`sgd`, `adam`, `adamw`): `self` when it is already of that
    /// kind, else that kind with Keras's defaults (see [`defaults`]); `adamw` is Adam with
    /// Keras's AdamW weight decay.
    pub fn of_kind(self, name: &str) -> anyhow::Result<Optimizer> {
        let adam = Optimizer::adam;
        Ok(match (name, self) {
            ("sgd", Optimizer::Sgd { .. }) => self,
            ("adam", Optimizer::Adam { weight_decay: 0.0, .. }) => self,
            ("adamw", Optimizer::Adam { weight_decay, .. }) if weight_decay > 0.0 => self,
            ("sgd", _) => Optimizer::Sgd { lr: defaults::sgd_lr(), momentum: 0.0, nesterov: false },
            ("adam", _) => adam(0.0),
            ("adamw", _) => adam(defaults::adamw_weight_decay()),
            (other, _) => anyhow::bail!("`{other}` is not an optimizer (sgd, adam, adamw)"),
        })
    }

    /// How many state tensors per weight: SGD with momentum 1, Adam 2.
    pub fn slots(&self) -> usize {
        match *self {
            Optimizer::Sgd { momentum, .. } if momentum != 0.0 => 1,
            Optimizer::Sgd { .. } => 0,
            Optimizer::Adam { .. } => 2,
        }
    }

    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => lr,
        }
    }

    /// Two numbers for each of `n` steps, the first being step `first + 1`: the step's rate —
    /// SGD's learning rate, or Adam's lr·√(1 − β2^t)/(1 − β1^t) — and its decoupled weight
    /// decay lr·weight_decay (0 without), the learning rate of step t being the schedule's at
    /// t − 1 (Keras counts iterations from 0). Computed once on the host in f64 and read by both
    /// executors from a table, because 1 − β^t in f32 loses most of its digits for small t
    /// (1 − 0.999¹ keeps four), and a GPU's `pow` differs from the CPU's in the last ones.
    ///
    /// `val_losses` are the validation losses of the epochs so far, which a plateau schedule
    /// reads.
    pub fn step_rates(
        &self,
        first: u64,
        n: usize,
        schedule: &super::lr::Schedule,
        val_losses: &[f64],
    ) -> Vec<f32> {
        let base = schedule.plateau_rate(self.lr() as f64, val_losses);
        (1..=n as u64)
            .flat_map(|i| {
                let t = first + i;
                let lr = schedule.rate(base, t - 1);
                match *self {
                    Optimizer::Sgd { .. } => [lr as f32, 0.0],
                    Optimizer::Adam { beta1, beta2, weight_decay, .. } => {
                        let correction = |b: f32| -(t as f64 * (b as f64).ln()).exp_m1();
                        let rate = lr * correction(beta2).sqrt() / correction(beta1);
                        [rate as f32, (lr * weight_decay as f64) as f32]
                    }
                }
            })
            .collect()
    }
}

/// Elements per chunk of an arena ([`super::Program::arena`]): every view starts at a multiple of
/// it, so that a chunk belongs to one weight, and one GPU workgroup handles one chunk.
pub const CHUNK: usize = 256;

/// One trained weight of an [`Op::Update`]: views of `len` elements at the same offset in the
/// parameter, gradient and slot arenas, and its L2 factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trained {
    pub w: T,
    pub g: T,
    pub m: Option<T>,
    pub v: Option<T>,
    pub len: usize,
    pub l2: f32,
}

/// The (weight, L2 factor) of each of `weights` that has a penalty: what the step's penalty
/// partials are summed over.
pub fn regularized(weights: &[Trained]) -> Vec<(T, f32)> {
    weights.iter().filter(|t| t.l2 > 0.0).map(|t| (t.w, t.l2)).collect()
}

/// The activation a [`Op::BiasGrad`] differentiates through: dz (rows, cols) = dy · act'(y), from
/// the layer's output y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActGrad {
    pub y: T,
    pub dz: T,
    pub act: Act,
}

/// One step of a schedule. Field comments give shapes; B is the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// x (B, P) f32 = images[index[cursor + b]] / 255, y (B) = labels[index[cursor + b]].
    /// `images` is u8 packed four to a u32; `state` holds the cursor. With `augment`, each
    /// square image is changed as `data::augment` draws it from (seed, state.epoch, its index).
    Gather {
        images: T,
        labels: T,
        index: T,
        state: T,
        x: T,
        y: T,
        batch: usize,
        pixels: usize,
        augment: Option<Augment>,
        /// Seeds the augmentation's draws.
        seed: u32,
    },
    Matmul(Matmul),
    /// db (cols) = Σ_rows dz (rows, cols), where dz = dy, or with `through` first
    /// dz = dy · act'(y), written (the activation's gradient fused in: one pass, one dispatch).
    /// With `mask` (only beside `through`), dy is first put under the mask: the backward pass of
    /// a dropout after the layer, folded in.
    BiasGrad {
        dy: T,
        db: T,
        rows: usize,
        cols: usize,
        through: Option<ActGrad>,
        mask: Option<Mask>,
    },
    /// y (len) = act(x).
    Activation {
        x: T,
        y: T,
        act: Act,
        len: usize,
    },
    /// dx (len) = dy · act'(x), from the forward output y.
    ActivationGrad {
        y: T,
        dy: T,
        dx: T,
        act: Act,
        len: usize,
    },
    /// loss (B) = −Σ_j q_j·log softmax(logits)_j with the target q = (1 − smoothing)·onehot +
    /// smoothing/C (Keras's label smoothing; 0: the label alone); pred (B) u32 = index of the
    /// first largest logit; optionally probs (B, C) and dlogits (B, C) = (softmax − q) · scale.
    SoftmaxXent {
        logits: T,
        labels: T,
        loss: T,
        pred: T,
        probs: Option<T>,
        dlogits: Option<T>,
        batch: usize,
        classes: usize,
        scale: f32,
        smoothing: f32,
    },
    /// cols (B·OH·OW, KH·KW·C) = the windows of x (B, H, W, C).
    Im2col {
        x: T,
        cols: T,
        g: Window,
    },
    /// dx (B, H, W, C) = Σ of dcols (B·OH·OW, KH·KW·C) over the taps that read each pixel.
    Col2im {
        dcols: T,
        dx: T,
        g: Window,
    },
    /// y (B, OH, OW, C) = window maxima of x; argmax (same shape, u32) = flat index into x;
    /// with `dropout`, also its `y` = y under the mask.
    MaxPool {
        x: T,
        y: T,
        argmax: T,
        g: Window,
        dropout: Option<Dropped>,
    },
    /// dx (B, H, W, C) = dy sent to each window's argmax; with `mask`, dy under the mask (a
    /// dropout's backward pass folded in).
    MaxPoolGrad {
        dy: T,
        argmax: T,
        dx: T,
        g: Window,
        mask: Option<Mask>,
    },
    /// y (B, OH, OW, C) = window means over the cells inside the image.
    AvgPool {
        x: T,
        y: T,
        g: Window,
    },
    /// dx (B, H, W, C) = dy shared out equally over each window's cells.
    AvgPoolGrad {
        dy: T,
        dx: T,
        g: Window,
    },
    /// y (len) = x under the mask (kept × 1/(1 − rate), or 0). The backward pass is the same
    /// op applied to dy.
    Dropout {
        x: T,
        y: T,
        len: usize,
        mask: Mask,
    },
    /// mean, var (cols) = batch statistics of x (rows, cols); moving ← moving·m + stat·(1 − m).
    BatchNormStats {
        x: T,
        mean: T,
        var: T,
        moving_mean: T,
        moving_var: T,
        rows: usize,
        cols: usize,
        momentum: f32,
    },
    /// y = (x − mean) / sqrt(var + eps) · gamma + beta, per column.
    BatchNormApply {
        x: T,
        mean: T,
        var: T,
        gamma: T,
        beta: T,
        y: T,
        rows: usize,
        cols: usize,
        eps: f32,
    },
    /// dgamma, dbeta (cols), and dx (rows, cols) when asked, through the batch statistics.
    BatchNormGrad {
        x: T,
        dy: T,
        mean: T,
        var: T,
        gamma: T,
        dx: Option<T>,
        dgamma: T,
        dbeta: T,
        rows: usize,
        cols: usize,
        eps: f32,
    },
    /// partials (one per [`CHUNK`] of the parameter arena) = c · Σ w² over the chunk's elements
    /// of each listed weight view w (with its c), 0 for the other chunks. [`Op::Record`] adds
    /// them to the loss. One GPU workgroup per chunk.
    L2Penalty {
        weights: Vec<(T, f32)>,
        partials: T,
    },
    /// For each weight: g += 2·l2·w (the penalty's gradient), then w updated from g by the
    /// optimizer (`m` and `v` are its slots; SGD with momentum uses `m`). The step's rate is
    /// `rates[state.record]`: see [`Optimizer::step_rates`]. The views of each arena lie in one
    /// buffer on the GPU, so this is one dispatch for the whole model. With `penalties`, first
    /// the step's [`Op::L2Penalty`] partials from the weights before the update (a training
    /// step's penalty, without a pass of its own).
    Update {
        weights: Vec<Trained>,
        state: T,
        rates: T,
        opt: Optimizer,
        penalties: Option<T>,
    },
    /// counts (C, C) u32 += the (label, prediction) pairs of the batch.
    Confusion {
        labels: T,
        pred: T,
        counts: T,
        batch: usize,
        classes: usize,
    },
    /// The step's last op: records[state.record] = (Σ loss / B + Σ penalties, #(pred = label),
    /// B), three f32; then state.step += train, state.cursor += B, state.record += 1.
    Record {
        loss: T,
        pred: T,
        labels: T,
        penalties: Option<(T, usize)>,
        state: T,
        records: T,
        batch: usize,
        train: bool,
    },
}

impl Op {
    /// The op's name for profiles: its variant, with the sizes of a matmul.
    pub fn kind(&self) -> String {
        match self {
            Op::Matmul(m) => format!(
                "Matmul {}×{}·{}{}{}",
                m.m,
                m.k,
                m.n,
                if m.trans_a { " Aᵀ" } else { "" },
                if m.trans_b { " Bᵀ" } else { "" }
            ),
            other => {
                let debug = format!("{other:?}");
                debug.split([' ', '(', '{']).next().unwrap_or("").to_string()
            }
        }
    }
}

/// The state tensor, word for word as `State` in shaders/common.wgsl: the GPU advances it after
/// every step ([`Op::Record`]); the host sets it before a pass.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct State {
    /// Optimizer steps taken so far (Adam's t − 1; the dropout stream).
    pub step: u32,
    /// Position of this batch's first image in the split's index buffer.
    pub cursor: u32,
    /// The row of the records tensor this step writes.
    pub record: u32,
    /// The training epoch (from 0): augmentation's draws depend on it.
    pub epoch: u32,
}

impl State {
    /// At the first step of a pass, after `step` optimizer steps.
    pub fn at_step(step: u64) -> State {
        State { step: step as u32, cursor: 0, record: 0, epoch: 0 }
    }

    pub fn words(&self) -> &[u32] {
        bytemuck::cast_slice(std::slice::from_ref(self))
    }

    pub fn from_words(words: &[u32]) -> State {
        bytemuck::pod_read_unaligned(bytemuck::cast_slice(&words[..STATE_WORDS]))
    }
}

/// One row of the records tensor, written by [`Op::Record`] once per step.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Record {
    /// Mean cross-entropy over the batch plus the L2 penalties.
    pub loss: f32,
    /// Images whose prediction equals the label.
    pub correct: f32,
    /// Images in the batch.
    pub count: f32,
}

impl Record {
    /// The rows of a records tensor.
    pub fn rows(records: &[f32]) -> &[Record] {
        bytemuck::cast_slice(&records[..records.len() / RECORD_WIDTH * RECORD_WIDTH])
    }

    pub fn values(&self) -> &[f32] {
        bytemuck::cast_slice(std::slice::from_ref(self))
    }
}

/// The words of the state tensor.
pub const STATE_WORDS: usize = std::mem::size_of::<State>() / 4;
/// f32 values per row of a records tensor.
pub const RECORD_WIDTH: usize = std::mem::size_of::<Record>() / 4;
