//! The native WSA Lab window: a thin wrapper over the `wsa_lab_app` library. `wsa-lab app`
//! starts this binary.

/// The allocator and its setting, shared with `wsa-lab` (the file says why).
#[path = "../../cli/src/allocator.rs"]
mod allocator;

fn main() {
    allocator::configure();
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
