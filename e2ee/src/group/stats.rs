//! Counters of what an [`MlsClient`](super::MlsClient) accepted and rejected.

/// Cumulative counters, for metrics. Rejections are counted by kind so that
/// a flood of garbage is visible without logging each message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStats {
    /// Commits merged (own and others').
    pub commits_merged: u64,
    /// Application messages decrypted.
    pub application_received: u64,
    /// Application messages encrypted.
    pub application_sent: u64,
    /// Messages `process` returned as `Processed::Ignored`.
    pub ignored: u64,
    /// Messages rejected as `WrongEpoch`.
    pub rejected_wrong_epoch: u64,
    /// Messages rejected as `WrongGroup`.
    pub rejected_wrong_group: u64,
    /// Messages rejected as `InvalidMessage`.
    pub rejected_invalid: u64,
    /// KeyPackages `commit` skipped as invalid or clashing.
    pub rejected_key_packages: u64,
}
