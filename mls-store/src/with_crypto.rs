//! A complete openmls provider: `openmls_rust_crypto`'s crypto and
//! randomness with an [`MlsStore`].

use std::fmt;

use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use crate::MlsStore;

/// `RustCrypto` for crypto and randomness, an [`MlsStore`] for state: what
/// `openmls_rust_crypto::OpenMlsRustCrypto` is, without its JSON store.
#[derive(Default)]
pub struct MlsProvider {
    crypto: RustCrypto,
    storage: MlsStore,
}

impl MlsProvider {
    /// A provider with an empty store ([`MlsStore::new`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider whose store is for groups that are never reloaded from
    /// storage ([`MlsStore::for_live_groups`]).
    pub fn for_live_groups() -> Self {
        Self {
            crypto: RustCrypto::default(),
            storage: MlsStore::for_live_groups(),
        }
    }
}

impl fmt::Debug for MlsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlsProvider")
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl OpenMlsProvider for MlsProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStore;

    fn storage(&self) -> &MlsStore {
        &self.storage
    }

    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}
