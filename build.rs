//! Bakes the git commit the binary is built from (with `-dirty` when a tracked file that goes
//! into the binary differs from it) into `GPU_FMNIST_COMMIT`, so that every run can say which
//! build made it.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short=7", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            // Only what goes into the binary counts (records and docs change while studies run).
            let paths = ["src", "shaders", "experiments", "Cargo.toml", "Cargo.lock", "build.rs"];
            let args: Vec<&str> =
                ["status", "--porcelain", "--untracked-files=no", "--"].into_iter().chain(paths).collect();
            let dirty = git(&args).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=GPU_FMNIST_COMMIT={commit}");
    // The wgpu the lock file pins, for `--version`.
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let wgpu = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wgpu\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GPU_FMNIST_WGPU={wgpu}");
    // Again when the commit moves or a tracked file changes.
    for path in
        [".git/HEAD", ".git/index", "src", "shaders", "experiments", "Cargo.toml", "Cargo.lock", "build.rs"]
    {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed=.git/{head}");
    }
}
