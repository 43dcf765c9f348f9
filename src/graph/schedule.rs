//! Model → schedule: every tensor allocated once, and op lists for a training step and an
//! evaluation step (one list per batch size: the full one, and the last partial batch).
//!
//! A training step, as Keras's `fit` takes it:
//!   gather the batch → L2 penalties → forward (training mode) → softmax cross-entropy, its
//!   gradient and the predictions → backward, layer by layer in reverse → one update of every
//!   weight (L2 gradients folded in) → record (loss, #correct) and advance the step counter.
//! The trainable weights, their gradients and their optimizer slots live in arenas
//! (`Program::arena`) so that the update and the penalty are one dispatch each on the GPU.
//! Nothing in it needs the host: the cursor into the shuffled index, the step count (dropout's
//! stream, Adam's t) and the record row live in the `state` tensor the GPU advances itself.

use std::collections::{BTreeMap, HashMap};

use super::fuse;
use super::layers::{alloc, lower, Io, Lowered, Mode, Owned, Weight};
use super::model::{Layer, ModelSpec, Resolved, WeightSpec};
use super::ops::{Op, Optimizer, Trained, RECORD_WIDTH, STATE_WORDS, T};
use super::{Engine, Program};
use crate::data::pack_bytes;
use crate::data::{SplitName, CLASSES, PIXELS};
use crate::rng::pcg_hash;

/// A weight tensor and, when it is trained, its gradient and optimizer slots.
#[derive(Debug, Clone)]
pub struct Param {
    pub spec: WeightSpec,
    pub value: T,
    pub grad: Option<T>,
    pub slots: Vec<T>,
}

/// A data set split living on the device: packed pixels, labels, and the order to read them in.
#[derive(Debug, Clone, Copy)]
pub struct SplitTensors {
    pub images: T,
    pub labels: T,
    pub index: T,
    pub len: usize,
}

/// The op lists that make one pass over a split: `steps − 1` (or `steps`) runs of `full`, then
/// one of `last` when the split does not divide into whole batches.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub full: usize,
    pub last: Option<(usize, usize)>,
    pub steps: usize,
    pub full_steps: usize,
}

/// What the graph keeps of a layer: the tensors it owns, and its weights' indices into
/// `Graph::params` in Keras's order.
#[derive(Debug, Clone, Default)]
struct LayerTensors {
    own: Owned,
    params: Vec<usize>,
}

/// A model compiled into a [`Program`], with the handles the training loop needs.
pub struct Graph {
    pub spec: ModelSpec,
    pub layers: Vec<Resolved>,
    pub program: Program,
    pub params: Vec<Param>,
    /// The batch size the tensors are allocated for.
    pub batch: usize,
    pub optimizer: Option<Optimizer>,
    pub splits: BTreeMap<SplitName, SplitTensors>,
    /// (step, cursor, record); see shaders/common.wgsl.
    pub state: T,
    /// Per step: mean loss with penalties, #correct, batch size.
    pub records: T,
    /// (C, C) counts of (label, prediction), accumulated by evaluation passes.
    pub confusion: T,
    /// Softmax probabilities of the last evaluated batch (B, C).
    pub probs: T,
    /// The optimizer's rate and decoupled decay for each step of an epoch, two by record row
    /// (`Optimizer::step_rates`).
    pub rates: T,
    pub train_pass: Option<Pass>,
    pub eval_passes: BTreeMap<SplitName, Pass>,
    x: T,
    labels: T,
    loss: T,
    pred: T,
    penalties: T,
    l2_slots: usize,
    layer_tensors: Vec<LayerTensors>,
    grads: HashMap<T, T>,
    seed: u32,
    /// Fold dropouts into their neighbours (`fuse::fold_dropout`).
    fold: bool,
}

/// Dropout layer `layer`'s stream of masks for a run seeded `seed`.
pub fn dropout_seed(seed: u32, layer: usize) -> u32 {
    pcg_hash(seed ^ pcg_hash(layer as u32 + 1))
}

/// The augmentation's stream of draws for a run seeded `seed` (apart from every dropout's).
pub fn augment_seed(seed: u32) -> u32 {
    pcg_hash(seed ^ 0x6175_6720)
}

impl Graph {
    /// Builds the program for `spec` at batch size `batch`, with device-resident `splits`
    /// (name, number of images). With an optimizer, the `train` split gets a training pass.
    pub fn build(
        spec: &ModelSpec,
        batch: usize,
        splits: &[(SplitName, usize)],
        optimizer: Option<Optimizer>,
        seed: u32,
    ) -> anyhow::Result<Graph> {
        Self::build_with(spec, batch, splits, optimizer, seed, true)
    }

    /// As [`Graph::build`], with each dropout folded into its neighbours (`fuse`) or left as
    /// ops of its own (`fold: false`; the tests compare the two).
    pub fn build_with(
        spec: &ModelSpec,
        batch: usize,
        splits: &[(SplitName, usize)],
        optimizer: Option<Optimizer>,
        seed: u32,
        fold: bool,
    ) -> anyhow::Result<Graph> {
        anyhow::ensure!(batch > 0, "the batch size must be at least 1");
        let layers = spec.resolve()?;
        let mut p = Program::default();
        let training = optimizer.is_some() && splits.iter().any(|(s, _)| *s == SplitName::Train);
        let mut split_tensors = BTreeMap::new();
        let mut max_steps = 1;
        for &(name, len) in splits {
            anyhow::ensure!(len > 0, "the {name:?} split is empty");
            let images = p.u32(format!("{name:?}/images"), (len * PIXELS).div_ceil(4));
            let labels = p.u32(format!("{name:?}/labels"), len);
            let index = p.u32(format!("{name:?}/index"), len);
            split_tensors.insert(name, SplitTensors { images, labels, index, len });
            max_steps = max_steps.max(len.div_ceil(batch));
        }
        let state = p.u32("state", STATE_WORDS);
        let records = p.f32("records", max_steps * RECORD_WIDTH);
        let confusion = p.u32("confusion", CLASSES * CLASSES);
        let x = p.f32("input", batch * PIXELS);
        let labels = p.u32("labels", batch);
        let loss = p.f32("loss", batch);
        let pred = p.u32("predictions", batch);
        let probs = p.f32("probabilities", batch * CLASSES);
        let rates = p.f32("step rates", 2 * max_steps);

        // The trainable weights live in one arena, their gradients and optimizer slots in arenas
        // of the same layout: one dispatch updates them all.
        let trainable: Vec<&WeightSpec> =
            layers.iter().flat_map(|l| &l.weights).filter(|w| w.trainable).collect();
        let views = |suffix: &str| -> Vec<(String, usize)> {
            trainable.iter().map(|w| (format!("{}{suffix}", w.name), w.len())).collect()
        };
        let (arena, values) = p.arena("parameters", &views(""));
        let mut values = values.into_iter();
        let mut grads = if training { p.arena("gradients", &views("/grad")).1 } else { vec![] }.into_iter();
        let slot_count = optimizer.filter(|_| training).map_or(0, |o| o.slots());
        let mut slots: Vec<_> = (0..slot_count)
            .map(|s| p.arena(&format!("slot{s}"), &views(&format!("/slot{s}"))).1.into_iter())
            .collect();
        let regularized = trainable.iter().any(|w| w.l2 > 0.0);
        let l2_slots = if regularized { p.tensors[arena.0].len / super::ops::CHUNK } else { 0 };
        let penalties = p.f32("l2 partials", l2_slots.max(1));

        let mut params = Vec::new();
        let mut layer_tensors = Vec::new();
        for l in &layers {
            let mut lt = LayerTensors::default();
            for w in &l.weights {
                // The arenas' views come in the order of the trainable weights.
                let (value, grad, slots) = if w.trainable {
                    let value = values.next().expect("a view per trainable weight");
                    (value, grads.next(), slots.iter_mut().filter_map(Iterator::next).collect())
                } else {
                    (p.f32(w.name.clone(), w.len()), None, vec![])
                };
                lt.params.push(params.len());
                params.push(Param { spec: w.clone(), value, grad, slots });
            }
            lt.own = alloc(l, &mut p, batch, training);
            layer_tensors.push(lt);
        }

        let mut graph = Graph {
            spec: spec.clone(),
            layers,
            program: p,
            params,
            batch,
            optimizer,
            splits: split_tensors,
            state,
            records,
            confusion,
            probs,
            rates,
            train_pass: None,
            eval_passes: BTreeMap::new(),
            x,
            labels,
            loss,
            pred,
            penalties,
            l2_slots,
            layer_tensors,
            grads: HashMap::new(),
            seed,
            fold,
        };
        if training {
            // Gradient tensors, one per distinct activation (pass-through layers share theirs).
            let outs = graph.outputs(Mode::Train);
            for (i, &t) in std::iter::once(&graph.x).chain(&outs).enumerate() {
                if !graph.grads.contains_key(&t) {
                    let len = graph.program.tensors[t.0].len;
                    let g = graph.program.f32(format!("grad {i}"), len);
                    graph.grads.insert(t, g);
                }
            }
            let split = graph.splits[&SplitName::Train];
            graph.train_pass = Some(graph.pass(split.len, |g, b| g.train_step(split, b)));
        }
        for &(name, _) in splits {
            let split = graph.splits[&name];
            let pass = graph.pass(split.len, |g, b| g.eval_step(split, b));
            graph.eval_passes.insert(name, pass);
        }
        Ok(graph)
    }

    /// Adds the lists of one pass over `len` images.
    fn pass(&mut self, len: usize, step: impl Fn(&Graph, usize) -> Vec<Op>) -> Pass {
        let fold = self.fold;
        let fold = |ops| if fold { fuse::fold_dropout(ops) } else { ops };
        let ops = fold(step(self, self.batch));
        let full = self.program.add_list(ops);
        let rest = len % self.batch;
        let last = (rest > 0).then(|| {
            let ops = fold(step(self, rest));
            (self.program.add_list(ops), rest)
        });
        Pass { full, last, steps: len.div_ceil(self.batch), full_steps: len / self.batch }
    }

    /// The activation tensor after each layer. Flatten, inference-mode dropout and linear or
    /// softmax activations pass their input through.
    fn outputs(&self, mode: Mode) -> Vec<T> {
        let mut current = self.x;
        self.layers
            .iter()
            .zip(&self.layer_tensors)
            .map(|(l, lt)| {
                let skipped = mode == Mode::Infer && matches!(l.layer, Layer::Dropout { .. });
                if let (Some(y), false) = (lt.own.y, skipped) {
                    current = y;
                }
                current
            })
            .collect()
    }

    /// Layer `i` lowered at batch size `batch`.
    fn lower(&self, i: usize, batch: usize) -> Lowered {
        let lt = &self.layer_tensors[i];
        let weights: Vec<Weight> = lt
            .params
            .iter()
            .map(|&k| Weight { value: self.params[k].value, grad: self.params[k].grad })
            .collect();
        lower(&self.layers[i], &lt.own, &weights, batch, self.state, dropout_seed(self.seed, i))
    }

    /// c·Σw² of every regularized kernel, by chunk of the parameter arena.
    fn penalty_ops(&self) -> Option<Op> {
        (self.l2_slots > 0).then(|| Op::L2Penalty {
            weights: self.params.iter().filter(|p| p.spec.l2 > 0.0).map(|p| (p.value, p.spec.l2)).collect(),
            partials: self.penalties,
        })
    }

    /// The batch's images; training passes augment them as the spec says.
    fn gather(&self, mode: Mode, split: SplitTensors, batch: usize) -> Op {
        let augment = self.spec.training.augment;
        Op::Gather {
            images: split.images,
            labels: split.labels,
            index: split.index,
            state: self.state,
            x: self.x,
            y: self.labels,
            batch,
            pixels: PIXELS,
            augment: (mode == Mode::Train && augment.is_on()).then_some(augment),
            seed: augment_seed(self.seed),
        }
    }

    /// The step's last op: its record row, then the state advanced.
    fn record(&self, batch: usize, train: bool) -> Op {
        Op::Record {
            loss: self.loss,
            pred: self.pred,
            labels: self.labels,
            penalties: (self.l2_slots > 0).then_some((self.penalties, self.l2_slots)),
            state: self.state,
            records: self.records,
            batch,
            train,
        }
    }

    fn forward(&self, mode: Mode, batch: usize) -> (Vec<Op>, Vec<T>) {
        let outs = self.outputs(mode);
        let mut ops = Vec::new();
        let mut x = self.x;
        for (i, &y) in outs.iter().enumerate() {
            ops.extend(self.lower(i, batch).forward(Io { x, y, dy: None, dx: None }, mode));
            x = y;
        }
        (ops, outs)
    }

    /// What every step starts with: the batch, the L2 penalties, the forward pass, the loss and
    /// its gradient (training) or the probabilities (inference), and the predictions.
    fn head(&self, mode: Mode, split: SplitTensors, batch: usize) -> (Vec<Op>, Vec<T>) {
        let mut ops = vec![self.gather(mode, split, batch)];
        if mode == Mode::Infer {
            // A training step's update computes the penalty on its way (`Op::Update`).
            ops.extend(self.penalty_ops());
        }
        let (forward, outs) = self.forward(mode, batch);
        ops.extend(forward);
        let logits = *outs.last().unwrap();
        let training = mode == Mode::Train;
        ops.push(Op::SoftmaxXent {
            logits,
            labels: self.labels,
            pred: self.pred,
            loss: self.loss,
            probs: (!training).then_some(self.probs),
            dlogits: training.then(|| self.grads[&logits]),
            batch,
            classes: CLASSES,
            scale: 1.0 / batch as f32,
            smoothing: self.spec.training.label_smoothing,
        });
        (ops, outs)
    }

    fn train_step(&self, split: SplitTensors, batch: usize) -> Vec<Op> {
        let (mut ops, outs) = self.head(Mode::Train, split, batch);
        ops.extend(self.backward(&outs, batch));
        let weights: Vec<Trained> = self
            .params
            .iter()
            .filter_map(|p| {
                Some(Trained {
                    w: p.value,
                    g: p.grad?,
                    m: p.slots.first().copied(),
                    v: p.slots.get(1).copied(),
                    len: p.spec.len(),
                    l2: p.spec.l2,
                })
            })
            .collect();
        if !weights.is_empty() {
            let opt = self.optimizer.unwrap();
            let penalties = (self.l2_slots > 0).then_some(self.penalties);
            ops.push(Op::Update { weights, state: self.state, rates: self.rates, opt, penalties });
        }
        ops.push(self.record(batch, true));
        ops
    }

    /// The backward pass, last layer first. A layer computes the gradient of its input only when
    /// a layer before it has weights to train.
    fn backward(&self, outs: &[T], batch: usize) -> Vec<Op> {
        let first_trained =
            self.layers.iter().position(|l| l.weights.iter().any(|w| w.trainable)).unwrap_or(usize::MAX);
        let mut ops = Vec::new();
        for i in (0..self.layers.len()).rev() {
            let x = if i == 0 { self.x } else { outs[i - 1] };
            let y = outs[i];
            let io = Io { x, y, dy: Some(self.grads[&y]), dx: (i > first_trained).then(|| self.grads[&x]) };
            ops.extend(self.lower(i, batch).backward(io));
        }
        ops
    }

    fn eval_step(&self, split: SplitTensors, batch: usize) -> Vec<Op> {
        let (mut ops, _) = self.head(Mode::Infer, split, batch);
        ops.push(Op::Confusion {
            labels: self.labels,
            pred: self.pred,
            counts: self.confusion,
            batch,
            classes: CLASSES,
        });
        ops.push(self.record(batch, false));
        ops
    }

    /// Uploads a split's images (packed four bytes to a word), labels, and the identity order.
    pub fn upload_split(
        &self,
        engine: &mut dyn Engine,
        name: SplitName,
        images: &[u8],
        labels: &[u8],
    ) -> anyhow::Result<()> {
        let t = self.splits[&name];
        anyhow::ensure!(
            labels.len() == t.len && images.len() == t.len * PIXELS,
            "{name:?}: wrong number of images"
        );
        engine.write_u32(t.images, &pack_bytes(images))?;
        engine.write_u32(t.labels, &labels.iter().map(|&l| l as u32).collect::<Vec<_>>())?;
        engine.write_u32(t.index, &(0..t.len as u32).collect::<Vec<_>>())
    }

    /// Writes every weight (trainable and statistics) from Keras-layout values, in `params` order.
    pub fn write_weights(&self, engine: &mut dyn Engine, keras: &[Vec<f32>]) -> anyhow::Result<()> {
        anyhow::ensure!(
            keras.len() == self.params.len(),
            "{} tensors for {} weights",
            keras.len(),
            self.params.len()
        );
        for (p, v) in self.params.iter().zip(keras) {
            anyhow::ensure!(
                v.len() == p.spec.len(),
                "{}: {} values for {}",
                p.spec.name,
                v.len(),
                p.spec.len()
            );
            engine.write_f32(p.value, &p.spec.to_storage(v))?;
        }
        Ok(())
    }

    /// Reads every weight back in Keras's layout.
    pub fn read_weights(&self, engine: &mut dyn Engine) -> anyhow::Result<Vec<Vec<f32>>> {
        self.params.iter().map(|p| Ok(p.spec.to_keras(&engine.read_f32(p.value)?))).collect()
    }

    /// Reads the gradients of the trainable weights (as left by the last step), Keras layout.
    pub fn read_grads(&self, engine: &mut dyn Engine) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
        self.params
            .iter()
            .filter_map(|p| p.grad.map(|g| (p, g)))
            .map(|(p, g)| Ok((p.spec.name.clone(), p.spec.to_keras(&engine.read_f32(g)?))))
            .collect()
    }

    /// Optimizer slots by (weight, slot), in Keras layout; for checkpoints.
    pub fn read_slots(&self, engine: &mut dyn Engine) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
        let mut out = Vec::new();
        for p in &self.params {
            for (s, &t) in p.slots.iter().enumerate() {
                out.push((format!("{}/slot{s}", p.spec.name), p.spec.to_keras(&engine.read_f32(t)?)));
            }
        }
        Ok(out)
    }

    pub fn write_slots(
        &self,
        engine: &mut dyn Engine,
        slots: &HashMap<String, Vec<f32>>,
    ) -> anyhow::Result<()> {
        for p in &self.params {
            for (s, &t) in p.slots.iter().enumerate() {
                let name = format!("{}/slot{s}", p.spec.name);
                let v = slots
                    .get(&name)
                    .ok_or_else(|| anyhow::anyhow!("the checkpoint has no optimizer state {name}"))?;
                anyhow::ensure!(v.len() == p.spec.len(), "{name}: {} values for {}", v.len(), p.spec.len());
                engine.write_f32(t, &p.spec.to_storage(v))?;
            }
        }
        Ok(())
    }
}
