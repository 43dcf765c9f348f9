//! The cases `check` runs: every op forward and backward, on random shapes that include sizes of
//! 1 and sizes that are not multiples of any workgroup size, and on the report's layer shapes.

use super::{Case, Data, Output, Rule};
use crate::cpu;
use crate::data::{pack_bytes, Augment};
use crate::graph::fuse::fold_dropout;
use crate::graph::layers::{BatchNorm, Conv, Dense, Io, Lowered, Mode, Weight};
use crate::graph::ops::{
    Act, ActGrad, Mask, Matmul, Op, Optimizer, Padding, State, Trained, Window, CHUNK, T,
};
use crate::graph::Program;
use crate::rng::Rng;

/// How many cases, and how big.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A few small random shapes per op: seconds on lavapipe.
    Quick,
    /// More random shapes, plus the report's layer shapes.
    Full,
}

/// Builds one case: its tensors, the data of its inputs, and what to compare.
struct Builder {
    program: Program,
    inputs: Vec<(T, Data)>,
    outputs: Vec<Output>,
}

impl Builder {
    fn new() -> Self {
        Builder { program: Program::default(), inputs: Vec::new(), outputs: Vec::new() }
    }

    fn input(&mut self, name: &str, data: Vec<f32>) -> T {
        let t = self.program.f32(name, data.len());
        self.inputs.push((t, Data::F32(data)));
        t
    }

    fn input_u32(&mut self, name: &str, data: Vec<u32>) -> T {
        let t = self.program.u32(name, data.len());
        self.inputs.push((t, Data::U32(data)));
        t
    }

    /// The loop state.
    fn state(&mut self, step: u32, cursor: u32, record: u32) -> T {
        self.input_u32("state", State { step, cursor, record, epoch: 0 }.words().to_vec())
    }

    /// An output written by the op: poisoned on the GPU first.
    fn output(&mut self, name: &'static str, len: usize, rule: Rule) -> T {
        let t = self.program.f32(name, len);
        self.outputs.push(Output { t, name, len, rule, poison: true });
        t
    }

    fn output_u32(&mut self, name: &'static str, len: usize) -> T {
        let t = self.program.u32(name, len);
        self.outputs.push(Output { t, name, len, rule: Rule::Exact, poison: true });
        t
    }

    /// A tensor the op reads and updates in place (weights, moments, counts).
    fn in_out(&mut self, name: &'static str, data: Vec<f32>, rule: Rule) -> T {
        let len = data.len();
        let t = self.input(name, data);
        self.outputs.push(Output { t, name, len, rule, poison: false });
        t
    }

    /// An arena holding `views` side by side (each at a chunk boundary), each view an input;
    /// with a rule, also an output the op updates in place.
    fn arena<const N: usize>(
        &mut self,
        arena: &str,
        views: [(&'static str, Vec<f32>); N],
        rule: Option<Rule>,
    ) -> [T; N] {
        let specs: Vec<(String, usize)> = views.iter().map(|(n, v)| (n.to_string(), v.len())).collect();
        let (_, ts) = self.program.arena(arena, &specs);
        for (&t, (name, data)) in ts.iter().zip(views) {
            let len = data.len();
            self.inputs.push((t, Data::F32(data)));
            if let Some(rule) = &rule {
                self.outputs.push(Output { t, name, len, rule: rule.clone(), poison: false });
            }
        }
        ts.try_into().expect("one view per value")
    }

    /// An intermediate result that is not compared.
    fn temp(&mut self, name: &str, len: usize) -> T {
        self.program.f32(name, len)
    }

    fn in_out_u32(&mut self, name: &'static str, data: Vec<u32>) -> T {
        let len = data.len();
        let t = self.input_u32(name, data);
        self.outputs.push(Output { t, name, len, rule: Rule::Exact, poison: false });
        t
    }

    fn case(
        mut self,
        op: &'static str,
        direction: &'static str,
        shape: String,
        ops: Vec<Op>,
        magnitude_ops: Option<Vec<Op>>,
    ) -> Case {
        let magnitude = magnitude_ops.map(|m| {
            let mut p = self.program.clone();
            p.lists = vec![m];
            p
        });
        self.program.add_list(ops);
        Case {
            op,
            direction,
            shape,
            program: self.program,
            inputs: self.inputs,
            outputs: self.outputs,
            magnitude,
        }
    }
}

/// All cases for a seed.
pub fn cases(seed: u64, size: Size) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let rng = &mut rng;
    let mut out = Vec::new();
    let full = size == Size::Full;
    let random_shapes = if full { 3 } else { 1 };

    // matmul in its four stored layouts, with and without the bias + activation epilogue.
    for _ in 0..random_shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let (m, n, k) = (random_dim(rng), random_dim(rng), random_dim(rng));
            let epilogue = rng.below(2) == 0;
            let act = if epilogue {
                *rng.pick(&[Act::Linear, Act::Relu, Act::Sigmoid, Act::Tanh])
            } else {
                Act::Linear
            };
            out.push(matmul_case(rng, m, n, k, ta, tb, epilogue, act));
        }
    }
    // A long K, split across workgroups.
    out.push(matmul_case(rng, 9, 13, if full { 3001 } else { 1100 }, true, false, false, Act::Linear));
    if full {
        // The report's MLP (batch 32, weights stored (out, in)) and CNN (im2col) products.
        out.push(matmul_case(rng, 32, 350, 784, false, true, true, Act::Relu));
        out.push(matmul_case(rng, 32, 80, 350, false, true, true, Act::Relu));
        out.push(matmul_case(rng, 32, 10, 80, false, true, true, Act::Linear));
        out.push(matmul_case(rng, 350, 784, 32, true, false, false, Act::Linear));
        out.push(matmul_case(rng, 32, 350, 80, false, false, false, Act::Linear));
        out.push(matmul_case(rng, 25_088, 64, 16, false, true, true, Act::Relu));
        out.push(matmul_case(rng, 64, 16, 25_088, true, false, false, Act::Linear));
        out.push(matmul_case(rng, 512, 64, 1024, false, true, true, Act::Relu));
        out.push(matmul_case(rng, 64, 1024, 512, true, false, false, Act::Linear));
        out.push(matmul_case(rng, 512, 1024, 64, false, false, false, Act::Linear));
    }

    for act in [Act::Linear, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let (batch, inputs, units) = (random_dim(rng), random_dim(rng), random_dim(rng));
        let (x, w) = (rng.vec(batch * inputs, -1.0, 1.0), rng.vec(units * inputs, -1.0, 1.0));
        let (bias, dy) = (rng.vec(units, -1.0, 1.0), rng.vec(batch * units, -1.0, 1.0));
        out.push(dense_with(x, w, bias, act, dy));
    }

    for act in [Act::Relu, Act::Sigmoid] {
        let (batch, inputs, units) = (random_dim(rng), random_dim(rng), random_dim(rng));
        out.push(dense_dropout_case(rng, batch, inputs, units, act));
    }
    // K long enough to be split across workgroups: the epilogue (and mask) in `sum_splits`.
    out.push(dense_dropout_case(rng, 9, if full { 3001 } else { 1100 }, 13, Act::Relu));
    if full {
        // The report MLP's two dropouts.
        out.push(dense_dropout_case(rng, 32, 784, 350, Act::Relu));
        out.push(dense_dropout_case(rng, 32, 350, 80, Act::Relu));
    }

    for _ in 0..random_shapes {
        let (rows, cols) = (random_dim(rng), random_dim(rng));
        out.push(bias_grad_case(rng, rows, cols));
    }
    if full {
        out.push(bias_grad_case(rng, 32, 350));
        out.push(bias_grad_case(rng, 25_088, 64));
    }

    for act in [Act::Relu, Act::Sigmoid, Act::Tanh] {
        let len = random_len(rng);
        out.push(activation_case(rng, act, len, false));
        out.push(activation_case(rng, act, len, true));
    }
    if full {
        out.push(activation_case(rng, Act::Relu, 32 * 350, false));
        out.push(activation_case(rng, Act::Relu, 32 * 350, true));
    }

    for _ in 0..random_shapes {
        let (batch, classes) = (rng.range(1, 70), rng.range(2, 20));
        out.push(softmax_case(rng, batch, classes, false));
        out.push(softmax_case(rng, batch, classes, true));
    }
    for batch in [rng.range(1, 70), 256, 257] {
        let classes = rng.range(2, 20);
        out.push(softmax_bias_case(rng, batch, classes));
    }
    if full {
        out.push(softmax_case(rng, 32, 10, true));
        out.push(softmax_bias_case(rng, 32, 10));
    }

    for _ in 0..random_shapes + 1 {
        let g = random_window(rng, true);
        let filters = rng.range(1, 9);
        out.push(conv_forward_case(rng, g, filters));
        out.push(conv_backward_case(rng, g, filters));
    }
    if full {
        let conv1 = Window::new(32, (28, 28, 1), (4, 4), (1, 1), Padding::Same).unwrap();
        let conv2 = Window::new(32, (7, 7, 64), (4, 4), (1, 1), Padding::Valid).unwrap();
        out.push(conv_forward_case(rng, conv1, 64));
        out.push(conv_backward_case(rng, conv1, 64));
        out.push(conv_forward_case(rng, conv2, 64));
        out.push(conv_backward_case(rng, conv2, 64));
    }

    for _ in 0..random_shapes + 1 {
        let g = random_window(rng, false);
        out.push(pool_case(rng, g, true));
        out.push(pool_case(rng, g, false));
    }
    if full {
        let pool1 = Window::new(32, (28, 28, 64), (4, 4), (4, 4), Padding::Valid).unwrap();
        let pool2 = Window::new(32, (4, 4, 64), (2, 2), (2, 2), Padding::Valid).unwrap();
        out.push(pool_case(rng, pool1, true));
        out.push(pool_case(rng, pool2, true));
        out.push(pool_case(rng, pool1, false));
    }

    for _ in 0..random_shapes {
        let g = random_window(rng, false);
        out.push(pool_dropout_case(rng, g));
    }
    if full {
        // The report CNN's second pool and its dropout.
        out.push(pool_dropout_case(
            rng,
            Window::new(32, (4, 4, 64), (2, 2), (2, 2), Padding::Valid).unwrap(),
        ));
    }

    for rate in [0.1, 0.6] {
        let len = random_len(rng);
        out.push(dropout_case(rng, len, rate, "forward"));
        out.push(dropout_case(rng, len, rate, "backward"));
    }
    if full {
        out.push(dropout_case(rng, 32 * 350, 0.1, "forward"));
        out.push(dropout_case(rng, 32 * 256, 0.6, "backward"));
    }

    for _ in 0..random_shapes {
        let (rows, cols) = (rng.range(1, 70), random_dim(rng));
        out.push(batchnorm_train_case(rng, rows, cols));
        out.push(batchnorm_inference_case(rng, rows, cols));
        out.push(batchnorm_backward_case(rng, rows, cols));
    }
    if full {
        out.push(batchnorm_train_case(rng, 32, 784));
        // Columns longer than a GPU's fused statistics-and-normalization kernel takes.
        out.push(batchnorm_train_case(rng, 32 * 7 * 7, 64));
        out.push(batchnorm_backward_case(rng, 32, 784));
        out.push(batchnorm_backward_case(rng, 32 * 7 * 7, 64));
    }

    let len = random_len(rng);
    out.push(l2_case(rng, len));
    let optimizers = [
        Optimizer::Sgd { lr: 0.1, momentum: 0.0, nesterov: false },
        Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: false },
        Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: true },
        Optimizer::Adam { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 },
        Optimizer::Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.1 },
    ];
    for (i, opt) in optimizers.into_iter().enumerate() {
        let len = random_len(rng);
        out.push(update_case(rng, opt, len, i % 2 == 0));
    }
    if full {
        out.push(l2_case(rng, 784 * 350));
        out.push(update_case(rng, optimizers[0], 784 * 350, true));
        out.push(update_case(rng, optimizers[3], 784 * 350, false));
    }

    for _ in 0..random_shapes {
        let (images, rows) = (rng.range(1, 40), rng.range(1, 70));
        out.push(gather_case(rng, images, 28, false));
        let (batch, side) = (rng.range(1, 40), rng.range(7, 31));
        out.push(gather_case(rng, batch, side, true));
        out.push(metrics_case(rng, rows, 10));
    }
    if full {
        out.push(gather_case(rng, 32, 28, false));
        out.push(gather_case(rng, 32, 28, true));
        out.push(metrics_case(rng, 32, 10));
    }
    out
}

/// A matrix dimension: often 1, often odd, sometimes past a few workgroup tiles.
fn random_dim(rng: &mut Rng) -> usize {
    match rng.below(4) {
        0 => 1,
        1 => rng.range(2, 9),
        2 => rng.range(10, 40),
        _ => rng.range(41, 140),
    }
}

/// A tensor length that is rarely a multiple of 256 and sometimes 1.
fn random_len(rng: &mut Rng) -> usize {
    match rng.below(4) {
        0 => 1,
        1 => rng.range(2, 300),
        _ => rng.range(301, 5000),
    }
}

/// A random conv or pooling window over small NHWC images; `valid` windows always fit.
fn random_window(rng: &mut Rng, conv: bool) -> Window {
    loop {
        let batch = rng.range(1, 3);
        let (h, w, c) = (rng.range(1, 12), rng.range(1, 12), rng.range(1, if conv { 5 } else { 4 }));
        let (kh, kw) = (rng.range(1, 5), rng.range(1, 5));
        let (sh, sw) = (rng.range(1, 3), rng.range(1, 3));
        let padding = *rng.pick(&[Padding::Same, Padding::Valid]);
        if let Some(g) = Window::new(batch, (h, w, c), (kh, kw), (sh, sw), padding) {
            return g;
        }
    }
}

fn window_shape(g: &Window, what: &str) -> String {
    format!(
        "{}×{}×{}×{} {what} {}×{} /{}×{} pad {},{} → {}×{}",
        g.batch, g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.oh, g.ow
    )
}

#[allow(clippy::too_many_arguments)]
fn matmul_case(
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    epilogue: bool,
    act: Act,
) -> Case {
    let (a, b) = (rng.vec(m * k, -1.0, 1.0), rng.vec(k * n, -1.0, 1.0));
    matmul_with(a, b, epilogue.then(|| rng.vec(n, -1.0, 1.0)), (m, n, k), (ta, tb), act)
}

/// `c = act(op(a) · op(b) + bias)` on the given data; see [`Matmul`] for the layouts.
pub fn matmul_with(
    a: Vec<f32>,
    bm: Vec<f32>,
    bias: Option<Vec<f32>>,
    (m, n, k): (usize, usize, usize),
    (trans_a, trans_b): (bool, bool),
    act: Act,
) -> Case {
    let epilogue = bias.is_some();
    let mut b = Builder::new();
    let a = b.input("a", a);
    let bm = b.input("b", bm);
    let bias = bias.map(|v| b.input("bias", v));
    let c = b.output("c", m * n, Rule::Sum { k: k + epilogue as usize });
    let op = Matmul { a, b: bm, c, m, n, k, trans_a, trans_b, bias, act, dropout: None };
    let shape = format!(
        "{}·{}{}",
        if trans_a { format!("({k}×{m})ᵀ") } else { format!("{m}×{k}") },
        if trans_b { format!("({n}×{k})ᵀ") } else { format!("{k}×{n}") },
        if epilogue { format!(" +bias {act:?}").to_lowercase() } else { String::new() }
    );
    let linear = Matmul { act: Act::Linear, ..op };
    let direction = if epilogue { "forward" } else { "backward" };
    b.case("matmul", direction, shape, vec![Op::Matmul(op)], Some(vec![Op::Matmul(linear)]))
}

/// A dense layer's forward and backward passes, lowered by the graph's own `layers::Dense`
/// (weights stored (out, in)): y = act(x·Wᵀ + b); then dz = dy·act'(y), dW = dzᵀ·x, db = Σ dz,
/// dx = dz·W.
pub fn dense_with(x: Vec<f32>, w: Vec<f32>, bias: Vec<f32>, act: Act, dy: Vec<f32>) -> Case {
    dense_case(x, w, bias, act, dy, None)
}

/// A dense layer followed by dropout, forward and backward, the dropout folded into the layer's
/// ops by the graph's own `fuse::fold_dropout` (asserted): the matmul epilogue writes y and y
/// under the mask; the bias gradient reads dy below the dropout and puts it under the mask.
fn dense_dropout_case(rng: &mut Rng, batch: usize, inputs: usize, units: usize, act: Act) -> Case {
    let (x, w) = (rng.vec(batch * inputs, -1.0, 1.0), rng.vec(units * inputs, -1.0, 1.0));
    let (bias, dy) = (rng.vec(units, -1.0, 1.0), rng.vec(batch * units, -1.0, 1.0));
    let dropout = (*rng.pick(&[0.1, 0.2, 0.6]), rng.next_u64() as u32, rng.below(100_000) as u32);
    dense_case(x, w, bias, act, dy, Some(dropout))
}

/// [`dense_with`], with a dropout (rate, seed, step) after the layer when given.
fn dense_case(
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    act: Act,
    dy: Vec<f32>,
    dropout: Option<(f32, u32, u32)>,
) -> Case {
    let (units, batch) = (bias.len(), dy.len() / bias.len());
    let inputs = x.len() / batch;
    let len = batch * units;
    let mut b = Builder::new();
    let x = b.input("x", x);
    let w = b.input("w", w);
    let bias = b.input("b", bias);
    let dy_in = b.input("dy", dy);
    let y = b.output("y", len, Rule::Sum { k: inputs + 1 });
    // With a dropout: its output y under the mask, and dy below it (the layer's own dy).
    let mask = dropout.map(|(rate, seed, step)| Mask { state: b.state(step, 0, 0), rate, seed });
    let dropped = mask.map(|m| {
        (m, b.output("y dropped", len, Rule::Sum { k: inputs + 1 }), b.temp("dy under the mask", len))
    });
    let dy = dropped.map_or(dy_in, |(_, _, dy)| dy);
    let dz = match mask {
        Some(_) => b.output("dz", len, Rule::Sum { k: 1 }),
        None => b.temp("dz", len),
    };
    let dw = b.output("dw", units * inputs, Rule::Sum { k: batch });
    let db = b.output("db", units, Rule::Sum { k: batch });
    let dx = b.output("dx", batch * inputs, Rule::Sum { k: units });
    let dense = Dense {
        rows: batch,
        k: inputs,
        units,
        act,
        w: Weight { value: w, grad: Some(dw) },
        b: Weight { value: bias, grad: Some(db) },
        dz: Some(dz),
    };
    let io = Io { x, y, dy: Some(dy), dx: Some(dx) };
    let steps = |d: &Dense| match dropped {
        None => [d.forward(io), d.backward(io)].concat(),
        Some((mask, yd, dy)) => {
            let pair =
                vec![Op::Dropout { x: y, y: yd, len, mask }, Op::Dropout { x: dy_in, y: dy, len, mask }];
            let folded = fold_dropout([d.forward(io), pair, d.backward(io)].concat());
            assert!(!folded.iter().any(|op| matches!(op, Op::Dropout { .. })), "both dropouts fold");
            folded
        }
    };
    // Σ|terms| of the gradients: the same products with |dy| standing for |dz| (|act'| ≤ 1).
    let magnitude = steps(&Dense { act: Act::Linear, ..dense.clone() });
    let shape = format!("{batch}×{inputs} → {units} {act:?}").to_lowercase();
    match mask {
        None => b.case("dense", "forward+backward", shape, steps(&dense), Some(magnitude)),
        Some(m) => b.case(
            "dense",
            "dropout folded",
            format!("{shape}, dropout {}", m.rate),
            steps(&dense),
            Some(magnitude),
        ),
    }
}

/// The bias gradient alone, or through an activation (its dz compared too).
fn bias_grad_case(rng: &mut Rng, rows: usize, cols: usize) -> Case {
    let mut b = Builder::new();
    let n = rows * cols;
    let dy = b.input("dy", rng.vec(n, -1.0, 1.0));
    let act = *rng.pick(&[None, Some(Act::Relu), Some(Act::Sigmoid), Some(Act::Tanh)]);
    let through = act.map(|act| {
        // Outputs the activation can give, with exact zeros for ReLU.
        let y = match act {
            Act::Relu => rng.vec(n, -1.0, 1.0).iter().map(|v| v.max(0.0)).collect(),
            Act::Sigmoid => rng.vec(n, 0.0, 1.0),
            _ => rng.vec(n, -1.0, 1.0),
        };
        let y = b.input("y", y);
        let dz = b.output("dz", n, Rule::Sum { k: 1 });
        ActGrad { y, dz, act }
    });
    let db = b.output("db", cols, Rule::Sum { k: rows });
    let through_label = act.map_or(String::new(), |a| format!(" through {a:?}").to_lowercase());
    b.case(
        "bias_grad",
        "backward",
        format!("Σ rows of {rows}×{cols}{through_label}"),
        vec![Op::BiasGrad { dy, db, rows, cols, through, mask: None }],
        None,
    )
}

fn activation_case(rng: &mut Rng, act: Act, len: usize, backward: bool) -> Case {
    let mut b = Builder::new();
    let name = format!("{act:?}").to_lowercase();
    let x = b.input("x", rng.vec(len, -6.0, 6.0));
    if !backward {
        let y = b.output("y", len, Rule::Sum { k: 1 });
        return b.case(
            "activation",
            "forward",
            format!("{name} {len}"),
            vec![Op::Activation { x, y, act, len }],
            None,
        );
    }
    // The backward pass reads the forward output y; compute it from x first.
    let y = b.temp("y", len);
    let dy = b.input("dy", rng.vec(len, -1.0, 1.0));
    let dx = b.output("dx", len, Rule::Sum { k: 1 });
    let ops = vec![Op::Activation { x, y, act, len }, Op::ActivationGrad { y, dy, dx, act, len }];
    b.case("activation", "backward", format!("{name} {len}"), ops, None)
}

fn softmax_case(rng: &mut Rng, batch: usize, classes: usize, backward: bool) -> Case {
    let logits = rng.vec(batch * classes, -8.0, 8.0);
    let labels = (0..batch).map(|_| rng.below(classes) as u32).collect();
    let smoothing = *rng.pick(&[0.0, 0.0, 0.1, 0.3]);
    softmax_with(logits, labels, classes, !backward, backward, smoothing)
}

/// Softmax cross-entropy of logits (B, C) with the loss averaged over the batch: the per-sample
/// loss, and the probabilities and/or the gradient.
pub fn softmax_with(
    logits: Vec<f32>,
    labels: Vec<u32>,
    classes: usize,
    probs: bool,
    grad: bool,
    smoothing: f32,
) -> Case {
    let batch = labels.len();
    let mut b = Builder::new();
    let logits = b.input("logits", logits);
    let labels = b.input_u32("labels", labels);
    let loss = b.output("loss", batch, Rule::Sum { k: classes });
    let pred = b.output_u32("pred", batch);
    let probs = probs.then(|| b.output("probs", batch * classes, Rule::Sum { k: classes }));
    let dlogits = grad.then(|| b.output("dlogits", batch * classes, Rule::Sum { k: classes }));
    let scale = 1.0 / batch as f32;
    let op = Op::SoftmaxXent { logits, labels, loss, pred, probs, dlogits, batch, classes, scale, smoothing };
    let direction = if grad { "backward" } else { "forward" };
    let shape = if smoothing > 0.0 {
        format!("{batch}×{classes} smoothing {smoothing}")
    } else {
        format!("{batch}×{classes}")
    };
    b.case("softmax_xent", direction, shape, vec![op], None)
}

/// The loss's gradient followed by the bias gradient of the layer that made the logits, as a
/// training step has them (a GPU runs the pair as one kernel up to 256 rows).
fn softmax_bias_case(rng: &mut Rng, batch: usize, classes: usize) -> Case {
    let mut b = Builder::new();
    let logits = b.input("logits", rng.vec(batch * classes, -8.0, 8.0));
    let labels = b.input_u32("labels", (0..batch).map(|_| rng.below(classes) as u32).collect());
    let loss = b.output("loss", batch, Rule::Sum { k: classes });
    let pred = b.output_u32("pred", batch);
    let dlogits = b.output("dlogits", batch * classes, Rule::Sum { k: classes });
    let db = b.output("db", classes, Rule::Sum { k: batch });
    let (scale, smoothing) = (1.0 / batch as f32, *rng.pick(&[0.0, 0.1]));
    let ops = vec![
        Op::SoftmaxXent {
            logits,
            labels,
            loss,
            pred,
            probs: None,
            dlogits: Some(dlogits),
            batch,
            classes,
            scale,
            smoothing,
        },
        Op::BiasGrad { dy: dlogits, db, rows: batch, cols: classes, through: None, mask: None },
    ];
    b.case("softmax_xent", "backward+bias", format!("{batch}×{classes}"), ops, None)
}

fn conv_forward_case(rng: &mut Rng, g: Window, filters: usize) -> Case {
    let (x, w) = (rng.vec(g.input_len(), -1.0, 1.0), rng.vec(filters * g.patch(), -1.0, 1.0));
    conv_forward_with(g, x, w, rng.vec(filters, -1.0, 1.0), Act::Relu)
}

/// The Conv2D lowering the graph runs (`layers::Conv`), with the kernel stored (F, KH, KW, C);
/// no gradients unless `backward`.
fn conv_layer(
    b: &mut Builder,
    g: Window,
    kernel: Vec<f32>,
    bias: Vec<f32>,
    act: Act,
    backward: bool,
) -> Conv {
    let (filters, m, k) = (bias.len(), g.out_pixels(), g.patch());
    let value = b.input("kernel", kernel);
    let bias = b.input("bias", bias);
    let (dw, db, dcols) = if backward {
        (
            Some(b.output("dkernel", filters * k, Rule::Sum { k: m })),
            Some(b.output("dbias", filters, Rule::Sum { k: m })),
            Some(b.output("dcols", m * k, Rule::Sum { k: filters })),
        )
    } else {
        (None, None, None)
    };
    let cols = if backward { b.temp("cols", m * k) } else { b.output("cols", m * k, Rule::Exact) };
    Conv {
        g,
        filters,
        act,
        w: Weight { value, grad: dw },
        b: Weight { value: bias, grad: db },
        cols,
        dcols,
        dz: None,
    }
}

/// Conv2D forward: im2col, then cols · kernelᵀ + bias and the activation.
pub fn conv_forward_with(g: Window, x: Vec<f32>, kernel: Vec<f32>, bias: Vec<f32>, act: Act) -> Case {
    let filters = bias.len();
    let mut b = Builder::new();
    let x = b.input("x", x);
    let conv = conv_layer(&mut b, g, kernel, bias, act, false);
    let y = b.output("y", g.out_pixels() * filters, Rule::Sum { k: g.patch() + 1 });
    let io = Io { x, y, dy: None, dx: None };
    let magnitude = Conv { act: Act::Linear, ..conv.clone() }.forward(io);
    b.case(
        "conv2d",
        "forward",
        window_shape(&g, &format!("conv {filters}×")),
        conv.forward(io),
        Some(magnitude),
    )
}

fn conv_backward_case(rng: &mut Rng, g: Window, filters: usize) -> Case {
    let x = rng.vec(g.input_len(), -1.0, 1.0);
    let w = rng.vec(filters * g.patch(), -1.0, 1.0);
    conv_backward_with(g, x, w, rng.vec(g.out_pixels() * filters, -1.0, 1.0))
}

/// Conv2D backward (linear: dz = dy): dkernel = dyᵀ · cols, dbias = Σ dy,
/// dx = col2im(dy · kernel); the columns come from the forward pass's im2col.
pub fn conv_backward_with(g: Window, x: Vec<f32>, kernel: Vec<f32>, dy: Vec<f32>) -> Case {
    let filters = kernel.len() / g.patch();
    let mut b = Builder::new();
    let x = b.input("x", x);
    let dy = b.input("dy", dy);
    let conv = conv_layer(&mut b, g, kernel, vec![0.0; filters], Act::Linear, true);
    let dx = b.output("dx", g.input_len(), Rule::Sum { k: filters * g.kh * g.kw });
    let io = Io { x, y: dy, dy: Some(dy), dx: Some(dx) };
    let mut ops = vec![Op::Im2col { x, cols: conv.cols, g }];
    ops.extend(conv.backward(io));
    b.case("conv2d", "backward", window_shape(&g, &format!("conv {filters}×")), ops, None)
}

/// The block the `strong` preset repeats — Conv2D (linear) → BatchNorm (training mode) → ReLU →
/// MaxPool — forward, then backward from `dy` on the pool's output, lowered by the graph's own
/// layer structs in the order the graph runs them (backward mirroring forward). For Keras's
/// `conv_bn_relu_pool` case of keras-ops-extra.json (tests/golden_ops.rs), which judges its
/// outputs with the model-level tolerance; not one of `check`'s cases.
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_relu_pool_with(
    conv: Window,
    pool: (usize, usize),
    x: Vec<f32>,
    kernel: Vec<f32>,
    bias: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    dy: Vec<f32>,
    (momentum, eps): (f32, f32),
) -> Case {
    let filters = bias.len();
    let (m, k) = (conv.out_pixels(), conv.patch());
    let pool = Window::new(conv.batch, (conv.oh, conv.ow, filters), pool, pool, Padding::Valid)
        .expect("a pool window");
    let mut b = Builder::new();
    let x = b.input("x", x);
    let kernel = b.input("kernel", kernel);
    let bias = b.input("bias", bias);
    let gamma = b.input("gamma", gamma);
    let beta = b.input("beta", beta);
    let moving_mean = b.input("moving_mean", vec![0.0; filters]);
    let moving_var = b.input("moving_var", vec![1.0; filters]);
    let dpooled = b.input("dy", dy);
    let (conv_y, bn_y, relu_y) =
        (b.temp("conv y", m * filters), b.temp("bn y", m * filters), b.temp("relu y", m * filters));
    let (d_relu, d_bn, d_conv) =
        (b.temp("d relu", m * filters), b.temp("d bn", m * filters), b.temp("d conv", m * filters));
    let argmax = b.program.u32("argmax", pool.out_pixels() * filters);
    let y = b.output("y", pool.out_pixels() * filters, Rule::Sum { k: k + 1 });
    let dx = b.output("dx", conv.input_len(), Rule::Sum { k: m });
    let dkernel = b.output("dkernel", filters * k, Rule::Sum { k: m });
    let dbias = b.output("dbias", filters, Rule::Sum { k: m });
    let dgamma = b.output("dgamma", filters, Rule::Sum { k: m });
    let dbeta = b.output("dbeta", filters, Rule::Sum { k: m });
    let conv_layer = Conv {
        g: conv,
        filters,
        act: Act::Linear,
        w: Weight { value: kernel, grad: Some(dkernel) },
        b: Weight { value: bias, grad: Some(dbias) },
        cols: b.temp("cols", m * k),
        dcols: Some(b.temp("dcols", m * k)),
        dz: None,
    };
    let bn = BatchNorm {
        rows: m,
        cols: filters,
        momentum,
        eps,
        gamma: Weight { value: gamma, grad: Some(dgamma) },
        beta: Weight { value: beta, grad: Some(dbeta) },
        moving_mean,
        moving_var,
        mean: b.temp("batch mean", filters),
        var: b.temp("batch variance", filters),
    };
    let relu = Lowered::Activation { act: Act::Relu, len: m * filters };
    let max = Lowered::MaxPool { g: pool, argmax };
    let io = |x, y, dy, dx| Io { x, y, dy: Some(dy), dx: Some(dx) };
    let ops = [
        conv_layer.forward(io(x, conv_y, d_conv, dx)),
        bn.forward(io(conv_y, bn_y, d_bn, d_conv), Mode::Train),
        relu.forward(io(bn_y, relu_y, d_relu, d_bn), Mode::Train),
        max.forward(io(relu_y, y, dpooled, d_relu), Mode::Train),
        max.backward(io(relu_y, y, dpooled, d_relu)),
        relu.backward(io(bn_y, relu_y, d_relu, d_bn)),
        bn.backward(io(conv_y, bn_y, d_bn, d_conv)),
        conv_layer.backward(io(x, conv_y, d_conv, dx)),
    ]
    .concat();
    b.case("block", "conv-bn-relu-pool", window_shape(&conv, &format!("conv {filters}×")), ops, None)
}

fn pool_case(rng: &mut Rng, g: Window, max: bool) -> Case {
    // Values on a coarse grid, so that windows often hold ties.
    let x = rng.vec(g.input_len(), -2.0, 2.0).iter().map(|v| (v * 2.0).round() / 2.0).collect();
    pool_with(g, max, x, rng.vec(g.out_pixels() * g.c, -1.0, 1.0))
}

/// Max or average pooling forward, then backward with dy.
pub fn pool_with(g: Window, max: bool, x: Vec<f32>, dy: Vec<f32>) -> Case {
    let mut b = Builder::new();
    let x = b.input("x", x);
    let dy = b.input("dy", dy);
    let window = g.kh * g.kw;
    let (name, ops) = if max {
        let y = b.output("y", g.out_pixels() * g.c, Rule::Exact);
        let argmax = b.output_u32("argmax", g.out_pixels() * g.c);
        let dx = b.output("dx", g.input_len(), Rule::Exact);
        let ops = vec![
            Op::MaxPool { x, y, argmax, g, dropout: None },
            Op::MaxPoolGrad { dy, argmax, dx, g, mask: None },
        ];
        ("maxpool", ops)
    } else {
        let y = b.output("y", g.out_pixels() * g.c, Rule::Sum { k: window });
        let dx = b.output("dx", g.input_len(), Rule::Sum { k: window });
        ("avgpool", vec![Op::AvgPool { x, y, g }, Op::AvgPoolGrad { dy, dx, g }])
    };
    b.case(name, "forward+backward", window_shape(&g, "pool"), ops, None)
}

/// Max pooling followed by dropout, forward and backward, the dropout folded into the pooling
/// ops by `fuse::fold_dropout` (asserted).
fn pool_dropout_case(rng: &mut Rng, g: Window) -> Case {
    let mut b = Builder::new();
    let n = g.out_pixels() * g.c;
    let x = b.input("x", rng.vec(g.input_len(), -2.0, 2.0).iter().map(|v| (v * 2.0).round() / 2.0).collect());
    let dyd = b.input("dy", rng.vec(n, -1.0, 1.0));
    let state = b.state(rng.below(100_000) as u32, 0, 0);
    let mask = Mask { state, rate: *rng.pick(&[0.1, 0.6]), seed: rng.next_u64() as u32 };
    let y = b.output("y", n, Rule::Exact);
    let argmax = b.output_u32("argmax", n);
    let yd = b.output("y dropped", n, Rule::Exact);
    let dy = b.temp("dy under the mask", n);
    let dx = b.output("dx", g.input_len(), Rule::Exact);
    let ops = fold_dropout(vec![
        Op::MaxPool { x, y, argmax, g, dropout: None },
        Op::Dropout { x: y, y: yd, len: n, mask },
        Op::Dropout { x: dyd, y: dy, len: n, mask },
        Op::MaxPoolGrad { dy, argmax, dx, g, mask: None },
    ]);
    assert!(!ops.iter().any(|op| matches!(op, Op::Dropout { .. })), "both dropouts fold");
    b.case("maxpool", "dropout folded", window_shape(&g, "pool"), ops, None)
}

fn dropout_case(rng: &mut Rng, len: usize, rate: f32, direction: &'static str) -> Case {
    let mut b = Builder::new();
    let x = b.input(if direction == "forward" { "x" } else { "dy" }, rng.vec(len, -3.0, 3.0));
    let state = b.state(rng.below(100_000) as u32, 0, 0);
    let y = b.output(if direction == "forward" { "y" } else { "dx" }, len, Rule::Exact);
    let op = Op::Dropout { x, y, len, mask: Mask { state, rate, seed: rng.next_u64() as u32 } };
    b.case("dropout", direction, format!("{len} rate {rate}"), vec![op], None)
}

/// Inputs of a batch-norm case: x with a per-column offset and scale, and its parameters.
fn batchnorm_inputs(rng: &mut Rng, rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let offsets = rng.vec(cols, -2.0, 2.0);
    let scales = rng.vec(cols, 0.1, 3.0);
    let x = (0..rows * cols).map(|i| offsets[i % cols] + scales[i % cols] * rng.uniform(-1.0, 1.0)).collect();
    (x, rng.vec(cols, 0.5, 1.5), rng.vec(cols, -0.5, 0.5))
}

const BN_EPS: f32 = 1e-3;
const BN_MOMENTUM: f32 = 0.99;

fn batchnorm_train_case(rng: &mut Rng, rows: usize, cols: usize) -> Case {
    let (xs, gammas, betas) = batchnorm_inputs(rng, rows, cols);
    let (mm0, mv0) = (rng.vec(cols, -0.5, 0.5), rng.vec(cols, 0.5, 2.0));
    batchnorm_train_with(xs, gammas, betas, mm0, mv0)
}

/// A training-mode batch-norm forward pass over x (rows, cols): statistics, moving averages, y.
pub fn batchnorm_train_with(
    xs: Vec<f32>,
    gammas: Vec<f32>,
    betas: Vec<f32>,
    mm0: Vec<f32>,
    mv0: Vec<f32>,
) -> Case {
    let cols = gammas.len();
    let rows = xs.len() / cols;
    // Σ|terms| of each output, from the reference's own statistics.
    let (mut mean, mut var, mut mm, mut mv) = (vec![0.0; cols], vec![0.0; cols], mm0.clone(), mv0.clone());
    cpu::batchnorm::stats(&xs, rows, cols, BN_MOMENTUM, &mut mean, &mut var, &mut mm, &mut mv);
    let mean_abs: Vec<f32> =
        (0..cols).map(|j| (0..rows).map(|r| xs[r * cols + j].abs()).sum::<f32>() / rows as f32).collect();
    let moving_abs =
        |start: &[f32], stat: &[f32]| (0..cols).map(|j| start[j].abs() + stat[j]).collect::<Vec<f32>>();
    let y_abs: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let j = i % cols;
            let inv = gammas[j].abs() / (var[j] + BN_EPS).sqrt();
            let xhat = (xs[i] - mean[j]).abs() / (var[j] + BN_EPS).sqrt();
            xs[i].abs() * inv
                + betas[j].abs()
                + mean[j].abs() * inv
                + gammas[j].abs() * xhat
                + mean_abs[j] * inv
        })
        .collect();
    let mut b = Builder::new();
    let x = b.input("x", xs);
    let gamma = b.input("gamma", gammas);
    let beta = b.input("beta", betas);
    let mean_t = b.output("mean", cols, Rule::SumOf { k: rows, abs_sum: mean_abs.clone() });
    let var_t = b.output("var", cols, Rule::SumOf { k: rows, abs_sum: var.clone() });
    let moving_mean =
        b.in_out("moving_mean", mm0.clone(), Rule::SumOf { k: rows, abs_sum: moving_abs(&mm0, &mean_abs) });
    let moving_var =
        b.in_out("moving_var", mv0.clone(), Rule::SumOf { k: rows, abs_sum: moving_abs(&mv0, &var) });
    let y = b.output("y", rows * cols, Rule::SumOf { k: rows, abs_sum: y_abs });
    let ops = vec![
        Op::BatchNormStats {
            x,
            mean: mean_t,
            var: var_t,
            moving_mean,
            moving_var,
            rows,
            cols,
            momentum: BN_MOMENTUM,
        },
        Op::BatchNormApply { x, mean: mean_t, var: var_t, gamma, beta, y, rows, cols, eps: BN_EPS },
    ];
    b.case("batchnorm", "forward", format!("train {rows}×{cols}"), ops, None)
}

fn batchnorm_inference_case(rng: &mut Rng, rows: usize, cols: usize) -> Case {
    let (xs, gammas, betas) = batchnorm_inputs(rng, rows, cols);
    batchnorm_inference_with(xs, gammas, betas, rng.vec(cols, -0.5, 0.5), rng.vec(cols, 0.5, 2.0))
}

/// An inference-mode batch-norm pass: y from the moving statistics.
pub fn batchnorm_inference_with(
    xs: Vec<f32>,
    gammas: Vec<f32>,
    betas: Vec<f32>,
    mms: Vec<f32>,
    mvs: Vec<f32>,
) -> Case {
    let cols = gammas.len();
    let rows = xs.len() / cols;
    let mut b = Builder::new();
    let y_abs = (0..rows * cols)
        .map(|i| {
            let j = i % cols;
            let inv = gammas[j].abs() / (mvs[j] + BN_EPS).sqrt();
            xs[i].abs() * inv + betas[j].abs() + mms[j].abs() * inv
        })
        .collect();
    let x = b.input("x", xs);
    let gamma = b.input("gamma", gammas);
    let beta = b.input("beta", betas);
    let moving_mean = b.input("moving_mean", mms);
    let moving_var = b.input("moving_var", mvs);
    let y = b.output("y", rows * cols, Rule::SumOf { k: 3, abs_sum: y_abs });
    let op =
        Op::BatchNormApply { x, mean: moving_mean, var: moving_var, gamma, beta, y, rows, cols, eps: BN_EPS };
    b.case("batchnorm", "forward", format!("inference {rows}×{cols}"), vec![op], None)
}

fn batchnorm_backward_case(rng: &mut Rng, rows: usize, cols: usize) -> Case {
    let (xs, gammas, _) = batchnorm_inputs(rng, rows, cols);
    let mut case = batchnorm_backward_with(xs, rng.vec(rows * cols, -1.0, 1.0), gammas);
    if rng.below(2) == 0 {
        // As after the input layer, where nothing needs dx: only dgamma and dbeta.
        case.outputs.retain(|o| o.name != "dx");
        for op in &mut case.program.lists[0] {
            if let Op::BatchNormGrad { dx, .. } = op {
                *dx = None;
            }
        }
        case.shape += " without dx";
    }
    case
}

/// The batch-norm backward pass through the batch statistics of x (rows, cols).
pub fn batchnorm_backward_with(xs: Vec<f32>, dys: Vec<f32>, gammas: Vec<f32>) -> Case {
    let cols = gammas.len();
    let rows = xs.len() / cols;
    let (mut means, mut vars, mut mm, mut mv) =
        (vec![0.0; cols], vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]);
    cpu::batchnorm::stats(&xs, rows, cols, BN_MOMENTUM, &mut means, &mut vars, &mut mm, &mut mv);
    let inv: Vec<f32> = vars.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
    let xhat = |i: usize| (xs[i] - means[i % cols]) * inv[i % cols];
    let col_sum = |f: &dyn Fn(usize) -> f32| {
        (0..cols).map(|j| (0..rows).map(|r| f(r * cols + j)).sum::<f32>()).collect::<Vec<f32>>()
    };
    let dbeta_abs = col_sum(&|i| dys[i].abs());
    let dgamma_abs = col_sum(&|i| (dys[i] * xhat(i)).abs());
    let dx_abs = (0..rows * cols)
        .map(|i| {
            let j = i % cols;
            (gammas[j] * inv[j]).abs() / rows as f32
                * (rows as f32 * dys[i].abs() + dbeta_abs[j] + xhat(i).abs() * dgamma_abs[j])
        })
        .collect();
    let mut b = Builder::new();
    let x = b.input("x", xs.clone());
    let dy = b.input("dy", dys.clone());
    let mean = b.input("mean", means.clone());
    let var = b.input("var", vars.clone());
    let gamma = b.input("gamma", gammas);
    let dgamma = b.output("dgamma", cols, Rule::SumOf { k: rows, abs_sum: dgamma_abs });
    let dbeta = b.output("dbeta", cols, Rule::SumOf { k: rows, abs_sum: dbeta_abs });
    let dx = b.output("dx", rows * cols, Rule::SumOf { k: rows, abs_sum: dx_abs });
    let op =
        Op::BatchNormGrad { x, dy, mean, var, gamma, dx: Some(dx), dgamma, dbeta, rows, cols, eps: BN_EPS };
    b.case("batchnorm", "backward", format!("{rows}×{cols}"), vec![op], None)
}

fn l2_case(rng: &mut Rng, len: usize) -> Case {
    let c = *rng.pick(&[1e-6, 1e-4, 0.01]);
    l2_with(rng.vec(len, -1.0, 1.0), rng.vec(len, -1.0, 1.0), c)
}

/// The L2 penalty c·Σw² by chunk of the parameter arena, and its gradient added to g by an
/// update at rate 0 (which leaves w as it is). The arena's first weight is not regularized:
/// its chunk's partial must be written 0.
pub fn l2_with(w: Vec<f32>, g: Vec<f32>, c: f32) -> Case {
    let len = w.len();
    let other = vec![0.25; 3];
    let mut b = Builder::new();
    let [other, w] = b.arena("parameters", [("other", other), ("w", w)], None);
    let [other_g, g] = b.arena("gradients", [("other g", vec![0.0; 3]), ("g", g)], Some(Rule::Sum { k: 2 }));
    let chunks = 1 + len.div_ceil(CHUNK).max(1);
    let partials = b.output("partials", chunks, Rule::Sum { k: CHUNK });
    let state = b.state(0, 0, 0);
    let rates = b.input("rates", vec![0.0, 0.0]);
    let trained = |w, g, len, l2| Trained { w, g, m: None, v: None, len, l2 };
    let ops = vec![
        Op::L2Penalty { weights: vec![(w, c)], partials },
        Op::Update {
            weights: vec![trained(other, other_g, 3, 0.0), trained(w, g, len, c)],
            state,
            rates,
            opt: Optimizer::Sgd { lr: 0.0, momentum: 0.0, nesterov: false },
            penalties: None,
        },
    ];
    b.case("l2", "forward+backward", format!("{len} c {c}"), ops, None)
}

/// One update of three weights of odd sizes in one arena, with L2 factors 0, c and c′: the
/// gradients with their penalty terms, the weights and the slots; with `penalty`, also the
/// penalty's partials from the weights before the update (a training step's).
fn update_case(rng: &mut Rng, opt: Optimizer, len: usize, penalty: bool) -> Case {
    let mut b = Builder::new();
    // Step `step` of an epoch whose first step was `first`: the rate is read from row `row`.
    let (first, row) = (rng.below(3000) as u64, rng.below(8));
    let step = first + row as u64;
    let state = b.state(step as u32, 0, row as u32);
    let rates = b.input("rates", opt.step_rates(first, 8, &crate::graph::lr::Schedule::Constant, &[]));
    let lens = [len, rng.range(1, 300), rng.range(1, 40)];
    let l2 = [0.0, *rng.pick(&[1e-6, 1e-4, 0.01]), *rng.pick(&[1e-4, 0.1])];
    let mut values = |lo: f32, hi: f32| lens.map(|n| rng.vec(n, lo, hi));
    let [w0, w1, w2] = values(-1.0, 1.0);
    let [g0, g1, g2] = values(-1.0, 1.0);
    let (m0, m1, m2) = {
        let [a, b, c] = values(-0.1, 0.1);
        (a, b, c)
    };
    let [v0, v1, v2] = values(0.0, 0.1);
    let w = b.arena("parameters", [("w0", w0), ("w1", w1), ("w2", w2)], Some(Rule::Update { k: 6 }));
    let g = b.arena("gradients", [("g0", g0), ("g1", g1), ("g2", g2)], Some(Rule::Sum { k: 2 }));
    let (name, m, v) = match opt {
        Optimizer::Sgd { momentum, nesterov, .. } if momentum > 0.0 => {
            let m = b.arena(
                "slot0",
                [("velocity0", m0), ("velocity1", m1), ("velocity2", m2)],
                Some(Rule::Update { k: 4 }),
            );
            (if nesterov { "sgd nesterov" } else { "sgd momentum" }, Some(m), None)
        }
        Optimizer::Sgd { .. } => ("sgd", None, None),
        Optimizer::Adam { .. } => {
            let m = b.arena("slot0", [("m0", m0), ("m1", m1), ("m2", m2)], Some(Rule::Update { k: 4 }));
            let v = b.arena("slot1", [("v0", v0), ("v1", v1), ("v2", v2)], Some(Rule::Update { k: 4 }));
            (
                if matches!(opt, Optimizer::Adam { weight_decay, .. } if weight_decay > 0.0) {
                    "adamw"
                } else {
                    "adam"
                },
                Some(m),
                Some(v),
            )
        }
    };
    let weights = (0..3)
        .map(|i| Trained {
            w: w[i],
            g: g[i],
            m: m.map(|m| m[i]),
            v: v.map(|v| v[i]),
            len: lens[i],
            l2: l2[i],
        })
        .collect();
    let chunks = lens.iter().map(|n| n.div_ceil(CHUNK)).sum();
    let penalties = penalty.then(|| b.output("penalty partials", chunks, Rule::Sum { k: CHUNK }));
    let op = Op::Update { weights, state, rates, opt, penalties };
    let with = if penalty { " with its penalty" } else { "" };
    let shape =
        format!("{name} {}+{}+{} l2 {:e},{:e} step {step}{with}", lens[0], lens[1], lens[2], l2[1], l2[2]);
    b.case("optimizer", "update", shape, vec![op], None)
}

/// A batch of `side`×`side` images from a random place of a shuffled split; with `augment`,
/// random settings of every change (each image's own draw, at a random epoch).
fn gather_case(rng: &mut Rng, batch: usize, side: usize, augment: bool) -> Case {
    let pixels = side * side;
    let mut b = Builder::new();
    let n_images = batch + rng.range(0, 50);
    let bytes: Vec<u8> = (0..n_images * pixels).map(|_| rng.below(256) as u8).collect();
    let images = b.input_u32("images", pack_bytes(&bytes));
    let labels = b.input_u32("label_table", (0..n_images).map(|_| rng.below(10) as u32).collect());
    let mut order: Vec<u32> = (0..n_images as u32).collect();
    rng.shuffle(&mut order);
    let cursor = rng.below(n_images - batch + 1) as u32;
    let index = b.input_u32("index", order);
    let epoch = rng.below(1000) as u32;
    let state = b.input_u32("state", State { step: 0, cursor, record: 0, epoch }.words().to_vec());
    let x = b.output("x", batch * pixels, Rule::Exact);
    let y = b.output_u32("y", batch);
    let augment = augment.then(|| Augment {
        shift: rng.range(0, 4) as u32,
        flip: rng.below(2) == 0,
        erase: *rng.pick(&[0.0, 0.3, 1.0]),
    });
    let seed = rng.next_u64() as u32;
    let op = Op::Gather { images, labels, index, state, x, y, batch, pixels, augment, seed };
    let what = augment.map_or(String::new(), |a| format!(" augmented {a} epoch {epoch}"));
    b.case("data", "gather", format!("{batch}×{pixels} of {n_images} from {cursor}{what}"), vec![op], None)
}

/// Predictions (with ties among the logits), confusion counts and the batch record.
fn metrics_case(rng: &mut Rng, batch: usize, classes: usize) -> Case {
    let mut b = Builder::new();
    let values: Vec<f32> = rng.vec(batch * classes, -2.0, 2.0).iter().map(|v| v.round()).collect();
    // About half the labels are the prediction, so that accuracy counts are neither 0 nor all.
    let mut best = vec![0; batch];
    cpu::data::argmax(&values, classes, &mut best);
    let labels =
        (0..batch).map(|i| if rng.below(2) == 0 { best[i] } else { rng.below(classes) as u32 }).collect();
    let logits = b.input("logits", values);
    let labels = b.input_u32("labels", labels);
    let loss = b.output("loss", batch, Rule::Sum { k: classes });
    // As many penalty partials as a small model's arena has chunks: more than the kernel's 64 lanes.
    let slots = rng.range(1, 300);
    let penalties = b.input("penalties", rng.vec(slots, 0.0, 1e-3));
    let record_row = rng.below(4) as u32;
    let pred = b.output_u32("pred", batch);
    let counts = b.in_out_u32("confusion", (0..classes * classes).map(|_| rng.below(5) as u32).collect());
    let records = b.in_out("records", vec![0.0; 12], Rule::Sum { k: batch * classes + slots });
    // Record writes the row the state names, then advances the state.
    let state =
        b.in_out_u32("state", State { step: 7, cursor: 5, record: record_row, epoch: 2 }.words().to_vec());
    // Training steps add penalties and advance the optimizer step; evaluation steps neither.
    let train = rng.below(2) == 0;
    let ops = vec![
        Op::SoftmaxXent {
            logits,
            labels,
            loss,
            pred,
            probs: None,
            dlogits: None,
            batch,
            classes,
            scale: 1.0 / batch as f32,
            smoothing: 0.0,
        },
        Op::Confusion { labels, pred, counts, batch, classes },
        Op::Record {
            loss,
            pred,
            labels,
            penalties: train.then_some((penalties, slots)),
            state,
            records,
            batch,
            train,
        },
    ];
    let mode = if train { "training" } else { "evaluation" };
    b.case("data", "metrics", format!("{batch}×{classes} {mode}"), ops, None)
}
