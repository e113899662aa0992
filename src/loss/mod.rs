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
mod avx512_f32;
pub mod ce;
pub(crate) mod dispatch;
pub mod elementwise;
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

#[cfg(test)]
mod tests;
