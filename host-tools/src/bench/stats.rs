//! Median and range of a few samples (boots are few: no means, no deviations).
use serde_json::{Value, json};

/// Median, minimum and maximum of the samples that exist, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: u64,
    pub max: u64,
    /// How many samples (boots where both markers were present).
    pub n: usize,
}

impl Summary {
    /// `None` when there is no sample at all.
    pub fn of(samples: &[u64]) -> Option<Summary> {
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            s[n / 2] as f64
        } else {
            (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0
        };
        Some(Summary {
            median,
            min: s[0],
            max: s[n - 1],
            n,
        })
    }

    /// The samples that are `Some`.
    pub fn of_present(samples: impl IntoIterator<Item = Option<u64>>) -> Option<Summary> {
        let present: Vec<u64> = samples.into_iter().flatten().collect();
        Summary::of(&present)
    }

    /// `{"median_ms", "min_ms", "max_ms", "n"}`; all null (n 0) without samples.
    pub fn json(summary: Option<Summary>) -> Value {
        match summary {
            Some(s) => json!({
                "median_ms": ms(s.median),
                "min_ms": ms(s.min as f64),
                "max_ms": ms(s.max as f64),
                "n": s.n,
            }),
            None => json!({ "median_ms": null, "min_ms": null, "max_ms": null, "n": 0 }),
        }
    }

    /// `312.4 ms (301.0–330.2)` or `1.83 s (1.80–1.90)` for reports.
    pub fn display(&self) -> String {
        if self.n == 1 {
            return human_us(self.median);
        }
        format!(
            "{} ({}–{})",
            human_us(self.median),
            human_us_bare(self.min as f64, self.median),
            human_us_bare(self.max as f64, self.median)
        )
    }
}

/// µs as ms with three decimals (µs precision) for JSON.
pub fn ms(us: f64) -> f64 {
    us.round() / 1000.0
}

/// `312.4 ms`, `2.63 s`.
pub fn human_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1e6)
    } else {
        format!("{:.1} ms", us / 1e3)
    }
}

/// The number only, in the unit [`human_us`] picks for `like`.
fn human_us_bare(us: f64, like: f64) -> String {
    if like >= 1_000_000.0 {
        format!("{:.2}", us / 1e6)
    } else {
        format!("{:.1}", us / 1e3)
    }
}

/// `a / b`, `None` when either is missing or `b` is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[5, 1, 3]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1, 5, 3));
        let s = Summary::of(&[4, 1, 3, 2]).unwrap();
        assert_eq!(s.median, 2.5);
        let s = Summary::of_present([Some(10), None, Some(20)]).unwrap();
        assert_eq!((s.median, s.n), (15.0, 2));
    }

    #[test]
    fn display() {
        let s = Summary::of(&[300_000, 312_400, 330_200]).unwrap();
        assert_eq!(s.display(), "312.4 ms (300.0–330.2)");
        assert_eq!(Summary::of(&[2_630_000]).unwrap().display(), "2.63 s");
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(1.0), Some(4.0)), Some(0.25));
    }

    #[test]
    fn empty_summary_is_null_not_zero() {
        let v = Summary::json(None);
        assert!(v["median_ms"].is_null() && v["n"] == 0);
    }
}
