//! Reading a packet without an attached structure allocates nothing: the
//! reader copies the kept structure's template into the fixed-size
//! `FrameInfo`. Its own test binary, because it installs the counting
//! global allocator.

use rtp_dd::{FrameSpec, Reader, Structure, write_frame};
use testkit::alloc::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn packets_without_a_structure_are_read_without_allocating() {
    let s = Structure::l3t3();
    let mut buf = [0u8; 255];
    let mut reader = Reader::new();
    let key = FrameSpec {
        start_of_frame: true,
        end_of_frame: true,
        frame_number: 1,
        template_id: 0,
    };
    let n = write_frame(&key, &s, true, None, &mut buf).unwrap();
    let (_, counts) = ALLOC.measure(|| reader.read(&buf[..n]).unwrap());
    // Keeping the structure is what allocates (one Vec per template field).
    assert!(counts.allocs > 15, "{counts:?}");

    // Every template, with and without a bitmask, and a refused packet.
    let mut packets = Vec::new();
    for i in 0..s.templates.len() {
        let f = FrameSpec {
            frame_number: 2 + i as u16,
            template_id: s.template_id(i),
            ..key
        };
        for mask in [None, Some(0x3F)] {
            let n = write_frame(&f, &s, false, mask, &mut buf).unwrap();
            packets.push(buf[..n].to_vec());
        }
    }
    packets.push(vec![0x3F, 0, 1]);
    let ((), counts) = ALLOC.measure(|| {
        for p in &packets {
            let _ = std::hint::black_box(reader.read(std::hint::black_box(p)));
        }
    });
    assert_eq!(counts.allocs, 0, "{counts:?}");
    // The writer does not allocate either.
    let ((), counts) = ALLOC.measure(|| {
        for i in 0..s.templates.len() {
            let f = FrameSpec {
                template_id: s.template_id(i),
                ..key
            };
            let _ = std::hint::black_box(write_frame(&f, &s, true, Some(1), &mut buf));
        }
    });
    assert_eq!(counts.allocs, 0, "{counts:?}");
}
