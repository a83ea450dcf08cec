//! The E2EE frame layer: the SFrame header parser and AEAD open, the
//! stateful decryptor (epochs, pending frames, replay windows), and the
//! frame assembler that puts RTP payloads back together.

use crate::input::Input;
use e2ee::frame::{
    DecryptConfig, FrameAssembler, FrameDecryptor, FrameEncryptor, Suite, base_key_len, open, seal,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The RFC 9605 Appendix C base key, so the RFC's test-vector frames in
/// the corpus open.
pub const RFC_BASE_KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn suite(inp: &mut Input<'_>) -> Suite {
    if inp.bool() {
        Suite::AesGcm256Sha512
    } else {
        Suite::AesGcm128Sha256
    }
}

/// One SFrame ciphertext through the header parser and AEAD open
/// (`e2ee::frame::open`). Input: suite bit, metadata (length-prefixed),
/// then the frame.
///
/// Checks: a frame that opens is, byte for byte, what sealing its
/// plaintext under its KID and CTR gives (one wire form per header).
pub fn sframe_open(data: &[u8]) {
    let mut inp = Input::new(data);
    let suite = suite(&mut inp);
    let metadata = inp.short();
    let frame = inp.rest();
    if let Ok(o) = open(suite, &RFC_BASE_KEY, frame, metadata) {
        let mut again = Vec::new();
        seal(
            suite,
            &RFC_BASE_KEY,
            o.kid,
            o.ctr,
            metadata,
            &o.plaintext,
            &mut again,
        )
        .expect("seal what opened");
        assert_eq!(again, frame, "an opened frame has another wire form");
    }
}

/// The base key of `epoch` in the group's `generation`: a rejoin after
/// [`FrameDecryptor::clear`] is a new group, whose epochs have other keys.
fn epoch_key(suite: Suite, generation: u16, epoch: u64) -> Vec<u8> {
    let mut k = vec![0u8; base_key_len(suite)];
    k[..8].copy_from_slice(&epoch.to_be_bytes());
    k[8..10].copy_from_slice(&generation.to_be_bytes());
    k
}

/// A frame sent in a decryptor script.
struct Sent {
    wire: Vec<u8>,
    metadata: Vec<u8>,
    plaintext: Vec<u8>,
    tampered: bool,
}

/// Most operations one input runs, so an execution stays fast.
const MAX_OPS: usize = 256;

/// The receiving side of E2EE media (`FrameDecryptor`), driven by a script:
/// install epochs, decrypt raw bytes, decrypt frames from real encryptors
/// (optionally tampered), replay earlier frames, let time pass, clear.
///
/// Checks: a tampered frame never decrypts; an untampered one decrypts to
/// its plaintext; no frame is delivered twice (replays, including through
/// the pending queue); drop counters only grow.
pub fn sframe_decryptor(data: &[u8]) {
    let mut inp = Input::new(data);
    let suite = suite(&mut inp);
    let mut cfg = DecryptConfig::default();
    cfg.max_pending = 1 + usize::from(inp.u8() % 16);
    cfg.max_pending_bytes = 64 + usize::from(inp.u16());
    cfg.replay_window = u64::from(inp.u8());
    cfg.max_senders = 1 + usize::from(inp.u8() % 8);
    let mut dec = FrameDecryptor::<u32>::new(suite, cfg);
    let mut now = Instant::now();
    let mut generation = 0u16;
    // Each sender with the (generation, epoch) it encrypts under.
    let mut senders: Vec<(FrameEncryptor, Option<(u16, u64)>)> = (0..4)
        .map(|leaf| (FrameEncryptor::new(suite, leaf), None))
        .collect();
    let mut sent: Vec<Sent> = Vec::new();
    let mut delivered = HashSet::new();
    let mut drops = 0;
    let mut check = |d: e2ee::frame::Decrypted<u32>, sent: &[Sent]| {
        if d.ctx == u32::MAX {
            return; // raw fuzz bytes: nothing known to compare against
        }
        let s = &sent[d.ctx as usize];
        assert!(!s.tampered, "a tampered frame decrypted");
        assert_eq!(d.plaintext, s.plaintext, "decrypted to other bytes");
        assert!(delivered.insert(d.ctx), "frame {} delivered twice", d.ctx);
    };
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 7 {
            0 => {
                let epoch = u64::from(inp.u8() % 40);
                let _ = dec.add_epoch(now, epoch, &epoch_key(suite, generation, epoch));
            }
            1 => {
                let metadata = inp.short();
                let frame = inp.long();
                if let Ok(Some(d)) = dec.decrypt(now, frame, metadata, u32::MAX) {
                    check(d, &sent);
                }
            }
            2 => {
                let leaf = usize::from(inp.u8() % 4);
                let epoch = u64::from(inp.u8() % 40);
                let (enc, keyed) = &mut senders[leaf];
                if *keyed != Some((generation, epoch)) {
                    let _ = enc.set_epoch(epoch, &epoch_key(suite, generation, epoch));
                    *keyed = Some((generation, epoch));
                }
                let plaintext = inp.short().to_vec();
                let metadata = vec![inp.u8() & 1];
                let mut wire = Vec::new();
                if enc.encrypt(&plaintext, &metadata, &mut wire).is_err() {
                    continue;
                }
                let mut tampered = false;
                if inp.bool() && !wire.is_empty() {
                    let at = usize::from(inp.u16()) % wire.len();
                    wire[at] ^= inp.u8() | 1;
                    tampered = true;
                }
                let id = sent.len() as u32;
                let r = dec.decrypt(now, &wire, &metadata, id);
                sent.push(Sent {
                    wire,
                    metadata,
                    plaintext,
                    tampered,
                });
                if let Ok(Some(d)) = r {
                    check(d, &sent);
                }
            }
            3 => {
                if sent.is_empty() {
                    continue;
                }
                let i = usize::from(inp.u16()) % sent.len();
                let (wire, metadata) = (sent[i].wire.clone(), sent[i].metadata.clone());
                if let Ok(Some(d)) = dec.decrypt(now, &wire, &metadata, i as u32) {
                    check(d, &sent);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(inp.u8()) * 20);
                dec.handle_timeout(now);
            }
            5 => {
                dec.clear();
                generation = generation.wrapping_add(1);
            }
            _ => {
                let _ = dec.poll_timeout();
                let _ = dec.pending_len();
            }
        }
        while let Some(d) = dec.poll_ready() {
            check(d, &sent);
        }
        let total = dec.drops().total();
        assert!(total >= drops, "drop counters went down");
        drops = total;
    }
}

/// Most packets one input pushes.
const MAX_PACKETS: usize = 2048;

/// RTP payloads back into frames (`FrameAssembler`). Input: frame size
/// limit, reorder depth, then packets (sequence number as an absolute value
/// or a small step from the last, timestamp, start/end flags, payload).
///
/// Checks: no emitted frame exceeds the limit or is empty; the packet that
/// completes a frame is inside it and carries its timestamp.
pub fn frame_assembler(data: &[u8]) {
    let mut inp = Input::new(data);
    let max = 1 + usize::from(inp.u16() % 8192);
    let depth = usize::from(inp.u8() % 70);
    let mut asm = FrameAssembler::with_reorder_depth(max, depth);
    let mut seq: u16 = 0;
    let mut discarded = 0;
    for _ in 0..MAX_PACKETS {
        if inp.is_empty() {
            break;
        }
        let head = inp.u8();
        seq = if head & 0x80 != 0 {
            inp.u16()
        } else {
            // Mostly small steps (including back), as real reordering is.
            seq.wrapping_add(u16::from(head & 0x0f)).wrapping_sub(4)
        };
        let ts = u32::from(inp.u8()) * 3000;
        let (start, end) = (head & 0x20 != 0, head & 0x10 != 0);
        let payload = inp.short();
        if let Some(f) = asm.push(seq, ts, start, end, payload) {
            assert!(f.data.len() <= max, "frame over the limit");
            assert!(!f.data.is_empty() || payload.is_empty());
            assert_eq!(
                f.timestamp, ts,
                "frame completed by a packet of another timestamp"
            );
            let span = f.last_seq.wrapping_sub(f.first_seq);
            assert!(
                seq.wrapping_sub(f.first_seq) <= span,
                "completing packet outside its frame"
            );
        }
        assert!(asm.discarded() >= discarded, "discard counter went down");
        discarded = asm.discarded();
    }
}
