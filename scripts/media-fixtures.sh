#!/usr/bin/env bash
# Makes the media the native test participant (`participant`, in loadtest)
# replays: real VP8 video in IVF and real Opus audio in Ogg, encoded by
# Debian's ffmpeg (libvpx, libopus) from its built-in test sources. The files
# are committed in loadtest/media/; this script is how they were made.
#
#   scripts/media-fixtures.sh            write loadtest/media/cam.ivf and mic.opus
#   scripts/media-fixtures.sh --check    encode again into a temporary directory
#                                        and compare with the committed files:
#                                        the same packet count, the same
#                                        keyframe positions and the same packet
#                                        durations (the bytes may differ
#                                        between libvpx/libopus versions)
#
# Installs ffmpeg with apt when it is missing. Progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
media="$root/loadtest/media"
mode="${1:-write}"
case "$mode" in
write | --check) ;;
*)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

say() { printf 'media-fixtures: %s\n' "$*" >&2; }
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    say "installing ffmpeg with apt"
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y -qq --no-install-recommends ffmpeg)
    if ! as_root "${install[@]}" >/dev/null 2>&1; then
        as_root apt-get update -qq
        as_root "${install[@]}" >/dev/null
    fi
fi

# 3 s of 320x240 video at 30 fps: 90 frames, a keyframe every 30 (frames 0,
# 30, 60), so a loop restart always lands on one. Real-time mode, one thread,
# no alternate reference frames and no lag: every IVF frame is one shown
# frame, as a browser's encoder sends them. ~200 kbit/s keeps the file small.
encode_video() {
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=320x240:rate=30" -t 3 \
        -c:v libvpx -b:v 200k -g 30 -keyint_min 30 \
        -deadline realtime -cpu-used 8 -threads 1 \
        -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 \
        -fflags +bitexact -flags +bitexact -an \
        -f ivf "$1"
}

# 3 s of a 440 Hz tone, mono, 48 kHz, Opus at 32 kbit/s CBR in 20 ms
# packets: 150 packets of 960 samples.
encode_audio() {
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 3 \
        -c:a libopus -b:a 32k -vbr off -frame_duration 20 -application audio -ac 1 \
        -fflags +bitexact -flags +bitexact -map_metadata -1 -vn \
        -f ogg "$1"
}

# One line per packet: its duration and whether it is a keyframe.
describe() {
    ffprobe -v error -show_entries packet=duration,flags -of csv=p=0 "$1"
}

case "$mode" in
write)
    mkdir -p "$media"
    encode_video "$media/cam.ivf"
    encode_audio "$media/mic.opus"
    say "wrote $(stat -c %s "$media/cam.ivf") bytes of video and $(stat -c %s "$media/mic.opus") bytes of audio"
    ;;
--check)
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    encode_video "$tmp/cam.ivf"
    encode_audio "$tmp/mic.opus"
    status=0
    for f in cam.ivf mic.opus; do
        if ! diff <(describe "$media/$f") <(describe "$tmp/$f") >"$tmp/$f.diff"; then
            say "$f: packet count, durations or keyframes differ from a fresh encode:"
            head -20 "$tmp/$f.diff" >&2
            status=1
        elif cmp -s "$media/$f" "$tmp/$f"; then
            say "$f: identical to a fresh encode"
        else
            say "$f: same packets and keyframes as a fresh encode (bytes differ)"
        fi
    done
    exit "$status"
    ;;
esac
