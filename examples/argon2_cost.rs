//! Benchmark helper (not a test): the cost of one argon2id verify at given
//! parameters, as tessera's sign-in pays it. Used by `bench/run` for S2.
//!
//!     cargo run --release --example argon2_cost -- [MEMORY_KIB] [ITERATIONS] [PARALLELISM] [COUNT]
//!
//! Prints one JSON line: the median, min and max milliseconds of COUNT
//! sequential verifies, and the verifies/s reached with one thread per core.

use std::time::Instant;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

fn arg(n: usize, default: u32) -> u32 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (m, t, p, count) = (arg(1, 19456), arg(2, 2), arg(3, 1), arg(4, 20).max(1));
    let params = Params::new(m, t, p, None).map_err(|e| format!("bad parameters: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = argon
        .hash_password(b"benchmark password")
        .map_err(|e| format!("hashing: {e}"))?
        .to_string();
    let parsed = PasswordHash::new(&hash).map_err(|e| format!("parsing: {e}"))?;
    // Warm up once (page faults of the first allocation).
    let _ = Argon2::default().verify_password(b"benchmark password", &parsed);

    let mut times = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let start = Instant::now();
        let ok = Argon2::default().verify_password(b"benchmark password", &parsed).is_ok();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            return Err("verify failed".into());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];

    // The same verifies on one thread per core at once, as a server would.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = count.max(4);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let _ = Argon2::default().verify_password(b"benchmark password", &parsed);
                }
            });
        }
    });
    let parallel = f64::from(per_thread) * cores as f64 / start.elapsed().as_secs_f64();

    println!(
        "{{\"memory_kib\":{m},\"iterations\":{t},\"parallelism\":{p},\"count\":{count},\"median_ms\":{median:.3},\"min_ms\":{:.3},\"max_ms\":{:.3},\"cores\":{cores},\"parallel_verifies_per_s\":{parallel:.1}}}",
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
