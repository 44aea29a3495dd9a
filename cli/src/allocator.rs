//! The process's allocator and its one setting, for both binaries: `wsa-lab` (this crate) and
//! the desktop app's (`app/src/main.rs` includes this file). Declared by each binary, not by a
//! library they link, so the page and the Python module keep their hosts' allocators.
//!
//! Why mimalloc: glibc's malloc hands each freed block above its mmap threshold (at most
//! 32 MiB) back to the OS, so a training step whose activations and im2col buffers are that
//! large (the CNN at batch 128 and more) faulted in and cleared fresh pages every step: ~30% of
//! the CNN's CPU step (measured with perf, docs/benchmarks.md). mimalloc keeps them for reuse.
//!
//! Why never purge: by default mimalloc still returns ("purges") memory that stays free past a
//! delay (1 s in mimalloc 3), and a training run still faulted in fresh pages all along: a
//! two-epoch ResNet-GN run took 47 000 page faults, ~11% of its time in the kernel clearing
//! pages (perf). Never purging leaves 1 150 faults, none of them per step (four epochs take as
//! many), and the same peak memory (460 MB): what a step frees, a later step takes again
//! (docs/benchmarks.md). A shorter delay, 100 ms, made it worse (280 000 faults). The cost:
//! memory a finished job used stays with the process until it exits, up to its largest job's
//! peak. A user's own `MIMALLOC_PURGE_DELAY` (or its old name `MIMALLOC_RESET_DELAY`) wins.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc.h's `mi_option_purge_delay` (milliseconds; -1: never). libmimalloc-sys names the
/// options around it (`mi_option_use_numa_nodes` is 16) but not this one in mimalloc 3.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's option unless the user set it in the environment; called first thing
/// in `main`. One of the workspace's three `unsafe` uses outside tests and generated code (the
/// others: gemm's call in core/src/conv.rs, the page's counting allocator in web/src/lib.rs):
/// mimalloc's option table has no safe binding.
#[allow(unsafe_code)]
pub fn configure() {
    if user_set_purge_delay() {
        return;
    }
    // SAFETY: `mi_option_set` writes the option table without synchronisation; `main` calls
    // this before it starts any thread, so nothing reads the table at the same time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

fn user_set_purge_delay() -> bool {
    ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"].iter().any(|name| std::env::var_os(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_option_set_is_the_purge_delay() {
        // mimalloc 3's options.c gives the purge delay a default of 1000 ms, and no option next
        // to it defaults to that (eager_commit_delay 1, use_numa_nodes 0): a renumbered table
        // fails here. Only read: setting it here would race with the other tests' threads.
        // SAFETY: reads integer options, which mimalloc initialised at the process's start.
        let [before, option, after] =
            [PURGE_DELAY - 1, PURGE_DELAY, PURGE_DELAY + 1].map(|o| unsafe { libmimalloc_sys::mi_option_get(o) });
        if !user_set_purge_delay() {
            assert_eq!(option, 1000, "option {PURGE_DELAY} is not the purge delay (neighbours {before}, {after})");
        }
        assert_ne!([before, after], [1000, 1000]);
    }
}
