//! vnx ledger
