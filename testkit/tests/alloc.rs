//! The counting allocator installed as this binary's global allocator.

use testkit::alloc::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn counts_this_threads_allocations_by_size_and_live_bytes() {
    let (v, counts) = ALLOC.measure(|| {
        let a = vec![0u8; 100];
        let b = vec![1u8; 100];
        let c = Box::new([0u64; 4]);
        (a, b, c)
    });
    assert_eq!(counts.allocs, 3, "{counts:?}");
    assert_eq!(counts.bytes, 232);
    assert_eq!(counts.by_size, vec![(100, 2), (32, 1)]);

    let before = ALLOC.live_bytes();
    drop(v);
    assert_eq!(ALLOC.live_bytes(), before - 232);

    // Nothing is counted outside a measured section.
    let (_, none) = ALLOC.measure(|| ());
    assert_eq!(none, Default::default());
}
