//! Wire-format tests: what each message looks like as JSON.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{Value, json};

fn wire<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn join_carries_resume_only_when_resuming() {
    let plain = ClientMessage::Join {
        protocol: 1,
        token: "t".into(),
        resume: None,
    };
    assert_eq!(
        wire(&plain),
        json!({"type":"join","protocol":1,"token":"t"})
    );
    let resume = ClientMessage::Join {
        protocol: 1,
        token: "t".into(),
        resume: Some(Resume {
            participant_id: "PA_a".into(),
            resume_token: "ab".into(),
            mls_seq: 9,
        }),
    };
    let v = json!({"type":"join","protocol":1,"token":"t",
        "resume":{"participant_id":"PA_a","resume_token":"ab","mls_seq":9}});
    assert_eq!(wire(&resume), v);
    assert_eq!(serde_json::from_value::<ClientMessage>(v).unwrap(), resume);
}

#[test]
fn mls_client_messages_have_stable_names_and_optional_fields() {
    let commit: ClientMessage =
        serde_json::from_value(json!({"type":"mls_commit","epoch":2,"commit":"Yw=="})).unwrap();
    assert_eq!(
        commit,
        ClientMessage::MlsCommit {
            epoch: 2,
            commit: "Yw==".into(),
            welcome: None,
            added: vec![],
            removed: vec![],
        }
    );
    assert_eq!(
        wire(&ClientMessage::MlsKeyPackage {
            key_package: "a3A=".into()
        }),
        json!({"type":"mls_key_package","key_package":"a3A="})
    );
    assert_eq!(
        wire(&ClientMessage::MlsGroupInfo {
            group_info: "Zw==".into()
        }),
        json!({"type":"mls_group_info","group_info":"Zw=="})
    );
    assert_eq!(
        wire(&ClientMessage::MlsApplication {
            epoch: 3,
            message: "bQ==".into()
        }),
        json!({"type":"mls_application","epoch":3,"message":"bQ=="})
    );
}

#[test]
fn mls_server_messages_have_stable_shapes() {
    let entry = ServerMessage::Mls {
        seq: 4,
        entry: MlsEntry::Commit {
            participant_id: "PA_a".into(),
            epoch: 1,
            commit: "Yw==".into(),
            welcome: None,
            added: vec!["PA_b".into()],
            removed: vec![],
        },
    };
    assert_eq!(
        wire(&entry),
        json!({"type":"mls","seq":4,"entry":{"kind":"commit","participant_id":"PA_a",
            "epoch":1,"commit":"Yw==","welcome":null,"added":["PA_b"],"removed":[]}})
    );
    assert_eq!(
        wire(&MlsEntry::Reset {
            group_id: "00".into(),
            founder: "PA_b".into()
        }),
        json!({"kind":"reset","group_id":"00","founder":"PA_b"})
    );
    assert_eq!(
        wire(&ServerMessage::MlsCommitRejected {
            epoch: 1,
            current_epoch: 2
        }),
        json!({"type":"mls_commit_rejected","epoch":1,"current_epoch":2})
    );
    assert_eq!(wire(&ErrorCode::MlsGap), json!("mls_gap"));
    assert_eq!(wire(&ErrorCode::ResumeFailed), json!("resume_failed"));
}

#[test]
fn joined_without_mls_fields_still_parses() {
    // What a server (or test double) predating MLS sends.
    let v = json!({"type":"joined","protocol":1,"participant_id":"PA_a",
        "room":{"room":"r","participants":[]},"auto_subscribe":true});
    let ServerMessage::Joined {
        mls, resume_token, ..
    } = serde_json::from_value(v).unwrap()
    else {
        panic!("expected joined")
    };
    assert_eq!(mls, MlsInfo::default());
    assert!(resume_token.is_empty());
}
