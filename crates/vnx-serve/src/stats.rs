//! `GET /api/stats`: totals and cost by day, provider/model and skill, over
//! the receipts on the board. Units: tokens, micro-USD, ms.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::board::Card;

/// One group's figures.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Group {
    /// Receipts in the group.
    pub receipts: u64,
    /// Receipts with status `passed`.
    pub passed: u64,
    /// Tokens, all four counters.
    pub tokens: u64,
    /// Cost, micro-USD.
    pub cost_usd_micros: u64,
    /// Wall time summed, ms.
    pub duration_ms: u64,
}

impl Group {
    fn add(&mut self, c: &Card) {
        self.receipts += 1;
        self.passed += u64::from(c.status.is_some_and(vnx_types::DispatchStatus::is_passed));
        self.tokens = self.tokens.saturating_add(c.tokens);
        self.cost_usd_micros = self
            .cost_usd_micros
            .saturating_add(c.cost_usd_micros.unwrap_or(0));
        self.duration_ms = self.duration_ms.saturating_add(c.elapsed_ms);
    }
}

/// The stats view.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Stats {
    /// All receipts.
    pub total: Group,
    /// Dispatches without a receipt, by column (`queued`, `running`, …).
    pub in_flight: BTreeMap<String, u64>,
    /// By UTC day of the receipt (`YYYY-MM-DD`), oldest first.
    pub by_day: BTreeMap<String, Group>,
    /// By `provider/model`.
    pub by_model: BTreeMap<String, Group>,
    /// By skill.
    pub by_skill: BTreeMap<String, Group>,
}

/// Aggregates the cards that have a receipt.
pub(crate) fn stats<'a>(cards: impl IntoIterator<Item = &'a Card>) -> Stats {
    let mut s = Stats::default();
    for c in cards {
        if !c.has_receipt {
            let col = serde_json::to_value(c.column)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *s.in_flight.entry(col).or_default() += 1;
            continue;
        }
        s.total.add(c);
        let day = c
            .ended_at
            .as_deref()
            .and_then(|t| t.get(..10))
            .unwrap_or("unknown");
        s.by_day.entry(day.to_owned()).or_default().add(c);
        let model = format!(
            "{}/{}",
            c.provider.as_deref().unwrap_or("-"),
            c.model.as_deref().unwrap_or("-")
        );
        s.by_model.entry(model).or_default().add(c);
        s.by_skill
            .entry(c.skill.clone().unwrap_or_else(|| "-".into()))
            .or_default()
            .add(c);
    }
    s
}
