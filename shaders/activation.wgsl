// activation.wgsl — ReLU, sigmoid and tanh, forward and backward (the functions are in common.wgsl).
// Reference: src/cpu/activation.rs. Dispatch: src/gpu/elementwise.rs.
//
//   forward:  y (len) = act(x)
//   backward: dx (len) = dy · act'(x), written with the output y (relu: y > 0; sigmoid: y(1 − y); tanh: 1 − y²);
//             with MASKED, dy is first put under the mask (a dropout's backward folded in)

override ACT: u32 = 1u;

struct Len {
    len: u32,
}

@group(0) @binding(0) var<uniform> p: Len;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // forward: x; backward: y
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> state: State;

@compute @workgroup_size(WG)
fn forward(id: Invocation) {
    let i = flat_index(id);
    if i < p.len {
        out[i] = activate(ACT, x[i]);
    }
}

@compute @workgroup_size(WG)
fn backward(id: Invocation) {
    let i = flat_index(id);
    if i < p.len {
        var g = dy[i];
        if MASKED {
            g = under_mask(state.step, i, g);
        }
        out[i] = g * activate_grad(ACT, x[i]);
    }
}
