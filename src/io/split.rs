//! Positions of two bytes (a delimiter and `\n`) in a block, in order.
//!
//! Why not `memchr2_iter`: in a label CSV a separator comes every 6-10 bytes, and each
//! `next()` of the iterator re-enters its search (alignment, setup) for a few bytes.
//! Here 64 bytes at a time become one bit mask (AVX-512BW: two mask compares; AVX2:
//! two 32-byte compares and movemasks), whose set bits are walked with trailing_zeros.

use crate::error::Result;
use crate::simd::{level, Level};

/// Call `f(i)` for every `i` with `data[i] == a || data[i] == b`, in increasing order;
/// stop at the first error.
#[inline]
pub fn each2(data: &[u8], a: u8, b: u8, mut f: impl FnMut(usize) -> Result<()>) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            Level::Avx512 if std::arch::is_x86_feature_detected!("avx512bw") => {
                // SAFETY: the CPU has AVX-512BW (checked just above).
                return unsafe { x86::each2_avx512(data, a, b, f) };
            }
            Level::Avx512 | Level::Avx2 => {
                // SAFETY: both levels imply AVX2 (`level()` reports only what the CPU has).
                return unsafe { x86::each2_avx2(data, a, b, f) };
            }
            Level::Scalar => {}
        }
    }
    for i in memchr::memchr2_iter(a, b, data) {
        f(i)?;
    }
    Ok(())
}

/// Walk the set bits of `m` (bit j = byte `base + j`).
#[inline(always)]
fn walk(mut m: u64, base: usize, f: &mut impl FnMut(usize) -> Result<()>) -> Result<()> {
    while m != 0 {
        f(base + m.trailing_zeros() as usize)?;
        m &= m - 1;
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,bmi1")]
    pub(super) unsafe fn each2_avx512(
        data: &[u8],
        a: u8,
        b: u8,
        mut f: impl FnMut(usize) -> Result<()>,
    ) -> Result<()> {
        let va = _mm512_set1_epi8(a as i8);
        let vb = _mm512_set1_epi8(b as i8);
        let mut it = data.chunks_exact(64);
        let mut base = 0;
        for c in &mut it {
            // SAFETY: `c` holds 64 bytes.
            let v = _mm512_loadu_si512(c.as_ptr().cast());
            let m = _mm512_cmpeq_epi8_mask(v, va) | _mm512_cmpeq_epi8_mask(v, vb);
            walk(m, base, &mut f)?;
            base += 64;
        }
        tail(it.remainder(), base, a, b, &mut f)
    }

    #[target_feature(enable = "avx2,bmi1")]
    pub(super) unsafe fn each2_avx2(
        data: &[u8],
        a: u8,
        b: u8,
        mut f: impl FnMut(usize) -> Result<()>,
    ) -> Result<()> {
        let va = _mm256_set1_epi8(a as i8);
        let vb = _mm256_set1_epi8(b as i8);
        let half = |p: *const u8| -> u64 {
            // SAFETY: callers pass a pointer to 32 readable bytes.
            let v = unsafe { _mm256_loadu_si256(p.cast()) };
            let e = _mm256_or_si256(_mm256_cmpeq_epi8(v, va), _mm256_cmpeq_epi8(v, vb));
            _mm256_movemask_epi8(e) as u32 as u64
        };
        let mut it = data.chunks_exact(64);
        let mut base = 0;
        for c in &mut it {
            let m = half(c.as_ptr()) | half(c.as_ptr().add(32)) << 32;
            walk(m, base, &mut f)?;
            base += 64;
        }
        tail(it.remainder(), base, a, b, &mut f)
    }

    #[inline(always)]
    fn tail(
        r: &[u8],
        base: usize,
        a: u8,
        b: u8,
        f: &mut impl FnMut(usize) -> Result<()>,
    ) -> Result<()> {
        let mut m = 0u64;
        for (j, &c) in r.iter().enumerate() {
            m |= (((c == a) | (c == b)) as u64) << j;
        }
        walk(m, base, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_finds_what_memchr_finds() {
        let mut data = Vec::new();
        for i in 0..3000u32 {
            data.extend_from_slice(format!("{i},{}.5\r\n", i * 7 % 13).as_bytes());
            if i % 17 == 0 {
                data.extend_from_slice(b",,\n\n\xff\x00;");
            }
        }
        for (a, b) in [(b',', b'\n'), (b'\t', b'\n'), (0u8, b'\n'), (b'\xff', b'5')] {
            for n in [0, 1, 63, 64, 65, 127, 128, 129, 1000, data.len()] {
                let d = &data[..n];
                let want: Vec<usize> = memchr::memchr2_iter(a, b, d).collect();
                for lvl in crate::simd::Level::available() {
                    let mut got = Vec::new();
                    let mut push = |i| {
                        got.push(i);
                        Ok(())
                    };
                    match lvl {
                        #[cfg(target_arch = "x86_64")]
                        Level::Avx512 if std::arch::is_x86_feature_detected!("avx512bw") => unsafe {
                            x86::each2_avx512(d, a, b, &mut push).unwrap()
                        },
                        #[cfg(target_arch = "x86_64")]
                        Level::Avx512 | Level::Avx2 => unsafe {
                            x86::each2_avx2(d, a, b, &mut push).unwrap()
                        },
                        _ => each2(d, a, b, &mut push).unwrap(),
                    }
                    assert_eq!(got, want, "{lvl:?} n={n} a={a} b={b}");
                }
            }
        }
        // An error stops the walk at once.
        let mut seen = 0;
        let r = each2(&data, b',', b'\n', |_| {
            seen += 1;
            if seen == 5 {
                Err(crate::error::Error::Value("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(seen, 5);
    }
}
