//! The thread pool every heavy function runs on.
//!
//! A pool of our own (not rayon's global one) so `set_num_threads` can change it at any
//! time. Work is always cut into pieces whose size depends only on the data shape, never
//! on the thread count, so results are identical (bit for bit) for any number of threads.

use std::sync::{Arc, RwLock};

use rayon::ThreadPool;

use crate::error::{Error, Result};

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads a pool may have: 8 per CPU, at least 64. More threads than that
/// only add stacks and switches; a count like 2^31 would try to start them all.
pub fn max_threads() -> usize {
    (8 * cpus()).max(64)
}

fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(max_threads()))
        .unwrap_or_else(cpus)
}

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("headstart-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::ThreadPool(e.to_string()))
}

/// The pool, created on first use with `RAYON_NUM_THREADS` or the CPU count.
pub fn pool() -> Result<Arc<ThreadPool>> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(p.clone());
    }
    let mut w = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = w.as_ref() {
        return Ok(p.clone());
    }
    let p = build(default_threads())?;
    *w = Some(p.clone());
    Ok(p)
}

/// Use `n` threads from now on (0 = the default). Calls already running finish on the
/// old pool.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n > max_threads() {
        return Err(Error::Value(format!(
            "set_num_threads({n}): at most {} threads (8 per CPU, at least 64; this machine \
             has {} CPUs)",
            max_threads(),
            cpus()
        )));
    }
    let n = if n == 0 { default_threads() } else { n };
    let p = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    Ok(())
}

/// Threads the pool runs.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}
