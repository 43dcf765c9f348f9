//! `gpu-fmnist check`: every kernel against the CPU reference, on this machine's GPU.

use crate::check::{cases, check_case, Size};
use crate::device::{DeviceKind, Executor};

pub fn run(
    device: DeviceKind,
    adapter: Option<&str>,
    seed: u64,
    quick: bool,
    json: bool,
) -> anyhow::Result<()> {
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
    let say = |text: String| {
        if !json {
            println!("{text}");
        }
    };
    let mut rows = Vec::new();
    say(line.clone());
    say(format!("seed {seed}{}; tolerance |gpu − ref| ≤ 1e-5 + 1e-4·|ref| + 2·√K·2⁻²⁴·Σ|terms|, exact where no rounding happens", if quick { ", quick" } else { "" }));
    say(String::new());
    say(format!(
        "{:<13} {:<16} {:<44} {:<12} {:>10} {:>10}  result",
        "op", "direction", "shape", "output", "max abs", "max rel"
    ));
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
            say(format!(
                "{:<13} {:<16} {:<44} {:<12} {:>10.2e} {:>10.2e}  {result}",
                v.op, v.direction, v.shape, v.output, v.max_abs, v.max_rel
            ));
            rows.push(serde_json::json!({
                "op": v.op,
                "direction": v.direction,
                "shape": v.shape,
                "output": v.output,
                "max_abs": v.max_abs,
                "max_rel": v.max_rel,
                "passed": v.first_failure.is_none(),
                "result": result,
            }));
        }
    }
    say(String::new());
    say(format!("{passed} passed, {failed} failed"));
    if json {
        let out = serde_json::json!({ "device": line, "seed": seed, "quick": quick, "passed": passed, "failed": failed, "cases": rows });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    anyhow::ensure!(failed == 0, "{failed} of {} comparisons failed (seed {seed})", passed + failed);
    Ok(())
}
