//! Real MLS messages for the delivery-service tests: the server checks
//! KeyPackages, GroupInfos and commits, so tests speak real MLS (the
//! `e2ee` group code) over the wire.

use super::{Client, JoinedInfo};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use e2ee::group::{MlsClient, MlsConfig, Processed};
use signaling::proto::ClientMessage;

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    B64.decode(s).unwrap()
}

/// An MLS client whose credential names `identity` (the token identity).
pub fn mls(identity: &str) -> MlsClient {
    MlsClient::new(identity, MlsConfig::default()).unwrap()
}

/// The founder creates the group the server named and sends its GroupInfo.
pub async fn found(ws: &mut Client, info: &JoinedInfo, identity: &str) -> MlsClient {
    assert!(info.mls.founder);
    let mut c = mls(identity);
    c.create_group(&hex::decode(&info.mls.group_id).unwrap())
        .unwrap();
    ws.send(&ClientMessage::MlsGroupInfo {
        group_info: b64(&c.group_info().unwrap()),
    })
    .await;
    c
}

/// Sends a fresh KeyPackage of `c`; returns it (base64).
pub async fn send_key_package(ws: &mut Client, c: &mut MlsClient) -> String {
    let kp = b64(&c.key_package().unwrap());
    ws.send(&ClientMessage::MlsKeyPackage {
        key_package: kp.clone(),
    })
    .await;
    kp
}

/// The commit `c` makes adding `adds` (base64 KeyPackages) and removing
/// `removes` (leaves), as the wire message; it stays pending in `c`.
pub fn commit_msg(c: &mut MlsClient, adds: &[&str], removes: &[u32]) -> ClientMessage {
    let kps: Vec<Vec<u8>> = adds.iter().map(|k| unb64(k)).collect();
    let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
    let epoch = c.epoch().unwrap();
    let commit = if refs.is_empty() && removes.is_empty() {
        c.self_update().unwrap()
    } else {
        c.commit(&refs, removes).unwrap()
    };
    ClientMessage::MlsCommit {
        epoch,
        commit: b64(&commit.commit),
        welcome: commit.welcome.as_deref().map(b64),
        added: Vec::new(),
        removed: Vec::new(),
    }
}

/// `c` sends a self-update commit (pending in `c`); returns it (base64).
pub async fn send_self_update(ws: &mut Client, c: &mut MlsClient) -> String {
    let msg = commit_msg(c, &[], &[]);
    ws.send(&msg).await;
    let ClientMessage::MlsCommit { commit, .. } = msg else {
        unreachable!("commit_msg makes a commit")
    };
    commit
}

/// A member processes another's commit (base64).
pub fn process_commit(c: &mut MlsClient, commit: &str) {
    match c.process(&unb64(commit)) {
        Ok(Processed::Commit { .. }) => {}
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// A joiner joins from a Welcome (base64).
pub fn join_from(c: &mut MlsClient, welcome: &str) {
    assert!(c.join(&unb64(welcome)).unwrap());
}
