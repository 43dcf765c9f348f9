// common.wgsl — prepended to every kernel file by src/gpu/kernels.rs (WGSL has no #include).

// Invocations per workgroup of the one-dimensional kernels.
const WG: u32 = 256u;

// The builtins a one-dimensional kernel takes, as one entry-point parameter.
struct Invocation {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// The flat index of an invocation of a one-dimensional kernel laid out on a two-dimensional
// grid of workgroups (one grid axis holds at most 65,535 of them).
fn flat_index(id: Invocation) -> u32 {
    return (id.wid.y * id.nwg.x + id.wid.x) * WG + id.lid;
}

// Activation codes, as in src/graph/ops.rs `Act`: 0 linear, 1 relu, 2 sigmoid, 3 tanh.
fn activate(act: u32, x: f32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        // tanh(±10) is ±1 in f32; clamping keeps drivers that compute tanh through exp from
        // returning inf/inf = NaN for large inputs.
        case 3u: { return tanh(clamp(x, -10.0, 10.0)); }
        default: { return x; }
    }
}

// The derivative of the activation, from its output y = act(x).
fn activate_grad(act: u32, y: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return y * (1.0 - y); }
        case 3u: { return 1.0 - y * y; }
        default: { return 1.0; }
    }
}

// A 32-bit permutation (the output step of PCG, O'Neill 2014): a counter-based generator
// whose value depends only on its input, so the GPU and the CPU (src/rng.rs) agree.
fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// A uniform number in [0, 1) that is a pure function of (seed, step, element).
fn uniform01(seed: u32, step: u32, element: u32) -> f32 {
    let h = pcg_hash(element ^ pcg_hash(step ^ pcg_hash(seed)));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

// Inverted dropout's mask (src/graph/ops.rs `Mask`), given to a kernel as override constants
// (src/gpu/kernels.rs `mask_constants`): element i of a step is kept, × MASK_SCALE = 1/(1 − rate),
// where uniform01(MASK_SEED, step, i) ≥ MASK_RATE, else zeroed. Kernels that fold a dropout in
// (MASKED) call `under_mask`; reference: src/cpu/dropout.rs.
override MASKED: bool = false;
override MASK_SEED: u32 = 0u;
override MASK_RATE: f32 = 0.0;
override MASK_SCALE: f32 = 1.0;

fn under_mask(step: u32, i: u32, v: f32) -> f32 {
    return select(0.0, v * MASK_SCALE, uniform01(MASK_SEED, step, i) >= MASK_RATE);
}

// A sliding window over NHWC images: a convolution's kernel or a pooling window
// (src/graph/ops.rs `Window`). Output (oh, ow) covers input rows oh·sh − pad_top + [0, kh) and
// columns ow·sw − pad_left + [0, kw).
struct Window {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pad_top: u32,
    pad_left: u32,
    oh: u32,
    ow: u32,
}

// Flat index e into an (N, H, W, C) tensor → (n, y, x, c).
fn unflatten(e: u32, h: u32, w: u32, c: u32) -> vec4<u32> {
    return vec4<u32>(e / (c * w * h), (e / (c * w)) % h, (e / c) % w, e % c);
}

// The training loop's position, advanced on the GPU after every step (src/graph/ops.rs `State`).
struct State {
    step: u32,    // optimizer steps taken so far (Adam's t − 1; dropout's stream)
    cursor: u32,  // position of this batch's first image in the index buffer
    record: u32,  // row of the records buffer this batch writes
    epoch: u32,   // the training epoch (from 0): augmentation's draws depend on it
}
