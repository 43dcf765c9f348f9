// optimizer.wgsl — L2 regularization and the optimizer updates, as Keras 3 defines them.
// Reference: src/cpu/optimizer.rs. Dispatch: src/gpu/optimizer.rs. Check cases: `l2_case`,
// `update_case` in src/check/cases.rs.
//
// Both kernels run over an arena of weights (graph::Program::arena), one workgroup of WG = 256
// invocations per chunk of 256 elements; `chunks[j]` gives chunk j the end of its weight (an
// arena index: elements past it are padding) and the weight's L2 factor c.
//
//   l2_penalty: partials[j] = c · Σ w² over chunk j          (fixed tree: reproducible;
//               l2_penalty_serial: the same, one invocation per chunk, for CPU drivers)
//   sgd, adam:  with PENALTY, first l2_penalty's partials from w before the update, by the same
//               tree (a GPU's training step); sgd_chunks, adam_chunks: the same, one invocation
//               per chunk in order, with the penalty as l2_penalty_serial sums it (CPU drivers);
//               g += 2c · w (the penalty's gradient, kept in g), then
//     sgd:      momentum 0: w −= lr · g
//               else:       v = momentum · v − lr · g;  w += v, or with Nesterov w += momentum · v − lr · g
//     adam:     w −= w · lr·wd (decoupled weight decay, AdamW; skipped when 0);
//               m += (g − m)(1 − β1);  v += (g² − v)(1 − β2);
//               w −= m · lr·sqrt(1 − β2^t)/(1 − β1^t) / (sqrt(v) + ε)   (ε after the square root)
// The step's rate — SGD's lr, Adam's lr·sqrt(1 − β2^t)/(1 − β1^t) — and its decay lr·wd are
// rates[2·state.record] and rates[2·state.record + 1], a table the host computes in f64 each
// epoch (`Optimizer::step_rates`, with the schedule's lr): no pow() here, no cancellation.

struct Update {
    chunks: u32,   // chunks in the arena
    a: f32,        // sgd: momentum; adam: β1
    b: f32,        // adam: β2
    eps: f32,      // adam: ε
    flag: u32,     // sgd: Nesterov
}

struct Chunk {
    end: u32,      // arena index where this chunk's weight ends
    c: f32,        // that weight's L2 factor
}

@group(0) @binding(0) var<uniform> p: Update;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;   // sgd: velocity; adam: first moment
@group(0) @binding(4) var<storage, read_write> v: array<f32>;   // adam: second moment
@group(0) @binding(5) var<storage, read> state: State;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;
@group(0) @binding(7) var<storage, read> w_in: array<f32>;
@group(0) @binding(8) var<storage, read> rates: array<f32>;
@group(0) @binding(9) var<storage, read> chunks: array<Chunk>;

override PENALTY: bool = false;

var<workgroup> tree: array<f32, WG>;

// partials[j] = c · Σ w² over chunk j (this workgroup's), `sq` being this invocation's w²: a
// fixed tree. Every invocation of the workgroup calls it.
fn penalty_tree(id: Invocation, sq: f32) {
    let j = id.wid.y * id.nwg.x + id.wid.x;
    tree[id.lid] = sq;
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if id.lid < half {
            tree[id.lid] += tree[id.lid + half];
        }
    }
    if id.lid == 0u && j < p.chunks {
        partials[j] = chunks[j].c * tree[0];
    }
}

@compute @workgroup_size(WG)
fn l2_penalty(id: Invocation) {
    let i = flat_index(id);
    var s = 0.0;
    if in_weight(i) {
        s = w_in[i] * w_in[i];
    }
    penalty_tree(id, s);
}

// The same per chunk with no barrier: one invocation adds its chunk's 256 squares in order (for
// CPU drivers, where a tree per chunk costs a thousand barrier rounds a step).
@compute @workgroup_size(64)
fn l2_penalty_serial(id: Invocation) {
    let j = (id.wid.y * id.nwg.x + id.wid.x) * 64u + id.lid;
    if j >= p.chunks {
        return;
    }
    let ch = chunks[j];
    var s = 0.0;
    for (var i = j * WG; i < min(ch.end, (j + 1u) * WG); i++) {
        s += w_in[i] * w_in[i];
    }
    partials[j] = ch.c * s;
}

fn in_weight(i: u32) -> bool {
    return i / WG < p.chunks && i < chunks[i / WG].end;
}

// With PENALTY, the step's penalty partials from this chunk's weights before the update (each
// invocation reads only its own element before writing it).
fn penalty_before_update(id: Invocation, i: u32) {
    if PENALTY {
        var s = 0.0;
        if in_weight(i) {
            s = w[i] * w[i];
        }
        penalty_tree(id, s);
    }
}

// Element i's update, wi = w[i] and c its weight's L2 factor: the gradient with the penalty's
// added (kept in g), then the step at rate lr.
fn sgd_at(i: u32, wi: f32, c: f32, lr: f32) {
    let grad = g[i] + (2.0 * c) * wi;
    g[i] = grad;
    if p.a == 0.0 {
        w[i] = wi - grad * lr;
        return;
    }
    let vel = m[i] * p.a - grad * lr;
    m[i] = vel;
    if p.flag != 0u {
        w[i] = wi + (vel * p.a - grad * lr);
    } else {
        w[i] = wi + vel;
    }
}

// The same for Adam at the step's rate alpha and decay lr·wd.
fn adam_at(i: u32, wi: f32, c: f32, alpha: f32, decay: f32) {
    let grad = g[i] + (2.0 * c) * wi;
    g[i] = grad;
    var wd = wi;
    if decay != 0.0 {
        wd -= wi * decay;
    }
    let m1 = m[i] + (grad - m[i]) * (1.0 - p.a);
    let v1 = v[i] + (grad * grad - v[i]) * (1.0 - p.b);
    m[i] = m1;
    v[i] = v1;
    w[i] = wd - m1 * alpha / (sqrt(v1) + p.eps);
}

@compute @workgroup_size(WG)
fn sgd(id: Invocation) {
    let i = flat_index(id);
    penalty_before_update(id, i);
    if !in_weight(i) {
        return;
    }
    sgd_at(i, w[i], chunks[i / WG].c, rates[2u * state.record]);
}

@compute @workgroup_size(WG)
fn adam(id: Invocation) {
    let i = flat_index(id);
    penalty_before_update(id, i);
    if !in_weight(i) {
        return;
    }
    adam_at(i, w[i], chunks[i / WG].c, rates[2u * state.record], rates[2u * state.record + 1u]);
}

// sgd_chunks, adam_chunks: one invocation per chunk, its elements in order, and with PENALTY the
// chunk's penalty partial from each weight just before its update, summed in order as
// l2_penalty_serial does. For CPU drivers: no barrier, and the chunk's factor and the step's
// rates loaded once a chunk rather than once an element.
fn chunk_of(id: Invocation) -> u32 {
    return (id.wid.y * id.nwg.x + id.wid.x) * 64u + id.lid;
}

@compute @workgroup_size(64)
fn sgd_chunks(id: Invocation) {
    let j = chunk_of(id);
    if j >= p.chunks {
        return;
    }
    let ch = chunks[j];
    let lr = rates[2u * state.record];
    var s = 0.0;
    for (var i = j * WG; i < min(ch.end, (j + 1u) * WG); i++) {
        let wi = w[i];
        s += wi * wi;
        sgd_at(i, wi, ch.c, lr);
    }
    if PENALTY {
        partials[j] = ch.c * s;
    }
}

@compute @workgroup_size(64)
fn adam_chunks(id: Invocation) {
    let j = chunk_of(id);
    if j >= p.chunks {
        return;
    }
    let ch = chunks[j];
    let alpha = rates[2u * state.record];
    let decay = rates[2u * state.record + 1u];
    var s = 0.0;
    for (var i = j * WG; i < min(ch.end, (j + 1u) * WG); i++) {
        let wi = w[i];
        s += wi * wi;
        adam_at(i, wi, ch.c, alpha, decay);
    }
    if PENALTY {
        partials[j] = ch.c * s;
    }
}
