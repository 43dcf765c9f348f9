// dropout.wgsl — inverted dropout with a counter-based mask, forward and backward alike.
// Reference: src/cpu/dropout.rs. Dispatch: src/gpu/elementwise.rs.
//
//   y (len) = x · scale where uniform01(seed, step, i) ≥ rate, else 0;  scale = 1/(1 − rate)
// The mask is a pure function of (seed, step, element) (`under_mask`, common.wgsl), so the
// backward pass recomputes it instead of storing it, and the CPU path draws exactly the same
// masks. Backward is the same kernel applied to dy. In a training step most dropouts are
// folded into their neighbours instead (src/graph/fuse.rs): the matmul epilogue, max pooling,
// the bias and activation gradients. Check cases: `dropout_case` in src/check/cases.rs.

struct Len {
    len: u32,
}

@group(0) @binding(0) var<uniform> p: Len;
@group(0) @binding(1) var<storage, read> state: State;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn dropout(id: Invocation) {
    let i = flat_index(id);
    if i < p.len {
        y[i] = under_mask(state.step, i, x[i]);
    }
}
