// data.wgsl — batches in, metrics out: the kernels at the two ends of a training step.
// Reference: src/cpu/data.rs. Dispatch: src/gpu/data.rs.
//
//   gather:    x (B, P) = byte(images, index[cursor + b]·P + p) / 255 (as · (1/255)), y (B) = labels[index[cursor + b]]
//              images are u8 packed four to a u32 (WGSL has no u8), little-endian; with augment
//              on, pixel p of a side×side image reads the source pixel src/data/augment.rs
//              `source` names for the changes `draw` picks from (seed, state.epoch, image), or 0
//   Check cases: src/check/cases.rs gather_case (plain and augmented), metrics_case.
//   confusion: counts (C, C) += how many b have (label, prediction) = (row, column)
//   record:    records[state.record] = (Σ_b loss[b] / B + Σ penalties, #correct, B); the penalties
//              summed by a 64-wide tree; then, the step being done, state.step += train,
//              state.cursor += B, state.record += 1

// Mirrors `Batch` in src/gpu/data.rs.
struct Batch {
    batch: u32,
    width: u32,      // gather: pixels per image; confusion: classes; record: penalty slots
    train: u32,      // record: whether this was an optimizer step
    side: u32,       // gather: image side (width = side²)
    augment: u32,    // gather: 1 to augment
    shift: u32,      // gather: largest translation, pixels
    flip: u32,       // gather: 1 to mirror half the images
    erase: f32,      // gather: probability of erasing a rectangle
    seed: u32,       // gather: seeds the draws
}

@group(0) @binding(0) var<uniform> p: Batch;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> label_table: array<u32>;
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read> state: State;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> labels: array<u32>;
@group(0) @binding(7) var<storage, read> logits: array<f32>;
@group(0) @binding(8) var<storage, read_write> pred: array<u32>;
@group(0) @binding(9) var<storage, read_write> counts: array<u32>;
@group(0) @binding(10) var<storage, read> loss: array<f32>;
@group(0) @binding(11) var<storage, read> penalties: array<f32>;
@group(0) @binding(12) var<storage, read_write> records: array<f32>;
@group(0) @binding(13) var<storage, read_write> state_rw: State;

@compute @workgroup_size(WG)
fn gather(id: Invocation) {
    let e = flat_index(id);
    if e >= p.batch * p.width {
        return;
    }
    let b = e / p.width;
    let image = index[state.cursor + b];
    var pixel = i32(e % p.width);
    if p.augment == 1u {
        pixel = augmented_source(image, e % p.width);
    }
    var value = 0u;
    if pixel >= 0 {
        let byte = image * p.width + u32(pixel);
        value = (images[byte / 4u] >> (8u * (byte % 4u))) & 0xffu;
    }
    x[e] = f32(value) * (1.0 / 255.0);
    if e % p.width == 0u {
        labels[b] = label_table[image];
    }
}

// src/data/augment.rs `draw` then `source`: the source pixel of output pixel `out` of `image`
// this epoch, or −1 where it is zero (padding or the erased rectangle).
fn augmented_source(image: u32, out: u32) -> i32 {
    let key = pcg_hash(image ^ pcg_hash(state.epoch ^ pcg_hash(p.seed)));
    let span = 2u * p.shift + 1u;
    let dx = i32(pcg_hash(key) % span) - i32(p.shift);
    let dy = i32(pcg_hash(key + 1u) % span) - i32(p.shift);
    let flip = p.flip == 1u && (pcg_hash(key + 2u) >> 31u) == 1u;
    let erased = f32(pcg_hash(key + 3u) >> 8u) * (1.0 / 16777216.0) < p.erase;
    let lo = p.side / 7u;
    let hi = p.side / 2u;
    let h = lo + pcg_hash(key + 4u) % (hi - lo + 1u);
    let w = lo + pcg_hash(key + 5u) % (hi - lo + 1u);
    let top = pcg_hash(key + 6u) % (p.side - h + 1u);
    let left = pcg_hash(key + 7u) % (p.side - w + 1u);
    let row = out / p.side;
    let col = out % p.side;
    if erased && row >= top && row < top + h && col >= left && col < left + w {
        return -1;
    }
    let n = i32(p.side);
    let r = i32(row) - dy;
    var c = i32(col) - dx;
    if r < 0 || r >= n || c < 0 || c >= n {
        return -1;
    }
    if flip {
        c = n - 1 - c;
    }
    return r * n + c;
}

@compute @workgroup_size(64)
fn confusion(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cell = gid.x;
    if cell >= p.width * p.width {
        return;
    }
    let truth = cell / p.width;
    let guess = cell % p.width;
    var n = 0u;
    for (var b = 0u; b < p.batch; b++) {
        n += select(0u, 1u, labels[b] == truth && pred[b] == guess);
    }
    counts[cell] += n;
}

var<workgroup> penalty_tree: array<f32, 64>;

// The penalties (one partial per chunk of the parameter arena: a thousand for the MLP) are
// added by 64 invocations and a fixed tree; the batch's losses in order by the first.
@compute @workgroup_size(64)
fn record(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.width; i += 64u) {
        s += penalties[i];
    }
    penalty_tree[lid] = s;
    for (var half = 32u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            penalty_tree[lid] += penalty_tree[lid + half];
        }
    }
    if lid != 0u {
        return;
    }
    var sum = 0.0;
    var correct = 0u;
    for (var b = 0u; b < p.batch; b++) {
        sum += loss[b];
        correct += select(0u, 1u, pred[b] == labels[b]);
    }
    let row = state_rw.record * 3u;
    records[row] = sum / f32(p.batch) + penalty_tree[0];
    records[row + 1u] = f32(correct);
    records[row + 2u] = f32(p.batch);
    // The step is done: advance the state for the next one.
    state_rw.step += p.train;
    state_rw.cursor += p.batch;
    state_rw.record += 1u;
}
