//! The versioned price table used to estimate cost when a CLI reports none.
//!
//! The built-in table is `prices/v1.toml`, compiled in with `include_str!`.
//! Prices are integer micro-USD per million tokens; estimates are integer
//! micro-USD, rounded half up once at the end (no floats).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use vnx_types::{CostSource, Usage};

/// Text of the built-in price table.
pub const BUILTIN_PRICES_TOML: &str = include_str!("../prices/v1.toml");

static BUILTIN: LazyLock<Result<PriceTable, toml::de::Error>> =
    LazyLock::new(|| PriceTable::from_toml(BUILTIN_PRICES_TOML));

/// Price of one model, micro-USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens (reasoning included).
    pub output: u64,
    /// Input tokens read from the prompt cache; defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<u64>,
    /// Input tokens written to the prompt cache; defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<u64>,
}

impl ModelPrice {
    /// Cost of `usage` at this price, micro-USD, rounded half up; saturates at `u64::MAX`.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let terms = [
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (
                usage.cache_read_tokens,
                self.cache_read.unwrap_or(self.input),
            ),
            (
                usage.cache_write_tokens,
                self.cache_write.unwrap_or(self.input),
            ),
        ];
        // tokens × (micro-USD per 1e6 tokens) ≤ 2^64 · 2^64: fits in u128 per term;
        // the sum of four saturates at worst.
        let total: u128 = terms
            .iter()
            .map(|(tokens, price)| u128::from(*tokens) * u128::from(*price))
            .fold(0u128, u128::saturating_add);
        let micros = total.saturating_add(500_000) / 1_000_000;
        u64::try_from(micros).unwrap_or(u64::MAX)
    }
}

/// A versioned price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Table version; bumped on every change.
    pub version: u32,
    /// Date the prices were taken, `YYYY-MM-DD`.
    pub date: String,
    /// Model name → price.
    pub models: BTreeMap<String, ModelPrice>,
}

/// A cost estimate and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Micro-USD (0 when `source` is [`CostSource::Unknown`]).
    pub usd_micros: u64,
    /// Reported, estimated or unknown.
    pub source: CostSource,
}

impl Cost {
    /// No known cost.
    pub const UNKNOWN: Cost = Cost {
        usd_micros: 0,
        source: CostSource::Unknown,
    };
}

impl PriceTable {
    /// Parses a price table from TOML.
    ///
    /// # Errors
    /// The TOML error, e.g. a missing `version` or an unknown field.
    pub fn from_toml(text: &str) -> Result<PriceTable, toml::de::Error> {
        toml::from_str(text)
    }

    /// The built-in table (`prices/v1.toml`). Empty (version 0) if it failed to
    /// parse, which a unit test rules out.
    pub fn builtin() -> PriceTable {
        match &*BUILTIN {
            Ok(table) => table.clone(),
            Err(_) => PriceTable {
                version: 0,
                date: String::new(),
                models: BTreeMap::new(),
            },
        }
    }

    /// This table with `overrides` (from `[providers.<name>].prices`) replacing
    /// or adding models.
    #[must_use]
    pub fn with_overrides(mut self, overrides: &BTreeMap<String, ModelPrice>) -> PriceTable {
        for (model, price) in overrides {
            self.models.insert(model.clone(), *price);
        }
        self
    }

    /// The price of `model`: an exact key, or a key followed by a date suffix
    /// (`-20250514`, `@20250514`, `-2025-05-14`) or `-latest`. Longest key wins.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(price) = self.models.get(model) {
            return Some(price);
        }
        self.models
            .iter()
            .filter(|(key, _)| {
                model
                    .strip_prefix(key.as_str())
                    .is_some_and(is_version_suffix)
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(_, price)| price)
    }

    /// Estimated cost of `usage` on `model`; [`Cost::UNKNOWN`] when the model is not in the table.
    pub fn estimate(&self, model: &str, usage: &Usage) -> Cost {
        match self.lookup(model) {
            Some(price) => Cost {
                usd_micros: price.cost_micros(usage),
                source: CostSource::Estimated,
            },
            None => Cost::UNKNOWN,
        }
    }
}

fn is_version_suffix(rest: &str) -> bool {
    if rest == "-latest" {
        return true;
    }
    let Some(digits) = rest.strip_prefix('-').or_else(|| rest.strip_prefix('@')) else {
        return false;
    };
    let compact: String = digits.chars().filter(|c| *c != '-').collect();
    compact.len() == 8 && compact.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses() {
        let table = PriceTable::from_toml(BUILTIN_PRICES_TOML).unwrap();
        assert_eq!(table.version, 1);
        assert!(table.models.len() > 10);
        assert_eq!(PriceTable::builtin(), table);
    }

    #[test]
    fn lookup_exact_dated_and_not_prefix() {
        let table = PriceTable::builtin();
        assert!(table.lookup("gpt-5").is_some());
        assert_eq!(
            table.lookup("claude-sonnet-4-20250514"),
            table.lookup("claude-sonnet-4")
        );
        assert_eq!(
            table.lookup("claude-sonnet-4-5-20250929"),
            table.lookup("claude-sonnet-4-5")
        );
        assert!(table.lookup("gpt-5-turbo-ultra").is_none());
        assert!(table.lookup("gemini-3.8-flash").is_none());
    }

    #[test]
    fn estimate_rounds_half_up() {
        let price = ModelPrice {
            input: 1_250_000,
            output: 10_000_000,
            cache_read: Some(125_000),
            cache_write: None,
        };
        let usage = Usage {
            input_tokens: 13_563,
            output_tokens: 51,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        };
        // 13563 × 1.25 + 51 × 10 = 16953.75 + 510 = 17463.75 micro-USD → 17464
        assert_eq!(price.cost_micros(&usage), 17_464);
        let max = Usage {
            input_tokens: u64::MAX,
            output_tokens: u64::MAX,
            cache_read_tokens: u64::MAX,
            cache_write_tokens: u64::MAX,
        };
        assert_eq!(price.cost_micros(&max), u64::MAX);
    }
}
