#!/usr/bin/env bash
# Render a run's report.html in headless Chromium to a PNG screenshot (a manual check, not a CI test).
# Needs Debian's chromium (apt-get install chromium). Usage: scripts/screenshot_report.sh REPORT.html OUT.png [HEIGHT]
set -euo pipefail
report=$(realpath "$1"); out=$(realpath -m "$2"); height=${3:-4000}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "screenshot_report.sh: error: chromium not found; install Debian's chromium" >&2; exit 1; }
profile=$(mktemp -d); trap 'rm -rf "$profile"' EXIT
# As root Chromium needs --no-sandbox; the other flags keep it off this machine's closed network.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1300,"$height" --screenshot="$out" "file://$report" 2>/dev/null
echo "wrote $out"
