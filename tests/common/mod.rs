//! What the command-line tests share: running the binary and reading a one-line error.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample");
pub const BIN: &str = env!("CARGO_BIN_EXE_gpu-fmnist");

/// Runs the binary in `dir` (None: here) with `env` set; returns (exit code, stdout, stderr).
pub fn run_in(dir: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

pub fn run(args: &[&str]) -> (i32, String, String) {
    run_in(None, &[], args)
}

/// `eval --checkpoint CHECKPOINT --json` on the sample data with the CPU path, which must
/// succeed: its JSON.
pub fn eval_json(checkpoint: &Path) -> serde_json::Value {
    let c = checkpoint.to_str().unwrap();
    let (code, json, stderr) =
        run(&["eval", "--checkpoint", c, "--device", "cpu", "--data-dir", SAMPLE, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("eval --json gave {json:?}: {e}"))
}

/// Asserts a failure reported as exactly one `error:` line that contains each of `expect`.
pub fn one_line_error(result: (i32, String, String), expect: &[&str]) {
    let (code, _, stderr) = result;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    for e in expect {
        assert!(stderr.starts_with("error: ") && stderr.contains(e), "{stderr:?} lacks {e:?}");
    }
}
