//! What the batched commit measures about itself, for `/metrics`: how many
//! transactions each batch carried and how long its log and apply took. Plain
//! atomics, so recording costs a few nanoseconds on the leader's path and reading
//! never takes the batcher's lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the batch size histogram, in transactions.
pub const BATCH_TRANSACTION_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
/// Upper bounds of the commit latency histogram, in seconds.
pub const COMMIT_SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A histogram with fixed upper bounds, counted without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the overflow (`+Inf`) at the end; not cumulative.
    counts: Vec<AtomicU64>,
    /// The sum of observed values, in millionths, so that it fits an integer atomic.
    sum_micros: AtomicU64,
}

/// A histogram as read at one moment, in Prometheus' shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    /// Observations at or below each bound (cumulative); the last is the `+Inf` count.
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let micros = (value.max(0.0) * 1_000_000.0) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative: Vec<u64> = self
            .counts
            .iter()
            .map(|count| {
                running += count.load(Ordering::Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: running,
            cumulative,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0,
        }
    }
}

/// The batcher's measurements.
#[derive(Debug)]
pub struct CommitStats {
    /// Transactions per committed batch.
    pub batch_transactions: Histogram,
    /// Apply plus flush of one batch.
    pub commit_seconds: Histogram,
}

/// [`CommitStats`] as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitSnapshot {
    pub batch_transactions: HistogramSnapshot,
    pub commit_seconds: HistogramSnapshot,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitStats {
            batch_transactions: Histogram::new(BATCH_TRANSACTION_BUCKETS),
            commit_seconds: Histogram::new(COMMIT_SECONDS_BUCKETS),
        }
    }
}

impl CommitStats {
    pub fn record_batch(&self, transactions: u64, took: Duration) {
        self.batch_transactions.observe(transactions as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    pub fn snapshot(&self) -> CommitSnapshot {
        CommitSnapshot {
            batch_transactions: self.batch_transactions.snapshot(),
            commit_seconds: self.commit_seconds.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_with_an_overflow_bucket() {
        let histogram = Histogram::new(&[1.0, 10.0]);
        for value in [0.5, 1.0, 5.0, 50.0] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative, vec![2, 3, 4]);
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum - 56.5).abs() < 1e-6);
    }
}
