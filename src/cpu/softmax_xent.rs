//! Reference for shaders/softmax_xent.wgsl: softmax fused with sparse categorical cross-entropy.

use super::Real;

/// For each row b of logits (B, C): loss[b] = logsumexp(row) − row[label]; probs = softmax(row);
/// dlogits = (probs − onehot(label)) · scale. Stable: the row maximum is subtracted first.
pub fn softmax_xent<F: Real>(
    logits: &[F],
    labels: &[u32],
    classes: usize,
    scale: F,
    loss: &mut [F],
    mut probs: Option<&mut [F]>,
    mut dlogits: Option<&mut [F]>,
) {
    for (b, row) in logits.chunks_exact(classes).enumerate().take(loss.len()) {
        let top = row.iter().copied().fold(F::neg_infinity(), F::max);
        let sum: F = row.iter().map(|&z| (z - top).exp()).sum();
        let label = labels[b] as usize;
        loss[b] = sum.ln() - (row[label] - top);
        for (j, &z) in row.iter().enumerate() {
            let p = (z - top).exp() / sum;
            if let Some(probs) = probs.as_deref_mut() {
                probs[b * classes + j] = p;
            }
            if let Some(d) = dlogits.as_deref_mut() {
                let onehot = if j == label { F::one() } else { F::zero() };
                d[b * classes + j] = (p - onehot) * scale;
            }
        }
    }
}
