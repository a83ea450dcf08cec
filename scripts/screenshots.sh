#!/usr/bin/env bash
# Regenerates the web app's screenshots in docs/img/ (join.png, call.png,
# chat.png at 1280x800, call-360.png at 360 px wide) by running its browser
# test with WEBAPP_SCREENSHOTS set: three headless Chromium pages in one
# call on the sfu binary, with the fake camera and microphone.
#
#   scripts/screenshots.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
WEBAPP_SCREENSHOTS="$root/docs/img" exec "$root/scripts/browser-test.sh" "$root/webapp/test/app.test.mjs"
