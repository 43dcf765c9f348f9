// dropout.wgsl — inverted dropout with a counter-based mask, forward and backward alike.
// Reference: src/cpu/dropout.rs. Dispatch: src/gpu/elementwise.rs.
//
//   y (len) = x · scale where uniform01(seed, step, i) ≥ rate, else 0;  scale = 1/(1 − rate)
// The mask is a pure function of (seed, step, element) (common.wgsl), so the backward pass
// recomputes it instead of storing it, and the CPU path draws exactly the same masks.
// Backward is the same kernel applied to dy.

struct Drop {
    len: u32,
    seed: u32,
    rate: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Drop;
@group(0) @binding(1) var<storage, read> state: State;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn dropout(id: Invocation) {
    let i = flat_index(id);
    if i < p.len {
        let keep = uniform01(p.seed, state.step, i) >= p.rate;
        y[i] = select(0.0, x[i] * p.scale, keep);
    }
}
