//! The `tessera` binary: parse the command line and hand over to the library.

/// mimalloc instead of glibc's allocator: each argon2id check allocates a
/// `memory_kib` block, and glibc kept one such block per allocator arena
/// (up to 8 per core) resident for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera::cli::main()
}
