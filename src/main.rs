//! The `gpu-fmnist` command line: parse, run, and turn any error into one line and exit code 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    gpu_fmnist::cli::quiet_lavapipe();
    match gpu_fmnist::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", gpu_fmnist::gpu::one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
