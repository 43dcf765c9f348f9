//! Each layer kind lowered in one place: the tensors it owns ([`alloc`]), what its ops need at
//! one batch size ([`lower`]), and its forward and backward ops side by side, backward
//! mirroring forward in reverse, as llm.c writes a layer. `schedule.rs` strings the layers
//! together; the dense and conv check cases (src/check/cases.rs) are built through the same
//! structs. Adding a layer kind: its `Layer` variant and shapes (model.rs), then here an arm
//! of `alloc` and of `lower`, and its struct's `forward` and `backward`.

use super::model::{Layer, Resolved, Shape, Size2};
use super::ops::{Act, ActGrad, Mask, Matmul, Op, Padding, Window, T};
use super::Program;

/// Whether the forward pass runs as in training (batch statistics, dropout) or inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

/// A weight as a layer's ops see it: its value and, in training, its gradient.
#[derive(Debug, Clone, Copy)]
pub struct Weight {
    pub value: T,
    pub grad: Option<T>,
}

impl Weight {
    fn grad(&self) -> T {
        self.grad.expect("a trained weight has a gradient")
    }
}

/// The activations and gradients around one layer in one step: x → y forward; dy → dx
/// backward, dx only when a layer before this one trains.
#[derive(Debug, Clone, Copy)]
pub struct Io {
    pub x: T,
    pub y: T,
    pub dy: Option<T>,
    pub dx: Option<T>,
}

impl Io {
    fn dy(&self) -> T {
        self.dy.expect("the backward pass has dy")
    }
}

/// Tensors a layer owns, allocated once at the largest batch: its output and, for training,
/// the scratch its backward pass reads.
#[derive(Debug, Clone, Default)]
pub struct Owned {
    pub y: Option<T>,
    /// The gradient before the activation (dense, conv): dy · act'(y).
    pub dz: Option<T>,
    pub cols: Option<T>,
    pub dcols: Option<T>,
    pub argmax: Option<T>,
    pub mean: Option<T>,
    pub var: Option<T>,
}

/// The tensors of layer `l` at batch size `batch` (the weights are allocated by the graph, in
/// arenas).
pub fn alloc(l: &Resolved, p: &mut Program, batch: usize, training: bool) -> Owned {
    let mut own = Owned::default();
    let out = batch * l.output.len();
    let mut tensor = |what: &str, len| p.f32(format!("{}/{what}", l.name), len);
    match l.layer {
        Layer::Dense { activation, .. } | Layer::Conv2d { activation, .. } => {
            own.y = Some(tensor("y", out));
            if training && activation.act() != Act::Linear {
                own.dz = Some(tensor("dz", out));
            }
            if let Layer::Conv2d { .. } = l.layer {
                let g = window(l, batch);
                own.cols = Some(tensor("cols", g.out_pixels() * g.patch()));
                if training {
                    own.dcols = Some(tensor("dcols", g.out_pixels() * g.patch()));
                }
            }
        }
        Layer::MaxPool2d { .. } => {
            own.y = Some(tensor("y", out));
            own.argmax = Some(p.u32(format!("{}/argmax", l.name), out));
        }
        Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => own.y = Some(tensor("y", out)),
        Layer::Dropout { .. } if training => own.y = Some(tensor("y", out)),
        Layer::BatchNorm { .. } => {
            own.y = Some(tensor("y", out));
            own.mean = Some(tensor("batch_mean", l.output.last()));
            own.var = Some(tensor("batch_variance", l.output.last()));
        }
        Layer::Activation { activation } if activation.act() != Act::Linear => own.y = Some(tensor("y", out)),
        _ => {}
    }
    own
}

/// Layer `l` at batch size `batch`: its sizes, its weights (`weights`, in Keras's order) and
/// its own tensors. `state` and `seed` drive dropout's masks.
pub fn lower(l: &Resolved, own: &Owned, weights: &[Weight], batch: usize, state: T, seed: u32) -> Lowered {
    let rows = batch * l.input.rows();
    match l.layer {
        Layer::Dense { units, activation, .. } => Lowered::Dense(Dense {
            rows,
            k: l.input.last(),
            units,
            act: activation.act(),
            w: weights[0],
            b: weights[1],
            dz: own.dz,
        }),
        Layer::Conv2d { filters, activation, .. } => Lowered::Conv(Conv {
            g: window(l, batch),
            filters,
            act: activation.act(),
            w: weights[0],
            b: weights[1],
            cols: own.cols.expect("a conv owns its columns"),
            dcols: own.dcols,
            dz: own.dz,
        }),
        Layer::MaxPool2d { .. } => {
            Lowered::MaxPool { g: window(l, batch), argmax: own.argmax.expect("a max pool owns its argmax") }
        }
        Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => Lowered::AvgPool { g: window(l, batch) },
        Layer::Dropout { rate } => {
            Lowered::Dropout { len: batch * l.input.len(), mask: Mask { state, rate, seed } }
        }
        Layer::BatchNorm { momentum, epsilon } => Lowered::BatchNorm(BatchNorm {
            rows,
            cols: l.input.last(),
            momentum,
            eps: epsilon,
            gamma: weights[0],
            beta: weights[1],
            moving_mean: weights[2].value,
            moving_var: weights[3].value,
            mean: own.mean.expect("a batch norm owns its batch mean"),
            var: own.var.expect("a batch norm owns its batch variance"),
        }),
        Layer::Activation { activation } if activation.act() != Act::Linear => {
            Lowered::Activation { act: activation.act(), len: batch * l.input.len() }
        }
        // Flatten, linear activations (and softmax's logits): y is x.
        _ => Lowered::PassThrough,
    }
}

/// A layer as its ops see it at one batch size.
#[derive(Debug, Clone)]
pub enum Lowered {
    Dense(Dense),
    Conv(Conv),
    /// (B, H, W, C) → (B, OH, OW, C): the window's largest value, its index kept for backward.
    MaxPool {
        g: Window,
        argmax: T,
    },
    /// (B, H, W, C) → (B, OH, OW, C): the window's mean over its in-image cells.
    AvgPool {
        g: Window,
    },
    /// (len) → (len): kept × 1/(1 − rate) or zeroed, the mask a function of (seed, step, index).
    Dropout {
        len: usize,
        mask: Mask,
    },
    BatchNorm(BatchNorm),
    /// (len) → (len): y = act(x).
    Activation {
        act: Act,
        len: usize,
    },
    PassThrough,
}

impl Lowered {
    pub fn forward(&self, io: Io, mode: Mode) -> Vec<Op> {
        let Io { x, y, .. } = io;
        match *self {
            Lowered::Dense(ref d) => d.forward(io),
            Lowered::Conv(ref c) => c.forward(io),
            Lowered::MaxPool { g, argmax } => vec![Op::MaxPool { x, y, argmax, g, dropout: None }],
            Lowered::AvgPool { g } => vec![Op::AvgPool { x, y, g }],
            Lowered::Dropout { len, mask } if mode == Mode::Train => vec![Op::Dropout { x, y, len, mask }],
            Lowered::BatchNorm(ref b) => b.forward(io, mode),
            Lowered::Activation { act, len } => vec![Op::Activation { x, y, act, len }],
            Lowered::Dropout { .. } | Lowered::PassThrough => vec![],
        }
    }

    pub fn backward(&self, io: Io) -> Vec<Op> {
        match (self, io.dx) {
            (Lowered::Dense(d), _) => d.backward(io),
            (Lowered::Conv(c), _) => c.backward(io),
            (Lowered::BatchNorm(b), _) => b.backward(io),
            (&Lowered::MaxPool { g, argmax }, Some(dx)) => {
                vec![Op::MaxPoolGrad { dy: io.dy(), argmax, dx, g, mask: None }]
            }
            (&Lowered::AvgPool { g }, Some(dx)) => vec![Op::AvgPoolGrad { dy: io.dy(), dx, g }],
            // The same mask as forward (same seed and step), on the gradient.
            (&Lowered::Dropout { len, mask }, Some(dx)) => vec![Op::Dropout { x: io.dy(), y: dx, len, mask }],
            (&Lowered::Activation { act, len }, Some(dx)) => {
                vec![Op::ActivationGrad { y: io.y, dy: io.dy(), dx, act, len }]
            }
            _ => vec![],
        }
    }
}

/// Dense: x (rows, k) → y (rows, units) = act(x·Wᵀ + b), W stored (units, k).
#[derive(Debug, Clone)]
pub struct Dense {
    pub rows: usize,
    pub k: usize,
    pub units: usize,
    pub act: Act,
    pub w: Weight,
    pub b: Weight,
    /// dz (rows, units) = dy · act'(y), when the activation is not linear.
    pub dz: Option<T>,
}

impl Dense {
    pub fn forward(&self, io: Io) -> Vec<Op> {
        let (m, n, k) = (self.rows, self.units, self.k);
        vec![Op::Matmul(Matmul {
            a: io.x,
            b: self.w.value,
            c: io.y,
            m,
            n,
            k,
            trans_a: false,
            trans_b: true,
            bias: Some(self.b.value),
            act: self.act,
            dropout: None,
        })]
    }

    /// db = Σ_rows dz (dz = dy · act'(y) on the way), dW (units, k) = dzᵀ·x, dx (rows, k) = dz·W.
    pub fn backward(&self, io: Io) -> Vec<Op> {
        let (m, n, k) = (self.rows, self.units, self.k);
        let dz = self.dz.unwrap_or(io.dy());
        let mut ops = vec![bias_grad(io, self.b.grad(), self.dz, self.act, m, n)];
        ops.push(matmul(dz, io.x, self.w.grad(), (n, k, m), (true, false)));
        if let Some(dx) = io.dx {
            ops.push(matmul(dz, self.w.value, dx, (m, k, n), (false, false)));
        }
        ops
    }
}

/// Conv2D as im2col and a product: x (B, H, W, C) → cols (B·OH·OW, KH·KW·C) → y (B·OH·OW, F)
/// = act(cols·Wᵀ + b), the kernel stored (F, KH, KW, C).
#[derive(Debug, Clone)]
pub struct Conv {
    pub g: Window,
    pub filters: usize,
    pub act: Act,
    pub w: Weight,
    pub b: Weight,
    pub cols: T,
    /// The columns' gradient, when the input's is wanted.
    pub dcols: Option<T>,
    /// dz = dy · act'(y), when the activation is not linear.
    pub dz: Option<T>,
}

impl Conv {
    pub fn forward(&self, io: Io) -> Vec<Op> {
        let (g, cols) = (self.g, self.cols);
        vec![
            Op::Im2col { x: io.x, cols, g },
            Op::Matmul(Matmul {
                a: cols,
                b: self.w.value,
                c: io.y,
                m: g.out_pixels(),
                n: self.filters,
                k: g.patch(),
                trans_a: false,
                trans_b: true,
                bias: Some(self.b.value),
                act: self.act,
                dropout: None,
            }),
        ]
    }

    /// db = Σ dz, dW (F, patch) = dzᵀ·cols, dcols = dz·W, dx = col2im(dcols).
    pub fn backward(&self, io: Io) -> Vec<Op> {
        let (g, f) = (self.g, self.filters);
        let (m, k) = (g.out_pixels(), g.patch());
        let dz = self.dz.unwrap_or(io.dy());
        let mut ops = vec![bias_grad(io, self.b.grad(), self.dz, self.act, m, f)];
        ops.push(matmul(dz, self.cols, self.w.grad(), (f, k, m), (true, false)));
        if let (Some(dx), Some(dcols)) = (io.dx, self.dcols) {
            ops.push(matmul(dz, self.w.value, dcols, (m, k, f), (false, false)));
            ops.push(Op::Col2im { dcols, dx, g });
        }
        ops
    }
}

/// BatchNormalization over the last axis: x (rows, cols) → y = γ·(x − mean)/√(var + ε) + β,
/// with the batch's statistics in training (the moving ones updated on the way) and the moving
/// ones in inference.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    pub rows: usize,
    pub cols: usize,
    pub momentum: f32,
    pub eps: f32,
    pub gamma: Weight,
    pub beta: Weight,
    pub moving_mean: T,
    pub moving_var: T,
    /// The batch's statistics (cols), which backward reads.
    pub mean: T,
    pub var: T,
}

impl BatchNorm {
    pub fn forward(&self, io: Io, mode: Mode) -> Vec<Op> {
        let (rows, cols) = (self.rows, self.cols);
        let mut ops = vec![];
        let (mean, var) = match mode {
            Mode::Train => {
                ops.push(Op::BatchNormStats {
                    x: io.x,
                    mean: self.mean,
                    var: self.var,
                    moving_mean: self.moving_mean,
                    moving_var: self.moving_var,
                    rows,
                    cols,
                    momentum: self.momentum,
                });
                (self.mean, self.var)
            }
            Mode::Infer => (self.moving_mean, self.moving_var),
        };
        let (gamma, beta) = (self.gamma.value, self.beta.value);
        ops.push(Op::BatchNormApply { x: io.x, mean, var, gamma, beta, y: io.y, rows, cols, eps: self.eps });
        ops
    }

    /// dγ, dβ, and dx through the batch's statistics.
    pub fn backward(&self, io: Io) -> Vec<Op> {
        vec![Op::BatchNormGrad {
            x: io.x,
            dy: io.dy(),
            mean: self.mean,
            var: self.var,
            gamma: self.gamma.value,
            dx: io.dx,
            dgamma: self.gamma.grad(),
            dbeta: self.beta.grad(),
            rows: self.rows,
            cols: self.cols,
            eps: self.eps,
        }]
    }
}

/// db (cols) = Σ_rows dz, where dz = dy · act'(y) is written on the way when the layer owns a
/// `dz` (one op, first: the weight and input gradients read dz).
fn bias_grad(io: Io, db: T, dz: Option<T>, act: Act, rows: usize, cols: usize) -> Op {
    let through = dz.map(|dz| ActGrad { y: io.y, dz, act });
    Op::BiasGrad { dy: io.dy(), db, rows, cols, through, mask: None }
}

fn matmul(a: T, b: T, c: T, (m, n, k): (usize, usize, usize), (trans_a, trans_b): (bool, bool)) -> Op {
    Op::Matmul(Matmul { a, b, c, m, n, k, trans_a, trans_b, bias: None, act: Act::Linear, dropout: None })
}

/// A conv or pooling layer's window at batch size `batch`.
fn window(l: &Resolved, batch: usize) -> Window {
    let Shape::Image { h, w, c } = l.input else { unreachable!("resolve() checked the input") };
    let (k, s, padding) = match l.layer {
        Layer::Conv2d { kernel, strides, padding, .. } => (kernel, strides, padding),
        Layer::MaxPool2d { pool, strides, padding } | Layer::AvgPool2d { pool, strides, padding } => {
            (pool, strides.unwrap_or(pool), padding)
        }
        // One window: the whole image.
        Layer::GlobalAvgPool2d => (Size2::Rect([h, w]), Size2::Rect([h, w]), Padding::Valid),
        _ => unreachable!("not a windowed layer"),
    };
    Window::new(batch, (h, w, c), k.pair(), s.pair(), padding).expect("resolve() checked the window")
}
