use serde::{Deserialize, Serialize};

/// Running statistics of one output's values, mergeable across parts and runs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Finite values seen.
    pub count: u64,
    /// NaN or infinite values seen (left out of the other fields).
    pub nonfinite: u64,
    /// Smallest finite value, if any.
    pub min: Option<f64>,
    /// Largest finite value, if any.
    pub max: Option<f64>,
    /// Sum of finite values.
    pub sum: f64,
    /// Sum of squares of finite values.
    pub sum_squares: f64,
}

impl Stats {
    /// Adds `values`.
    pub fn add(&mut self, values: &[f32]) {
        for &v in values {
            if v.is_finite() {
                let v = f64::from(v);
                self.count += 1;
                self.min = Some(self.min.map_or(v, |m| m.min(v)));
                self.max = Some(self.max.map_or(v, |m| m.max(v)));
                self.sum += v;
                self.sum_squares += v * v;
            } else {
                self.nonfinite += 1;
            }
        }
    }

    /// Adds what `other` saw.
    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.nonfinite += other.nonfinite;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sum += other.sum;
        self.sum_squares += other.sum_squares;
    }

    /// Mean of the finite values (0 when none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Population standard deviation of the finite values.
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let mean = self.mean();
        (self.sum_squares / self.count as f64 - mean * mean)
            .max(0.0)
            .sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_parts_give_the_whole_statistics() {
        let (a, b) = ([1.0f32, -2.0, 4.0], [f32::NAN, 3.0, 0.5]);
        let mut whole = Stats::default();
        whole.add(&a);
        whole.add(&b);
        let (mut left, mut right) = (Stats::default(), Stats::default());
        left.add(&a);
        right.add(&b);
        left.merge(&right);
        assert_eq!(left, whole);
        assert_eq!((whole.count, whole.nonfinite), (5, 1));
        assert_eq!((whole.min, whole.max), (Some(-2.0), Some(4.0)));
        assert!((whole.mean() - 1.3).abs() < 1e-12);
        // population std of [1, -2, 4, 3, 0.5]
        assert!((whole.std() - 2.088061).abs() < 1e-6, "{}", whole.std());
    }
}
