//! Reference for shaders/activation.wgsl (and the epilogue of matmul.wgsl).

use super::Real;
use crate::graph::ops::Act;

pub fn activate<F: Real>(act: Act, x: F) -> F {
    match act {
        Act::Linear => x,
        Act::Relu => x.max(F::zero()),
        Act::Sigmoid => F::one() / (F::one() + (-x).exp()),
        Act::Tanh => x.tanh(),
    }
}

/// The derivative from the output y = act(x).
pub fn activate_grad<F: Real>(act: Act, y: F) -> F {
    match act {
        Act::Linear => F::one(),
        Act::Relu => {
            if y > F::zero() {
                F::one()
            } else {
                F::zero()
            }
        }
        Act::Sigmoid => y * (F::one() - y),
        Act::Tanh => F::one() - y * y,
    }
}

/// y = act(x).
pub fn forward<F: Real>(act: Act, x: &[F], y: &mut [F]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = activate(act, x);
    }
}

/// dx = dy · act'(x), from y = act(x). The activation is chosen once, outside the loop, so
/// that each loop is a straight vectorizable pass (the same products as `activate_grad`).
pub fn backward<F: Real>(act: Act, y: &[F], dy: &[F], dx: &mut [F]) {
    fn each<F: Real>(y: &[F], dy: &[F], dx: &mut [F], grad: impl Fn(F) -> F) {
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = dy * grad(y);
        }
    }
    match act {
        Act::Linear => each(y, dy, dx, |y| activate_grad(Act::Linear, y)),
        Act::Relu => each(y, dy, dx, |y| activate_grad(Act::Relu, y)),
        Act::Sigmoid => each(y, dy, dx, |y| activate_grad(Act::Sigmoid, y)),
        Act::Tanh => each(y, dy, dx, |y| activate_grad(Act::Tanh, y)),
    }
}
