// pool.wgsl — max and average pooling over NHWC images, forward and backward (MAX picks which).
// Reference: src/cpu/pool.rs. Dispatch: src/gpu/pool.rs.
//
//   x (B, H, W, C) → y (B, OH, OW, C); the window of output (oh, ow) is clipped to the image
//   (Keras semantics: `same` max pooling ignores the padding, `same` average pooling divides by
//   the cells inside).
//   max:  argmax (B, OH, OW, C) = flat index into x of the window's first maximum in row-major
//         window order; the backward pass sends dy there.
//   backward: one invocation per input cell sums, in a fixed order, what the windows that hold
//   it send back — no atomics, reproducible, one dispatch. On a CPU driver (Tuning::Cpu) with
//   windows that do not overlap, `zero` then `backward_scatter` (one invocation per window)
//   give the same values without the search, which costs lavapipe more than the extra pass.
// With MASKED (max pooling), forward also writes y under a dropout's mask to `dropped`, and
// backward puts dy under it first: the dropout after the pool, folded in (src/graph/fuse.rs).
// Check cases: `pool_case` and `pool_with` in src/check/cases.rs.

override MAX: bool = true;

@group(0) @binding(0) var<uniform> g: Window;
@group(0) @binding(1) var<storage, read> src: array<f32>;        // forward: x; backward: dy
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;  // forward: y; backward: dx
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(4) var<storage, read> argmax_in: array<u32>;
@group(0) @binding(5) var<storage, read> state: State;
@group(0) @binding(6) var<storage, read_write> dropped: array<f32>;

// dy of output cell o, under the mask with MASKED.
fn dy_at(o: u32) -> f32 {
    if MASKED {
        return under_mask(state.step, o, src[o]);
    }
    return src[o];
}

// The window of output cell `o` (flat index into y), clipped to the image:
// (first row, end row, first column, end column), the ends exclusive.
fn window_of(o: u32) -> vec4<u32> {
    let at = unflatten(o, g.oh, g.ow, g.c);
    let y0 = i32(at.y * g.sh) - i32(g.pad_top);
    let x0 = i32(at.z * g.sw) - i32(g.pad_left);
    return vec4<u32>(
        u32(max(y0, 0)),
        u32(min(y0 + i32(g.kh), i32(g.h))),
        u32(max(x0, 0)),
        u32(min(x0 + i32(g.kw), i32(g.w))),
    );
}

fn cells(win: vec4<u32>) -> f32 {
    return f32((win.y - win.x) * (win.w - win.z));
}

fn input_index(b: u32, y: u32, x: u32, ci: u32) -> u32 {
    return ((b * g.h + y) * g.w + x) * g.c + ci;
}

@compute @workgroup_size(WG)
fn forward(id: Invocation) {
    let o = flat_index(id);
    if o >= g.batch * g.oh * g.ow * g.c {
        return;
    }
    let at = unflatten(o, g.oh, g.ow, g.c);
    let b = at.x;
    let ci = at.w;
    let win = window_of(o);
    var best = input_index(b, win.x, win.z, ci);
    var top = src[best];
    var s = 0.0;
    for (var y = win.x; y < win.y; y++) {
        for (var x = win.z; x < win.w; x++) {
            let i = input_index(b, y, x, ci);
            let v = src[i];
            if !MAX {
                s += v;
            } else if v > top {  // strictly greater: ties keep the first maximum
                top = v;
                best = i;
            }
        }
    }
    if MAX {
        dst[o] = top;
        argmax[o] = best;
        if MASKED {
            dropped[o] = under_mask(state.step, o, top);
        }
    } else {
        dst[o] = s / cells(win);
    }
}

// The output rows (or columns) whose windows hold input row `y`: [first, end).
fn outputs_over(y: u32, pad: u32, k: u32, s: u32, n_out: u32) -> vec2<u32> {
    let t = i32(y + pad);
    let first = max(t - i32(k) + i32(s), 0) / i32(s);  // ceil((t − k + 1) / s), clamped at 0
    let end = min(t / i32(s) + 1, i32(n_out));
    return vec2<u32>(u32(first), u32(max(end, first)));
}

@compute @workgroup_size(WG)
fn backward(id: Invocation) {
    let e = flat_index(id);
    if e >= g.batch * g.h * g.w * g.c {
        return;
    }
    let at = unflatten(e, g.h, g.w, g.c);
    let b = at.x;
    let ci = at.w;
    let rows = outputs_over(at.y, g.pad_top, g.kh, g.sh, g.oh);
    let cols = outputs_over(at.z, g.pad_left, g.kw, g.sw, g.ow);
    var s = 0.0;
    for (var oy = rows.x; oy < rows.y; oy++) {
        for (var ox = cols.x; ox < cols.y; ox++) {
            let o = ((b * g.oh + oy) * g.ow + ox) * g.c + ci;
            if !MAX {
                s += src[o] / cells(window_of(o));
            } else if argmax_in[o] == e {
                s += dy_at(o);
            }
        }
    }
    dst[e] = s;
}

@compute @workgroup_size(WG)
fn zero(id: Invocation) {
    let e = flat_index(id);
    if e < g.batch * g.h * g.w * g.c {
        dst[e] = 0.0;
    }
}

// Non-overlapping windows only: each window's dy goes to its argmax (max) or is shared among
// its cells (average).
@compute @workgroup_size(WG)
fn backward_scatter(id: Invocation) {
    let o = flat_index(id);
    if o >= g.batch * g.oh * g.ow * g.c {
        return;
    }
    if MAX {
        dst[argmax_in[o]] = dy_at(o);
        return;
    }
    let at = unflatten(o, g.oh, g.ow, g.c);
    let b = at.x;
    let ci = at.w;
    let win = window_of(o);
    let share = src[o] / cells(win);
    for (var y = win.x; y < win.y; y++) {
        for (var x = win.z; x < win.w; x++) {
            dst[input_index(b, y, x, ci)] = share;
        }
    }
}
