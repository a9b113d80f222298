//! Windows and steps of history queries, for the CLI and the API alike: how
//! far back a query reaches (`--window 30d`, `?window=24h`, `--since 7d`)
//! and how wide each history bucket is (`?step=5m`).
//!
//! Every value a user can type is checked here once, with checked
//! arithmetic: at least 1 s, at most 100 years, not reaching back before
//! 1970, and at most [`MAX_BUCKETS`] buckets per history query. Anything
//! else is a [`WindowError`] naming the parameter — never a panic or an
//! unbounded allocation (README, "History and uptime").

use std::time::Duration;

/// The longest window or step: 100 years of 365.25 days.
pub const MAX_SECS: i64 = 100 * 31_557_600;

/// The most buckets one history query may return.
pub const MAX_BUCKETS: i64 = 10_000;

/// A checked window or step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    text: String,
    secs: i64,
}

/// Why a window or step was refused. `param` is what the user typed it
/// into (`window`, `step`, `since`, `--window`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not a humantime duration.
    #[error("{param}: \"{text}\" is not a duration like 30d, 24h or 90m")]
    NotADuration {
        /// The parameter.
        param: String,
        /// What was given.
        text: String,
    },
    /// Shorter than one second.
    #[error("{param}: \"{text}\" is shorter than the smallest window, 1s")]
    TooShort {
        /// The parameter.
        param: String,
        /// What was given.
        text: String,
    },
    /// Longer than [`MAX_SECS`].
    #[error("{param}: \"{text}\" is longer than the largest window, 100 years")]
    TooLong {
        /// The parameter.
        param: String,
        /// What was given.
        text: String,
    },
    /// It would begin before 1970.
    #[error("{param}: a window of {text} reaches back before 1970, when nothing was recorded")]
    BeforeEpoch {
        /// The parameter.
        param: String,
        /// What was given.
        text: String,
    },
    /// window / step is more than [`MAX_BUCKETS`].
    #[error("step: {step} is too small for a window of {window} (more than {MAX_BUCKETS} buckets)")]
    TooManyBuckets {
        /// The window given.
        window: String,
        /// The step given.
        step: String,
    },
}

/// The buckets of a history query: `count` buckets of `step` seconds from
/// `from`, the last one containing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// Start of the first bucket (Unix seconds; may precede 1970 by less than a step).
    pub from: i64,
    /// End of the last bucket.
    pub to: i64,
    /// Bucket width in seconds (≥ 1).
    pub step: i64,
}

impl Window {
    /// Parses what the user typed into `param`.
    pub fn parse(param: &str, text: &str) -> Result<Window, WindowError> {
        let err = |make: fn(String, String) -> WindowError| make(param.to_string(), text.to_string());
        let d: Duration = humantime::parse_duration(text)
            .map_err(|_| err(|param, text| WindowError::NotADuration { param, text }))?;
        if d.as_secs() < 1 {
            return Err(err(|param, text| WindowError::TooShort { param, text }));
        }
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if secs > MAX_SECS {
            return Err(err(|param, text| WindowError::TooLong { param, text }));
        }
        Ok(Window { text: text.to_string(), secs })
    }

    /// As the user typed it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its length in whole seconds (1 ..= [`MAX_SECS`]).
    pub fn secs(&self) -> i64 {
        self.secs
    }

    /// The start of this window ending at `now`; refused when that is
    /// before 1970. `param` names it in the error.
    pub fn start(&self, param: &str, now: i64) -> Result<i64, WindowError> {
        match now.checked_sub(self.secs) {
            Some(from) if from >= 0 => Ok(from),
            _ => Err(WindowError::BeforeEpoch { param: param.to_string(), text: self.text.clone() }),
        }
    }

    /// The buckets of `step` covering this window, on a grid of `step`
    /// with the last bucket containing `now`.
    pub fn buckets(&self, step: &Window, now: i64) -> Result<Buckets, WindowError> {
        self.start("window", now)?;
        let count = (self.secs + step.secs - 1) / step.secs;
        if count > MAX_BUCKETS {
            return Err(WindowError::TooManyBuckets { window: self.text.clone(), step: step.text.clone() });
        }
        // Both factors are bounded (count ≤ 10,000, step ≤ 100 years), so
        // none of this can overflow an i64.
        let to = now - now.rem_euclid(step.secs) + step.secs;
        Ok(Buckets { from: to - count * step.secs, to, step: step.secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn ordinary_windows_parse() {
        assert_eq!(Window::parse("window", "30d").unwrap().secs(), 30 * 86_400);
        assert_eq!(Window::parse("window", "1s").unwrap().secs(), 1);
        assert_eq!(Window::parse("window", "100y").unwrap().secs(), MAX_SECS);
    }

    #[test]
    fn hostile_values_are_refused_with_the_parameter_named() {
        for (text, word) in [
            ("9223372036854775808s", "100 years"),
            ("18446744073709551615s", "100 years"),
            ("300000000000y", "step: "),
            ("101y", "100 years"),
            ("500ms", "1s"),
            ("0s", "1s"),
            ("-5s", "not a duration"),
            ("", "not a duration"),
        ] {
            let e = Window::parse("step", text).unwrap_err().to_string();
            assert!(e.starts_with("step: "), "{text}: {e}");
            assert!(e.contains(word), "{text}: {e}");
        }
    }

    #[test]
    fn a_window_before_1970_is_refused() {
        let w = Window::parse("--window", "60y").unwrap();
        assert!(w.start("--window", NOW).unwrap_err().to_string().contains("before 1970"));
        assert_eq!(Window::parse("w", "1d").unwrap().start("w", NOW), Ok(NOW - 86_400));
    }

    #[test]
    fn buckets_are_capped_and_end_after_now() {
        let day = Window::parse("window", "24h").unwrap();
        let b = day.buckets(&Window::parse("step", "5m").unwrap(), NOW).unwrap();
        assert_eq!((b.to - b.from) / b.step, 288);
        assert!(b.from <= NOW - 86_400 + 300 && b.to > NOW && b.to - NOW <= 300);
        let fine = Window::parse("step", "1s").unwrap();
        assert!(matches!(day.buckets(&fine, NOW), Err(WindowError::TooManyBuckets { .. })));
        let ten_thousand = Window::parse("window", "10000s").unwrap();
        assert_eq!(ten_thousand.buckets(&fine, NOW).map(|b| (b.to - b.from) / b.step), Ok(10_000));
    }
}
