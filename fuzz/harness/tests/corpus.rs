//! Replays every file of the seed corpus (`fuzz/corpus/<target>/`) through
//! its target: the corpus is a regression suite, so an input that once
//! crashed a target and was added there is checked on every test run.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// The threads that panicked, by name. libFuzzer stops on any panic, also
/// one in a task the target spawned (which tokio would swallow here), so
/// the replay counts those too.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn thread_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

fn panics_on_this_thread() -> usize {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread_name());
            previous(info);
        }));
    });
    let me = thread_name();
    PANICKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|n| **n == me)
        .count()
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(name: &str) {
    let target = fuzz_harness::target(name).expect("known target");
    let dir = corpus_dir().join(name);
    let files = files(&dir);
    assert!(
        !files.is_empty(),
        "no seeds for {name} in {}",
        dir.display()
    );
    for f in files {
        let data = std::fs::read(&f).expect("read seed");
        let before = panics_on_this_thread();
        let run = std::panic::catch_unwind(|| target(&data));
        assert!(run.is_ok(), "{name}: {} fails", f.display());
        assert_eq!(
            panics_on_this_thread(),
            before,
            "{name}: {} panics in a task it spawned",
            f.display()
        );
    }
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    for (name, _) in fuzz_harness::TARGETS {
        assert!(corpus_dir().join(name).is_dir(), "no corpus for {name}");
    }
    for e in std::fs::read_dir(corpus_dir()).expect("corpus dir") {
        let name = e.expect("entry").file_name().into_string().expect("utf-8");
        assert!(
            fuzz_harness::target(&name).is_some(),
            "corpus {name} has no target"
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            replay(stringify!($name));
        }
    )*};
}

replay_tests!(
    rtp_dd,
    stun_demux,
    signaling_proto,
    sframe_open,
    sframe_decryptor,
    frame_assembler,
    token,
    signaling_session,
    srtp_after_dtls,
);
