//! Backoff between attempts: exponential, with jitter, honouring rate-limit resets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vnx_agents::Outcome;

/// How much randomness is added to a backoff delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The exact exponential delay (reproducible; for tests).
    None,
    /// Half the delay fixed, the other half uniformly random ("equal jitter"),
    /// so workers retrying together spread out.
    #[default]
    Equal,
}

/// Exponential backoff between attempts: attempt `n` (0-based, the one that
/// failed) waits `min(max, initial · 2ⁿ)`, with [`Jitter`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure. Default 2 s.
    pub initial: Duration,
    /// Cap on any computed delay. Default 60 s.
    pub max: Duration,
    /// Randomness. Default [`Jitter::Equal`].
    pub jitter: Jitter,
    /// Cap on the wait for a rate-limit reset time reported by the CLI
    /// (claude `rate_limit_event.resetsAt`). Default 5 min. A reset further
    /// away is waited for only this long before the next attempt.
    pub max_rate_limit_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_mins(1),
            jitter: Jitter::Equal,
            max_rate_limit_wait: Duration::from_mins(5),
        }
    }
}

impl Backoff {
    /// The exponential delay after failed attempt `attempt` (0-based), jitter applied.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        match self.jitter {
            Jitter::None => base,
            Jitter::Equal => {
                let half = base / 2;
                let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
                half + Duration::from_millis(random_below(span.saturating_add(1)))
            }
        }
    }

    /// How long to wait before retrying after `outcome` (attempt `attempt`,
    /// 0-based): the backoff delay, or — when the CLI reported a rate-limit
    /// reset time — until that reset if it is later, capped at
    /// [`Backoff::max_rate_limit_wait`]. `now_unix_s` is the current time.
    pub fn wait_after(&self, outcome: &Outcome, attempt: u32, now_unix_s: u64) -> Duration {
        let backoff = self.delay(attempt);
        match outcome.rate_limit_resets_at() {
            Some(reset) if reset > now_unix_s => {
                let until = Duration::from_secs(reset - now_unix_s).min(self.max_rate_limit_wait);
                until.max(backoff)
            }
            _ => backoff,
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random number in `0..bound` (0 when `bound` is 0), from std's randomly
/// seeded hasher: enough for jitter, no extra dependency.
fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() % bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use vnx_agents::{OutputFormat, ParseContext, ProcessEnd, parser_for};

    #[test]
    fn exponential_capped_and_jittered() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: Jitter::None,
            ..Backoff::default()
        };
        let got: Vec<u128> = (0..6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX).as_millis(), 1000);
        let j = Backoff {
            jitter: Jitter::Equal,
            ..b
        };
        for n in 0..6 {
            let d = j.delay(n);
            assert!(d >= b.delay(n) / 2 && d <= b.delay(n), "{d:?}");
        }
    }

    #[test]
    fn honours_rate_limit_reset_with_a_cap() {
        let mut parser = parser_for(OutputFormat::ClaudeStreamJson, ParseContext::default());
        parser.feed_line(
            br#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1000}}"#,
        );
        let outcome = parser.finish(&ProcessEnd::exited(1));
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: Jitter::None,
            max_rate_limit_wait: Duration::from_secs(30),
        };
        assert_eq!(b.wait_after(&outcome, 0, 990), Duration::from_secs(10));
        assert_eq!(b.wait_after(&outcome, 0, 900), Duration::from_secs(30));
        assert_eq!(b.wait_after(&outcome, 0, 2000), Duration::from_millis(100));
    }
}
