//! SFU core.
