//! The CPU reference: every op of `graph::ops` written plainly on ndarray and slices. It is the
//! specification the WGSL kernels are checked against, and the `--device cpu` executor.
//! `cpu` never imports `gpu`.

pub mod activation;
pub mod batchnorm;
pub mod conv;
pub mod data;
pub mod dropout;
pub mod matmul;
pub mod optimizer;
pub mod pool;
pub mod softmax_xent;

use crate::graph::ops::{regularized, ActGrad, Mask, Op, State, CHUNK, RECORD_WIDTH};

/// The float types the reference runs in: f32 as an executor, f64 for finite differences.
pub trait Real:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::fmt::Debug
{
    /// The nearest value of this type.
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}
use crate::graph::{Counters, DType, Engine, Program, T};

/// A tensor in host memory.
#[derive(Debug, Clone)]
enum Buffer {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

/// Runs a [`Program`] on the CPU.
pub struct CpuEngine {
    lists: Vec<Vec<Op>>,
    buffers: Vec<Buffer>,
    counters: Counters,
    /// Worker threads for the large products; None: everything on the calling thread.
    pool: Option<rayon::ThreadPool>,
    /// Per tensor: the arena it is a view of, and where. Each view has a buffer of its own here
    /// and arenas none: only the GPU needs the weights side by side.
    within: Vec<Option<(T, usize)>>,
}

/// MemAvailable from /proc/meminfo (Linux); None where it cannot be read.
fn available_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Products smaller than this many multiply-adds run on one thread: splitting them costs more
/// than it saves (on the 2-vCPU development machine a second thread slowed the MLP's 8.8M-MAC
/// products by 5%; see BENCHMARKS.md). The CNN's convolutions (25M and 34M) are split.
const PARALLEL_MIN_MACS: usize = 1 << 24;

impl CpuEngine {
    /// Allocates every tensor of `program`, zero-filled; panics where memory runs out (the
    /// checks and tests, whose programs are small). Executors use [`CpuEngine::with_threads`].
    pub fn new(program: &Program) -> Self {
        Self::with_threads(program, 1).expect("the program fits in memory")
    }

    /// As [`CpuEngine::new`], with large products split over `threads` threads (1: none).
    /// Results are identical whatever the count.
    /// Memory that cannot be had is an error, not an abort: the total is checked against the
    /// memory available, and each tensor is reserved before it is filled.
    pub fn with_threads(program: &Program, threads: usize) -> anyhow::Result<Self> {
        let arenas: std::collections::HashSet<T> =
            program.tensors.iter().filter_map(|t| t.within.map(|(arena, _)| arena)).collect();
        let len = |i: usize| if arenas.contains(&T(i)) { 0 } else { program.tensors[i].len };
        let bytes = (0..program.tensors.len())
            .try_fold(0usize, |sum, i| len(i).checked_mul(4).and_then(|b| sum.checked_add(b)));
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        let bytes = bytes.ok_or_else(|| {
            anyhow::anyhow!("the model's tensors do not fit in this machine's address space")
        })?;
        if let Some(available) = available_memory() {
            anyhow::ensure!(
                bytes <= available,
                "the model needs {:.1} GiB of memory on the CPU path and {:.1} GiB are available: make it smaller or the batch smaller",
                gib(bytes),
                gib(available)
            );
        }
        let mut buffers = Vec::with_capacity(program.tensors.len());
        for (i, t) in program.tensors.iter().enumerate() {
            let n = len(i);
            let fail = |_| anyhow::anyhow!("cannot allocate {:.1} GiB for tensor {}", gib(n * 4), t.name);
            buffers.push(match t.dtype {
                DType::F32 => {
                    let mut v = Vec::new();
                    v.try_reserve_exact(n).map_err(fail)?;
                    v.resize(n, 0.0);
                    Buffer::F32(v)
                }
                DType::U32 => {
                    let mut v = Vec::new();
                    v.try_reserve_exact(n).map_err(fail)?;
                    v.resize(n, 0);
                    Buffer::U32(v)
                }
            });
        }
        let pool = match threads {
            0 | 1 => None,
            n => Some(rayon::ThreadPoolBuilder::new().num_threads(n).build()?),
        };
        let within = program.tensors.iter().map(|t| t.within).collect();
        Ok(CpuEngine { lists: program.lists.clone(), buffers, counters: Counters::default(), pool, within })
    }

    /// Where view `t` starts in its arena, in elements.
    fn offset(&self, t: T) -> anyhow::Result<usize> {
        self.within[t.0]
            .map(|(_, offset)| offset)
            .ok_or_else(|| anyhow::anyhow!("tensor {} is not in an arena", t.0))
    }

    fn f(&self, t: T) -> &[f32] {
        match &self.buffers[t.0] {
            Buffer::F32(v) => v,
            Buffer::U32(_) => panic!("tensor {} is u32, not f32", t.0),
        }
    }

    fn u(&self, t: T) -> &[u32] {
        match &self.buffers[t.0] {
            Buffer::U32(v) => v,
            Buffer::F32(_) => panic!("tensor {} is f32, not u32", t.0),
        }
    }

    /// Takes an output tensor out so that it can be written while inputs are borrowed.
    fn take_f(&mut self, t: T) -> Vec<f32> {
        match std::mem::replace(&mut self.buffers[t.0], Buffer::F32(Vec::new())) {
            Buffer::F32(v) => v,
            Buffer::U32(_) => panic!("tensor {} is u32, not f32", t.0),
        }
    }

    fn take_u(&mut self, t: T) -> Vec<u32> {
        match std::mem::replace(&mut self.buffers[t.0], Buffer::U32(Vec::new())) {
            Buffer::U32(v) => v,
            Buffer::F32(_) => panic!("tensor {} is f32, not u32", t.0),
        }
    }

    /// partials (one per chunk of the arena) = c·Σw² over the chunk's elements of weight w.
    fn penalty(&mut self, weights: &[(T, f32)], partials: T) -> anyhow::Result<()> {
        let mut out = self.take_f(partials);
        out.fill(0.0);
        for &(w, c) in weights {
            let first = self.offset(w)? / CHUNK;
            for (j, chunk) in self.f(w).chunks(CHUNK).enumerate() {
                let n = out.len();
                *out.get_mut(first + j)
                    .ok_or_else(|| anyhow::anyhow!("{n} penalty partials for an arena of more chunks"))? =
                    optimizer::l2_penalty(chunk, c);
            }
        }
        self.put_f(partials, out);
        Ok(())
    }

    /// out (len) = x (len) under `mask`, at the step the mask's state holds.
    fn mask_into(&self, x: T, len: usize, mask: Mask, out: &mut [f32]) {
        let step = State::from_words(self.u(mask.state)).step;
        dropout::dropout(&self.f(x)[..len], &mut out[..len], mask.rate, mask.seed, step);
    }

    /// y (len) = x (len) under `mask`.
    fn dropout(&mut self, x: T, y: T, len: usize, mask: Mask) {
        let mut out = self.take_f(y);
        self.mask_into(x, len, mask, &mut out);
        self.put_f(y, out);
    }

    /// x (len), under `mask` when there is one (a new vector) or as it is.
    fn under(&self, x: T, len: usize, mask: Option<Mask>) -> std::borrow::Cow<'_, [f32]> {
        match mask {
            Some(mask) => {
                let mut out = vec![0.0; len];
                self.mask_into(x, len, mask, &mut out);
                std::borrow::Cow::Owned(out)
            }
            None => std::borrow::Cow::Borrowed(&self.f(x)[..len]),
        }
    }

    fn put_f(&mut self, t: T, v: Vec<f32>) {
        self.buffers[t.0] = Buffer::F32(v);
    }

    fn put_u(&mut self, t: T, v: Vec<u32>) {
        self.buffers[t.0] = Buffer::U32(v);
    }

    /// Runs one op.
    pub fn exec(&mut self, op: &Op) -> anyhow::Result<()> {
        match *op {
            Op::Gather { images, labels, index, state, x, y, batch, pixels, augment, seed } => {
                let st = State::from_words(self.u(state));
                let cursor = st.cursor as usize;
                anyhow::ensure!(
                    cursor + batch <= self.u(index).len(),
                    "a batch at image {cursor} runs past the end of a split of {} images",
                    self.u(index).len()
                );
                let (mut xs, mut ys) = (self.take_f(x), self.take_u(y));
                let from = data::Source {
                    images: self.u(images),
                    labels: self.u(labels),
                    index: self.u(index),
                    cursor,
                    epoch: st.epoch,
                };
                data::gather(
                    &from,
                    pixels,
                    augment.as_ref().map(|a| (a, seed)),
                    &mut xs[..batch * pixels],
                    &mut ys[..batch],
                );
                self.put_f(x, xs);
                self.put_u(y, ys);
            }
            Op::Matmul(ref mm) => {
                let mut c = self.take_f(mm.c);
                let (a, b, bias, out) =
                    (self.f(mm.a), self.f(mm.b), mm.bias.map(|b| self.f(b)), &mut c[..mm.m * mm.n]);
                match &self.pool {
                    Some(pool) if mm.m * mm.n * mm.k >= PARALLEL_MIN_MACS => {
                        matmul::matmul_parallel(pool, mm, a, b, bias, out)
                    }
                    _ => matmul::matmul(mm, a, b, bias, out),
                }
                self.put_f(mm.c, c);
                if let Some(d) = mm.dropout {
                    self.dropout(mm.c, d.y, mm.m * mm.n, d.mask);
                }
            }
            Op::BiasGrad { dy, db, rows, cols, through, mask } => {
                let n = rows * cols;
                let mut out = self.take_f(db);
                match through {
                    None => matmul::bias_grad(&self.f(dy)[..n], rows, cols, &mut out[..cols]),
                    Some(ActGrad { y, dz, act }) => {
                        let mut dzs = self.take_f(dz);
                        activation::backward(act, &self.f(y)[..n], &self.under(dy, n, mask), &mut dzs[..n]);
                        matmul::bias_grad(&dzs[..n], rows, cols, &mut out[..cols]);
                        self.put_f(dz, dzs);
                    }
                }
                self.put_f(db, out);
            }
            Op::Activation { x, y, act, len } => {
                let mut out = self.take_f(y);
                activation::forward(act, &self.f(x)[..len], &mut out[..len]);
                self.put_f(y, out);
            }
            Op::ActivationGrad { y, dy, dx, act, len } => {
                let mut out = self.take_f(dx);
                activation::backward(act, &self.f(y)[..len], &self.f(dy)[..len], &mut out[..len]);
                self.put_f(dx, out);
            }
            Op::SoftmaxXent {
                logits,
                labels,
                loss,
                pred,
                probs,
                dlogits,
                batch,
                classes,
                scale,
                smoothing,
            } => {
                let mut out = self.take_u(pred);
                data::argmax(&self.f(logits)[..batch * classes], classes, &mut out[..batch]);
                self.put_u(pred, out);
                let mut l = self.take_f(loss);
                let mut p = probs.map(|t| self.take_f(t));
                let mut d = dlogits.map(|t| self.take_f(t));
                softmax_xent::softmax_xent(
                    &self.f(logits)[..batch * classes],
                    self.u(labels),
                    classes,
                    scale,
                    smoothing,
                    &mut l[..batch],
                    p.as_deref_mut(),
                    d.as_deref_mut(),
                );
                self.put_f(loss, l);
                if let (Some(t), Some(v)) = (probs, p) {
                    self.put_f(t, v);
                }
                if let (Some(t), Some(v)) = (dlogits, d) {
                    self.put_f(t, v);
                }
            }
            Op::Im2col { x, cols, ref g } => {
                let mut out = self.take_f(cols);
                conv::im2col(g, self.f(x), &mut out[..g.out_pixels() * g.patch()]);
                self.put_f(cols, out);
            }
            Op::Col2im { dcols, dx, ref g } => {
                let mut out = self.take_f(dx);
                conv::col2im(g, self.f(dcols), &mut out[..g.input_len()]);
                self.put_f(dx, out);
            }
            Op::MaxPool { x, y, argmax, ref g, dropout } => {
                let (mut out, mut arg) = (self.take_f(y), self.take_u(argmax));
                pool::max_forward(g, self.f(x), &mut out, &mut arg);
                self.put_f(y, out);
                self.put_u(argmax, arg);
                if let Some(d) = dropout {
                    self.dropout(y, d.y, g.out_pixels() * g.c, d.mask);
                }
            }
            Op::MaxPoolGrad { dy, argmax, dx, ref g, mask } => {
                let mut out = self.take_f(dx);
                let n = g.out_pixels() * g.c;
                pool::max_backward(&self.under(dy, n, mask), &self.u(argmax)[..n], &mut out[..g.input_len()]);
                self.put_f(dx, out);
            }
            Op::AvgPool { x, y, ref g } => {
                let mut out = self.take_f(y);
                pool::avg_forward(g, self.f(x), &mut out);
                self.put_f(y, out);
            }
            Op::AvgPoolGrad { dy, dx, ref g } => {
                let mut out = self.take_f(dx);
                pool::avg_backward(g, self.f(dy), &mut out[..g.input_len()]);
                self.put_f(dx, out);
            }
            Op::Dropout { x, y, len, mask } => self.dropout(x, y, len, mask),
            Op::BatchNormStats { x, mean, var, moving_mean, moving_var, rows, cols, momentum } => {
                let (mut m, mut v) = (self.take_f(mean), self.take_f(var));
                let (mut mm, mut mv) = (self.take_f(moving_mean), self.take_f(moving_var));
                batchnorm::stats(
                    &self.f(x)[..rows * cols],
                    rows,
                    cols,
                    momentum,
                    &mut m,
                    &mut v,
                    &mut mm,
                    &mut mv,
                );
                self.put_f(mean, m);
                self.put_f(var, v);
                self.put_f(moving_mean, mm);
                self.put_f(moving_var, mv);
            }
            Op::BatchNormApply { x, mean, var, gamma, beta, y, rows, cols, eps } => {
                let mut out = self.take_f(y);
                batchnorm::apply(
                    &self.f(x)[..rows * cols],
                    self.f(mean),
                    self.f(var),
                    self.f(gamma),
                    self.f(beta),
                    cols,
                    eps,
                    &mut out[..rows * cols],
                );
                self.put_f(y, out);
            }
            Op::BatchNormGrad { x, dy, mean, var, gamma, dx, dgamma, dbeta, rows, cols, eps } => {
                let (mut dg, mut db) = (self.take_f(dgamma), self.take_f(dbeta));
                let mut d = dx.map(|t| self.take_f(t));
                batchnorm::backward(
                    &self.f(x)[..rows * cols],
                    &self.f(dy)[..rows * cols],
                    self.f(mean),
                    self.f(var),
                    self.f(gamma),
                    rows,
                    cols,
                    eps,
                    d.as_deref_mut().map(|d| &mut d[..rows * cols]),
                    &mut dg,
                    &mut db,
                );
                self.put_f(dgamma, dg);
                self.put_f(dbeta, db);
                if let (Some(t), Some(v)) = (dx, d) {
                    self.put_f(t, v);
                }
            }
            Op::L2Penalty { ref weights, partials } => self.penalty(weights, partials)?,
            Op::Update { ref weights, state, rates, ref opt, penalties } => {
                if let Some(partials) = penalties {
                    self.penalty(&regularized(weights), partials)?;
                }
                let row = 2 * State::from_words(self.u(state)).record as usize;
                let (rate, decay) = (self.f(rates)[row], self.f(rates)[row + 1]);
                for t in weights {
                    let (mut w, mut g) = (self.take_f(t.w), self.take_f(t.g));
                    let mut m = t.m.map(|x| self.take_f(x));
                    let mut v = t.v.map(|x| self.take_f(x));
                    optimizer::l2_grad(&w, &mut g, t.l2);
                    optimizer::update(opt, &mut w, &g, m.as_deref_mut(), v.as_deref_mut(), rate, decay);
                    self.put_f(t.w, w);
                    self.put_f(t.g, g);
                    if let (Some(x), Some(m)) = (t.m, m) {
                        self.put_f(x, m);
                    }
                    if let (Some(x), Some(v)) = (t.v, v) {
                        self.put_f(x, v);
                    }
                }
            }
            Op::Confusion { labels, pred, counts, batch, classes } => {
                let mut out = self.take_u(counts);
                data::confusion(&self.u(labels)[..batch], &self.u(pred)[..batch], classes, &mut out);
                self.put_u(counts, out);
            }
            Op::Record { loss, pred, labels, penalties, state, records, batch, train } => {
                let pens = penalties.map(|(t, n)| &self.f(t)[..n]).unwrap_or(&[]);
                let row = data::record(
                    &self.f(loss)[..batch],
                    &self.u(pred)[..batch],
                    &self.u(labels)[..batch],
                    pens,
                );
                let at = State::from_words(self.u(state)).record as usize * RECORD_WIDTH;
                let mut out = self.take_f(records);
                out[at..at + RECORD_WIDTH].copy_from_slice(row.values());
                self.put_f(records, out);
                let mut s = State::from_words(self.u(state));
                s.step += train as u32;
                s.cursor += batch as u32;
                s.record += 1;
                let words = s.words().to_vec();
                self.put_u(state, words);
            }
        }
        Ok(())
    }
}

impl CpuEngine {
    /// Where one run of list `list` spends its time: each op run `reps` times in a row, timed
    /// on the host, per run: (op, seconds), in list order.
    pub fn profile(&mut self, list: usize, reps: usize) -> anyhow::Result<Vec<(String, f64)>> {
        let ops = std::mem::take(&mut self.lists[list]);
        let mut out = Vec::new();
        let mut timed = || -> anyhow::Result<()> {
            for op in &ops {
                let start = std::time::Instant::now();
                for _ in 0..reps {
                    self.exec(op)?;
                }
                out.push((op.kind(), start.elapsed().as_secs_f64() / reps.max(1) as f64));
            }
            Ok(())
        };
        let result = timed();
        self.lists[list] = ops;
        result.map(|()| out)
    }
}

impl Engine for CpuEngine {
    fn write_f32(&mut self, t: T, data: &[f32]) -> anyhow::Result<()> {
        let mut v = self.take_f(t);
        anyhow::ensure!(data.len() <= v.len(), "{} values for a tensor of {}", data.len(), v.len());
        v[..data.len()].copy_from_slice(data);
        self.put_f(t, v);
        Ok(())
    }

    fn write_u32(&mut self, t: T, data: &[u32]) -> anyhow::Result<()> {
        let mut v = self.take_u(t);
        anyhow::ensure!(data.len() <= v.len(), "{} values for a tensor of {}", data.len(), v.len());
        v[..data.len()].copy_from_slice(data);
        self.put_u(t, v);
        Ok(())
    }

    fn read_f32(&mut self, t: T) -> anyhow::Result<Vec<f32>> {
        Ok(self.f(t).to_vec())
    }

    fn read_u32(&mut self, t: T) -> anyhow::Result<Vec<u32>> {
        Ok(self.u(t).to_vec())
    }

    fn run(&mut self, list: usize, times: usize) -> anyhow::Result<()> {
        let ops = std::mem::take(&mut self.lists[list]);
        let result = (0..times).try_for_each(|_| ops.iter().try_for_each(|op| self.exec(op)));
        self.counters.dispatches += (ops.len() * times) as u64;
        self.lists[list] = ops;
        result
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn dispatches_per_run(&self, list: usize) -> usize {
        self.lists[list].len()
    }

    fn name(&self) -> String {
        "cpu".into()
    }
}
