//! Summaries of raw samples: median, p95 (nearest rank), mean, min, max.

use serde_json::{json, Value};

/// The `p`-th percentile (0..=100) by nearest rank of sorted `xs`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p95: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summarize(xs: &[f64]) -> Summary {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    Summary {
        n: s.len(),
        median: percentile(&s, 50.0),
        p95: percentile(&s, 95.0),
        mean: s.iter().sum::<f64>() / s.len().max(1) as f64,
        min: s.first().copied().unwrap_or(f64::NAN),
        max: s.last().copied().unwrap_or(f64::NAN),
    }
}

/// Raw samples with their summary, as stored in results.json.
pub fn samples(unit: &str, xs: &[f64]) -> Value {
    let s = summarize(xs);
    json!({"unit": unit, "n": s.n, "median": s.median, "p95": s.p95, "mean": s.mean,
           "min": s.min, "max": s.max, "samples": xs})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&xs);
        assert_eq!((s.median, s.p95, s.min, s.max), (50.0, 95.0, 1.0, 100.0));
        let s = summarize(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.p95), (2.0, 3.0));
        assert!(summarize(&[]).median.is_nan());
    }
}
