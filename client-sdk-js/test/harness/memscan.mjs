// Searching another process's memory for byte strings, through
// /proc/<pid>/maps and /proc/<pid>/mem (Linux; the test process is the
// parent of the scanned one, which ptrace access rules allow).
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/** How many times `needle` occurs in the readable memory of process `pid`, and the bytes scanned. */
export function scanMemory(pid, needle) {
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  const fd = openSync(`/proc/${pid}/mem`, "r");
  const buf = Buffer.alloc(1 << 20);
  const overlap = needle.length - 1;
  let count = 0;
  let scanned = 0;
  try {
    for (const line of maps.split("\n")) {
      const [range, perms, , , , name = ""] = line.trim().split(/\s+/);
      if (!range || !perms?.startsWith("r") || name.startsWith("[vvar") || name.startsWith("[vsyscall")) continue;
      const [start, end] = range.split("-").map((h) => Number.parseInt(h, 16));
      let at = start;
      while (at < end) {
        const len = Math.min(end - at, buf.length);
        let n;
        try {
          n = readSync(fd, buf, 0, len, at);
        } catch {
          break;
        }
        if (n === 0) break;
        scanned += n;
        const view = buf.subarray(0, n);
        for (let i = view.indexOf(needle); i !== -1; i = view.indexOf(needle, i + 1)) count++;
        // Step back so a needle spanning two reads is still found once.
        at += n > overlap && at + n < end ? n - overlap : n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return { count, scanned };
}
