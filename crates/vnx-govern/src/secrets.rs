//! Secret patterns. The table is vnx-agents' ([`vnx_agents::find_secrets`]):
//! one set of patterns for redaction and for the `no-secrets` gate, so the two
//! never disagree about what a secret looks like.

pub use vnx_agents::{SecretMatch, find_secrets, redact as redact_secrets};
