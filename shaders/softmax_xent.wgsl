// softmax_xent.wgsl — softmax fused with sparse categorical cross-entropy, and its gradient.
// Reference: src/cpu/softmax_xent.rs. Dispatch: src/gpu/softmax_xent.rs.
//
//   logits (B, C), labels (B) → loss (B) = logsumexp(logits[b]) − Σ_j q_j·logits[b][j], the target
//                               q = (1 − ε)·onehot(label) + ε/C (label smoothing ε; 0: the label)
//                               pred (B) = index of the row's first largest logit
//                               probs (B, C) = softmax(logits[b])                (WRITE_PROBS)
//                               dlogits (B, C) = (probs − q) · scale              (WRITE_GRAD)
// `scale` is 1/B for a batch-mean loss. Stable: the row maximum is subtracted before exp.
// One invocation per row: C is 10 here, far too small to share.
// softmax_xent_bias: the same for a batch of at most WG rows in one workgroup, then the last
// dense layer's bias gradient db (C) = Σ_rows dlogits by bias_grad_wide's tree (matmul.wgsl):
// a GPU's training step (src/gpu/softmax_xent.rs `compile_pair`), one dispatch instead of two.
// Check cases: `softmax_with`, `softmax_bias_case` and `metrics_case` in src/check/cases.rs.

override WRITE_PROBS: bool = false;
override WRITE_GRAD: bool = false;

struct Rows {
    batch: u32,
    classes: u32,
    scale: f32,
    smoothing: f32,  // label smoothing ε: the target is (1 − ε)·onehot + ε/C
}

@group(0) @binding(0) var<uniform> p: Rows;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> pred: array<u32>;
@group(0) @binding(7) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < p.batch {
        softmax_row(gid.x);
    }
}

var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn softmax_xent_bias(@builtin(local_invocation_index) lid: u32) {
    if lid < p.batch {
        softmax_row(lid);
    }
    for (var j = 0u; j < p.classes; j++) {
        var v = 0.0;
        if lid < p.batch {
            v = dlogits[lid * p.classes + j];
        }
        tree[lid] = v;
        for (var half = WG / 2u; half > 0u; half >>= 1u) {
            workgroupBarrier();
            if lid < half {
                tree[lid] += tree[lid + half];
            }
        }
        if lid == 0u {
            db[j] = tree[0];
        }
        workgroupBarrier();
    }
}

// Row b's loss, prediction and (as asked) probabilities and gradient.
fn softmax_row(b: u32) {
    let row = b * p.classes;
    var top = logits[row];
    var best = 0u;
    for (var j = 1u; j < p.classes; j++) {
        if logits[row + j] > top {
            top = logits[row + j];
            best = j;
        }
    }
    pred[b] = best;
    var sum = 0.0;
    var centred = 0.0;
    for (var j = 0u; j < p.classes; j++) {
        sum += exp(logits[row + j] - top);
        centred += logits[row + j] - top;
    }
    let label = labels[b];
    let log_sum = log(sum);
    let spread = p.smoothing / f32(p.classes);
    loss[b] = log_sum - ((1.0 - p.smoothing) * (logits[row + label] - top) + spread * centred);
    for (var j = 0u; j < p.classes; j++) {
        let prob = exp(logits[row + j] - top) / sum;
        if WRITE_PROBS {
            probs[row + j] = prob;
        }
        if WRITE_GRAD {
            dlogits[row + j] = (prob - ((1.0 - p.smoothing) * select(0.0, 1.0, j == label) + spread)) * p.scale;
        }
    }
}
