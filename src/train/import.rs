//! Weights from elsewhere: a safetensors file written by Keras (`dense/kernel`, kernels
//! (in, out) and (kh, kw, in, out)) or by PyTorch (`0.weight`, Linear (out, in), Conv2d
//! (out, in, kh, kw), BatchNorm's `running_mean`/`running_var`) mapped onto a model of ours,
//! each kind of layer in order: the file's dense layers onto the model's, its convolutions onto
//! the model's, its BatchNorms onto the model's. PyTorch flattens a feature map channel-first and
//! Keras channel-last, so the vectors between such a Flatten and the next Dense (and that Dense's
//! kernel rows) are reordered too. Every mismatch in count, name or shape is an error naming the
//! tensor; [`Mapping`] is the table `gpu-fmnist import` prints.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::checkpoint::Model;
use crate::graph::model::{Layer, Shape};
use crate::graph::ModelSpec;

/// Whose names and layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Keras,
    PyTorch,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Keras => "Keras",
            Layout::PyTorch => "PyTorch",
        })
    }
}

/// One row of the mapping: a tensor of the file, and what it became.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub from: String,
    pub from_shape: Vec<usize>,
    /// Our tensor (empty: ignored, e.g. PyTorch's `num_batches_tracked`).
    pub to: String,
    pub to_shape: Vec<usize>,
    /// What was done to the values: `as is`, `transposed`, …
    pub how: String,
}

/// The kinds of layers that hold weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Conv,
    Dense,
    Norm,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Conv => "convolution",
            Kind::Dense => "dense",
            Kind::Norm => "BatchNorm",
        }
    }
}

/// A layer of the file: its name, and its tensors by role (`kernel`, `weight`, `running_mean`, …).
type FileLayer = (String, BTreeMap<String, Tensor>);

/// A tensor read from the file, as f32.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Reads `path` and maps it onto `spec`: the model to save, and the mapping table.
pub fn import(path: &Path, spec: &ModelSpec) -> anyhow::Result<(Model, Layout, Vec<Mapping>)> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{shown}: not a safetensors file ({e})"))?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => {
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            // PyTorch's counter of BatchNorm updates: not a weight.
            Dtype::I64 if name.ends_with("num_batches_tracked") => vec![],
            other => anyhow::bail!("{shown}: {name} is {other:?}; save the weights as float32"),
        };
        tensors.push(Tensor { name, shape: view.shape().to_vec(), values });
    }
    map(&shown, tensors, spec)
}

/// The layer a tensor belongs to and the tensor's role in it, by the file's naming.
fn split_name(name: &str, layout: Layout) -> Option<(String, String)> {
    match layout {
        Layout::Keras => {
            let name = name.strip_suffix(":0").unwrap_or(name);
            let mut parts: Vec<&str> = name.split('/').collect();
            let role = parts.pop()?;
            let layer = parts.pop()?;
            Some((layer.to_string(), role.to_string()))
        }
        Layout::PyTorch => {
            let (layer, role) = name.rsplit_once('.')?;
            Some((layer.to_string(), role.to_string()))
        }
    }
}

/// Orders layer names as people number them: `dense` < `dense_2` < `dense_10`, `features.9` <
/// `features.10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for ch in name.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            if !digits.is_empty() {
                out.push((std::mem::take(&mut text), digits.parse().unwrap_or(u64::MAX)));
                digits.clear();
            }
            text.push(ch);
        }
    }
    out.push((text, if digits.is_empty() { 0 } else { digits.parse().unwrap_or(u64::MAX) }));
    out
}

fn map(shown: &str, tensors: Vec<Tensor>, spec: &ModelSpec) -> anyhow::Result<(Model, Layout, Vec<Mapping>)> {
    let torchy = tensors.iter().any(|t| t.name.ends_with(".weight") || t.name.ends_with(".running_mean"));
    let kerasy = tensors.iter().any(|t| t.name.contains('/'));
    let layout = match (torchy, kerasy) {
        (true, false) => Layout::PyTorch,
        (false, true) => Layout::Keras,
        _ => anyhow::bail!(
            "{shown}: cannot tell whose names these are: expected PyTorch's (`0.weight`, `fc1.bias`) or Keras's (`dense/kernel`)"
        ),
    };
    // The file's layers: name → role → tensor.
    let mut layers: BTreeMap<String, BTreeMap<String, Tensor>> = BTreeMap::new();
    for t in tensors {
        let (layer, role) = split_name(&t.name, layout)
            .ok_or_else(|| anyhow::anyhow!("{shown}: `{}` is not a {layout} weight name", t.name))?;
        layers.entry(layer).or_default().insert(role, t);
    }
    let kind_of = |roles: &BTreeMap<String, Tensor>, layer: &str| -> anyhow::Result<Kind> {
        let (w, norm) = match layout {
            Layout::Keras => ("kernel", roles.contains_key("moving_mean")),
            Layout::PyTorch => ("weight", roles.contains_key("running_mean")),
        };
        if norm {
            return Ok(Kind::Norm);
        }
        match roles.get(w).map(|t| t.shape.len()) {
            Some(4) => Ok(Kind::Conv),
            Some(2) => Ok(Kind::Dense),
            _ => anyhow::bail!(
                "{shown}: layer `{layer}` is neither a dense layer, a 2-D convolution nor a BatchNorm"
            ),
        }
    };
    let mut theirs: BTreeMap<Kind, Vec<FileLayer>> = BTreeMap::new();
    for (name, roles) in layers {
        let kind = kind_of(&roles, &name)?;
        theirs.entry(kind).or_default().push((name, roles));
    }
    for list in theirs.values_mut() {
        list.sort_by_key(|(name, _)| natural_key(name));
    }
    // Ours, in model order, with what PyTorch's channel-first flatten means for each.
    let resolved = spec.resolve()?;
    let mut ours: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
    let mut reorder: Vec<Option<(usize, usize, usize)>> = vec![None; resolved.len()];
    let mut flat_from: Option<(usize, usize, usize)> = None;
    for (i, r) in resolved.iter().enumerate() {
        match &r.layer {
            Layer::Flatten => {
                flat_from = match r.input {
                    Shape::Image { h, w, c } if c > 1 && h * w > 1 => Some((h, w, c)),
                    _ => None,
                }
            }
            Layer::Conv2d { .. } => ours.entry(Kind::Conv).or_default().push(i),
            Layer::Dense { .. } => {
                ours.entry(Kind::Dense).or_default().push(i);
                reorder[i] = flat_from.take();
            }
            Layer::BatchNorm { .. } => {
                ours.entry(Kind::Norm).or_default().push(i);
                if matches!(r.input, Shape::Flat(_)) {
                    reorder[i] = flat_from;
                }
            }
            _ => {}
        }
    }
    for kind in [Kind::Conv, Kind::Dense, Kind::Norm] {
        let (a, b) = (theirs.get(&kind).map_or(0, Vec::len), ours.get(&kind).map_or(0, Vec::len));
        anyhow::ensure!(
            a == b,
            "{shown}: the file has {a} {} layer(s), the model `{}` has {b}",
            kind.name(),
            spec.name
        );
    }
    let mut values: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    // Rows by the model layer they went to, so the table reads in model order.
    let mut table: Vec<(usize, Mapping)> = Vec::new();
    for (kind, list) in &theirs {
        for ((layer, roles), &i) in list.iter().zip(&ours[kind]) {
            let r = &resolved[i];
            let mut roles: BTreeMap<&str, &Tensor> = roles.iter().map(|(k, v)| (k.as_str(), v)).collect();
            for w in &r.weights {
                let ours_role = w.name.rsplit('/').next().expect("layer/role");
                let role = match (layout, ours_role) {
                    (Layout::Keras, r) => r,
                    (Layout::PyTorch, "kernel" | "gamma") => "weight",
                    (Layout::PyTorch, "beta") => "bias",
                    (Layout::PyTorch, "moving_mean") => "running_mean",
                    (Layout::PyTorch, "moving_variance") => "running_var",
                    (Layout::PyTorch, r) => r,
                };
                let t = roles.remove(role).ok_or_else(|| {
                    anyhow::anyhow!("{shown}: layer `{layer}` has no `{role}` for the model's {}", w.name)
                })?;
                // The flattened features' order matters for a Dense kernel's rows and for the
                // vectors of a BatchNorm over them (not for a Dense layer's own outputs).
                let features = if *kind == Kind::Norm { reorder[i] } else { None };
                let (v, shape, how) = convert(t, layout, reorder[i], features);
                anyhow::ensure!(
                    shape == w.keras_shape && v.len() == w.len(),
                    "{shown}: {} has shape {:?}{}; the model's {} needs {:?}",
                    t.name,
                    t.shape,
                    if shape != t.shape { format!(" ({shape:?} in Keras's layout)") } else { String::new() },
                    w.name,
                    w.keras_shape
                );
                table.push((
                    i,
                    Mapping {
                        from: t.name.clone(),
                        from_shape: t.shape.clone(),
                        to: w.name.clone(),
                        to_shape: w.keras_shape.clone(),
                        how,
                    },
                ));
                values.insert(w.name.clone(), v);
            }
            for (_, t) in roles {
                anyhow::ensure!(
                    t.name.ends_with("num_batches_tracked"),
                    "{shown}: {} has no place in the model's {}",
                    t.name,
                    r.name
                );
                table.push((
                    i,
                    Mapping {
                        from: t.name.clone(),
                        from_shape: t.shape.clone(),
                        to: String::new(),
                        to_shape: vec![],
                        how: "ignored (a counter)".into(),
                    },
                ));
            }
        }
    }
    let weights = resolved
        .iter()
        .flat_map(|r| &r.weights)
        .map(|w| {
            (w.name.clone(), w.keras_shape.clone(), values.remove(&w.name).expect("every weight mapped"))
        })
        .collect();
    table.sort_by_key(|(i, _)| *i);
    Ok((Model { spec: spec.clone(), weights }, layout, table.into_iter().map(|(_, m)| m).collect()))
}

/// A tensor in Keras's layout: its values, its shape and what was done. `rows`: a PyTorch dense
/// kernel's inputs are a feature map of this (h, w, c) flattened channel-first; `features`: a
/// vector is.
fn convert(
    t: &Tensor,
    layout: Layout,
    rows: Option<(usize, usize, usize)>,
    features: Option<(usize, usize, usize)>,
) -> (Vec<f32>, Vec<usize>, String) {
    // Keras's index of a flattened feature → PyTorch's (channel-first).
    let torch_index = |k: usize, (h, w, c): (usize, usize, usize)| {
        let (y, x, ch) = (k / (w * c), (k / c) % w, k % c);
        ch * h * w + y * w + x
    };
    match (layout, t.shape.as_slice()) {
        (Layout::Keras, _) => (t.values.clone(), t.shape.clone(), "as is".into()),
        (Layout::PyTorch, &[out, inp, kh, kw]) => {
            // (out, in, kh, kw) → (kh, kw, in, out)
            let mut v = vec![0.0; t.values.len()];
            for o in 0..out {
                for i in 0..inp {
                    for a in 0..kh {
                        for b in 0..kw {
                            v[((a * kw + b) * inp + i) * out + o] =
                                t.values[((o * inp + i) * kh + a) * kw + b];
                        }
                    }
                }
            }
            (v, vec![kh, kw, inp, out], "(out, in, kh, kw) → (kh, kw, in, out)".into())
        }
        (Layout::PyTorch, &[out, inp]) => {
            // (out, in) → (in, out), rows in Keras's flatten order after a feature map.
            let mut v = vec![0.0; t.values.len()];
            for o in 0..out {
                for i in 0..inp {
                    let src = rows.map_or(i, |f| torch_index(i, f));
                    v[i * out + o] = t.values[o * inp + src];
                }
            }
            let how = if rows.is_some() { "transposed, inputs reordered channel-last" } else { "transposed" };
            (v, vec![inp, out], how.into())
        }
        (Layout::PyTorch, &[n]) => match features {
            Some(f) if f.0 * f.1 * f.2 == n => (
                (0..n).map(|k| t.values[torch_index(k, f)]).collect(),
                vec![n],
                "reordered channel-last".into(),
            ),
            _ => (t.values.clone(), vec![n], "as is".into()),
        },
        (Layout::PyTorch, s) => (t.values.clone(), s.to_vec(), "as is".into()),
    }
}
