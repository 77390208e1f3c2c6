//! A cancellation token for Ctrl-C, without a tokio-util dependency.

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable "stop now" signal. The caller wires real `SIGINT` to
/// [`CancelToken::cancel`]; a lane that sees it kills its process group and
/// reports [`crate::EndedBy::Interrupted`]. Clones share one state; once
/// cancelled a token stays cancelled.
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        CancelToken { tx: Arc::new(tx) }
    }

    /// Cancels every clone of this token. Idempotent.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail with "closed";
        // if it somehow did, treating it as cancelled is the safe side.
        let _ = rx.wait_for(|cancelled| *cancelled).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_wakes_waiters_and_sticks() {
        let token = CancelToken::new();
        assert!(!token.is_cancelled());
        let clone = token.clone();
        let waiter = tokio::spawn(async move { clone.cancelled().await });
        token.cancel();
        waiter.await.unwrap();
        assert!(token.is_cancelled());
        token.cancelled().await; // already cancelled: returns at once
    }
}
