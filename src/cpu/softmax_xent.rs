//! Reference for shaders/softmax_xent.wgsl: softmax fused with sparse categorical cross-entropy.

use super::Real;

/// For each row b of logits (B, C), against the target q = (1 − ε)·onehot(label) + ε/C (label
/// smoothing ε, Keras's `label_smoothing`; ε = 0: the one-hot label):
/// loss[b] = logsumexp(row) − Σ_j q_j·row[j] = log-sum − ((1 − ε)(row[label] − top) + ε/C·Σ_j (row[j] − top));
/// probs = softmax(row); dlogits = (probs − q) · scale. Stable: the row maximum is subtracted first.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent<F: Real>(
    logits: &[F],
    labels: &[u32],
    classes: usize,
    scale: F,
    smoothing: F,
    loss: &mut [F],
    mut probs: Option<&mut [F]>,
    mut dlogits: Option<&mut [F]>,
) {
    let spread = smoothing / F::of(classes as f64);
    for (b, row) in logits.chunks_exact(classes).enumerate().take(loss.len()) {
        let top = row.iter().copied().fold(F::neg_infinity(), F::max);
        let sum: F = row.iter().map(|&z| (z - top).exp()).sum();
        let label = labels[b] as usize;
        let centred: F = row.iter().map(|&z| z - top).sum();
        loss[b] = sum.ln() - ((F::one() - smoothing) * (row[label] - top) + spread * centred);
        for (j, &z) in row.iter().enumerate() {
            let p = (z - top).exp() / sum;
            if let Some(probs) = probs.as_deref_mut() {
                probs[b * classes + j] = p;
            }
            if let Some(d) = dlogits.as_deref_mut() {
                let onehot = if j == label { F::one() } else { F::zero() };
                d[b * classes + j] = (p - ((F::one() - smoothing) * onehot + spread)) * scale;
            }
        }
    }
}
