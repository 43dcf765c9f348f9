//! The `gpu-fmnist` command line: parse, run, and turn any error into one line and exit code 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed pipe (`gpu-fmnist devices | head -1`) ends the program quietly, as it ends any
    // Unix tool, instead of making `println!` panic.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    gpu_fmnist::cli::quiet_lavapipe();
    match gpu_fmnist::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", gpu_fmnist::text::one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
