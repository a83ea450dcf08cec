//! Searching another process's memory for byte strings, through
//! `/proc/<pid>/maps` and `/proc/<pid>/mem` (Linux; the test process is the
//! parent of the scanned one, which ptrace access rules allow).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// For each needle, how many times it occurs in the readable memory of
/// process `pid`. Also returns the number of bytes scanned.
pub fn scan(pid: u32, needles: &[Vec<u8>]) -> (Vec<usize>, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mut mem = File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let finders: Vec<memchr::memmem::Finder<'_>> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let overlap = needles
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let mut counts = vec![0; needles.len()];
    let mut scanned = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = parts.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name.starts_with("[vvar") || name.starts_with("[vsyscall") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut at = start;
        while at < end {
            let len = ((end - at) as usize).min(buf.len());
            if mem.seek(SeekFrom::Start(at)).is_err() {
                break;
            }
            let Ok(n) = mem.read(&mut buf[..len]) else {
                break;
            };
            if n == 0 {
                break;
            }
            scanned += n as u64;
            for (i, f) in finders.iter().enumerate() {
                counts[i] += f.find_iter(&buf[..n]).count();
            }
            // Step back so a needle spanning two reads is still found once.
            let step = if n > overlap && at + (n as u64) < end {
                n - overlap
            } else {
                n
            };
            at += step as u64;
        }
    }
    (counts, scanned)
}
