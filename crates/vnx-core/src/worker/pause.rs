//! A provider-wide pause shared by the dispatches of one batch: when any of
//! them is rate limited, none starts an attempt with that provider before
//! the reset time the CLI reported (or the backoff delay when it reported
//! none).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pipeline::CancelToken;

/// Shared "paused until" of one provider. Cheap to clone (an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct ProviderPause {
    until: Arc<Mutex<Option<Instant>>>,
}

impl ProviderPause {
    /// A pause that is not in effect.
    pub fn new() -> Self {
        ProviderPause::default()
    }

    /// Pauses for at least `wait` from now (an earlier end is extended, a
    /// later one kept).
    pub fn pause_for(&self, wait: Duration) {
        let end = Instant::now() + wait;
        if let Ok(mut until) = self.until.lock() {
            *until = Some(until.map_or(end, |u| u.max(end)));
        }
    }

    /// Time left before the provider may be called again; `None` when not paused.
    pub fn remaining(&self) -> Option<Duration> {
        let until = (*self.until.lock().ok()?)?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Waits until the pause is over (re-checking, since another dispatch
    /// may extend it) or `cancel` fires. Returns how long it waited.
    pub async fn wait(&self, cancel: &CancelToken) -> Duration {
        let start = Instant::now();
        while let Some(left) = self.remaining() {
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                () = cancel.cancelled() => break,
            }
        }
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_but_never_shortens() {
        let p = ProviderPause::new();
        assert_eq!(p.remaining(), None);
        p.pause_for(Duration::from_mins(1));
        p.pause_for(Duration::from_secs(1));
        let left = p.remaining().unwrap_or_default();
        assert!(left > Duration::from_secs(50), "{left:?}");
        let clone = p.clone();
        clone.pause_for(Duration::from_mins(2));
        assert!(p.remaining().unwrap_or_default() > Duration::from_secs(100));
    }

    #[tokio::test]
    async fn wait_returns_after_the_pause() {
        let p = ProviderPause::new();
        p.pause_for(Duration::from_millis(30));
        let waited = p.wait(&CancelToken::new()).await;
        assert!(waited >= Duration::from_millis(25), "{waited:?}");
        assert_eq!(p.remaining(), None);
    }
}
