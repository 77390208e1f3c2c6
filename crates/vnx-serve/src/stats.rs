//! `GET /api/stats`: [`vnx_stats::compute`] over the ledger (tokens, cost,
//! pass rates and durations by provider, model, skill, day and batch; units:
//! tokens, micro-USD, ms), plus the dispatches in flight by column.

use std::collections::BTreeMap;

use crate::board::Card;

/// Counts the cards without a receipt by column.
pub(crate) fn in_flight<'a>(
    cards: impl IntoIterator<Item = &'a Card>,
) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for c in cards.into_iter().filter(|c| !c.has_receipt) {
        *out.entry(c.column.name()).or_default() += 1;
    }
    out
}
