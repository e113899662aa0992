//! Exact order statistics and the exact Huber location in bounded memory, by a few
//! passes over re-readable data (radix selection over order-preserving keys).
//!
//! Why this design: every pass accumulates a [`PassAcc`] that is a plain sum of
//! per-chunk parts (integer histograms, collected values, and float sums merged in data
//! order), so chunks, threads, processes and Dask partitions combine into the same
//! answer. Between passes a [`Selector`] turns what the pass saw into the next pass's
//! plan: a few key windows per task, each either histogrammed (2^16 bins over the
//! window) or collected value by value when it holds few enough values.
//!
//! - Pass 1 histograms the top 16 bits of every key (sign, exponent, 4 mantissa bits)
//!   and computes the moments.
//! - A rank task (the median's two middle ranks and every quantile's ranks) follows each
//!   rank into its bin; the bin is collected when it holds at most [`COLLECT_MAX`]
//!   values, otherwise histogrammed 16 bits finer. Keys have 64 bits, so at most four
//!   refinements: float32 data (whose keys vary in 35 bits) needs at most 3 passes.
//! - A Huber task brackets the root of psi(c) = sum clip(y - c, -delta, delta) with
//!   bounds computed from counts alone (psi is monotone, every region contributes
//!   between clip(lo - c) and clip(hi - c) per value). The values whose contribution is
//!   still uncertain lie in [cL - delta, cH - delta] and [cL + delta, cH + delta]; those
//!   two windows are refined or collected, everything between them is summed. When the
//!   uncertain windows are collected, psi is exactly piecewise linear on the bracket and
//!   its root is solved in closed form on the right segment.
//!
//! Conventions: ties are ordinary equal order statistics; a Huber psi with a flat zero
//! interval (no value within delta of it, counts balanced) gives the midpoint of that
//! interval, like the median of an even count.

mod sweep;

use super::keys::{key, value, value_bounds};
use super::moments::{psum, psum_map, Moments, BLOCK as MOMENT_BLOCK};
use crate::error::{Error, Result};
use sweep::add_task;

/// Bits of key resolved per histogram pass.
pub const BITS: u32 = 16;
/// Bits of key in the first pass's histogram: 2^20 bins (8 MiB) put a bin's width at
/// 1/256 of its values' magnitude, so the bins holding the median or a Huber window
/// usually hold few enough values to be collected in pass 2 (two passes in all).
pub const FIRST_BITS: u32 = 20;
/// A window with at most this many values is collected instead of histogrammed.
pub const COLLECT_MAX: u64 = 1 << 21;

/// A key window of one task in one pass: `[lo, hi]` inclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub lo: u64,
    pub hi: u64,
    /// Histogram bin = (key - lo) >> shift (ignored when collecting).
    pub shift: u32,
    pub collect: bool,
}

impl Window {
    fn bins(&self) -> usize {
        if self.collect {
            0
        } else {
            (((self.hi - self.lo) >> self.shift) + 1) as usize
        }
    }
    fn degenerate(&self) -> bool {
        self.lo == self.hi
    }
    /// The window over [lo, hi] that resolves it in one pass when `count` is small, or
    /// histograms it with at most 2^BITS bins.
    fn over(lo: u64, hi: u64, count: u64, collect_max: u64) -> Window {
        let span = hi - lo;
        if count <= collect_max || span == 0 {
            return Window {
                lo,
                hi,
                shift: 0,
                collect: true,
            };
        }
        let bits = 64 - span.leading_zeros();
        Window {
            lo,
            hi,
            shift: bits.saturating_sub(BITS),
            collect: false,
        }
    }
}

/// Count and shifted sums of the values in a gap between windows (relative to the
/// task's reference `r`, so sums of squares do not cancel).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gap {
    pub n: u64,
    pub s1: f64,
    pub s2: f64,
}

impl Gap {
    fn merge(&mut self, o: &Gap) {
        self.n += o.n;
        self.s1 += o.s1;
        self.s2 += o.s2;
    }
}

/// What one task looks at in one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPlan {
    pub r: f64,
    pub windows: Vec<Window>,
}

/// What one task accumulated in one pass.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TaskAcc {
    pub gaps: Vec<Gap>,
    pub hists: Vec<Vec<u64>>,
    /// Collected values per window (degenerate windows keep only their count in `counts`).
    pub vals: Vec<Vec<f64>>,
    pub counts: Vec<u64>,
}

impl TaskAcc {
    fn new(p: &TaskPlan) -> TaskAcc {
        TaskAcc {
            gaps: vec![Gap::default(); p.windows.len() + 1],
            hists: p.windows.iter().map(|w| vec![0u64; w.bins()]).collect(),
            vals: vec![Vec::new(); p.windows.len()],
            counts: vec![0; p.windows.len()],
        }
    }

    fn merge(&mut self, o: &TaskAcc) {
        for (a, b) in self.gaps.iter_mut().zip(&o.gaps) {
            a.merge(b);
        }
        for (a, b) in self.hists.iter_mut().zip(&o.hists) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.vals.iter_mut().zip(&o.vals) {
            a.extend_from_slice(b);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }
}

/// The plan of one pass (shared read-only by every chunk of the pass).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub pass: u32,
    pub tasks: Vec<TaskPlan>,
    /// Pass 1: the Huber deltas whose loss at a zero output is summed (see `zero`).
    pub deltas: Vec<f64>,
}

/// Everything one pass accumulates; chunk parts merge into it in data order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PassAcc {
    pub moments: Moments,
    /// Pass 1 only: histogram of the top FIRST_BITS bits of every key.
    pub hist1: Vec<u64>,
    /// Pass 1 only: losses of the constant output 0, which bias_init reports as the
    /// zero-bias loss: sum |y|, sum max(y, 0), then sum Huber_d(y) per plan delta.
    pub zero: Vec<f64>,
    pub tasks: Vec<TaskAcc>,
}

impl PassAcc {
    pub fn new(plan: &Plan) -> PassAcc {
        let mut a = PassAcc::part(plan);
        if plan.pass == 1 {
            a.hist1 = vec![0; 1 << FIRST_BITS];
        }
        a
    }

    /// A part of a pass: [`new`](Self::new) without the pass-1 histogram (8 MiB). The
    /// caller counts its values into the pass's histogram with [`hist1_add`] or
    /// [`Hist1Shards`]: integer counts add up the same in any order, so parts need not
    /// each carry, zero and merge one.
    pub fn part(plan: &Plan) -> PassAcc {
        PassAcc {
            moments: Moments::default(),
            hist1: Vec::new(),
            zero: if plan.pass == 1 {
                vec![0.0; 2 + plan.deltas.len()]
            } else {
                Vec::new()
            },
            tasks: plan.tasks.iter().map(TaskAcc::new).collect(),
        }
    }

    /// Add a chunk of NaN-free values.
    pub fn add(&mut self, plan: &Plan, v: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        match crate::simd::level() {
            // SAFETY: `level()` reports only levels whose features this CPU has.
            crate::simd::Level::Avx512 => return unsafe { add_avx512(self, plan, v) },
            crate::simd::Level::Avx2 => return unsafe { add_avx2(self, plan, v) },
            _ => {}
        }
        self.add_impl(plan, v)
    }

    /// The body of [`add`](Self::add), instantiated per SIMD level: its sums are plain
    /// lane arrays in a fixed order (no FMA), so every level gives the same bits.
    #[inline(always)]
    fn add_impl(&mut self, plan: &Plan, v: &[f64]) {
        if plan.pass == 1 {
            // Moments and the zero-output L1 / pinball sums in one sweep per block.
            let (mut abs, mut pos) = (0.0, 0.0);
            for b in v.chunks(MOMENT_BLOCK) {
                let (m, a, p) = Moments::block(b);
                self.moments.merge(&m);
                abs += a;
                pos += p;
            }
            if self.zero.len() == 2 + plan.deltas.len() {
                self.zero[0] += abs;
                self.zero[1] += pos;
                for (z, &d) in self.zero[2..].iter_mut().zip(&plan.deltas) {
                    *z += psum_map(v, |y| {
                        let a = y.abs();
                        if a < d {
                            0.5 * a * a
                        } else {
                            d * (a - 0.5 * d)
                        }
                    });
                }
            }
        } else {
            // Later passes only check that they saw as many values as pass 1.
            self.moments.n += v.len() as u64;
        }
        if !self.hist1.is_empty() {
            hist1_add(&mut self.hist1, v);
        }
        for (tp, ta) in plan.tasks.iter().zip(self.tasks.iter_mut()) {
            add_task(tp, ta, v);
        }
    }

    /// Merge the accumulation of the chunks that follow this one.
    pub fn merge(&mut self, o: &PassAcc) {
        self.moments.merge(&o.moments);
        for (a, b) in self.hist1.iter_mut().zip(&o.hist1) {
            *a += b;
        }
        for (a, b) in self.zero.iter_mut().zip(&o.zero) {
            *a += b;
        }
        for (a, b) in self.tasks.iter_mut().zip(&o.tasks) {
            a.merge(b);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_avx2(a: &mut PassAcc, plan: &Plan, v: &[f64]) {
    a.add_impl(plan, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2")]
unsafe fn add_avx512(a: &mut PassAcc, plan: &Plan, v: &[f64]) {
    a.add_impl(plan, v)
}

/// Count `v` into a pass-1 histogram (`1 << FIRST_BITS` bins).
#[inline(always)]
pub fn hist1_add(h: &mut [u64], v: &[f64]) {
    if h.len() != 1 << FIRST_BITS {
        return;
    }
    for &y in v {
        h[(key(y) >> (64 - FIRST_BITS)) as usize] += 1;
    }
}

/// Pass-1 histograms, one per pool thread, for parts made with [`PassAcc::part`]: each
/// thread counts into its own (allocated on first use), and the pass folds them into its
/// histogram at the end. Counts are integers, so the result does not depend on which
/// thread counted what.
pub struct Hist1Shards(Vec<std::sync::Mutex<Vec<u64>>>);

impl Hist1Shards {
    pub fn new(threads: usize) -> Hist1Shards {
        Hist1Shards((0..threads.max(1)).map(|_| Default::default()).collect())
    }

    /// Count `v` into the calling pool thread's histogram.
    pub fn add(&self, v: &[f64]) {
        let i = rayon::current_thread_index().unwrap_or(0) % self.0.len();
        let mut h = self.0[i].lock().unwrap_or_else(|e| e.into_inner());
        if h.is_empty() {
            *h = vec![0; 1 << FIRST_BITS];
        }
        hist1_add(&mut h, v);
    }

    /// Add every shard into `h` (a pass-1 histogram) and empty the shards.
    pub fn fold_into(&self, h: &mut [u64]) {
        for m in &self.0 {
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            for (a, b) in h.iter_mut().zip(s.iter()) {
                *a += b;
            }
            s.clear();
        }
    }
}

impl PassAcc {
    /// Accumulate `chunks` on the pool: one [`part`](PassAcc::part) per chunk, merged in
    /// chunk order, so the float sums depend on the chunking only, never on the thread
    /// count; pass-1 histogram counts go to `shards` (the caller folds them in at the end
    /// of the pass, [`Hist1Shards::fold_into`]). A single chunk runs here, its counts
    /// straight into this histogram (no shard is allocated).
    pub fn add_parallel(
        &mut self,
        plan: &Plan,
        chunks: &[&[f64]],
        shards: &Hist1Shards,
    ) -> Result<()> {
        use rayon::prelude::*;
        if let [c] = chunks {
            let mut a = PassAcc::part(plan);
            a.add(plan, c);
            hist1_add(&mut self.hist1, c);
            self.merge(&a);
            return Ok(());
        }
        let parts: Vec<PassAcc> = crate::parallel::pool()?.install(|| {
            chunks
                .par_iter()
                .map(|c| {
                    let mut a = PassAcc::part(plan);
                    a.add(plan, c);
                    if plan.pass == 1 {
                        shards.add(c);
                    }
                    a
                })
                .collect()
        });
        for p in &parts {
            self.merge(p);
        }
        Ok(())
    }
}

/// One region of a pass's layout, in key order.
#[derive(Clone, Copy, Debug)]
enum Region {
    /// Values between windows, summarised.
    Gap { lo: u64, hi: u64, g: Gap },
    /// One histogram bin.
    Bin { lo: u64, hi: u64, n: u64 },
    /// A collected window: window index (values sorted in the layout).
    Vals { w: usize },
    /// A degenerate collected window: `n` copies of `v`.
    Point { v: f64, n: u64 },
}

/// A finished pass of one task, in key order.
struct Layout<'a> {
    windows: &'a [Window],
    acc: &'a TaskAcc,
    r: f64,
}

impl Layout<'_> {
    fn regions(&self) -> Vec<Region> {
        let mut out = Vec::new();
        let mut next_lo = 0u64;
        for (i, w) in self.windows.iter().enumerate() {
            let g = self.acc.gaps[i];
            if w.lo > next_lo || g.n > 0 {
                out.push(Region::Gap {
                    lo: next_lo,
                    hi: w.lo.saturating_sub(1),
                    g,
                });
            }
            if w.collect {
                if w.degenerate() {
                    out.push(Region::Point {
                        v: value(w.lo),
                        n: self.acc.counts[i],
                    });
                } else {
                    out.push(Region::Vals { w: i });
                }
            } else {
                for (b, &n) in self.acc.hists[i].iter().enumerate() {
                    if n == 0 {
                        continue;
                    }
                    let lo = w.lo + ((b as u64) << w.shift);
                    let hi = (lo + ((1u64 << w.shift) - 1)).min(w.hi);
                    out.push(Region::Bin { lo, hi, n });
                }
            }
            next_lo = w.hi.saturating_add(1);
        }
        let g = *self.acc.gaps.last().unwrap_or(&Gap::default());
        if g.n > 0 {
            out.push(Region::Gap {
                lo: next_lo,
                hi: u64::MAX,
                g,
            });
        }
        out
    }
}

fn region_count(acc: &TaskAcc, r: &Region) -> u64 {
    match *r {
        Region::Gap { g, .. } => g.n,
        Region::Bin { n, .. } | Region::Point { n, .. } => n,
        Region::Vals { w } => acc.vals[w].len() as u64,
    }
}

/// A task's knowledge between passes.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// Order statistics at these 0-based ranks (sorted, unique).
    Ranks {
        ranks: Vec<u64>,
        values: Vec<Option<f64>>,
        done: bool,
    },
    /// Root of sum clip(y - c, -delta, delta) = 0, bracketed in [lo, hi].
    Huber {
        delta: f64,
        lo: f64,
        hi: f64,
        root: Option<f64>,
    },
}

/// Drives the passes: holds the plan of the current pass, what finished passes taught,
/// and (once done) the final layout of each task for loss sums.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub plan: Plan,
    pub acc: PassAcc,
    /// Moments, pass-1 histogram and zero-output loss sums, once pass 1 is finished.
    pub moments: Option<Moments>,
    pub hist1: Vec<u64>,
    pub zero: Vec<f64>,
    pub tasks: Vec<Task>,
    /// The final pass of each task (plan, accumulation), kept for loss sums.
    pub finals: Vec<Option<(TaskPlan, TaskAcc)>>,
    /// Requested quantile probabilities and Huber deltas.
    pub probs: Vec<f64>,
    pub deltas: Vec<f64>,
    /// Windows with at most this many values are collected ([`COLLECT_MAX`]; tests lower
    /// it to exercise every refinement level on small data).
    pub collect_max: u64,
}

/// Whether `a` has the shape `TaskAcc::new(p)` gives, with windows a real plan can hold
/// and window counts that agree with what the window keeps (the rank search indexes the
/// collected values by them).
fn task_consistent(p: &TaskPlan, a: &TaskAcc) -> bool {
    let n = p.windows.len();
    if a.gaps.len() != n + 1 || a.hists.len() != n || a.vals.len() != n || a.counts.len() != n {
        return false;
    }
    p.windows.iter().enumerate().all(|(i, w)| {
        // Collecting windows span any keys (bins() = 0); histogram windows have at most
        // 2^FIRST_BITS bins (pass 1's), later ones 2^BITS.
        if w.lo > w.hi
            || w.shift >= 64
            || (!w.collect && ((w.hi - w.lo) >> w.shift) >= 1 << FIRST_BITS)
        {
            return false;
        }
        if a.hists[i].len() != w.bins() {
            return false;
        }
        if w.collect {
            w.degenerate() || a.vals[i].len() as u64 == a.counts[i]
        } else {
            a.vals[i].is_empty()
                && a.hists[i].iter().try_fold(0u64, |s, &c| s.checked_add(c)) == Some(a.counts[i])
        }
    })
}

impl Selector {
    /// Structural checks for a state decoded from bytes (`ser::selector_from_bytes`):
    /// every invariant the passes index by. Bytes that pass them can still hold
    /// nonsense counts, which give errors or wrong answers, never a panic.
    pub(crate) fn consistent(&self) -> bool {
        let hist_ok = |h: &Vec<u64>| h.is_empty() || h.len() == 1 << FIRST_BITS;
        let open = self.finals.iter().filter(|f| f.is_none()).count();
        self.plan.pass >= 1
            && (self.plan.pass == 1) == self.moments.is_none()
            && hist_ok(&self.hist1)
            && hist_ok(&self.acc.hist1)
            && self.finals.len() == self.tasks.len()
            && (self.tasks.is_empty() || open == self.plan.tasks.len())
            && self.acc.tasks.len() == self.plan.tasks.len()
            && self
                .plan
                .tasks
                .iter()
                .zip(&self.acc.tasks)
                .all(|(p, a)| task_consistent(p, a))
            && self
                .finals
                .iter()
                .flatten()
                .all(|(p, a)| task_consistent(p, a))
            && self.tasks.iter().all(|t| match t {
                Task::Ranks { ranks, values, .. } => {
                    !ranks.is_empty() && ranks.len() == values.len()
                }
                Task::Huber { .. } => true,
            })
    }
}

/// More passes than any exact answer needs (keys have 64 bits, 16 per pass, plus the
/// collecting pass and the Huber bracket's own refinements).
pub const MAX_PASSES: u32 = 16;

/// The 0-based ranks numpy's quantile methods may read for probability q over n values.
pub fn ranks_for(q: f64, n: u64) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let h = (n - 1) as f64 * q;
    let lo = h.floor().max(0.0).min((n - 1) as f64) as u64;
    let hi = h.ceil().max(0.0).min((n - 1) as f64) as u64;
    // In f64: n from corrupt state bytes can exceed i64::MAX (found by the state_bytes
    // fuzz target: an i64 clamp with max < min panicked).
    let inv = ((n as f64 * q).ceil() - 1.0).clamp(0.0, (n - 1) as f64) as u64;
    let mut v = vec![lo, hi, inv];
    // "nearest" may round to either neighbour; both are in {lo, hi}.
    v.sort_unstable();
    v.dedup();
    v
}

/// Every 0-based rank one of numpy's 13 quantile methods may read for q over n values.
/// Their virtual indices (Hyndman & Fan 1-9 and lower / higher / nearest / midpoint) all
/// lie in [nq - 1.5, nq], so the ranks floor(nq) - 2 ..= floor(nq) + 1 (clipped) hold
/// every floor and floor + 1 they interpolate between, with room for rounding.
pub fn quantile_ranks(q: f64, n: u64) -> Vec<u64> {
    let mut v = ranks_for(q, n);
    if n == 0 {
        return v;
    }
    let top = (n - 1) as f64;
    let base = (n as f64 * q).floor();
    let lo = (base - 2.0).clamp(0.0, top) as u64;
    let hi = (base + 1.0).clamp(0.0, top) as u64;
    v.extend(lo..=hi);
    v.sort_unstable();
    v.dedup();
    v
}

impl Selector {
    /// A selector for the median, the quantiles `probs` (in [0, 1]) and the Huber
    /// location for each delta in `deltas` (> 0).
    pub fn new(probs: &[f64], deltas: &[f64]) -> Result<Selector> {
        for &q in probs {
            if !(0.0..=1.0).contains(&q) {
                return Err(Error::Value(format!(
                    "quantiles must be in [0, 1], got {q}"
                )));
            }
        }
        for &d in deltas {
            if !(d > 0.0 && d.is_finite()) {
                return Err(Error::Value(format!(
                    "huber delta must be positive and finite, got {d}"
                )));
            }
        }
        let plan = Plan {
            pass: 1,
            tasks: Vec::new(),
            deltas: deltas.to_vec(),
        };
        Ok(Selector {
            acc: PassAcc::new(&plan),
            plan,
            moments: None,
            hist1: Vec::new(),
            zero: Vec::new(),
            tasks: Vec::new(),
            finals: Vec::new(),
            probs: probs.to_vec(),
            deltas: deltas.to_vec(),
            collect_max: COLLECT_MAX,
        })
    }

    /// Feed NaN-free values to the current pass.
    pub fn update(&mut self, v: &[f64]) {
        self.acc.add(&self.plan, v);
    }

    /// A fresh accumulator for the current pass (for parallel chunk parts).
    pub fn new_acc(&self) -> PassAcc {
        PassAcc::new(&self.plan)
    }

    /// Whether another pass is needed (after `finish_pass`).
    pub fn done(&self) -> bool {
        self.moments.is_some() && self.plan.tasks.is_empty()
    }

    /// Close the current pass and plan the next. Returns true when another pass over the
    /// same data is needed.
    pub fn finish_pass(&mut self) -> Result<bool> {
        if self.plan.pass >= MAX_PASSES {
            return Err(Error::Value(format!(
                "internal: exact selection did not finish in {MAX_PASSES} passes"
            )));
        }
        let acc = std::mem::take(&mut self.acc);
        if self.plan.pass == 1 {
            let m = acc.moments;
            self.moments = Some(m);
            self.hist1 = acc.hist1;
            self.zero = acc.zero;
            let n = m.n;
            if n > 0 {
                let mut ranks: Vec<u64> = vec![(n - 1) / 2, n / 2];
                for &q in &self.probs {
                    ranks.extend(quantile_ranks(q, n));
                }
                ranks.sort_unstable();
                ranks.dedup();
                let len = ranks.len();
                self.tasks.push(Task::Ranks {
                    ranks,
                    values: vec![None; len],
                    done: false,
                });
                for &d in &self.deltas {
                    self.tasks.push(Task::Huber {
                        delta: d,
                        lo: m.min,
                        hi: m.max,
                        root: None,
                    });
                }
            }
            self.finals = vec![None; self.tasks.len()];
            // Pass 1's layout: one histogram window over every key.
            let w = [Window {
                lo: 0,
                hi: u64::MAX,
                shift: 64 - FIRST_BITS,
                collect: false,
            }];
            let ta = TaskAcc {
                gaps: vec![Gap::default(); 2],
                hists: vec![self.hist1.clone()],
                vals: vec![Vec::new()],
                counts: vec![n],
            };
            let mut next = Vec::new();
            for t in 0..self.tasks.len() {
                let lay = Layout {
                    windows: &w,
                    acc: &ta,
                    r: 0.0,
                };
                next.push(self.advance(t, &lay)?);
            }
            self.set_plan(next);
        } else {
            let Some(m) = self.moments else {
                // Only a decoded (corrupt) state is past pass 1 without its moments.
                return Err(Error::Value("corrupt state: no pass-1 moments".into()));
            };
            if acc.moments.n != m.n {
                return Err(Error::Value(format!(
                    "the data changed between passes: pass 1 saw {} values, pass {} saw {}",
                    m.n, self.plan.pass, acc.moments.n
                )));
            }
            let mut next = Vec::new();
            let plan = self.plan.clone();
            let mut ti = 0;
            for t in 0..self.tasks.len() {
                if self.finals[t].is_some() {
                    next.push(None);
                    continue;
                }
                let (tp, mut ta) = (&plan.tasks[ti], acc.tasks[ti].clone());
                ti += 1;
                for v in ta.vals.iter_mut() {
                    v.sort_unstable_by(f64::total_cmp);
                }
                let lay = Layout {
                    windows: &tp.windows,
                    acc: &ta,
                    r: tp.r,
                };
                let nx = self.advance(t, &lay)?;
                if nx.is_none() {
                    self.finals[t] = Some((tp.clone(), ta));
                }
                next.push(nx);
            }
            self.set_plan(next);
        }
        Ok(!self.plan.tasks.is_empty())
    }

    fn set_plan(&mut self, next: Vec<Option<TaskPlan>>) {
        let tasks: Vec<TaskPlan> = next.into_iter().flatten().collect();
        self.plan = Plan {
            pass: self.plan.pass + 1,
            tasks,
            deltas: Vec::new(),
        };
        self.acc = PassAcc::new(&self.plan);
        if self.plan.tasks.is_empty() {
            self.acc = PassAcc::default();
        }
    }

    /// Learn from task t's layout; the next pass's plan for it, or None when it is done.
    fn advance(&mut self, t: usize, lay: &Layout<'_>) -> Result<Option<TaskPlan>> {
        let regions = lay.regions();
        let cmax = self.collect_max;
        match &mut self.tasks[t] {
            Task::Ranks {
                ranks,
                values,
                done,
            } => {
                let mut ranges: Vec<(u64, u64, u64)> = Vec::new();
                let mut all = true;
                let mut ri = 0;
                let mut cum = 0u64;
                for reg in &regions {
                    let c = region_count(lay.acc, reg);
                    while ri < ranks.len() && ranks[ri] < cum + c {
                        let k = ranks[ri] - cum;
                        match *reg {
                            Region::Gap { .. } => {
                                return Err(Error::Value(
                                    "internal: a rank fell between windows".into(),
                                ))
                            }
                            Region::Bin { lo, hi, n } => {
                                all = false;
                                ranges.push((lo, hi, n));
                            }
                            Region::Point { v, .. } => {
                                values[ri] = Some(v);
                                ranges.push((key(v), key(v), 0));
                            }
                            Region::Vals { w } => {
                                let v = lay.acc.vals[w][k as usize];
                                values[ri] = Some(v);
                                ranges.push((key(v), key(v), 0));
                            }
                        }
                        ri += 1;
                    }
                    cum += c;
                }
                let was_final = lay.windows.iter().all(|w| w.collect);
                if all && was_final {
                    // Every rank was read from collected values in this very pass: its
                    // layout is exact everywhere the loss sums need.
                    *done = true;
                    return Ok(None);
                }
                // The reference point of the next pass's gap sums: the middle rank's value
                // (or its bracket's midpoint), so the sums stay near the median, which
                // dev_sums is asked about (the first rank's value, e.g. the minimum, as
                // reference overflowed the sums of data near f64::MAX; found by the
                // selector fuzz target).
                // The median's rank (always requested) when present: other quantiles'
                // neighbouring ranks must not pull the reference away from it.
                let med = cum.saturating_sub(1) / 2;
                let mid = ranks
                    .partition_point(|&k| k < med)
                    .min(values.len().saturating_sub(1));
                let Some(&(klo, khi, _)) = ranges.get(mid).or(ranges.first()) else {
                    // Only a decoded (corrupt) state has a rank task with no ranks.
                    return Err(Error::Value(
                        "corrupt state: a rank task without ranks".into(),
                    ));
                };
                let r = values
                    .get(mid)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| finite_mid_keys(klo, khi));
                Ok(Some(TaskPlan {
                    r,
                    windows: merge_windows(ranges, cmax),
                }))
            }
            Task::Huber {
                delta,
                lo,
                hi,
                root,
            } => {
                let d = *delta;
                let exact = huber_exact_on(&regions, lay, d, *lo, *hi, false);
                if let Some(c) = exact {
                    *root = Some(c);
                    return Ok(None);
                }
                let (cl, ch) = huber_bracket(&regions, lay, d, *lo, *hi);
                *lo = cl;
                *hi = ch;
                // Values whose contribution is not yet known on [cl, ch].
                let u = [(cl - d, ch - d), (cl + d, ch + d)];
                let mut ranges = Vec::new();
                for (a, b) in u {
                    let (ka, kb) = (key(a), key(b));
                    let cnt: u64 = regions
                        .iter()
                        .filter(|reg| overlaps(reg, lay, ka, kb))
                        .map(|reg| region_count(lay.acc, reg))
                        .sum();
                    ranges.push((ka, kb, cnt));
                }
                if ranges[0].1 >= ranges[1].0 {
                    ranges = vec![(ranges[0].0, ranges[1].1, ranges[0].2 + ranges[1].2)];
                }
                let mut windows: Vec<Window> = ranges
                    .into_iter()
                    .map(|(a, b, c)| Window::over(a, b, c, cmax))
                    .collect();
                // No progress (psi flat on the whole bracket, or a bracket that cannot
                // shrink further): collect whatever the windows hold, which ends the task.
                let same = windows.len() == lay.windows.len()
                    && windows
                        .iter()
                        .zip(lay.windows)
                        .all(|(a, b)| a.lo == b.lo && a.hi == b.hi);
                if same {
                    for w in windows.iter_mut() {
                        w.collect = true;
                        w.shift = 0;
                    }
                }
                Ok(Some(TaskPlan {
                    r: finite_mid(cl, ch),
                    windows,
                }))
            }
        }
    }

    /// Mean losses of the constant output 0 after pass 1: (mean |y|, mean max(y, 0),
    /// mean Huber_d(y) for each requested delta).
    pub fn zero_losses(&self) -> Option<(f64, f64, Vec<f64>)> {
        let n = self.moments?.n;
        if n == 0 || self.zero.len() < 2 {
            return None;
        }
        let n = n as f64;
        Some((
            self.zero[0] / n,
            self.zero[1] / n,
            self.zero[2..].iter().map(|z| z / n).collect(),
        ))
    }

    /// Order statistic at 0-based rank k (exact once the rank task is done).
    pub fn order_stat(&self, k: u64) -> Option<f64> {
        for t in &self.tasks {
            if let Task::Ranks {
                ranks,
                values,
                done: true,
            } = t
            {
                return ranks.iter().position(|&r| r == k).and_then(|i| values[i]);
            }
        }
        None
    }

    /// Pass-1 estimate of the order statistic at rank k: (estimate, lower, upper) with
    /// the exact value guaranteed in [lower, upper]; the rank error of the estimate is
    /// at most the count of that bin.
    pub fn order_stat_bounds(&self, k: u64) -> Option<(f64, f64, f64, u64)> {
        let mut cum = 0u64;
        for (b, &n) in self.hist1.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if k < cum + n {
                let lo = (b as u64) << (64 - FIRST_BITS);
                let hi = lo | ((1u64 << (64 - FIRST_BITS)) - 1);
                let (a, z) = value_bounds(lo, hi);
                let m = self.moments?;
                let (a, z) = (a.max(m.min), z.min(m.max));
                let f = (k - cum) as f64 / n as f64;
                let est = if a.is_finite() && z.is_finite() {
                    a + (z - a) * f
                } else if a.is_finite() {
                    a
                } else {
                    z
                };
                return Some((est, a, z, n));
            }
            cum += n;
        }
        None
    }

    /// The Huber location for delta (exact once done), or the current bracket.
    pub fn huber(&self, delta: f64) -> Option<(Option<f64>, f64, f64)> {
        for t in &self.tasks {
            if let Task::Huber {
                delta: d,
                lo,
                hi,
                root,
            } = t
            {
                if *d == delta {
                    return Some((*root, *lo, *hi));
                }
            }
        }
        None
    }

    fn final_layout(&self, pred: impl Fn(&Task) -> bool) -> Option<(&TaskPlan, &TaskAcc)> {
        self.tasks
            .iter()
            .zip(&self.finals)
            .find(|(t, f)| pred(t) && f.is_some())
            .and_then(|(_, f)| f.as_ref().map(|(p, a)| (p, a)))
    }

    /// (count below q, sum of (q - y) below, count equal, count above, sum of (y - q)
    /// above), exact, for q anywhere between the smallest and largest requested order
    /// statistic (the median, a quantile, or between two adjacent ones). A zero of the
    /// other sign than q (q = 0) may be counted below or above instead of equal (the
    /// selector's total order puts -0.0 below +0.0); the sums do not change (distance 0).
    pub fn dev_sums(&self, q: f64) -> Result<(u64, f64, u64, u64, f64)> {
        let (tp, ta) = self
            .final_layout(|t| matches!(t, Task::Ranks { .. }))
            .ok_or_else(|| Error::Value("order statistics are not resolved yet".into()))?;
        let lay = Layout {
            windows: &tp.windows,
            acc: ta,
            r: tp.r,
        };
        let kq = key(q);
        let (mut nlt, mut neq, mut ngt) = (0u64, 0u64, 0u64);
        let (mut lt, mut gt) = (Vec::new(), Vec::new());
        for reg in lay.regions() {
            match reg {
                Region::Gap { lo, hi, g } => {
                    if g.n == 0 {
                        continue;
                    }
                    if hi < kq {
                        nlt += g.n;
                        lt.push(g.n as f64 * (q - lay.r) - g.s1);
                    } else if lo > kq {
                        ngt += g.n;
                        gt.push(g.s1 - g.n as f64 * (q - lay.r));
                    } else {
                        return Err(Error::Value(
                            "internal: deviation point inside a summarised gap".into(),
                        ));
                    }
                }
                Region::Point { v, n } => {
                    if v < q {
                        nlt += n;
                        lt.push(n as f64 * (q - v));
                    } else if v > q {
                        ngt += n;
                        gt.push(n as f64 * (v - q));
                    } else {
                        neq += n;
                    }
                }
                Region::Vals { w } => {
                    let vals = &ta.vals[w];
                    let a = vals.partition_point(|&y| y < q);
                    let b = vals.partition_point(|&y| y <= q);
                    nlt += a as u64;
                    neq += (b - a) as u64;
                    ngt += (vals.len() - b) as u64;
                    lt.push(psum_map(&vals[..a], |y| q - y));
                    gt.push(psum_map(&vals[b..], |y| y - q));
                }
                Region::Bin { .. } => {
                    return Err(Error::Value(
                        "internal: unresolved bin in final layout".into(),
                    ))
                }
            }
        }
        Ok((nlt, psum(&lt), neq, ngt, psum(&gt)))
    }

    /// Sum of Huber_delta(y - c) over all values, exact, for c = the Huber location.
    pub fn huber_sum(&self, delta: f64, c: f64) -> Result<f64> {
        let (tp, ta) = self
            .final_layout(|t| matches!(t, Task::Huber { delta: d, .. } if *d == delta))
            .ok_or_else(|| Error::Value("Huber location is not resolved yet".into()))?;
        let lay = Layout {
            windows: &tp.windows,
            acc: ta,
            r: tp.r,
        };
        let d = delta;
        let hub = |u: f64| {
            let a = u.abs();
            if a < d {
                0.5 * u * u
            } else {
                d * (a - 0.5 * d)
            }
        };
        let mut parts = Vec::new();
        let (kl, kh) = (key(c - d), key(c + d));
        for reg in lay.regions() {
            match reg {
                Region::Gap { lo, hi, g } => {
                    if g.n == 0 {
                        continue;
                    }
                    let n = g.n as f64;
                    let rc = lay.r - c;
                    if hi < kl {
                        // every y < c - d: d (c - y) - d^2 / 2
                        parts.push(d * (n * (c - lay.r) - g.s1) - 0.5 * n * d * d);
                    } else if lo > kh {
                        parts.push(d * (g.s1 + n * rc) - 0.5 * n * d * d);
                    } else if lo >= kl && hi <= kh {
                        // 0.5 sum (y - c)^2 with y - c = (y - r) + (r - c)
                        parts.push(0.5 * (g.s2 + 2.0 * rc * g.s1 + n * rc * rc));
                    } else {
                        return Err(Error::Value(
                            "internal: Huber gap straddles c +- delta".into(),
                        ));
                    }
                }
                Region::Point { v, n } => parts.push(n as f64 * hub(v - c)),
                Region::Vals { w } => parts.push(psum_map(&ta.vals[w], |y| hub(y - c))),
                Region::Bin { .. } => {
                    return Err(Error::Value(
                        "internal: unresolved bin in final layout".into(),
                    ))
                }
            }
        }
        Ok(psum(&parts))
    }
}

/// Pass-2 windows guessed from a sample and accumulated during pass 1, so that most data
/// needs one pass: afterwards [`Selector::adopt`] checks, exactly, whether each task's
/// answer fell inside them (a task whose answer did not gets an ordinary second pass).
#[derive(Clone, Debug, PartialEq)]
pub struct Speculation {
    pub plan: Plan,
    pub acc: PassAcc,
    /// The Huber bracket each task's windows were built for (unused for ranks).
    brackets: Vec<(f64, f64)>,
}

impl Speculation {
    pub fn new_acc(&self) -> PassAcc {
        PassAcc::new(&self.plan)
    }

    /// Values collected so far (the caller abandons a speculation that grows too big).
    pub fn collected(&self) -> usize {
        self.acc
            .tasks
            .iter()
            .flat_map(|t| t.vals.iter())
            .map(Vec::len)
            .sum()
    }
}

/// Where the given ranks fall in a layout: their values when every one lies in collected
/// values, None otherwise.
fn locate_ranks(ranks: &[u64], regions: &[Region], acc: &TaskAcc) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(ranks.len());
    let mut ri = 0;
    let mut cum = 0u64;
    for reg in regions {
        let c = region_count(acc, reg);
        while ri < ranks.len() && ranks[ri] < cum + c {
            let k = ranks[ri] - cum;
            match *reg {
                Region::Point { v, .. } => out.push(v),
                Region::Vals { w } => out.push(acc.vals[w][k as usize]),
                _ => return None,
            }
            ri += 1;
        }
        cum += c;
    }
    (ri == ranks.len()).then_some(out)
}

impl Selector {
    /// Guess pass-2 windows from a sample (e.g. the first few million values): each
    /// requested rank gets the sample's values between proportions p -+ eps, each Huber
    /// location a bracket around the sample's root; everything is collected. None for an
    /// empty sample or when nothing is requested beyond the moments.
    ///
    /// `expected_n` (the expected size of the whole data) keeps the windows bounded: a
    /// window the sample says would hold more than `4 * collect_max` values is not
    /// speculated on.
    pub fn speculate(&self, sample: &[f64], expected_n: u64) -> Result<Option<Speculation>> {
        let ns = sample.len();
        if ns < 1000 || self.plan.pass != 1 {
            return Ok(None);
        }
        let eps = 3.0 / (ns as f64).sqrt() + 1e-4;
        let mut props = vec![0.5];
        props.extend(self.probs.iter().copied());
        let mut asked: Vec<f64> = Vec::new();
        for &p in &props {
            asked.push((p - eps).max(0.0));
            asked.push((p + eps).min(1.0));
        }
        let mut s = Selector::new(&asked, &self.deltas)?;
        s.update(sample);
        while s.finish_pass()? {
            s.update(sample);
        }
        let q = |p: f64| s.order_stat(ranks_for(p, ns as u64)[0]);
        let mut ranges = Vec::new();
        for &p in &props {
            let lo = if p - eps <= 0.0 {
                0
            } else {
                key(q(p - eps).unwrap_or(f64::NEG_INFINITY))
            };
            let hi = if p + eps >= 1.0 {
                u64::MAX
            } else {
                key(q(p + eps).unwrap_or(f64::INFINITY))
            };
            ranges.push((lo, hi, 0));
        }
        let med = q(0.5).unwrap_or(0.0);
        let mut tasks = vec![TaskPlan {
            r: if med.is_finite() { med } else { 0.0 },
            windows: merge_windows(ranges, u64::MAX),
        }];
        let mut brackets = vec![(0.0, 0.0)];
        let spread = match (q((0.5 - eps).max(0.0)), q((0.5 + eps).min(1.0))) {
            (Some(a), Some(b)) if (b - a).is_finite() => b - a,
            _ => return Ok(None),
        };
        let scale = expected_n.max(ns as u64) as f64 / ns as f64;
        let limit = 4 * self.collect_max;
        let too_big = |lo: u64, hi: u64| {
            let k = sample
                .iter()
                .filter(|&&y| (lo..=hi).contains(&key(y)))
                .count();
            (k as f64 * scale) as u64 > limit
        };
        if tasks[0].windows.iter().any(|w| too_big(w.lo, w.hi)) {
            tasks[0].windows.clear();
        }
        for &d in &self.deltas {
            let c = match s.huber(d) {
                Some((Some(c), _, _)) if c.is_finite() => c,
                _ => return Ok(None),
            };
            // The root's sampling error is about d / (sqrt(n) p_in), p_in the share of
            // values within d of it; four of those, or twice the median's window.
            let p_in =
                sample.iter().filter(|&&y| (y - c).abs() < d).count().max(1) as f64 / ns as f64;
            let w = (2.0 * spread)
                .max(4.0 * d / ((ns as f64).sqrt() * p_in))
                .max(4.0 * f64::EPSILON * c.abs());
            let (lo, hi) = (c - w, c + w);
            let mut r = vec![(key(lo - d), key(hi - d)), (key(lo + d), key(hi + d))];
            if r[0].1 >= r[1].0 {
                r = vec![(r[0].0, r[1].1)];
            }
            let windows = if r.iter().any(|&(a, b)| too_big(a, b)) {
                Vec::new()
            } else {
                r.into_iter()
                    .map(|(a, b)| Window::over(a, b, 0, u64::MAX))
                    .collect()
            };
            tasks.push(TaskPlan { r: c, windows });
            brackets.push((lo, hi));
        }
        let plan = Plan {
            pass: 2,
            tasks,
            deltas: Vec::new(),
        };
        Ok(Some(Speculation {
            acc: PassAcc::new(&plan),
            plan,
            brackets,
        }))
    }

    /// After pass 1: take every task whose answer the speculative windows hold (checked
    /// exactly on their layout). Returns true when passes remain for the others.
    pub fn adopt(&mut self, spec: Speculation) -> Result<bool> {
        if self.moments.is_none()
            || self.plan.pass != 2
            || self.plan.tasks.len() != self.tasks.len()
        {
            return Ok(!self.plan.tasks.is_empty());
        }
        let Speculation {
            plan,
            mut acc,
            brackets,
        } = spec;
        if plan.tasks.len() != self.tasks.len() || acc.moments.n != self.moments.map_or(0, |m| m.n)
        {
            return Ok(!self.plan.tasks.is_empty());
        }
        let mut keep = Vec::new();
        for t in 0..self.tasks.len() {
            let tp = &plan.tasks[t];
            let mut ta = std::mem::take(&mut acc.tasks[t]);
            for v in ta.vals.iter_mut() {
                v.sort_unstable_by(f64::total_cmp);
            }
            let lay = Layout {
                windows: &tp.windows,
                acc: &ta,
                r: tp.r,
            };
            let regions = lay.regions();
            let resolved = match &mut self.tasks[t] {
                Task::Ranks {
                    ranks,
                    values,
                    done,
                } => match locate_ranks(ranks, &regions, &ta) {
                    Some(vs) => {
                        for (slot, v) in values.iter_mut().zip(vs) {
                            *slot = Some(v);
                        }
                        *done = true;
                        true
                    }
                    None => false,
                },
                Task::Huber { delta, root, .. } => {
                    let (blo, bhi) = brackets[t];
                    match huber_exact_on(&regions, &lay, *delta, blo, bhi, true) {
                        Some(c) => {
                            *root = Some(c);
                            true
                        }
                        None => false,
                    }
                }
            };
            if resolved {
                self.finals[t] = Some((tp.clone(), ta));
            } else {
                keep.push(self.plan.tasks[t].clone());
            }
        }
        self.plan = Plan {
            pass: self.plan.pass,
            tasks: keep,
            deltas: Vec::new(),
        };
        self.acc = if self.plan.tasks.is_empty() {
            PassAcc::default()
        } else {
            PassAcc::new(&self.plan)
        };
        Ok(!self.plan.tasks.is_empty())
    }
}

fn finite_mid_keys(klo: u64, khi: u64) -> f64 {
    let (lo, hi) = value_bounds(klo, khi);
    finite_mid(lo, hi)
}

fn finite_mid(lo: f64, hi: f64) -> f64 {
    match (lo.is_finite(), hi.is_finite()) {
        // Halves first: hi - lo overflows to inf for a bracket such as [-MAX, MAX] (found
        // by the selector fuzz target: r = inf made the gap sums NaN).
        (true, true) => 0.5 * lo + 0.5 * hi,
        (true, false) => lo,
        (false, true) => hi,
        _ => 0.0,
    }
}

/// Merge ranges (lo, hi, count) into sorted disjoint windows.
fn merge_windows(mut ranges: Vec<(u64, u64, u64)>, cmax: u64) -> Vec<Window> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for (lo, hi, c) in ranges {
        if let Some(last) = out.last_mut() {
            if lo <= last.1 {
                last.1 = last.1.max(hi);
                last.2 = last.2.max(c);
                continue;
            }
        }
        out.push((lo, hi, c));
    }
    out.into_iter()
        .map(|(lo, hi, c)| Window::over(lo, hi, c, cmax))
        .collect()
}

fn region_keys(reg: &Region, lay: &Layout<'_>) -> (u64, u64) {
    match *reg {
        Region::Gap { lo, hi, .. } | Region::Bin { lo, hi, .. } => (lo, hi),
        Region::Point { v, .. } => (key(v), key(v)),
        Region::Vals { w } => (lay.windows[w].lo, lay.windows[w].hi),
    }
}

fn overlaps(reg: &Region, lay: &Layout<'_>, ka: u64, kb: u64) -> bool {
    let (lo, hi) = region_keys(reg, lay);
    lo <= kb && hi >= ka && region_count(lay.acc, reg) > 0
}

#[inline]
fn clip(u: f64, d: f64) -> f64 {
    u.clamp(-d, d)
}

/// Lower and upper bounds of psi(c) from the layout, for c in the bracket [lo, hi].
///
/// Both are non-increasing in c: a summarised gap is classified once for the whole
/// bracket (below c - d, above c + d, or within d of every c: then its exact linear
/// contribution s1 + n (r - c)), so no region switches form inside the bisection.
#[allow(clippy::too_many_arguments)]
fn psi_bounds(
    regions: &[Region],
    lay: &Layout<'_>,
    d: f64,
    c: f64,
    lo: f64,
    hi: f64,
) -> (f64, f64) {
    let (mut l, mut u) = (0.0, 0.0);
    for reg in regions {
        match *reg {
            Region::Vals { w } => {
                let s = psum_map(&lay.acc.vals[w], |y| clip(y - c, d));
                l += s;
                u += s;
            }
            Region::Point { v, n } => {
                let s = n as f64 * clip(v - c, d);
                l += s;
                u += s;
            }
            _ => {
                let n = region_count(lay.acc, reg);
                if n == 0 {
                    continue;
                }
                let (ka, kb) = region_keys(reg, lay);
                let (a, b) = value_bounds(ka, kb);
                if let Region::Gap { g, .. } = *reg {
                    let e = if b <= lo - d {
                        Some(-d * n as f64)
                    } else if a >= hi + d {
                        Some(d * n as f64)
                    } else if a >= hi - d && b <= lo + d {
                        Some(g.s1 + n as f64 * (lay.r - c))
                    } else {
                        None
                    };
                    if let Some(e) = e {
                        l += e;
                        u += e;
                        continue;
                    }
                }
                l += n as f64 * clip(a - c, d);
                u += n as f64 * clip(b - c, d);
            }
        }
    }
    (l, u)
}

/// Bisection for the bracket [cL, cH] of the root within [lo, hi].
fn huber_bracket(regions: &[Region], lay: &Layout<'_>, d: f64, lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = (lo.max(-f64::MAX), hi.min(f64::MAX));
    // cH = sup{c : u(c) >= 0}; cL = inf{c : l(c) <= 0}.
    // Bisection over keys (order-preserving integers): at most 64 steps to adjacent
    // floats, whatever the range (a value-space bisection over [0, 1e66] would stop
    // far from the boundary).
    let bis = |f: &dyn Fn(f64) -> bool| {
        // f is true on a prefix of [lo, hi]: the last true and first false points.
        let (mut a, mut b) = (key(lo), key(hi));
        if !f(lo) {
            return (lo, lo);
        }
        if f(hi) {
            return (hi, hi);
        }
        while b - a > 1 {
            let m = a + (b - a) / 2;
            if f(value(m)) {
                a = m;
            } else {
                b = m;
            }
        }
        (value(a), value(b))
    };
    // The root has u(c*) >= 0 and l(c*) <= 0: it lies in [last l > 0, first u < 0].
    let ch = bis(&|c| psi_bounds(regions, lay, d, c, lo, hi).1 >= 0.0).1;
    let cl = bis(&|c| psi_bounds(regions, lay, d, c, lo, hi).0 > 0.0)
        .0
        .min(ch);
    (cl.max(lo), ch.min(hi))
}

/// psi is exact on [lo, hi] when every value whose clip can change there was collected
/// and every summarised region is either beyond +-delta for all c there, or within it.
fn huber_exact_on(
    regions: &[Region],
    lay: &Layout<'_>,
    d: f64,
    lo: f64,
    hi: f64,
    speculative: bool,
) -> Option<f64> {
    if lay.windows.is_empty() || !lay.windows.iter().all(|w| w.collect) {
        return None;
    }
    let mut below = 0u64; // y <= c - d for every c in [lo, hi]
    let mut above = 0u64; // y >= c + d
    let mut mid = Gap::default(); // |y - c| <= d
    let mut vals: Vec<f64> = Vec::new();
    let mut pts: Vec<(f64, u64)> = Vec::new();
    for reg in regions {
        match *reg {
            Region::Gap { lo: ka, hi: kb, g } => {
                if g.n == 0 {
                    continue;
                }
                let (a, b) = value_bounds(ka, kb);
                if b <= lo - d {
                    below += g.n;
                } else if a >= hi + d {
                    above += g.n;
                } else if a >= hi - d && b <= lo + d {
                    mid.merge(&g);
                } else {
                    return None;
                }
            }
            Region::Point { v, n } => pts.push((v, n)),
            Region::Vals { w } => vals.extend_from_slice(&lay.acc.vals[w]),
            Region::Bin { .. } => return None,
        }
    }
    vals.sort_unstable_by(f64::total_cmp);
    let p = Psi {
        vals: &vals,
        pts: &pts,
        below,
        above,
        mid,
        r: lay.r,
        d,
    };
    // A speculative bracket, guessed from a sample, may miss the root: then this layout
    // does not answer. (A bracket from bounds holds the root by construction.)
    if speculative && !(p.eval(lo) >= 0.0 && p.eval(hi) <= 0.0) {
        return None;
    }
    // The zero set of psi is an interval [z1, z2] (usually one point): its midpoint.
    let z1 = p.root(lo, hi, false);
    let z2 = p.root(lo, hi, true);
    Some(if z1 == z2 { z1 } else { z1 + (z2 - z1) * 0.5 })
}

/// The exact psi on a bracket: psi(c) = d (above - below) + sum_mid (y - c)
/// + sum_vals clip(y - c) + sum_pts n clip(v - c).
struct Psi<'a> {
    vals: &'a [f64],
    pts: &'a [(f64, u64)],
    below: u64,
    above: u64,
    mid: Gap,
    r: f64,
    d: f64,
}

impl Psi<'_> {
    /// (constant, active count, active sum of (y - p)) of psi's linear piece at c, for a
    /// reference point p near c: psi(x) = konst + sum + cnt (p - x) on the piece.
    fn piece(&self, c: f64, p: f64) -> (f64, f64, f64) {
        let (d, vals) = (self.d, self.vals);
        let a = vals.partition_point(|&y| y < c - d);
        let b = vals.partition_point(|&y| y <= c + d);
        let mut konst =
            d * ((self.above + (vals.len() - b) as u64) as f64 - (self.below + a as u64) as f64);
        let mut cnt = (b - a) as f64 + self.mid.n as f64;
        // The gap's sums are relative to r: move them to p.
        let mut sum =
            psum_map(&vals[a..b], |y| y - p) + (self.mid.s1 + self.mid.n as f64 * (self.r - p));
        for &(v, n) in self.pts {
            if v - c > d {
                konst += n as f64 * d;
            } else if v - c < -d {
                konst -= n as f64 * d;
            } else {
                cnt += n as f64;
                sum += n as f64 * (v - p);
            }
        }
        (konst, cnt, sum)
    }

    fn eval(&self, c: f64) -> f64 {
        let (k, _, s) = self.piece(c, c);
        k + s
    }

    /// The left end of the zero set (`right = false`: boundary of psi > 0) or its right
    /// end (`right = true`: boundary of psi >= 0), within [lo, hi].
    ///
    /// psi is linear between the breakpoints y +- d; each piece is classified by psi at
    /// its midpoint, where the clips are unambiguous. (Signs read *at* breakpoints were
    /// rounding noise around 0 when psi is flat at zero, which put both ends of a flat
    /// zero set at the same point: for two values 1.43 apart and d = 0.7, an end of
    /// [y1 + d, y2 - d] instead of its midpoint.)
    fn root(&self, lo: f64, hi: f64, right: bool) -> f64 {
        let pos = |v: f64| if right { v >= 0.0 } else { v > 0.0 };
        let d = self.d;
        let mut pts: Vec<f64> = self
            .vals
            .iter()
            .chain(self.pts.iter().map(|(v, _)| v))
            .flat_map(|&y| [y - d, y + d])
            .filter(|&x| x > lo && x < hi)
            .collect();
        pts.push(lo);
        pts.push(hi);
        pts.sort_unstable_by(f64::total_cmp);
        pts.dedup();
        let np = pts.len().saturating_sub(1).max(1);
        // Piece k: (left, right, midpoint, psi at the midpoint, slope count).
        let line = |k: usize| {
            let (a, b) = (pts[k], pts[(k + 1).min(pts.len() - 1)]);
            let m = a + (b - a) * 0.5;
            let (konst, cnt, sum) = self.piece(m, m);
            (a, b, m, konst + sum, cnt)
        };
        // The first piece whose midpoint is not `pos` (psi is non-increasing).
        let (mut i, mut j) = (0, np);
        while i < j {
            let k = (i + j) / 2;
            if pos(line(k).3) {
                i = k + 1;
            } else {
                j = k;
            }
        }
        // The boundary lies after the midpoint of piece i - 1 (up to hi when every piece
        // is `pos`) or before that of piece i; on a piece psi(c) = v + cnt (m - c), sums
        // relative to its midpoint m.
        if i > 0 {
            let (_, b, m, v, cnt) = line(i - 1);
            if cnt > 0.0 {
                let c0 = m + v / cnt;
                if c0 < b || i == np {
                    return c0.clamp(m, b);
                }
            }
            if i == np {
                return hi;
            }
        }
        let (a, _, m, v, cnt) = line(i);
        if cnt == 0.0 {
            return a;
        }
        (m + v / cnt).clamp(a, m)
    }
}

#[cfg(test)]
mod tests;
