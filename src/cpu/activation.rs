//! Reference for shaders/activation.wgsl (and the epilogue of matmul.wgsl).

use crate::graph::ops::Act;

pub fn activate(act: Act, x: f32) -> f32 {
    match act {
        Act::Linear => x,
        Act::Relu => x.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
    }
}

/// The derivative from the output y = act(x).
pub fn activate_grad(act: Act, y: f32) -> f32 {
    match act {
        Act::Linear => 1.0,
        Act::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Act::Sigmoid => y * (1.0 - y),
        Act::Tanh => 1.0 - y * y,
    }
}

/// y = act(x).
pub fn forward(act: Act, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = activate(act, x);
    }
}

/// dx = dy · act'(x), from y = act(x).
pub fn backward(act: Act, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = dy * activate_grad(act, y);
    }
}
