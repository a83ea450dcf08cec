//! MLS groups for tests, built with the real `e2ee` group code: clients,
//! a group formed by one commit, commit delivery, and the wire format
//! bytes tests look at.

use e2ee::group::{MlsClient, MlsConfig, Processed};

mod raw;
pub use raw::RawMember;

/// `wire_format` of a PublicMessage (RFC 9420 §6).
pub const WIRE_PUBLIC: [u8; 2] = [0, 1];
/// `wire_format` of a PrivateMessage (RFC 9420 §6).
pub const WIRE_PRIVATE: [u8; 2] = [0, 2];
/// `wire_format` of a Welcome.
pub const WIRE_WELCOME: [u8; 2] = [0, 3];
/// `wire_format` of a KeyPackage.
pub const WIRE_KEY_PACKAGE: [u8; 2] = [0, 5];

/// A client named `name` with the default configuration.
pub fn client(name: &str) -> MlsClient {
    MlsClient::new(name, MlsConfig::default()).expect("client")
}

/// The `wire_format` field of a serialized MLSMessage.
pub fn wire_format(message: &[u8]) -> [u8; 2] {
    [message[2], message[3]]
}

/// Founder `names[0]` creates the group and adds the others with one
/// commit; everyone joins from the Welcome.
pub fn group(names: &[&str]) -> Vec<MlsClient> {
    let mut clients: Vec<MlsClient> = names.iter().map(|n| client(n)).collect();
    clients[0].create_group(b"room").expect("create");
    if clients.len() > 1 {
        let kps: Vec<Vec<u8>> = clients[1..]
            .iter_mut()
            .map(|c| c.key_package().expect("kp"))
            .collect();
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let commit = clients[0].commit(&refs, &[]).expect("commit");
        assert_eq!(commit.added, (0..kps.len()).collect::<Vec<_>>());
        clients[0].merge_pending_commit().expect("merge");
        let welcome = commit.welcome.expect("welcome");
        for c in &mut clients[1..] {
            assert!(c.join(&welcome).expect("join"));
        }
    }
    clients
}

/// Delivers `message` to every client except `from` and the ones in `skip`,
/// asserting each takes it as a commit.
pub fn deliver_commit(clients: &mut [MlsClient], from: usize, skip: &[usize], message: &[u8]) {
    for (i, c) in clients.iter_mut().enumerate() {
        if i == from || skip.contains(&i) {
            continue;
        }
        match c.process(message) {
            Ok(Processed::Commit { .. }) => {}
            other => panic!("client {i}: expected a commit, got {other:?}"),
        }
    }
}

/// The identities of `c`'s group members.
pub fn identities(c: &MlsClient) -> Vec<String> {
    c.members().iter().map(|m| m.identity.clone()).collect()
}
