#!/usr/bin/env bash
# Sign-in benchmark: password logins per second, and what a login flood does to the
# latency of bearer-authenticated proxied requests. One run, on loopback.
#
# Measures:
#   (a) password logins per second: POST /api/v1/auth/token, grant_type=password
#       (Argon2id verification at the default m=19456 t=2 p=1, a new refresh family,
#       the audit records), wrk with a Lua script at a few connections. Rampart is
#       pinned to one core, so this is also logins/s per core. For reference, the
#       Argon2id verification alone (criterion, `hotpath` bench, pinned to the same
#       core) gives the share of a login that is not Argon2.
#   (b) p50/p99 of GET on a route with auth = "required" (bearer access token, nginx
#       upstream with a small body) at a moderate, fixed offered rate: alone, then
#       while a second wrk floods the token endpoint with logins. Target: p99 under the
#       flood <= 2x p99 alone.
#
# Rampart is pinned to CPU 0; wrk, and the nginx upstream (trivial, a few % of a core),
# to CPU 1, so the only contention on Rampart's core is Rampart's own work (the login
# flood's Argon2 against the proxied requests). Rate limits and the lockout are raised
# so that nothing is throttled.
#
# The fixed rate is made with wrk's Lua `delay()`: each of --rate-connections
# connections waits 1000*connections/rate ms after each response, so the offered rate
# is at most --rate requests/s. wrk measures each request from when it is sent: when
# the server stalls, fewer requests are sent (coordinated omission), so the p99 under
# the flood is a lower bound on what an open-loop client would see.
#
# Usage: bench/login/run.sh [--duration 10s] [--connections 4] [--rate 1000]
#                           [--rate-connections 8] [--no-argon2] [--out FILE]
# KEEP_WORK=1 keeps the temporary directory (configs, logs, raw wrk output).
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=10s
connections=4
rate=1000
rate_connections=8
argon=1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --rate-connections) rate_connections=$2; shift 2 ;;
    --no-argon2) argon=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

# wrk durations are whole seconds here (the flood is started before, and stopped
# after, the measured run).
secs=$(python3 -c 'import re,sys; m=re.fullmatch(r"(\d+)(s|m)?", sys.argv[1]); \
  sys.exit(f"--duration must be like 10s or 2m, not {sys.argv[1]}") if not m else \
  print(int(m.group(1)) * (60 if m.group(2) == "m" else 1))' "$duration")
delay_ms=$(( 1000 * rate_connections / rate ))
[ "$delay_ms" -ge 1 ] || { echo "--rate too high for --rate-connections (delay < 1 ms)" >&2; exit 2; }

. bench/lib.sh
bench_setup login

# Ports of their own, so this can run beside bench/proxy/run.sh (18080–18090).
UP=18180; RMP=18190

# --- Argon2id alone, on the core Rampart will use ----------------------------------
argon_ms=""
if [ "$argon" = 1 ]; then
  echo "building and running the argon2_hash criterion bench on CPU 0…" >&2
  cargo bench --locked -q -p rampart-bench --bench hotpath --no-run 2>/dev/null
  taskset -c 0 cargo bench --locked -q -p rampart-bench --bench hotpath -- \
    --noplot 'argon2_hash/password_verify' > "$work/argon2.txt" 2>&1 \
    || { cat "$work/argon2.txt" >&2; exit 1; }
  argon_ms=$(python3 - "$work/argon2.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"argon2_hash/password_verify\s+time:\s+\[\S+ \S+ (\S+) (\S+)", text)
if not m:
    sys.exit(f"no criterion estimate for argon2_hash/password_verify:\n{text}")
value, unit = float(m.group(1)), m.group(2)
print(value * {"s": 1000, "ms": 1, "µs": 0.001, "us": 0.001, "ns": 1e-6}[unit])
PY
)
fi

# --- nginx: the upstream -------------------------------------------------------------
start_nginx upstream 1 "$(upstream_server "$UP")"

# --- Rampart ------------------------------------------------------------------------
mkdir -p "$work/rampart"
{
  rampart_config "$work/rampart/data" "$RMP"
  cat <<TOML

# Only successful logins are made; a lockout would end the run if one failed.
[auth.lockout]
max_failures = 1000000

[upstreams.app]
url = "http://127.0.0.1:$UP"

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "app"
auth = "required"
TOML
} > "$work/rampart/rampart.toml"
create_user "$work/rampart/rampart.toml"
taskset -c 0 "$rampart" serve --config "$work/rampart/rampart.toml" >"$work/rampart/stdout" 2>"$work/rampart/stderr" &
pids+=($!)
for port in $UP $RMP; do wait_port "$port"; done

login_body="{\"grant_type\":\"password\",\"username\":\"bench\",\"password\":\"$password\"}"
token=$(curl -sf -X POST "http://127.0.0.1:$RMP/api/v1/auth/token" -H 'content-type: application/json' \
  -d "$login_body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
  || { echo "could not sign in" >&2; cat "$work/rampart/stderr" >&2; exit 1; }
curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$RMP/private/" \
  || { echo "the bearer route does not answer 200" >&2; cat "$work/rampart/stderr" >&2; exit 1; }
# What Rampart logs from here on (warn level and above) is worth a look; the start-up
# warnings of dev mode are not.
logged=$(wc -l < "$work/rampart/stderr")

# --- wrk scripts: results as one tab-separated line from done() --------------------
report_lua='
function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT\t%d\t%.3f\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n",
    summary.requests, s, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
'
cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$login_body'
$report_lua
LUA
cat > "$work/bearer.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
function delay() return $delay_ms end
$report_lua
LUA

results="$work/results.tsv"
: > "$results"
record() { # label file
  local line
  line=$(grep '^RESULT' "$2" || true)
  [ -n "$line" ] || { echo "wrk produced no result for $1:" >&2; cat "$2" >&2; exit 1; }
  printf '%s\t%s\n' "$1" "$(printf '%s' "$line" | cut -f2-)" >> "$results"
}
login_url="http://127.0.0.1:$RMP/api/v1/auth/token"
bearer_url="http://127.0.0.1:$RMP/private/"

# (a) Logins per second. Warm-up first (fills the user snapshot cache, pools).
taskset -c 1 wrk -t1 -c"$connections" -d2s -s "$work/login.lua" "$login_url" >/dev/null
taskset -c 1 wrk -t1 -c"$connections" -d"${secs}s" --timeout 10s -s "$work/login.lua" "$login_url" > "$work/a_logins.txt"
record a_logins "$work/a_logins.txt"

# (b) Bearer requests at a fixed offered rate: alone, then under a login flood.
taskset -c 1 wrk -t1 -c"$rate_connections" -d2s -s "$work/bearer.lua" "$bearer_url" >/dev/null
taskset -c 1 wrk -t1 -c"$rate_connections" -d"${secs}s" -s "$work/bearer.lua" "$bearer_url" > "$work/b_alone.txt"
record b_bearer_alone "$work/b_alone.txt"

taskset -c 1 wrk -t1 -c"$connections" -d"$(( secs + 3 ))s" --timeout 10s -s "$work/login.lua" "$login_url" > "$work/b_flood.txt" &
flood=$!
pids+=($flood)
sleep 1.5   # the flood has saturated the core before measuring
taskset -c 1 wrk -t1 -c"$rate_connections" -d"${secs}s" -s "$work/bearer.lua" "$bearer_url" > "$work/b_under_flood.txt"
wait "$flood"
record b_bearer_under_flood "$work/b_under_flood.txt"
record b_login_flood "$work/b_flood.txt"
if [ "$(wc -l < "$work/rampart/stderr")" -gt "$logged" ]; then
  echo "note: rampart logged during the runs (warn or above); the first lines:" >&2
  tail -n +"$((logged + 1))" "$work/rampart/stderr" | head -5 >&2
fi

report=$(python3 - "$results" "$connections" "$duration" "$rate" "$rate_connections" "$delay_ms" "$argon_ms" <<'PY'
import sys
path, conns, duration, rate, rconns, delay, argon = sys.argv[1:]
r = {}
for line in open(path).read().splitlines():
    label, n, secs, errors, p50, p99, p999, mx = line.split("\t")
    r[label] = dict(n=int(n), rps=int(n) / float(secs), errors=int(errors),
                    p50=float(p50), p99=float(p99), p999=float(p999), max=float(mx))
print(f"Rampart on CPU 0; wrk and the nginx upstream on CPU 1; duration {duration}")
print(f"logins: wrk -t1 -c{conns} POST /api/v1/auth/token (grant_type=password)")
print(f"bearer: wrk -t1 -c{rconns}, {delay} ms think time per connection "
      f"(offered <= {rate}/s), GET /private/ with auth = \"required\"\n")
print("| case | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, v in r.items():
    print(f"| {name} | {v['rps']:.1f} | {v['p50']:.3f} | {v['p99']:.3f} | "
          f"{v['p999']:.3f} | {v['max']:.3f} | {v['errors']} |")
a, alone, flooded = r["a_logins"], r["b_bearer_alone"], r["b_bearer_under_flood"]
print()
print(f"- password logins: {a['rps']:.1f}/s on one core = {a['rps']:.1f} logins/s/core "
      f"({1000 / a['rps']:.1f} ms of CPU per login)" if a["rps"] else
      "- WARNING: no login completed during the run (a stall of the whole duration?): "
      "look at Rampart's log, rerun with KEEP_WORK=1 to keep it")
if argon and a["rps"]:
    login_ms = 1000 / a["rps"]
    share = float(argon) / login_ms
    print(f"- Argon2id verification alone (criterion, same core): {float(argon):.1f} ms = "
          f"{100 * share:.0f}% of a login; the rest of the login path costs "
          f"{100 * (1 - share):.0f}% ({login_ms - float(argon):.1f} ms)")
    if share > 1:
        print("- WARNING: Argon2id alone measured slower than a whole login: CPU 0 was not "
              "quiet during one of the two measurements; rerun on an idle machine")
ratio = flooded["p99"] / alone["p99"] if alone["p99"] else float("inf")
print(f"- bearer p99 under the login flood / alone: {flooded['p99']:.3f} / {alone['p99']:.3f} ms "
      f"= {ratio:.2f}x (target <= 2.00x); the flood made {r['b_login_flood']['rps']:.1f} logins/s")
if flooded["rps"] < 0.9 * alone["rps"]:
    print(f"- note: under the flood only {flooded['rps']:.0f} of {alone['rps']:.0f} requests/s were "
          "served (wrk waits for each response): the p99 understates the stall")
PY
)
echo "$report"
if [ -n "$out" ]; then echo "$report" > "$out"; fi
