//! The openmls provider an [`MlsClient`](super::MlsClient) owns: RustCrypto
//! for crypto and randomness, [`MlsStore`] for the group state.
//!
//! Not `OpenMlsRustCrypto`: its bundled store encodes every record as JSON,
//! which made each epoch change cost time linear in the room with a large
//! factor (see `mls-store`).

use mls_store::MlsStore;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

/// Crypto backend and storage of one client. No `Debug`: the store holds
/// private keys (its own `Debug` shows only counts, but nothing needs it).
#[derive(Default)]
pub(super) struct Provider {
    crypto: RustCrypto,
    storage: MlsStore,
}

impl OpenMlsProvider for Provider {
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
