//! Runtime CPU dispatch and the vector primitives the kernels are built from.
//!
//! Why this shape: every kernel is written once, as plain Rust over fixed-size lane
//! blocks (`[f64; L]`) with branch-free selects, and instantiated three times inside
//! `#[target_feature]` functions (baseline, AVX2+FMA, AVX-512F). LLVM vectorises the
//! lane loops for the enabled feature set, so one source gives SSE2/AVX2/AVX-512 code
//! (and NEON on aarch64, where it is baseline) without hand-written intrinsics per ISA.
//! The level is detected once and cached; `HEADSTART_SIMD=scalar|avx2|avx512` forces a
//! lower one so the tests exercise every path on one machine.

use std::sync::atomic::{AtomicU8, Ordering};

pub(crate) mod exp;

/// Instruction-set level a kernel runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable code compiled for the target's baseline (SSE2 on x86-64, NEON on aarch64),
    /// without FMA.
    Scalar = 1,
    /// AVX2 + FMA (x86-64).
    Avx2 = 2,
    /// AVX-512F (x86-64).
    Avx512 = 3,
}

impl Level {
    /// The name reported by `simd_level()` and accepted by `HEADSTART_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => {
                if cfg!(target_arch = "aarch64") {
                    "neon"
                } else {
                    "scalar"
                }
            }
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parse a level name (case-insensitive). `neon` and `baseline` mean `Scalar`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "baseline" | "neon" => Some(Level::Scalar),
            "avx2" => Some(Level::Avx2),
            "avx512" | "avx-512" => Some(Level::Avx512),
            _ => None,
        }
    }

    /// The best level this CPU supports.
    pub fn best() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            // (The AVX-512 kernels also use AVX2, FMA and POPCNT, which every AVX-512
            // CPU has; checked all the same.)
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| *l <= Level::best())
            .collect()
    }

    fn from_u8(v: u8) -> Level {
        match v {
            3 => Level::Avx512,
            2 => Level::Avx2,
            _ => Level::Scalar,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Tests that change the process-global level or thread count, or that compare results
/// across them, hold this lock so they never see another test's setting.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The level kernels run at: the best the CPU has, or a lower one forced by
/// `HEADSTART_SIMD` (read once) or by [`set_level`].
pub fn level() -> Level {
    let v = LEVEL.load(Ordering::Relaxed);
    if v != 0 {
        return Level::from_u8(v);
    }
    let best = Level::best();
    let chosen = std::env::var("HEADSTART_SIMD")
        .ok()
        .and_then(|s| Level::parse(&s))
        .map(|l| l.min(best))
        .unwrap_or(best);
    // Only if still unset: a `set_level` that ran meanwhile wins (a plain store here let
    // a first call on one thread undo another thread's `set_level`; a test saw its level
    // change mid-test).
    match LEVEL.compare_exchange(0, chosen as u8, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => chosen,
        Err(v) => Level::from_u8(v),
    }
}

/// Force a level. A level the CPU lacks is lowered to the best available one;
/// the level actually used is returned.
pub fn set_level(l: Level) -> Level {
    let chosen = l.min(Level::best());
    LEVEL.store(chosen as u8, Ordering::Relaxed);
    chosen
}

/// Lanes per block. 16 f64 = two AVX-512 registers or four AVX2 registers: enough
/// independent work to hide FMA latency in the exp polynomial.
pub(crate) const L: usize = 16;

/// `a * b + c`, fused when the level has FMA. Without FMA `mul_add` would become a
/// libm call, so the baseline path rounds twice instead.
#[inline(always)]
pub(crate) fn fmadd<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}
