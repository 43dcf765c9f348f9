//! The CPU reference's backward passes against central finite differences of its forward passes,
//! all in f64 on small random inputs: the gradients are the derivatives of the forward ops.
//! Each scalar loss is L = Σ forward(inputs) · g for a random g.

use gpu_fmnist::cpu::{activation, batchnorm, conv, dropout, matmul, optimizer, pool, softmax_xent};
use gpu_fmnist::graph::ops::{Act, Matmul, Padding, Window, T};
use gpu_fmnist::rng::Rng;

const H: f64 = 1e-5;

fn vec64(rng: &mut Rng, len: usize, lo: f32, hi: f32) -> Vec<f64> {
    rng.vec(len, lo, hi).into_iter().map(f64::from).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// dL/dv by central differences, L a function of v.
fn numeric(v: &[f64], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..v.len())
        .map(|i| {
            let (mut plus, mut minus) = (v.to_vec(), v.to_vec());
            plus[i] += H;
            minus[i] -= H;
            (loss(&plus) - loss(&minus)) / (2.0 * H)
        })
        .collect()
}

fn assert_close(what: &str, analytic: &[f64], numeric: &[f64]) {
    assert_eq!(analytic.len(), numeric.len(), "{what}");
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-7 + 1e-6 * a.abs().max(n.abs()),
            "{what}[{i}]: analytic {a}, numeric {n}"
        );
    }
}

fn mm(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool, act: Act) -> Matmul {
    Matmul { a: T(0), b: T(1), c: T(2), m, n, k, trans_a, trans_b, bias: None, act, dropout: None }
}

#[test]
fn dense_layer_gradients() {
    let mut rng = Rng::new(11);
    for act in [Act::Linear, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let (batch, inputs, units) = (3, 5, 4);
        let x = vec64(&mut rng, batch * inputs, -1.0, 1.0);
        let w = vec64(&mut rng, units * inputs, -1.0, 1.0);
        let b = vec64(&mut rng, units, -1.0, 1.0);
        let g = vec64(&mut rng, batch * units, -1.0, 1.0);
        // y (B, units) = act(x · Wᵀ + b), W stored (units, inputs).
        let forward = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; batch * units];
            matmul::matmul(&mm(batch, units, inputs, false, true, act), x, w, Some(b), &mut y);
            y
        };
        let y = forward(&x, &w, &b);
        let mut dz = vec![0.0; batch * units];
        activation::backward(act, &y, &g, &mut dz);
        let (mut dw, mut db, mut dx) =
            (vec![0.0; units * inputs], vec![0.0; units], vec![0.0; batch * inputs]);
        matmul::matmul(&mm(units, inputs, batch, true, false, Act::Linear), &dz, &x, None, &mut dw);
        matmul::bias_grad(&dz, batch, units, &mut db);
        matmul::matmul(&mm(batch, inputs, units, false, false, Act::Linear), &dz, &w, None, &mut dx);
        assert_close(&format!("{act:?} dx"), &dx, &numeric(&x, |x| dot(&forward(x, &w, &b), &g)));
        assert_close(&format!("{act:?} dW"), &dw, &numeric(&w, |w| dot(&forward(&x, w, &b), &g)));
        assert_close(&format!("{act:?} db"), &db, &numeric(&b, |b| dot(&forward(&x, &w, b), &g)));
    }
}

#[test]
fn softmax_cross_entropy_gradient() {
    let mut rng = Rng::new(12);
    let (batch, classes) = (5, 7);
    let logits = vec64(&mut rng, batch * classes, -4.0, 4.0);
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(classes) as u32).collect();
    let scale = 1.0 / batch as f64;
    // Without and with label smoothing.
    for smoothing in [0.0, 0.2] {
        let mean_loss = |z: &[f64]| {
            let mut loss = vec![0.0; batch];
            softmax_xent::softmax_xent(z, &labels, classes, scale, smoothing, &mut loss, None, None);
            loss.iter().sum::<f64>() * scale
        };
        let mut loss = vec![0.0; batch];
        let mut d = vec![0.0; batch * classes];
        softmax_xent::softmax_xent(
            &logits,
            &labels,
            classes,
            scale,
            smoothing,
            &mut loss,
            None,
            Some(&mut d),
        );
        assert_close(&format!("dlogits, smoothing {smoothing}"), &d, &numeric(&logits, mean_loss));
    }
}

#[test]
fn conv2d_gradients() {
    let mut rng = Rng::new(13);
    let windows = [
        Window::new(2, (5, 6, 2), (3, 3), (1, 1), Padding::Same),
        Window::new(1, (7, 5, 3), (4, 4), (1, 1), Padding::Same),
        Window::new(2, (6, 7, 2), (2, 3), (2, 2), Padding::Valid),
        Window::new(1, (7, 7, 1), (4, 2), (2, 3), Padding::Same),
    ];
    for g in windows.map(Option::unwrap) {
        let filters = 3;
        let (m, k) = (g.out_pixels(), g.patch());
        let x = vec64(&mut rng, g.input_len(), -1.0, 1.0);
        let w = vec64(&mut rng, filters * k, -1.0, 1.0);
        let b = vec64(&mut rng, filters, -1.0, 1.0);
        let dy = vec64(&mut rng, m * filters, -1.0, 1.0);
        // y (B·OH·OW, F) = im2col(x) · Wᵀ + b, W stored (F, KH, KW, C).
        let forward = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut cols = vec![0.0; m * k];
            conv::im2col(&g, x, &mut cols);
            let mut y = vec![0.0; m * filters];
            matmul::matmul(&mm(m, filters, k, false, true, Act::Linear), &cols, w, Some(b), &mut y);
            y
        };
        let mut cols = vec![0.0; m * k];
        conv::im2col(&g, &x, &mut cols);
        let (mut dw, mut db, mut dcols, mut dx) =
            (vec![0.0; filters * k], vec![0.0; filters], vec![0.0; m * k], vec![0.0; x.len()]);
        matmul::matmul(&mm(filters, k, m, true, false, Act::Linear), &dy, &cols, None, &mut dw);
        matmul::bias_grad(&dy, m, filters, &mut db);
        matmul::matmul(&mm(m, k, filters, false, false, Act::Linear), &dy, &w, None, &mut dcols);
        conv::col2im(&g, &dcols, &mut dx);
        assert_close(&format!("{g:?} dx"), &dx, &numeric(&x, |x| dot(&forward(x, &w, &b), &dy)));
        assert_close(&format!("{g:?} dW"), &dw, &numeric(&w, |w| dot(&forward(&x, w, &b), &dy)));
        assert_close(&format!("{g:?} db"), &db, &numeric(&b, |b| dot(&forward(&x, &w, b), &dy)));
    }
}

#[test]
fn pooling_gradients() {
    let mut rng = Rng::new(14);
    let windows = [
        Window::new(2, (6, 6, 2), (2, 2), (2, 2), Padding::Valid),
        Window::new(1, (7, 5, 3), (3, 3), (2, 2), Padding::Same),
        Window::new(2, (5, 6, 1), (2, 2), (1, 1), Padding::Same),
        Window::new(1, (9, 11, 2), (4, 4), (4, 4), Padding::Same),
    ];
    for g in windows.map(Option::unwrap) {
        let n_out = g.out_pixels() * g.c;
        let x = vec64(&mut rng, g.input_len(), -1.0, 1.0);
        let dy = vec64(&mut rng, n_out, -1.0, 1.0);
        let max = |x: &[f64]| {
            let (mut y, mut arg) = (vec![0.0; n_out], vec![0; n_out]);
            pool::max_forward(&g, x, &mut y, &mut arg);
            (y, arg)
        };
        let (_, argmax) = max(&x);
        let mut dx = vec![0.0; x.len()];
        pool::max_backward(&dy, &argmax, &mut dx);
        assert_close(&format!("max {g:?}"), &dx, &numeric(&x, |x| dot(&max(x).0, &dy)));
        let avg = |x: &[f64]| {
            let mut y = vec![0.0; n_out];
            pool::avg_forward(&g, x, &mut y);
            y
        };
        pool::avg_backward(&g, &dy, &mut dx);
        assert_close(&format!("avg {g:?}"), &dx, &numeric(&x, |x| dot(&avg(x), &dy)));
    }
}

/// Dropout's backward pass is its forward pass applied to the gradient, so a finite-difference
/// check of it would be circular: the mask itself is what is tested. (The kernel draws the same
/// mask bit for bit: `tests/kernels.rs` compares dropout outputs exactly.)
#[test]
fn dropout_masks_drop_at_their_rate_scale_the_rest_and_change_with_the_step() {
    let n = 200_000;
    let ones = vec![1.0f64; n];
    for rate in [0.1f32, 0.3, 0.6] {
        let mut y = vec![0.0; n];
        dropout::dropout(&ones, &mut y, rate, 99, 4);
        let dropped = y.iter().filter(|v| **v == 0.0).count() as f64;
        // Binomial: 5 standard deviations.
        let sd = (n as f64 * rate as f64 * (1.0 - rate as f64)).sqrt();
        assert!((dropped - n as f64 * rate as f64).abs() < 5.0 * sd, "rate {rate}: dropped {dropped} of {n}");
        let scale = gpu_fmnist::rng::keep_scale(rate) as f64;
        assert!(y.iter().all(|&v| v == 0.0 || v == scale), "rate {rate}: kept values are not 1/(1 − rate)");
        // Another step, another mask; the same step, the same mask.
        let mut other = vec![0.0; n];
        dropout::dropout(&ones, &mut other, rate, 99, 5);
        assert!(y != other, "rate {rate}: the mask does not change with the step");
        let mut again = vec![0.0; n];
        dropout::dropout(&ones, &mut again, rate, 99, 4);
        assert_eq!(y, again);
    }
}

#[test]
fn batchnorm_gradients() {
    let mut rng = Rng::new(16);
    for (rows, cols) in [(6, 4), (17, 3), (2, 5)] {
        let x = vec64(&mut rng, rows * cols, -2.0, 2.0);
        let gamma = vec64(&mut rng, cols, 0.5, 1.5);
        let beta = vec64(&mut rng, cols, -0.5, 0.5);
        let dy = vec64(&mut rng, rows * cols, -1.0, 1.0);
        let eps = 1e-3;
        let stats = |x: &[f64]| {
            let (mut m, mut v, mut mm, mut mv) =
                (vec![0.0; cols], vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]);
            batchnorm::stats(x, rows, cols, 0.99, &mut m, &mut v, &mut mm, &mut mv);
            (m, v)
        };
        // Training mode: y normalizes x with the statistics of x itself.
        let forward = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (m, v) = stats(x);
            let mut y = vec![0.0; rows * cols];
            batchnorm::apply(x, &m, &v, gamma, beta, cols, eps, &mut y);
            y
        };
        let (m, v) = stats(&x);
        let (mut dx, mut dgamma, mut dbeta) = (vec![0.0; rows * cols], vec![0.0; cols], vec![0.0; cols]);
        batchnorm::backward(&x, &dy, &m, &v, &gamma, rows, cols, eps, Some(&mut dx), &mut dgamma, &mut dbeta);
        assert_close("bn dx", &dx, &numeric(&x, |x| dot(&forward(x, &gamma, &beta), &dy)));
        assert_close("bn dgamma", &dgamma, &numeric(&gamma, |g| dot(&forward(&x, g, &beta), &dy)));
        assert_close("bn dbeta", &dbeta, &numeric(&beta, |b| dot(&forward(&x, &gamma, b), &dy)));
    }
}

#[test]
fn l2_gradient() {
    let mut rng = Rng::new(17);
    let w = vec64(&mut rng, 30, -1.0, 1.0);
    let mut g = vec![0.0; 30];
    optimizer::l2_grad(&w, &mut g, 1e-2);
    assert_close("l2", &g, &numeric(&w, |w| optimizer::l2_penalty(w, 1e-2)));
}

#[test]
fn a_wrong_gradient_is_caught() {
    // The check itself can fail: a relu derivative taken at the wrong point does not pass.
    let mut rng = Rng::new(18);
    let x = vec64(&mut rng, 50, -1.0, 1.0);
    let g = vec64(&mut rng, 50, -1.0, 1.0);
    let forward = |x: &[f64]| x.iter().map(|&v| activation::activate(Act::Tanh, v)).collect::<Vec<_>>();
    let mut wrong = vec![0.0; 50];
    activation::backward(Act::Tanh, &x, &g, &mut wrong); // should be given y, not x
    let result =
        std::panic::catch_unwind(|| assert_close("tanh", &wrong, &numeric(&x, |x| dot(&forward(x), &g))));
    assert!(result.is_err());
}
