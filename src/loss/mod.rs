//! Losses with fused gradients, torch.nn.functional semantics (REFERENCE.md d3).
//!
//! Every loss computes the per-item losses, their reduction, and optionally the gradient
//! of the *reduced* loss with respect to the input (what torch autograd gives for
//! grad_output = 1; for `reduction='none'` the gradient of the sum) in one pass over the
//! input. The gradient goes to a separate buffer or over the input itself (in place), so
//! peak memory can stay at one array.
//!
//! Reductions are deterministic: per-item losses are summed in tasks whose extent depends
//! only on the shape, and the task sums combine in a fixed pairwise order.

#[cfg(target_arch = "x86_64")]
mod avx2_f32;
#[cfg(target_arch = "x86_64")]
mod avx2_f64;
#[cfg(target_arch = "x86_64")]
mod avx512_f32;
#[cfg(target_arch = "x86_64")]
mod avx512_f64;
pub mod ce;
pub(crate) mod dispatch;
pub mod elementwise;
pub(crate) mod group;
pub mod hinge;

use crate::error::{Error, Result};

/// torch's `reduction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    None,
    Mean,
    Sum,
}

impl Reduction {
    /// Parse torch's names.
    pub fn parse(s: &str) -> Result<Reduction> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            other => Err(Error::Value(format!(
                "reduction must be 'mean', 'sum' or 'none', got {other:?}"
            ))),
        }
    }
}

/// Fixed-order pairwise sum.
pub(crate) fn pairwise(v: &[f64]) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => pairwise(&v[..n / 2]) + pairwise(&v[n / 2..]),
    }
}

/// Sum of one task's per-item losses in 8 interleaved lanes combined pairwise: a fixed
/// order (the result depends only on the slice), and it vectorises, where a plain
/// `iter().sum()` is one dependent add per item (a few percent of a (262144, 10) float32
/// cross-entropy).
pub(crate) fn task_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut ch = v.chunks_exact(8);
    for c in &mut ch {
        for j in 0..8 {
            acc[j] += c[j];
        }
    }
    for (a, x) in acc.iter_mut().zip(ch.remainder()) {
        *a += x;
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

#[cfg(test)]
mod tests;
