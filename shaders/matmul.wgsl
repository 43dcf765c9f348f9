// matmul.wgsl — C = act(op(A)·op(B) + bias): dense layers, im2col convolutions and their gradients.
// Reference: src/cpu/matmul.rs. Dispatch: src/gpu/matmul.rs.
//
//   op(A) is (M, K): A is stored (M, K) row-major, or (K, M) when TRANS_A
//   op(B) is (K, N): B is stored (K, N) row-major, or (N, K) when TRANS_B
//   C is (M, N) with row stride ldc; bias is (N)
//
// A and B are read four floats at a time along their rows: one vec4 load where the row stride
// is a multiple of 4 (ALIGNED_A/ALIGNED_B), else four scalar loads from the same buffer bound a
// second time as array<f32> (no repacking pass). Each invocation owns a 4×4 block of C held in a
// mat4x4, so one step of the K loop is eight 4-float loads and one 4×4 matrix product.
// Split-K: workgroup z sums only K-slice z into `partial` (splits, M, N), and `sum_splits`
// adds the slices in a fixed order. No float atomics anywhere, so results are reproducible.
// With MASKED, the epilogue also writes C under a dropout's mask to `dropped` (M, N): the
// dropout after a dense layer, folded in (src/graph/fuse.rs).
// Check cases: `matmul_case`, `matmul_dropout_case` and `dense_with` in src/check/cases.rs.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,      // row stride of A as stored, in floats
    ldb: u32,      // row stride of B as stored, in floats
    ldc: u32,      // row stride of C, in floats
    k_chunk: u32,  // K-slice per workgroup z (a multiple of 4); ≥ K without split-K
    splits: u32,
}

@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> partial: array<f32>;
@group(0) @binding(6) var<storage, read> state: State;
@group(0) @binding(7) var<storage, read_write> dropped: array<f32>;
// A and B again, as floats: read where their rows are not whole vec4s.
@group(0) @binding(12) var<storage, read> a1: array<f32>;
@group(0) @binding(13) var<storage, read> b1: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
// Write raw partial sums of K-slice z to C at offset z·M·N (split-K), with no epilogue.
override PARTIAL: bool = false;
// lda (ldb) is a multiple of 4: read A (B) as vec4s.
override ALIGNED_A: bool = true;
override ALIGNED_B: bool = true;

// Elements e..e+3 of A (of B); e is a multiple of 4 when the matrix is aligned.
fn la(e: u32) -> vec4<f32> {
    if ALIGNED_A {
        return a[e / 4u];
    }
    return vec4<f32>(a1[e], a1[e + 1u], a1[e + 2u], a1[e + 3u]);
}

fn lb(e: u32) -> vec4<f32> {
    if ALIGNED_B {
        return b[e / 4u];
    }
    return vec4<f32>(b1[e], b1[e + 1u], b1[e + 2u], b1[e + 3u]);
}

// Rows r0..r0+3 of A (clamped to `rows`-1), columns col..col+3, as the columns of a mat4x4.
fn a_rows(r0: u32, rows: u32, col: u32) -> mat4x4<f32> {
    let last = rows - 1u;
    return mat4x4<f32>(
        la(min(r0, last) * d.lda + col),
        la(min(r0 + 1u, last) * d.lda + col),
        la(min(r0 + 2u, last) * d.lda + col),
        la(min(r0 + 3u, last) * d.lda + col),
    );
}

// The same for B.
fn b_rows(r0: u32, rows: u32, col: u32) -> mat4x4<f32> {
    let last = rows - 1u;
    return mat4x4<f32>(
        lb(min(r0, last) * d.ldb + col),
        lb(min(r0 + 1u, last) * d.ldb + col),
        lb(min(r0 + 2u, last) * d.ldb + col),
        lb(min(r0 + 3u, last) * d.ldb + col),
    );
}

// C[m][n] = act(v + bias[n]); with MASKED, also dropped[m][n] = that under the mask.
fn store(v: f32, m: u32, n: u32) {
    var x = v;
    if HAS_BIAS {
        x += bias[n];
    }
    let y = activate(ACT, x);
    c[m * d.ldc + n] = y;
    if MASKED {
        dropped[m * d.n + n] = under_mask(state.step, m * d.n + n, y);
    }
}

// Rows of op(A) or op(B) that stay the same along K (A's rows m0.., B's rows n0.. when stored
// transposed), clamped to the matrix once: their element offsets.
fn a_offsets(m0: u32) -> vec4<u32> {
    return min(vec4<u32>(m0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(d.m - 1u)) * d.lda;
}

fn b_offsets(n0: u32) -> vec4<u32> {
    return min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(d.n - 1u)) * d.ldb;
}

// A whole 4-wide step of K from k0, four 4-float loads each:
// a_step[kk][i] = op(A)[m0 + i][k0 + kk];  b_step[j][kk] = op(B)[k0 + kk][n0 + j].
fn a_step(m0: u32, rows: vec4<u32>, k0: u32) -> mat4x4<f32> {
    if TRANS_A {
        let at = k0 * d.lda + m0;
        return mat4x4<f32>(la(at), la(at + d.lda), la(at + 2u * d.lda), la(at + 3u * d.lda));
    }
    return transpose(mat4x4<f32>(la(rows.x + k0), la(rows.y + k0), la(rows.z + k0), la(rows.w + k0)));
}

fn b_step(n0: u32, rows: vec4<u32>, k0: u32) -> mat4x4<f32> {
    if TRANS_B {
        return mat4x4<f32>(lb(rows.x + k0), lb(rows.y + k0), lb(rows.z + k0), lb(rows.w + k0));
    }
    let at = k0 * d.ldb + n0;
    return transpose(mat4x4<f32>(lb(at), lb(at + d.ldb), lb(at + 2u * d.ldb), lb(at + 3u * d.ldb)));
}

// The last step, which overhangs K by 4 − `left`: rows past K are clamped, and what was read
// there (or in a row's padding) must not count, whatever it holds, so both sides are zeroed.
fn a_last(m0: u32, k0: u32, left: u32) -> mat4x4<f32> {
    var blk: mat4x4<f32>;
    if TRANS_A {
        blk = a_rows(k0, d.k, m0);
    } else {
        blk = transpose(a_rows(m0, d.m, k0));
    }
    for (var kk = left; kk < 4u; kk++) {
        blk[kk] = vec4<f32>(0.0);
    }
    return blk;
}

fn b_last(n0: u32, k0: u32, left: u32) -> mat4x4<f32> {
    var blk: mat4x4<f32>;
    if TRANS_B {
        blk = b_rows(n0, d.n, k0);
    } else {
        blk = transpose(b_rows(k0, d.k, n0));
    }
    let keep = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(left);
    for (var j = 0u; j < 4u; j++) {
        blk[j] = select(vec4<f32>(0.0), blk[j], keep);
    }
    return blk;
}

// The 4×4 block acc of C at (m0, n0) (acc[j][i] = C[m0 + i][n0 + j]) where it lies inside C:
// raw into K-slice z's partial sums with PARTIAL, else through the epilogue.
fn store_block(acc: mat4x4<f32>, m0: u32, n0: u32, z: u32) {
    let offset = select(0u, z * d.m * d.n, PARTIAL);
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + j;
            if m < d.m && n < d.n {
                if PARTIAL {
                    c[offset + m * d.n + n] = acc[j][i];
                } else {
                    store(acc[j][i], m, n);
                }
            }
        }
    }
}

// K-slice z of the invocation: [k_begin, k_end) and the end of its whole 4-wide steps.
fn k_range(z: u32) -> vec3<u32> {
    let k_begin = z * d.k_chunk;
    let k_end = min(k_begin + d.k_chunk, d.k);
    return vec3<u32>(k_begin, k_begin + (k_end - k_begin) / 4u * 4u, k_end);
}

// Each invocation: the 4×4 block of C at (4·gid.y, 4·gid.x); a step of K is eight 4-float loads
// and one 4×4 product (64 multiply-adds for 32 floats loaded). For GPUs (`Tuning::Gpu`).
@compute @workgroup_size(8, 8, 1)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m0 = gid.y * 4u;
    let n0 = gid.x * 4u;
    if m0 >= d.m || n0 >= d.n {
        return;
    }
    let ks = k_range(gid.z);
    let a_row = a_offsets(m0);
    let b_row = b_offsets(n0);
    var acc = mat4x4<f32>();
    for (var k0 = ks.x; k0 < ks.y; k0 += 4u) {
        acc += a_step(m0, a_row, k0) * b_step(n0, b_row, k0);
    }
    if ks.y < ks.z {
        acc += a_last(m0, ks.y, ks.z - ks.y) * b_last(n0, ks.y, ks.z - ks.y);
    }
    store_block(acc, m0, n0, gid.z);
}

// matmul_16x8: the same product with a 16×8 block of C per invocation, eight 4×4 blocks sharing
// their loads: a step of K is twenty-four 4-float loads and eight 4×4 products (512 multiply-adds
// for 96 floats loaded, 2.7× `matmul`'s ratio). For CPU drivers (`Tuning::Cpu`): lavapipe loads a
// storage buffer lane by lane, so there a product costs what it loads, and registers are cheap
// (BENCHMARKS.md, "lavapipe arranged by what it loads").
@compute @workgroup_size(8, 8, 1)
fn matmul_16x8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m0 = gid.y * 16u;
    let n0 = gid.x * 8u;
    if m0 >= d.m || n0 >= d.n {
        return;
    }
    let ks = k_range(gid.z);
    let ar0 = a_offsets(m0);
    let ar1 = a_offsets(m0 + 4u);
    let ar2 = a_offsets(m0 + 8u);
    let ar3 = a_offsets(m0 + 12u);
    let b_lo = b_offsets(n0);
    let b_hi = b_offsets(n0 + 4u);
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    var c20 = mat4x4<f32>();
    var c21 = mat4x4<f32>();
    var c30 = mat4x4<f32>();
    var c31 = mat4x4<f32>();
    for (var k0 = ks.x; k0 < ks.y; k0 += 4u) {
        let b0 = b_step(n0, b_lo, k0);
        let b1 = b_step(n0 + 4u, b_hi, k0);
        let a0 = a_step(m0, ar0, k0);
        c00 += a0 * b0;
        c01 += a0 * b1;
        let a1 = a_step(m0 + 4u, ar1, k0);
        c10 += a1 * b0;
        c11 += a1 * b1;
        let a2 = a_step(m0 + 8u, ar2, k0);
        c20 += a2 * b0;
        c21 += a2 * b1;
        let a3 = a_step(m0 + 12u, ar3, k0);
        c30 += a3 * b0;
        c31 += a3 * b1;
    }
    if ks.y < ks.z {
        let left = ks.z - ks.y;
        let b0 = b_last(n0, ks.y, left);
        let b1 = b_last(n0 + 4u, ks.y, left);
        let a0 = a_last(m0, ks.y, left);
        c00 += a0 * b0;
        c01 += a0 * b1;
        let a1 = a_last(m0 + 4u, ks.y, left);
        c10 += a1 * b0;
        c11 += a1 * b1;
        let a2 = a_last(m0 + 8u, ks.y, left);
        c20 += a2 * b0;
        c21 += a2 * b1;
        let a3 = a_last(m0 + 12u, ks.y, left);
        c30 += a3 * b0;
        c31 += a3 * b1;
    }
    store_block(c00, m0, n0, gid.z);
    store_block(c01, m0, n0 + 4u, gid.z);
    store_block(c10, m0 + 4u, n0, gid.z);
    store_block(c11, m0 + 4u, n0 + 4u, gid.z);
    store_block(c20, m0 + 8u, n0, gid.z);
    store_block(c21, m0 + 8u, n0 + 4u, gid.z);
    store_block(c30, m0 + 12u, n0, gid.z);
    store_block(c31, m0 + 12u, n0 + 4u, gid.z);
}

// C[m][n] = act(Σ_z partial[z][m][n] + bias[n]), the slices added in order z = 0, 1, … (and
// under the mask, with MASKED).
@compute @workgroup_size(WG)
fn sum_splits(id: Invocation) {
    let i = flat_index(id);
    if i >= d.m * d.n {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < d.splits; z++) {
        s += partial[z * d.m * d.n + i];
    }
    store(s, i / d.n, i % d.n);
}

// bias_grad: db (cols) = Σ_r dz (rows, cols), the bias gradient of a dense or conv layer, where
// dz = dy, or with THROUGH_ACT dz = dy · act'(y) (ACT, from the layer's output y), written too;
// with MASKED (only beside THROUGH_ACT) dy is first put under a dropout's mask.
// One workgroup per column; each invocation sums rows lid, lid + width, …, then a fixed tree:
// 64 wide (`bias_grad`, for CPU drivers) or 256 (`bias_grad_wide`, so that the 64 columns of a
// convolution keep a large GPU busy); or on a CPU driver for short columns one invocation per
// column (`bias_grad_columns`); src/gpu/context.rs `Tuning` picks.
// Check cases: `bias_grad_case` and `dense_with` in src/check/cases.rs.
struct ColSum {
    rows: u32,
    cols: u32,
}

@group(0) @binding(9) var<uniform> cs: ColSum;
@group(0) @binding(10) var<storage, read> dy: array<f32>;
@group(0) @binding(11) var<storage, read_write> db: array<f32>;
@group(0) @binding(14) var<storage, read> act_y: array<f32>;
@group(0) @binding(15) var<storage, read_write> dz: array<f32>;

override THROUGH_ACT: bool = false;

var<workgroup> tree: array<f32, 64>;
var<workgroup> tree_wide: array<f32, WG>;

// Column `col`'s dz, written when THROUGH_ACT, and the sum of rows lid, lid + width, … of it.
fn column_part(col: u32, lid: u32, width: u32) -> f32 {
    var s = 0.0;
    for (var r = lid; r < cs.rows; r += width) {
        let i = r * cs.cols + col;
        var v = dy[i];
        if MASKED {
            v = under_mask(state.step, i, v);
        }
        if THROUGH_ACT {
            v *= activate_grad(ACT, act_y[i]);
            dz[i] = v;
        }
        s += v;
    }
    return s;
}

@compute @workgroup_size(64)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tree[lid] = column_part(wid.x, lid, 64u);
    for (var half = 32u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            tree[lid] += tree[lid + half];
        }
    }
    if lid == 0u {
        db[wid.x] = tree[0];
    }
}

// bias_grad_columns: one invocation per column, its rows in order, no barrier (CPU drivers,
// short columns: the MLP's batch).
@compute @workgroup_size(64)
fn bias_grad_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < cs.cols {
        db[gid.x] = column_part(gid.x, 0u, 1u);
    }
}

@compute @workgroup_size(WG)
fn bias_grad_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tree_wide[lid] = column_part(wid.x, lid, WG);
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            tree_wide[lid] += tree_wide[lid + half];
        }
    }
    if lid == 0u {
        db[wid.x] = tree_wide[0];
    }
}
