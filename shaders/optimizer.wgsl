// optimizer.wgsl — L2 regularization and the optimizer updates, as Keras 3 defines them.
// Reference: src/cpu/optimizer.rs. Dispatch: src/gpu/optimizer.rs.
//
//   l2_penalty: penalties[slot] = c · Σ w²          (one workgroup, fixed tree: reproducible)
//   l2_grad:    g += 2c · w
//   sgd:        momentum 0: w −= lr · g
//               else:       v = momentum · v − lr · g;  w += v, or with Nesterov w += momentum · v − lr · g
//   adam:       m += (g − m)(1 − β1);  v += (g² − v)(1 − β2);
//               w −= m · lr·sqrt(1 − β2^t)/(1 − β1^t) / (sqrt(v) + ε)   (ε after the square root)
// The step's rate — SGD's lr, Adam's lr·sqrt(1 − β2^t)/(1 − β1^t) — is rates[state.record], a table
// the host computes in f64 each epoch (`Optimizer::step_rates`): no pow() here, no cancellation.

struct Update {
    len: u32,
    a: f32,        // sgd: momentum; adam: β1; l2: c (penalty) or 2c (gradient)
    b: f32,        // adam: β2
    eps: f32,      // adam: ε
    flag: u32,     // sgd: Nesterov; l2_penalty: the slot
}

@group(0) @binding(0) var<uniform> p: Update;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;   // sgd: velocity; adam: first moment
@group(0) @binding(4) var<storage, read_write> v: array<f32>;   // adam: second moment
@group(0) @binding(5) var<storage, read> state: State;
@group(0) @binding(6) var<storage, read_write> penalties: array<f32>;
@group(0) @binding(7) var<storage, read> w_in: array<f32>;
@group(0) @binding(8) var<storage, read> rates: array<f32>;

var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn l2_penalty(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.len; i += WG) {
        s += w_in[i] * w_in[i];
    }
    tree[lid] = s;
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            tree[lid] += tree[lid + half];
        }
    }
    if lid == 0u {
        penalties[p.flag] = p.a * tree[0];
    }
}

@compute @workgroup_size(WG)
fn l2_grad(id: Invocation) {
    let i = flat_index(id);
    if i < p.len {
        g[i] += p.a * w_in[i];
    }
}

@compute @workgroup_size(WG)
fn sgd(id: Invocation) {
    let i = flat_index(id);
    if i >= p.len {
        return;
    }
    let lr = rates[state.record];
    if p.a == 0.0 {
        w[i] -= g[i] * lr;
        return;
    }
    let vel = m[i] * p.a - g[i] * lr;
    m[i] = vel;
    if p.flag != 0u {
        w[i] += vel * p.a - g[i] * lr;
    } else {
        w[i] += vel;
    }
}

@compute @workgroup_size(WG)
fn adam(id: Invocation) {
    let i = flat_index(id);
    if i >= p.len {
        return;
    }
    let alpha = rates[state.record];
    let grad = g[i];
    let m1 = m[i] + (grad - m[i]) * (1.0 - p.a);
    let v1 = v[i] + (grad * grad - v[i]) * (1.0 - p.b);
    m[i] = m1;
    v[i] = v1;
    w[i] -= m1 * alpha / (sqrt(v1) + p.eps);
}
