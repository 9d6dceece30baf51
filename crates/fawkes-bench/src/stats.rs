//! Percentiles and latency summaries.

use serde::Serialize;

/// The value at quantile `q` (0..=1) of an ascending slice, by nearest rank over `len - 1`
/// (so 0 is the minimum and 1 the maximum); NaN for an empty slice.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Latencies in milliseconds: how many, and their percentiles.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises latencies given in microseconds, in any order.
    pub fn of_micros(micros: &mut [u64]) -> Summary {
        micros.sort_unstable();
        let ms: Vec<f64> = micros.iter().map(|&us| us as f64 / 1e3).collect();
        Summary::of_sorted_ms(&ms)
    }

    /// Summarises an ascending slice of milliseconds.
    pub fn of_sorted_ms(ms: &[f64]) -> Summary {
        let mean = if ms.is_empty() {
            f64::NAN
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Summary {
            count: ms.len(),
            mean_ms: mean,
            p50_ms: percentile(ms, 0.50),
            p99_ms: percentile(ms, 0.99),
            p999_ms: percentile(ms, 0.999),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// `a / b`, or NaN when `b` is zero, for the Fawkes/peer ratios.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_nothing_is_nan() {
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn percentile_of_one_value_is_that_value() {
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(percentile(&[7.0], q), 7.0);
        }
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let values: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 0.5), 51.0);
        assert_eq!(percentile(&values, 0.99), 100.0);
        assert_eq!(percentile(&values, 1.0), 101.0);
        // Out-of-range quantiles clamp to the ends.
        assert_eq!(percentile(&values, 2.0), 101.0);
        assert_eq!(percentile(&values, -1.0), 1.0);
    }

    #[test]
    fn p999_needs_a_thousand_values_to_differ_from_the_max() {
        let values: Vec<f64> = (1..=2001).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.999), 1999.0);
        let few: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&few, 0.999), 100.0);
    }

    #[test]
    fn summary_of_micros_sorts_and_converts() {
        let mut micros = vec![3000, 1000, 2000];
        let summary = Summary::of_micros(&mut micros);
        assert_eq!(micros, vec![1000, 2000, 3000]);
        assert_eq!(summary.count, 3);
        assert_eq!(summary.mean_ms, 2.0);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.p99_ms, 3.0);
        assert_eq!(summary.max_ms, 3.0);
    }

    #[test]
    fn summary_of_nothing_is_empty() {
        let summary = Summary::of_micros(&mut []);
        assert_eq!(summary.count, 0);
        assert!(summary.p50_ms.is_nan() && summary.max_ms.is_nan());
    }

    #[test]
    fn ratio_by_zero_is_nan() {
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(ratio(1.0, 4.0), 0.25);
    }
}
