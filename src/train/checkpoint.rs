//! `model.safetensors`: the weights in Keras's layout and names, the optimizer's state, and in
//! the metadata the model spec, the training settings, the epoch and step, the history and the
//! data set trained on — everything `eval`, `predict` and `--resume` need. A checksum covers the
//! tensors and the metadata both, so an edited file is an error rather than a different run.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::{EpochRow, Partial};
use crate::graph::{ModelSpec, Optimizer};

/// The format written: its checksum covers the metadata too.
const FORMAT: &str = "gpu-fmnist/2";
/// The first format, still read: its checksum covers the tensors only.
const FORMAT_1: &str = "gpu-fmnist/1";

/// A trained (or training) model on disk.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub spec: ModelSpec,
    pub optimizer: Optimizer,
    pub schedule: crate::graph::lr::Schedule,
    pub batch_size: usize,
    pub seed: u64,
    /// Epochs asked for, and epochs done.
    pub epochs: usize,
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Every weight (statistics included), by Keras name, in Keras's layout, in model order.
    pub weights: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// Optimizer slots by `<weight>/slot<i>`.
    pub slots: HashMap<String, Vec<f32>>,
    pub history: Vec<EpochRow>,
    /// Where an interrupted epoch stopped (None: at an epoch's end).
    pub partial: Option<Partial>,
    /// The data set trained on (None in checkpoints written before it was recorded).
    pub data: Option<crate::data::DataId>,
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Checkpoint {
    /// Serializes and writes atomically: a crash never leaves a half-written file in place.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
            self.weights.iter().map(|(n, s, v)| (n.clone(), s.clone(), bytes(v))).collect();
        let mut slot_names: Vec<&String> = self.slots.keys().collect();
        slot_names.sort();
        for name in slot_names {
            let v = &self.slots[name];
            tensors.push((format!("optimizer/{name}"), vec![v.len()], bytes(v)));
        }
        let mut metadata = HashMap::from([
            ("spec".to_string(), serde_json::to_string(&self.spec)?),
            ("optimizer".to_string(), serde_json::to_string(&self.optimizer)?),
            ("schedule".to_string(), serde_json::to_string(&self.schedule)?),
            ("batch_size".to_string(), self.batch_size.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("epochs".to_string(), self.epochs.to_string()),
            ("epoch".to_string(), self.epoch.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("history".to_string(), serde_json::to_string(&self.history)?),
        ]);
        if let Some(p) = &self.partial {
            metadata.insert("partial".to_string(), serde_json::to_string(p)?);
        }
        if let Some(d) = &self.data {
            metadata.insert("data".to_string(), serde_json::to_string(d)?);
        }
        write_atomic(path, &serialize(tensors, metadata)?)
    }

    /// Reads a checkpoint to train on from; any problem is one line naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
        let (model, meta, slots) = read(path)?;
        let shown = path.display();
        let get = |key: &str| {
            meta.get(key).ok_or_else(|| {
                anyhow::anyhow!("{shown}: holds a model but no training state (no `{key}` in its metadata): it serves eval and predict, not --resume")
            })
        };
        let parse = |key: &str| -> anyhow::Result<u64> {
            get(key)?.parse().map_err(|_| anyhow::anyhow!("{shown}: bad `{key}` in the metadata"))
        };
        Ok(Checkpoint {
            optimizer: serde_json::from_str(get("optimizer")?)
                .map_err(|e| anyhow::anyhow!("{shown}: bad optimizer: {e}"))?,
            // Checkpoints from before schedules existed trained at a constant rate.
            schedule: match meta.get("schedule") {
                Some(s) => {
                    serde_json::from_str(s).map_err(|e| anyhow::anyhow!("{shown}: bad schedule: {e}"))?
                }
                None => crate::graph::lr::Schedule::Constant,
            },
            batch_size: parse("batch_size")? as usize,
            seed: parse("seed")?,
            epochs: parse("epochs")? as usize,
            epoch: parse("epoch")? as usize,
            step: parse("step")?,
            history: serde_json::from_str(get("history")?)
                .map_err(|e| anyhow::anyhow!("{shown}: bad history: {e}"))?,
            partial: match meta.get("partial") {
                Some(p) => Some(
                    serde_json::from_str(p).map_err(|e| anyhow::anyhow!("{shown}: bad `partial`: {e}"))?,
                ),
                None => None,
            },
            data: match meta.get("data") {
                Some(d) => {
                    Some(serde_json::from_str(d).map_err(|e| anyhow::anyhow!("{shown}: bad `data`: {e}"))?)
                }
                None => None,
            },
            spec: model.spec,
            weights: model.weights,
            slots,
        })
    }

    /// The weights' values alone, in model order.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.weights.iter().map(|(_, _, v)| v.clone()).collect()
    }
}

/// What inference needs of a checkpoint: the model and its weights.
#[derive(Debug, Clone)]
pub struct Model {
    pub spec: ModelSpec,
    /// Every weight (statistics included), by Keras name, in Keras's layout, in model order.
    pub weights: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Model {
    /// Reads the model of a checkpoint (its `format`, `spec`, `checksum` and weights; training
    /// state is not needed): what `eval` and `predict` use.
    pub fn load(path: &Path) -> anyhow::Result<Model> {
        Ok(read(path)?.0)
    }

    /// [`Model::load`] of a file's bytes.
    pub fn from_bytes(data: &[u8]) -> anyhow::Result<Model> {
        Ok(read_bytes(data, "checkpoint")?.0)
    }

    /// The weights' values alone, in model order.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.weights.iter().map(|(_, _, v)| v.clone()).collect()
    }

    /// Writes the model alone, without training state — what `import` makes: `eval` and
    /// `predict` read it, `--resume` says it has nothing to resume. `source` says where the
    /// weights came from.
    pub fn save(&self, path: &Path, source: &str) -> anyhow::Result<()> {
        let tensors = self.weights.iter().map(|(n, s, v)| (n.clone(), s.clone(), bytes(v))).collect();
        let metadata = HashMap::from([
            ("spec".to_string(), serde_json::to_string(&self.spec)?),
            ("imported_from".to_string(), source.to_string()),
        ]);
        write_atomic(path, &serialize(tensors, metadata)?)
    }
}

/// A checkpoint file's bytes: the tensors, and the metadata with the format, the layout, the
/// build and the checksum over both added.
fn serialize(
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    mut metadata: HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert("build".to_string(), crate::BUILD.to_string());
    metadata.insert(
        "layout".to_string(),
        "keras: dense kernels (in, out), conv kernels (kh, kw, in, out)".to_string(),
    );
    let sum = checksum(tensors.iter().map(|(n, _, d)| (n.as_str(), d)), Some(&metadata));
    metadata.insert("checksum".to_string(), sum);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// The model, the metadata and the optimizer slots of a checkpoint file, checked: the format,
/// the checksum, the spec, and every tensor the model has, no other, each of its shape and f32.
#[allow(clippy::type_complexity)]
fn read(path: &Path) -> anyhow::Result<(Model, HashMap<String, String>, HashMap<String, Vec<f32>>)> {
    let data = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    read_bytes(&data, &path.display().to_string())
}

/// [`read`] of a file's bytes; `shown` names it in errors.
#[allow(clippy::type_complexity)]
fn read_bytes(
    data: &[u8],
    shown: &str,
) -> anyhow::Result<(Model, HashMap<String, String>, HashMap<String, Vec<f32>>)> {
    let (_, header) = SafeTensors::read_metadata(data)
        .map_err(|e| anyhow::anyhow!("{shown}: not a safetensors file ({e})"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            anyhow::anyhow!("{shown}: not a gpu-fmnist checkpoint (no `{key}` in its metadata)")
        })
    };
    let format = get("format")?;
    anyhow::ensure!(
        format == FORMAT || format == FORMAT_1,
        "{shown}: checkpoint format {format} is not {FORMAT} (or {FORMAT_1})"
    );
    let spec: ModelSpec =
        serde_json::from_str(get("spec")?).map_err(|e| anyhow::anyhow!("{shown}: bad model spec: {e}"))?;
    let tensors = SafeTensors::deserialize(data).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let mut stored: Vec<(String, Vec<u8>)> =
        tensors.tensors().into_iter().map(|(name, view)| (name, view.data().to_vec())).collect();
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    let covered = (format == FORMAT).then_some(&meta);
    anyhow::ensure!(
        get("checksum")? == &checksum(stored.iter().map(|(n, d)| (n.as_str(), d)), covered),
        "{shown}: the file does not match its checksum: it was damaged or edited"
    );
    let floats = |name: &str| -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
        let t = tensors.tensor(name).map_err(|_| anyhow::anyhow!("{shown}: no tensor {name}"))?;
        anyhow::ensure!(t.dtype() == Dtype::F32, "{shown}: {name} is {:?}, not F32", t.dtype());
        let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok((t.shape().to_vec(), v))
    };
    let mut weights = Vec::new();
    for layer in spec.resolve().map_err(|e| anyhow::anyhow!("{shown}: {e}"))? {
        for w in layer.weights {
            let (shape, values) = floats(&w.name)?;
            anyhow::ensure!(
                shape == w.keras_shape,
                "{shown}: {} has shape {shape:?}, the model needs {:?}",
                w.name,
                w.keras_shape
            );
            weights.push((w.name, shape, values));
        }
    }
    let mut slots = HashMap::new();
    for name in tensors.names() {
        match name.strip_prefix("optimizer/") {
            Some(slot) => {
                slots.insert(slot.to_string(), floats(name)?.1);
            }
            None => anyhow::ensure!(
                weights.iter().any(|w| w.0 == *name),
                "{shown}: holds a tensor {name} that the model `{}` does not have",
                spec.name
            ),
        }
    }
    Ok((Model { spec, weights }, meta, slots))
}

/// FNV-1a (64 bits) over every tensor's name and bytes in name order, then (when given) every
/// metadata entry but the checksum itself in key order, as 16 hex digits: what `load` checks,
/// so that a damaged or altered file is an error rather than a wrong model or another run.
fn checksum<'a>(
    tensors: impl Iterator<Item = (&'a str, &'a Vec<u8>)>,
    metadata: Option<&HashMap<String, String>>,
) -> String {
    use crate::data::identity::{fnv1a, FNV_START};
    let mut sorted: Vec<(&str, &Vec<u8>)> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h =
        sorted.iter().fold(FNV_START, |h, (name, data)| fnv1a(fnv1a(fnv1a(h, name.as_bytes()), &[0]), data));
    if let Some(meta) = metadata {
        let mut keys: Vec<&String> = meta.keys().filter(|k| *k != "checksum").collect();
        keys.sort();
        for k in keys {
            h = fnv1a(fnv1a(fnv1a(fnv1a(h, k.as_bytes()), &[0]), meta[k].as_bytes()), &[0]);
        }
    }
    format!("{h:016x}")
}

/// Writes `data` to a temporary file beside `path`, flushes it, then renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| anyhow::anyhow!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("{}: cannot write: {e}", path.display());
    }
    Ok(())
}
