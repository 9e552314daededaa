//! Small statistics: min / median / max over runs, and percentiles of latency samples.

use serde_json::{json, Value};

/// The values of one metric over the runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub runs: Vec<f64>,
}

impl Summary {
    pub fn min(&self) -> f64 {
        self.runs.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The middle run (the mean of the two middle ones for an even count).
    pub fn median(&self) -> f64 {
        let sorted = sorted(&self.runs);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"min": self.min(), "median": self.median(), "max": self.max(), "runs": self.runs})
    }
}

/// The nearest-rank percentile `p` (0-100) of `samples`.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let sorted = sorted(samples);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_percentiles() {
        let summary = Summary { runs: vec![3.0, 1.0, 2.0] };
        assert_eq!((summary.min(), summary.median(), summary.max()), (1.0, 2.0, 3.0));
        assert_eq!(Summary { runs: vec![4.0, 1.0] }.median(), 2.5);
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }
}
