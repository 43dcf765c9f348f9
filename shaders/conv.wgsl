// conv.wgsl — Conv2D as im2col + matmul (matmul.wgsl), and col2im for the input gradient.
// Reference: src/cpu/conv.rs. Dispatch: src/gpu/conv.rs.
//
//   x (B, H, W, C) NHWC, as Keras stores images
//   cols (B·OH·OW, KH·KW·C): row (b, oh, ow) holds the window under output pixel (oh, ow),
//       ordered (i, j, c) like a kernel stored (F, KH, KW, C), so conv = cols · kernelᵀ
//   input pixel of output (oh, ow) and kernel tap (i, j): (oh·SH − pad_top + i, ow·SW − pad_left + j);
//       taps outside the image read 0 (Keras `same` pads pad_top before and the rest after)
//   col2im: dx (B, H, W, C) = Σ over the (output pixel, tap) pairs that read it of dcols

@group(0) @binding(0) var<uniform> g: Window;
@group(0) @binding(1) var<storage, read> src: array<f32>;        // im2col: x; col2im: dcols
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;  // im2col: cols; col2im: dx

@compute @workgroup_size(WG)
fn im2col(id: Invocation) {
    let e = flat_index(id);
    let k = g.kh * g.kw * g.c;
    if e >= g.batch * g.oh * g.ow * k {
        return;
    }
    let row = e / k;
    let col = e % k;
    let ci = col % g.c;
    let j = (col / g.c) % g.kw;
    let i = col / (g.c * g.kw);
    let ox = row % g.ow;
    let oy = (row / g.ow) % g.oh;
    let b = row / (g.ow * g.oh);
    // Unsigned arithmetic: a tap left of or above the image wraps to a huge value and fails `<`.
    let y = oy * g.sh + i - g.pad_top;
    let x = ox * g.sw + j - g.pad_left;
    var v = 0.0;
    if y < g.h && x < g.w {
        v = src[((b * g.h + y) * g.w + x) * g.c + ci];
    }
    dst[e] = v;
}

@compute @workgroup_size(WG)
fn col2im(id: Invocation) {
    let e = flat_index(id);
    if e >= g.batch * g.h * g.w * g.c {
        return;
    }
    let at = unflatten(e, g.h, g.w, g.c);
    let b = at.x;
    let y = at.y;
    let x = at.z;
    let ci = at.w;
    let k = g.kh * g.kw * g.c;
    var s = 0.0;
    // Every tap (i, j) that lands on (y, x) comes from output pixel ((y + pad_top − i)/SH, …)
    // when that division is exact and in range. Fixed loop order: reproducible sums.
    for (var i = 0u; i < g.kh; i++) {
        let ty = y + g.pad_top - i;  // may wrap below 0: then ≥ oh·sh and rejected
        if ty % g.sh != 0u || ty / g.sh >= g.oh {
            continue;
        }
        for (var j = 0u; j < g.kw; j++) {
            let tx = x + g.pad_left - j;
            if tx % g.sw != 0u || tx / g.sw >= g.ow {
                continue;
            }
            let row = (b * g.oh + ty / g.sh) * g.ow + tx / g.sw;
            s += src[row * k + (i * g.kw + j) * g.c + ci];
        }
    }
    dst[e] = s;
}
