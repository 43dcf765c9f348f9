//! The training loop, as Keras's `fit`: every epoch reshuffles the training images, keeps the
//! last partial batch, reports running means of the training loss (with the L2 penalties) and
//! accuracy, and evaluates the validation set in inference mode. It drives any [`Engine`]; the
//! GPU runs whole chunks of steps per submission and the host reads back only the per-step
//! records, a few times per epoch, for the progress bar.

pub mod checkpoint;
pub mod import;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use checkpoint::{Checkpoint, Model};

use crate::cpu::CpuEngine;
use crate::data::{FashionMnist, SplitName, CLASSES};
use crate::device::Executor;
use crate::gpu::GpuEngine;
use crate::graph::model::initial_values;
use crate::graph::ops::{Record, State, RECORD_WIDTH};
use crate::graph::{Counters, Engine, Graph, ModelSpec, Optimizer, Program};
use crate::rng::pcg_hash;
use crate::rng::Rng;

/// Host reads of the per-step records in an epoch, for the progress bar; the GPU runs the steps
/// between two reads as one submission.
const PROGRESS_READS: usize = 10;

/// One line of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

/// Loss, accuracy and confusion counts of one pass over a split in inference mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    /// (C, C) counts: row = true class, column = prediction.
    pub confusion: Vec<u64>,
    pub images: usize,
}

/// How training reports itself; the command line draws a progress bar from it.
pub trait Progress {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// After `done` steps of the epoch: running loss and accuracy, throughput.
    fn steps(&mut self, _done: usize, _loss: f64, _accuracy: f64, _images_per_second: f64) {}
    fn epoch_end(&mut self, _row: &EpochRow) {}
}

/// The training loss became NaN or infinite: the run cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("the training loss became {loss} at step {step} of epoch {epoch}")]
pub struct Diverged {
    /// The epoch (1-based) in which it happened.
    pub epoch: usize,
    /// The first step (1-based, within the epoch) whose loss is not finite.
    pub step: usize,
    pub loss: f64,
}

/// Training stopped because a stop was asked for ([`Trainer::stop`]), between two chunks of
/// steps; [`Trainer::checkpoint`] then holds where it stopped, mid-epoch.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("interrupted after step {step} of epoch {epoch}")]
pub struct Interrupted {
    pub epoch: usize,
    pub step: usize,
}

/// The process-wide stop request that a signal handler sets (see `cli`); every trainer watches
/// it unless given a flag of its own.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Where an interrupted epoch stopped: its full steps done, their records (loss, correct,
/// count per step) and seconds. Checkpoints carry it so that a resumed epoch continues the
/// same running means over the same batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub steps: usize,
    pub records: Vec<f32>,
    pub seconds: f64,
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// What to train and how.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub spec: ModelSpec,
    pub optimizer: Optimizer,
    /// The learning rate's schedule over the run's steps.
    pub schedule: crate::graph::lr::Schedule,
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the initial weights, the shuffles and the dropout masks.
    pub seed: u64,
}

/// The 32-bit seed a run seeded `seed` gives the graph's counter-based streams (dropout masks,
/// augmentation draws).
pub fn stream_seed(seed: u64) -> u32 {
    (seed ^ (seed >> 32)) as u32
}

/// An engine for `program` on the chosen executor.
pub fn engine<'a>(executor: &'a Executor, program: &Program) -> anyhow::Result<Box<dyn Engine + 'a>> {
    Ok(match executor {
        Executor::Cpu { threads } => Box::new(CpuEngine::with_threads(program, *threads)?),
        Executor::Gpu(ctx) => Box::new(GpuEngine::new(ctx, program)?),
    })
}

/// The mean loss and the accuracy over the first `steps` rows of a records tensor.
pub fn summarize(records: &[f32], steps: usize) -> (f64, f64) {
    let (mut loss, mut correct, mut seen) = (0.0, 0.0, 0.0);
    for row in Record::rows(records).iter().take(steps) {
        let n = row.count as f64;
        loss += row.loss as f64 * n;
        correct += row.correct as f64;
        seen += n;
    }
    (loss / seen.max(1.0), correct / seen.max(1.0))
}

/// A model being trained on one executor, with the data set resident on it.
pub struct Trainer<'a> {
    pub config: TrainConfig,
    pub graph: Graph,
    engine: Box<dyn Engine + 'a>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    pub history: Vec<EpochRow>,
    /// Engine counters over the last training epoch (validation included).
    pub last_epoch: Counters,
    /// Set (by a signal handler, or a test) to stop between two chunks of steps.
    pub stop: &'static AtomicBool,
    /// The current epoch's progress when it was interrupted.
    pub partial: Option<Partial>,
    /// The data set it trains on, as its checkpoints record it.
    pub data: crate::data::DataId,
}

impl<'a> Trainer<'a> {
    /// Builds the schedule, uploads the data set once, and sets the weights: from `resume`, or
    /// Glorot-initialized from the seed.
    pub fn new(
        executor: &'a Executor,
        data: &FashionMnist,
        config: TrainConfig,
        resume: Option<&Checkpoint>,
    ) -> anyhow::Result<Self> {
        Self::with_folding(executor, data, config, resume, true)
    }

    /// As [`Trainer::new`], with the dropouts folded into their neighbours (`graph::fuse`) or,
    /// with `fold` false, left as ops of their own: the tests show that both train alike.
    pub fn with_folding(
        executor: &'a Executor,
        data: &FashionMnist,
        config: TrainConfig,
        resume: Option<&Checkpoint>,
        fold: bool,
    ) -> anyhow::Result<Self> {
        let identity = data.identity();
        if let Some(ran_on) = resume.and_then(|c| c.data.as_ref()) {
            anyhow::ensure!(
                ran_on.same_data(&identity),
                "the checkpoint was trained on {ran_on}, not on {identity}: resume it with --data-dir {}",
                ran_on.dir
            );
        }
        let splits = [
            (SplitName::Train, data.train.len()),
            (SplitName::Val, data.val.len()),
            (SplitName::Test, data.test.len()),
        ];
        let seed = stream_seed(config.seed);
        let graph =
            Graph::build_with(&config.spec, config.batch_size, &splits, Some(config.optimizer), seed, fold)?;
        let mut engine = engine(executor, &graph.program)?;
        for (name, _) in splits {
            let split = data.split(name);
            graph.upload_split(engine.as_mut(), name, &split.images, &split.labels)?;
        }
        let mut trainer = Trainer {
            config,
            graph,
            engine,
            epoch: 0,
            step: 0,
            history: Vec::new(),
            last_epoch: Counters::default(),
            stop: &STOP,
            partial: None,
            data: identity,
        };
        match resume {
            Some(c) => {
                trainer.graph.write_weights(trainer.engine.as_mut(), &c.values())?;
                trainer.graph.write_slots(trainer.engine.as_mut(), &c.slots)?;
                trainer.epoch = c.epoch;
                trainer.step = c.step;
                trainer.history = c.history.clone();
                trainer.partial = c.partial.clone();
            }
            None => {
                let mut rng = Rng::new(trainer.config.seed);
                let init: Vec<Vec<f32>> =
                    trainer.graph.params.iter().map(|p| initial_values(&p.spec, &mut rng)).collect();
                trainer.graph.write_weights(trainer.engine.as_mut(), &init)?;
            }
        }
        Ok(trainer)
    }

    pub fn engine(&mut self) -> &mut dyn Engine {
        self.engine.as_mut()
    }

    /// The gradients of the last step, by weight name, in Keras's layout.
    pub fn grads(&mut self) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
        self.graph.read_grads(self.engine.as_mut())
    }

    /// Replaces every weight (statistics included; Keras's layout, in `graph.params` order).
    pub fn set_weights(&mut self, values: &[Vec<f32>]) -> anyhow::Result<()> {
        self.graph.write_weights(self.engine.as_mut(), values)
    }

    /// The monitored quantity of every epoch so far.
    pub fn monitored(&self, monitor: crate::graph::callbacks::Monitor) -> Vec<f64> {
        self.history.iter().map(|r| monitor.pick(r.val_loss, r.val_accuracy)).collect()
    }

    /// Kernel launches in one full training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.engine.dispatches_per_run(self.graph.train_pass.unwrap().full)
    }

    /// The order of the training images in epoch `epoch` (0-based): a shuffle seeded by
    /// (seed, epoch), so that a resumed run sees the same batches as an uninterrupted one.
    pub fn epoch_order(&self, epoch: usize, len: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..len as u32).collect();
        let salt = pcg_hash(epoch as u32 + 1) as u64;
        Rng::new(self.config.seed ^ (salt << 32 | salt)).shuffle(&mut order);
        order
    }

    /// What the GPU needs before an epoch's steps: the shuffled order, the state at the epoch's
    /// first step (or at the step an interrupted epoch stopped at), and the optimizer's rate
    /// for each step. Returns the pass and the full steps already done.
    fn start_epoch(&mut self) -> anyhow::Result<(crate::graph::schedule::Pass, usize)> {
        let pass = self.graph.train_pass.unwrap();
        let split = self.graph.splits[&SplitName::Train];
        let order = self.epoch_order(self.epoch, split.len);
        self.engine.write_u32(split.index, &order)?;
        let done = self.partial.as_ref().map_or(0, |p| p.steps);
        let first = self.step - done as u64;
        let state = State {
            step: self.step as u32,
            cursor: (done * self.config.batch_size) as u32,
            record: done as u32,
            epoch: self.epoch as u32,
        };
        self.engine.write_u32(self.graph.state, state.words())?;
        let val_losses = self.monitored(crate::graph::callbacks::Monitor::ValLoss);
        self.engine.write_f32(
            self.graph.rates,
            &self.config.optimizer.step_rates(first, pass.steps, &self.config.schedule, &val_losses),
        )?;
        if let Some(p) = &self.partial {
            self.engine.write_f32(self.graph.records, &p.records)?;
        }
        Ok((pass, done))
    }

    /// Runs `steps` training steps of the current epoch from its start, without validation:
    /// the agreement and determinism tests use it.
    pub fn run_steps(&mut self, steps: usize) -> anyhow::Result<Vec<f32>> {
        let (pass, _) = self.start_epoch()?;
        self.engine.run(pass.full, steps.min(pass.full_steps))?;
        self.step += steps as u64;
        let records = self.engine.read_f32(self.graph.records)?;
        Ok(Record::rows(&records).iter().take(steps).map(|r| r.loss).collect())
    }

    /// One epoch over the shuffled training set, then validation; an interrupted epoch goes on
    /// from where it stopped. Stops between two chunks of steps when [`Trainer::stop`] is set
    /// ([`Interrupted`]), and on a loss that is not finite ([`Diverged`]).
    pub fn train_epoch(&mut self, progress: &mut dyn Progress) -> anyhow::Result<EpochRow> {
        let start = Instant::now();
        let before = self.engine.counters();
        let (pass, mut done) = self.start_epoch()?;
        let earlier_seconds = self.partial.take().map_or(0.0, |p| p.seconds);
        progress.epoch_start(self.epoch + 1, self.config.epochs, pass.steps);
        let chunk = pass.full_steps.div_ceil(PROGRESS_READS).max(1);
        while done < pass.full_steps {
            let n = chunk.min(pass.full_steps - done);
            self.engine.run(pass.full, n)?;
            done += n;
            self.step += n as u64;
            if done < pass.steps {
                let records = self.engine.read_f32(self.graph.records)?;
                self.check_finite(&records, done)?;
                let (loss, accuracy) = summarize(&records, done);
                let rate = (done * self.config.batch_size) as f64 / start.elapsed().as_secs_f64();
                progress.steps(done, loss, accuracy, rate);
                if self.stop.load(Ordering::SeqCst) && done < pass.full_steps {
                    let records = records[..done * RECORD_WIDTH].to_vec();
                    let seconds = earlier_seconds + start.elapsed().as_secs_f64();
                    self.partial = Some(Partial { steps: done, records, seconds });
                    return Err(Interrupted { epoch: self.epoch + 1, step: done }.into());
                }
            }
        }
        if let Some((last, _)) = pass.last {
            self.engine.run(last, 1)?;
            self.step += 1;
        }
        let records = self.engine.read_f32(self.graph.records)?;
        self.check_finite(&records, pass.steps)?;
        let (train_loss, train_accuracy) = summarize(&records, pass.steps);
        let val = self.evaluate(SplitName::Val)?;
        self.epoch += 1;
        let row = EpochRow {
            epoch: self.epoch,
            train_loss,
            train_accuracy,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            seconds: earlier_seconds + start.elapsed().as_secs_f64(),
        };
        self.last_epoch = self.engine.counters().since(before);
        self.history.push(row.clone());
        progress.epoch_end(&row);
        Ok(row)
    }

    /// [`Diverged`] at the first of the epoch's first `steps` records whose loss is not finite.
    fn check_finite(&self, records: &[f32], steps: usize) -> anyhow::Result<()> {
        match Record::rows(records).iter().take(steps).position(|r| !r.loss.is_finite()) {
            Some(i) => Err(Diverged {
                epoch: self.epoch + 1,
                step: i + 1,
                loss: Record::rows(records)[i].loss as f64,
            }
            .into()),
            None => Ok(()),
        }
    }

    /// One pass over a split in inference mode.
    pub fn evaluate(&mut self, split: SplitName) -> anyhow::Result<Evaluation> {
        evaluate(self.engine.as_mut(), &self.graph, split, self.step)
    }

    /// The model as it stands, ready to save.
    pub fn checkpoint(&mut self) -> anyhow::Result<Checkpoint> {
        let values = self.graph.read_weights(self.engine.as_mut())?;
        let weights = self
            .graph
            .params
            .iter()
            .zip(values)
            .map(|(p, v)| (p.spec.name.clone(), p.spec.keras_shape.clone(), v))
            .collect();
        Ok(Checkpoint {
            spec: self.config.spec.clone(),
            optimizer: self.config.optimizer,
            schedule: self.config.schedule.clone(),
            batch_size: self.config.batch_size,
            seed: self.config.seed,
            epochs: self.config.epochs,
            epoch: self.epoch,
            step: self.step,
            weights,
            slots: self.graph.read_slots(self.engine.as_mut())?.into_iter().collect(),
            history: self.history.clone(),
            partial: self.partial.clone(),
            data: Some(self.data.clone()),
        })
    }
}

/// A checkpoint's model ready for inference on one split of `labels.len()` images at batch size
/// `batch`: the schedule, and an engine that holds the weights and the images.
pub fn inference<'a>(
    executor: &'a Executor,
    model: &checkpoint::Model,
    split: SplitName,
    images: &[u8],
    labels: &[u8],
    batch: usize,
) -> anyhow::Result<(Graph, Box<dyn Engine + 'a>)> {
    let graph = Graph::build(&model.spec, batch, &[(split, labels.len())], None, 0)?;
    let mut engine = engine(executor, &graph.program)?;
    graph.write_weights(engine.as_mut(), &model.values())?;
    graph.upload_split(engine.as_mut(), split, images, labels)?;
    Ok((graph, engine))
}

/// Runs the evaluation pass of `split` on `engine` and reads back its loss, accuracy and
/// confusion counts.
pub fn evaluate(
    engine: &mut dyn Engine,
    graph: &Graph,
    split: SplitName,
    step: u64,
) -> anyhow::Result<Evaluation> {
    let pass = graph.eval_passes[&split];
    engine.write_u32(graph.state, State::at_step(step).words())?;
    engine.write_u32(graph.confusion, &[0; CLASSES * CLASSES])?;
    engine.run(pass.full, pass.full_steps)?;
    if let Some((last, _)) = pass.last {
        engine.run(last, 1)?;
    }
    let (loss, accuracy) = summarize(&engine.read_f32(graph.records)?, pass.steps);
    let confusion = engine.read_u32(graph.confusion)?.iter().map(|&c| c as u64).collect();
    Ok(Evaluation { loss, accuracy, confusion, images: graph.splits[&split].len })
}
