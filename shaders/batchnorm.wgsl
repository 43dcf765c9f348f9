// batchnorm.wgsl — batch normalization over the last axis (features or channels), Keras style.
// Reference: src/cpu/batchnorm.rs. Dispatch: src/gpu/batchnorm.rs. Check cases: `batchnorm_train_with`,
// `batchnorm_inference_with`, `batchnorm_backward_with` in src/check/cases.rs.
//
//   x (rows, cols): rows = batch (·H·W for images), cols = features
//   stats:      mean, var (cols) = the batch's mean and biased variance per column;
//               moving ← moving · momentum + batch statistic · (1 − momentum)
//               (stats_apply: then apply, in the same workgroup, for short columns on a GPU)
//   apply:      y = x · inv + (beta − mean · inv),  inv = gamma / sqrt(var + eps)
//               (training: the batch's mean and var; inference: the moving ones)
//   grad_sums:  dbeta = Σ_rows dy,  dgamma = Σ_rows dy · xhat,  xhat = (x − mean) / sqrt(var + eps)
//   grad_input: dx = gamma / sqrt(var + eps) / rows · (rows · dy − dbeta − xhat · dgamma)
// Column sums run one workgroup per column through a fixed tree (`stats`, `grad_sums`), or, on a
// CPU driver for short columns, one invocation per column in row order (`stats_columns`,
// `grad_sums_columns`: no barriers, which lavapipe pays dearly for): reproducible either way.

struct Norm {
    rows: u32,
    cols: u32,
    momentum: f32,
    one_minus_momentum: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Norm;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> variance: array<f32>;
@group(0) @binding(7) var<storage, read_write> moving_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> moving_var: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;       // y or dx
@group(0) @binding(10) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(11) var<storage, read_write> dbeta: array<f32>;

var<workgroup> tree: array<vec2<f32>, 64>;

// Sums `v` over the workgroup's 64 invocations in a fixed order; every invocation gets the total.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    tree[lid] = v;
    for (var half = 32u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            tree[lid] += tree[lid + half];
        }
    }
    workgroupBarrier();
    let total = tree[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    column_stats(wid.x, lid);
}

// stats, then apply to the same column in the same workgroup: a GPU's training pass over short
// columns (src/gpu/batchnorm.rs `compile_pair`), one dispatch instead of two, the same values.
@compute @workgroup_size(64)
fn stats_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = wid.x;
    let mv = column_stats(col, lid);
    let inv = inverseSqrt(mv.y + p.eps) * gamma[col];
    for (var r = lid; r < p.rows; r += 64u) {
        let i = r * p.cols + col;
        out[i] = x[i] * inv + (beta[col] - mv.x * inv);
    }
}

// Column `col`'s batch mean and variance (written, and the moving ones updated, by invocation
// 0); every invocation of the workgroup gets them.
fn column_stats(col: u32, lid: u32) -> vec2<f32> {
    let n = f32(p.rows);
    var s = 0.0;
    for (var r = lid; r < p.rows; r += 64u) {
        s += x[r * p.cols + col];
    }
    let m = workgroup_sum(lid, vec2<f32>(s, 0.0)).x / n;
    var q = 0.0;
    for (var r = lid; r < p.rows; r += 64u) {
        let dev = x[r * p.cols + col] - m;
        q += dev * dev;
    }
    let v = workgroup_sum(lid, vec2<f32>(q, 0.0)).x / n;
    if lid == 0u {
        write_stats(col, m, v);
    }
    return vec2<f32>(m, v);
}

// Column `col`'s batch mean and variance, and the moving ones updated.
fn write_stats(col: u32, m: f32, v: f32) {
    mean[col] = m;
    variance[col] = v;
    moving_mean[col] = moving_mean[col] * p.momentum + m * p.one_minus_momentum;
    moving_var[col] = moving_var[col] * p.momentum + v * p.one_minus_momentum;
}

@compute @workgroup_size(64)
fn stats_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    if col >= p.cols {
        return;
    }
    let n = f32(p.rows);
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += x[r * p.cols + col];
    }
    let m = s / n;
    var q = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let dev = x[r * p.cols + col] - m;
        q += dev * dev;
    }
    write_stats(col, m, q / n);
}

// apply_columns: the same, one invocation per column with its factors loaded once (CPU drivers,
// short columns).
@compute @workgroup_size(64)
fn apply_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    if col >= p.cols {
        return;
    }
    let inv = inverseSqrt(variance[col] + p.eps) * gamma[col];
    let shift = beta[col] - mean[col] * inv;
    for (var r = 0u; r < p.rows; r++) {
        let i = r * p.cols + col;
        out[i] = x[i] * inv + shift;
    }
}

@compute @workgroup_size(WG)
fn apply(id: Invocation) {
    let i = flat_index(id);
    if i >= p.rows * p.cols {
        return;
    }
    let col = i % p.cols;
    let inv = inverseSqrt(variance[col] + p.eps) * gamma[col];
    out[i] = x[i] * inv + (beta[col] - mean[col] * inv);
}

// (dbeta, dgamma) of column `col` over rows first, first + step, ….
fn column_grad_sums(col: u32, first: u32, step: u32) -> vec2<f32> {
    let m = mean[col];
    let inv_std = inverseSqrt(variance[col] + p.eps);
    var s = vec2<f32>(0.0);
    for (var r = first; r < p.rows; r += step) {
        let i = r * p.cols + col;
        s += vec2<f32>(dy[i], dy[i] * (x[i] - m) * inv_std);
    }
    return s;
}

@compute @workgroup_size(64)
fn grad_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let total = workgroup_sum(lid, column_grad_sums(wid.x, lid, 64u));
    if lid == 0u {
        dbeta[wid.x] = total.x;
        dgamma[wid.x] = total.y;
    }
}

@compute @workgroup_size(64)
fn grad_sums_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    if col >= p.cols {
        return;
    }
    let total = column_grad_sums(col, 0u, 1u);
    dbeta[col] = total.x;
    dgamma[col] = total.y;
}

@compute @workgroup_size(WG)
fn grad_input(id: Invocation) {
    let i = flat_index(id);
    if i >= p.rows * p.cols {
        return;
    }
    let col = i % p.cols;
    let n = f32(p.rows);
    let inv_std = inverseSqrt(variance[col] + p.eps);
    let xhat = (x[i] - mean[col]) * inv_std;
    out[i] = gamma[col] * inv_std / n * (n * dy[i] - dbeta[col] - xhat * dgamma[col]);
}
