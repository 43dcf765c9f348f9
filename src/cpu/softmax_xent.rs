//! Reference for shaders/softmax_xent.wgsl: softmax fused with sparse categorical cross-entropy.

/// For each row b of logits (B, C): loss[b] = logsumexp(row) − row[label]; probs = softmax(row);
/// dlogits = (probs − onehot(label)) · scale. Stable: the row maximum is subtracted first.
pub fn softmax_xent(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    scale: f32,
    loss: &mut [f32],
    mut probs: Option<&mut [f32]>,
    mut dlogits: Option<&mut [f32]>,
) {
    for (b, row) in logits.chunks_exact(classes).enumerate().take(loss.len()) {
        let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&z| (z - top).exp()).sum();
        let label = labels[b] as usize;
        loss[b] = sum.ln() - (row[label] - top);
        for (j, &z) in row.iter().enumerate() {
            let p = (z - top).exp() / sum;
            if let Some(probs) = probs.as_deref_mut() {
                probs[b * classes + j] = p;
            }
            if let Some(d) = dlogits.as_deref_mut() {
                d[b * classes + j] = (p - if j == label { 1.0 } else { 0.0 }) * scale;
            }
        }
    }
}
