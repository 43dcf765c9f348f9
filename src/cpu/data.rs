//! Reference for shaders/data.wgsl: batches in (gather), metrics out (argmax, confusion, record).

use crate::data::augment::{draw, source, Augment};
use crate::data::byte;
use crate::graph::ops::Record;

/// Where [`gather`] reads from: the split's tensors and the step's position in it.
pub struct Source<'a> {
    pub images: &'a [u32],
    pub labels: &'a [u32],
    pub index: &'a [u32],
    pub cursor: usize,
    /// The epoch the augmentation draws for.
    pub epoch: u32,
}

/// x (B, P) = the images index[cursor..cursor + B] scaled by 1/255 (a multiply, as on the GPU),
/// each changed as [`draw`] picks for (seed, epoch, image) when `augment` is given (square
/// images); y (B) their labels.
pub fn gather(s: &Source, pixels: usize, augment: Option<(&Augment, u32)>, x: &mut [f32], y: &mut [u32]) {
    let side = (pixels as f64).sqrt() as u32;
    for (b, (row, label)) in x.chunks_exact_mut(pixels).zip(y.iter_mut()).enumerate() {
        let image = s.index[s.cursor + b] as usize;
        let d = augment.map(|(a, seed)| draw(a, seed, s.epoch, image as u32, side));
        for (p, v) in row.iter_mut().enumerate() {
            let from = match &d {
                None => Some(p),
                Some(d) => source(d, side, p as u32 / side, p as u32 % side),
            };
            *v = from.map_or(0.0, |q| byte(s.images, image * pixels + q) as f32 * (1.0 / 255.0));
        }
        *label = s.labels[image];
    }
}

/// The index of the first largest value of each row of logits (B, C).
pub fn argmax(logits: &[f32], classes: usize, pred: &mut [u32]) {
    for (row, p) in logits.chunks_exact(classes).zip(pred.iter_mut()) {
        let mut best = 0;
        for j in 1..classes {
            if row[j] > row[best] {
                best = j;
            }
        }
        *p = best as u32;
    }
}

/// counts (C, C) += the (label, prediction) pairs.
pub fn confusion(labels: &[u32], pred: &[u32], classes: usize, counts: &mut [u32]) {
    for (&l, &p) in labels.iter().zip(pred) {
        counts[l as usize * classes + p as usize] += 1;
    }
}

/// (mean loss + Σ penalties, #correct, B) for one batch: the losses summed in order as the
/// kernel does, the penalties in order too (the kernel adds them by a 64-wide tree).
pub fn record(loss: &[f32], pred: &[u32], labels: &[u32], penalties: &[f32]) -> Record {
    let sum: f32 = loss.iter().fold(0.0, |s, &l| s + l);
    let total = sum / loss.len() as f32 + penalties.iter().fold(0.0, |t, &p| t + p);
    let correct = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    Record { loss: total, correct: correct as f32, count: loss.len() as f32 }
}
