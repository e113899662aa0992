//! Label statistics: streaming, mergeable states behind the bias initialisation.
//!
//! - [`keys`]: order-preserving integer keys of floats;
//! - [`moments`]: count, mean, variance, min, max (Chan's merge);
//! - [`select`]: exact order statistics and Huber location by a few passes (radix
//!   selection with collection of the few values near the answer);
//! - [`counts`]: class counts for integer and string labels, multi-label sets.

pub mod counts;
pub mod keys;
pub mod moments;
pub mod select;
pub mod ser;
