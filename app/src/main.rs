//! The native WSA Lab window: a thin wrapper over the `wsa_lab_app` library. `wsa-lab app`
//! starts this binary.

/// The process's allocator. glibc's hands each freed block above its mmap threshold (at most
/// 32 MiB) back to the OS, so a training step whose activations and im2col buffers are that
/// large (the CNN at batch 128 and more) faulted in and cleared fresh pages every step: ~30% of
/// the CNN's CPU step (measured with perf, docs/benchmarks.md). mimalloc keeps them for the next
/// step. Declared by each binary (this one, `wsa-lab`), not by a library they link.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let options = match wsa_lab_app::LaunchOptions::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = wsa_lab_app::run_native(options) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
