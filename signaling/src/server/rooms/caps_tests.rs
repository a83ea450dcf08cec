//! The registry's caps: participants and rooms per address and
//! server-wide, and each room's queued-bytes budget.

use super::tests::{drain, join_with, key_package, req, setup_caps};
use super::*;
use crate::server::outbox::Signal;
use std::sync::atomic::Ordering;

fn addr(last: u8) -> Option<AddrKey> {
    Some(AddrKey::of([192, 0, 2, last].into()))
}

#[test]
fn participant_and_room_caps_hold_until_removal() {
    let (rooms, _, _) = setup_caps(RoomCaps {
        participants: Quota::new(3, 2),
        rooms: Quota::new(2, 1),
        ..RoomCaps::default()
    });
    let join = |identity: &str, room: &str, from: u8| {
        let mut r = req(identity, Outbox::new(Signal::new(), 8));
        r.room = room.into();
        r.addr = addr(from);
        rooms.join(r).map(|j| j.participant_id)
    };
    let a = join("a", "r", 1).unwrap();
    join("b", "r", 1).unwrap();
    assert_eq!(
        join("c", "r", 1),
        Err(RoomError::TooManyParticipants(Refusal::PerAddress))
    );
    // Address 1 opened "r": another room from it is refused, and the
    // refused join holds no participant place.
    assert_eq!(
        join("x", "r1", 1).err(),
        Some(RoomError::TooManyParticipants(Refusal::PerAddress))
    );
    let d = join("d", "r2", 2).unwrap();
    assert_eq!(
        join("e", "r3", 3),
        Err(RoomError::TooManyParticipants(Refusal::Total))
    );
    // Leaving gives the places back; the room cap is the server's now.
    rooms.remove("r2", &d).unwrap();
    assert_eq!(join("e", "r3", 3).err(), None);
    assert_eq!(
        join("f", "r4", 4),
        Err(RoomError::TooManyParticipants(Refusal::Total))
    );
    rooms.remove("r", &a).unwrap();
    assert_eq!(
        join("f", "r4", 4),
        Err(RoomError::TooManyRooms(Refusal::Total))
    );
    assert_eq!(
        join("f", "r", 4).err(),
        None,
        "an existing room opens nothing"
    );
}

#[tokio::test]
async fn a_room_budget_counts_each_shared_entry_once() {
    let total = Arc::new(AtomicUsize::new(0));
    let (rooms, _, _) = setup_caps(RoomCaps {
        room_bytes: 20_000,
        queued_total: total.clone(),
        ..RoomCaps::default()
    });
    let members: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|who| join_with(&rooms, who, 64))
        .collect();
    let before = total.load(Ordering::Acquire);
    // A real KeyPackage: the delivery service refuses anything else.
    let kp = key_package("d");
    let size = kp.len();
    rooms.mls_key_package("r", &members[3].pid, kp).unwrap();
    let entry = total.load(Ordering::Acquire) - before;
    // Four outboxes hold it; the room is charged for it once.
    assert!((size..size + 512).contains(&entry), "{entry} for {size}");
    let used = before + entry;
    assert!(rooms.fits("r", 20_000 - used));
    assert!(!rooms.fits("r", 20_001 - used));
    assert!(rooms.fits("no-such-room", usize::MAX));
    // Reading gives it back (the last reader frees it).
    for m in &members {
        drain(m).await;
    }
    assert_eq!(total.load(Ordering::Acquire), 0);
}
