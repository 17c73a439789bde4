#!/bin/sh
# SPDX-License-Identifier: MIT
# The HTTP endpoint end to end: routes and content types with curl, then the
# dashboard in headless Chromium: the rendered DOM must show the numbers of
# the known workload of http_serve, its history charts must hold several
# samples (busy_'s rate chart a non-zero rate), its leak table the five
# buffers kept live; and in a screenshot the chart lines must be drawn.
set -eu
serve="$1"; out="${2:-$(mktemp -d)}"; probe="${3:-}"
mkdir -p "$out"
fifo="$out/stdin"; rm -f "$fifo"; mkfifo "$fifo"
"$serve" < "$fifo" > "$out/port" &
pid=$!
exec 3>"$fifo" # keeps the server's stdin open; closing it stops the server
cleanup() { exec 3>&-; wait $pid 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 300); do [ -s "$out/port" ] && break; sleep 0.1; done # up to 30 s: sanitizer builds start slowly
port=$(cat "$out/port"); base="http://127.0.0.1:$port"
fail() { echo "FAIL: $*"; exit 1; }

curl -fsS "$base/debug/vars" > "$out/vars.json"
jq -e '.web_pool_stats.pools["4096"].get == 1234 and .web_pool_stats.discarded == 154' \
  "$out/vars.json" >/dev/null || fail "/debug/vars content"
curl -fsS -D "$out/h" "$base/metrics" > "$out/metrics.txt"
grep -qi '^content-type: text/plain; version=0.0.4' "$out/h" || fail "/metrics content type"
promtool check metrics < "$out/metrics.txt" || fail "promtool"
grep -q 'bytepool_tier_gets_total{pool="web_",tier="4096"} 1234' "$out/metrics.txt" || fail "metric"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/nope")" = 404 ] || fail "404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/metrics")" = 405 ] || fail "405"
curl -s -D - -o /dev/null -X POST "$base/metrics" | grep -qi '^allow: GET, HEAD' || fail "405 without Allow"
# DNS rebinding: only loopback names and the bound address are served
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example' "$base/debug/vars")" = 421 ] \
  || fail "foreign Host header served"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: localhost:$port" "$base/debug/vars")" = 200 ] \
  || fail "localhost Host header refused"
if [ -n "$probe" ]; then
  "$probe" idle "$port" 1100 || fail "unreachable behind idle connections"
  "$probe" manyfds || fail "endpoint in a process with many descriptors"
fi
# who holds the memory: the pprof profile is gzip, the folded stacks name the live site
curl -fsS -D "$out/ph" "$base/debug/pprof/heap" > "$out/heap.pb.gz"
gzip -t "$out/heap.pb.gz" || fail "/debug/pprof/heap is not gzip"
grep -qi '^content-type: application/octet-stream' "$out/ph" || fail "/debug/pprof/heap type"
curl -fsS "$base/debug/pprof/heap?folded=1" | grep -q ' 500$' || fail "folded stacks: 5 x 100 B live"
curl -fsS "$base/" | grep -q '<title>bytepool</title>' || fail "dashboard page"
curl -fsS "$base/" | grep -qi 'src="http' && fail "dashboard loads remote scripts"

browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "chromium is not installed (make test installs it)"
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir=$out/profile --virtual-time-budget=6000"
$browser $flags --dump-dom "$base/" > "$out/dom.html" 2>"$out/chromium.log" || fail "chromium"
grep -q 'data-pool="web_"' "$out/dom.html" || fail "pool section not rendered"
grep -q 'id="web_-gets">1,239<' "$out/dom.html" || fail "gets card"
grep -q '<tr data-tier="4096"><td>4K</td><td class="get">1,234</td>' "$out/dom.html" || fail "tier row"
grep -q 'id="web_-discarded">154<' "$out/dom.html" || fail "discarded card"
grep -q 'id="web_-outstanding">5<' "$out/dom.html" || fail "outstanding card"
grep -q 'id="web_-budget">[^<]* / 512' "$out/dom.html" || fail "budget card"
grep -q 'bytepool_budget_bytes{pool="web_"} 536870912' "$out/metrics.txt" || fail "budget metric"
grep -q 'data-count="77"' "$out/dom.html" || fail "oversize histogram bar"
grep -q 'id="web_-advice">advisor: tiers' "$out/dom.html" || fail "advisor"
grep -q 'id="web_-hit-explained">Cache hit rate' "$out/dom.html" || fail "hit rate explanation"
# the rolling history: several polls drawn, and busy_ shows its traffic
points() { sed -n "s/.*id=\"$1\"[^>]*data-points=\"\([0-9]*\)\".*/\1/p; s/.*data-points=\"\([0-9]*\)\"[^>]*id=\"$1\".*/\1/p" "$out/dom.html" | head -1; }
for c in web_-rate web_-bytes web_-out busy_-rate; do
  n=$(points $c); [ "${n:-0}" -ge 2 ] || fail "chart $c has ${n:-no} points"
done
grep -o 'data-max="[0-9.e+]*"[^>]*id="busy_-rate"\|id="busy_-rate"[^>]*data-max="[0-9.e+]*"' "$out/dom.html" |
  grep -q 'data-max="[1-9]' || fail "busy_ rate chart shows no traffic"
# leak sites: the five buffers of keep_five, with their age
grep -q 'id="web_-oldest">' "$out/dom.html" || fail "oldest buffer age"
grep -q '<tr class="site"><td>5</td><td>500 B</td><td>[0-9.]* s</td><td>[^<]*keep_five' "$out/dom.html" \
  || fail "leak site of keep_five"
grep -q 'id="busy_-leaks">Leak sites and buffer ages are not recorded' "$out/dom.html" \
  || fail "leak explanation for a pool without sampling"
$browser $flags --window-size=1200,1400 --screenshot="$out/dashboard.png" "$base/" \
  2>>"$out/chromium.log" || fail "screenshot"
[ "$(stat -c %s "$out/dashboard.png")" -gt 10000 ] || fail "screenshot too small"
# the charts have data in the picture too: their series colours are drawn
py=/usr/bin/python3
"$py" -c 'import PIL' 2>/dev/null || fail "python3-pil is not installed (make deps)"
for colour in 1d4ed8 15803d; do
  n=$("$py" "$(dirname "$0")/png_colour.py" "$out/dashboard.png" $colour 40)
  [ "$n" -gt 150 ] || fail "screenshot: chart colour #$colour drawn on only $n pixels"
done
echo "http endpoint and dashboard ok ($out)"
