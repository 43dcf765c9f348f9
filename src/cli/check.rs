//! `gpu-fmnist check`: every kernel against the CPU reference, on this machine's GPU.

use crate::check::{cases, check_case, Size};
use crate::gpu::{DeviceKind, Executor};

pub fn run(device: DeviceKind, adapter: Option<&str>, seed: u64, quick: bool) -> anyhow::Result<()> {
    let kind = if device == DeviceKind::Auto { DeviceKind::Auto } else { device };
    anyhow::ensure!(
        kind != DeviceKind::Cpu,
        "check compares a GPU with the CPU reference: pick a GPU --device"
    );
    let (exec, line) = Executor::open(kind, adapter)?;
    let Executor::Gpu(ctx) = exec else {
        anyhow::bail!(
            "no GPU adapter to check ({line}); try --device vulkan (lavapipe) or see `gpu-fmnist devices`"
        )
    };
    println!("{line}");
    println!("seed {seed}{}; tolerance |gpu − ref| ≤ 1e-5 + 1e-4·|ref| + 2·√K·2⁻²⁴·Σ|terms|, exact where no rounding happens", if quick { ", quick" } else { "" });
    println!();
    println!(
        "{:<13} {:<16} {:<44} {:<12} {:>10} {:>10}  result",
        "op", "direction", "shape", "output", "max abs", "max rel"
    );
    let size = if quick { Size::Quick } else { Size::Full };
    let (mut passed, mut failed) = (0, 0);
    for case in cases(seed, size) {
        for v in check_case(&ctx, &case)? {
            let result = match v.first_failure {
                None => {
                    passed += 1;
                    "pass".to_string()
                }
                Some((i, gpu, reference, allowed)) => {
                    failed += 1;
                    format!("FAIL at [{i}]: gpu {gpu:e}, ref {reference:e}, allowed ±{allowed:.1e}")
                }
            };
            println!(
                "{:<13} {:<16} {:<44} {:<12} {:>10.2e} {:>10.2e}  {result}",
                v.op, v.direction, v.shape, v.output, v.max_abs, v.max_rel
            );
        }
    }
    println!();
    println!("{passed} passed, {failed} failed");
    anyhow::ensure!(failed == 0, "{failed} of {} comparisons failed (seed {seed})", passed + failed);
    Ok(())
}
