//! Reference for shaders/data.wgsl: batches in (gather), metrics out (argmax, confusion, record).

use crate::data::byte;
use crate::graph::ops::Record;

/// x (B, P) = the images index[cursor..cursor + B] scaled by 1/255 (a multiply, as on the GPU);
/// y (B) their labels.
pub fn gather(
    images: &[u32],
    labels: &[u32],
    index: &[u32],
    cursor: usize,
    pixels: usize,
    x: &mut [f32],
    y: &mut [u32],
) {
    for (b, (row, label)) in x.chunks_exact_mut(pixels).zip(y.iter_mut()).enumerate() {
        let image = index[cursor + b] as usize;
        for (p, v) in row.iter_mut().enumerate() {
            *v = byte(images, image * pixels + p) as f32 * (1.0 / 255.0);
        }
        *label = labels[image];
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
