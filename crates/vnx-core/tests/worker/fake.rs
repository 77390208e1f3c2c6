//! The scripted fake agent: faults a real CLI can't be made to show.
