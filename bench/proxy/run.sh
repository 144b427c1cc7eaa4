#!/usr/bin/env bash
# Proxy-path benchmark: Rampart against nginx, in one run, on loopback.
#
# Measures, with the same wrk settings and CPU pinning for every case:
#   (a) the upstream directly
#   (b) nginx as a plain reverse proxy with upstream keep-alive
#   (c) Rampart on a public route
#   (d) Rampart on a route needing a bearer JWT
#   (e) Rampart on a route needing a session cookie
#   (f) nginx auth_request to Rampart's /auth/verify, then proxying
#   (g) nginx auth_request to a trivial always-200 endpoint (the floor of forward-auth)
#       — an nginx of its own, on the same core as Rampart in (f)
# and prints requests/s, p50, p99 and the ratios the targets are stated in.
#
# The machine has 2 cores: the proxy under test (nginx or Rampart, and the auth
# endpoint in f/g) is pinned to CPU 0; wrk and the upstream share CPU 1. Every proxy
# gets the same single core and is never preempted by its own upstream. Access logs
# are off on both sides (nginx `access_log off`, Rampart `logging.level = "warn"`).
# KEEP_WORK=1 keeps the temporary directory (configs, logs, raw wrk output).
#
# Usage: bench/proxy/run.sh [--duration 10s] [--connections 64] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=10s
connections=64
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

. bench/lib.sh
bench_setup proxy

UP=18080; NGX=18081; FWD=18082; FLOOR=18083; RMP=18090
# The proxy under test (nginx or Rampart) gets a core of its own; the load generator
# and the upstream share the other. The upstream costs a few microseconds per
# request, so the load generator still has most of its core, and the proxy is never
# preempted by the process it forwards to — what is measured is the proxy's own cost.
PROXY_CPU=0; LOAD_CPU=1; UPSTREAM_CPU=1

# --- nginx: the upstream, in its own process -----------------------------------------
# The upstream is a separate process in every case, as it is in any deployment: a
# proxy that shared a worker with its upstream would skip the cross-process wake-up
# that every real proxy pays, and the comparison would flatter nginx.
start_nginx upstream "$UPSTREAM_CPU" "$(upstream_server "$UP")"
# (g) the floor of forward-auth: an endpoint that always says yes, on the proxy's
# core like Rampart in (f), so both auth services compete with nginx for one core.
start_nginx floor "$PROXY_CPU" "
  server { listen 127.0.0.1:$FLOOR; location = /ok { return 200; } }
"
# --- nginx: the proxy (b) and the auth_request fronts (f, g) --------------------------
start_nginx front "$PROXY_CPU" "
  upstream app     { server 127.0.0.1:$UP;  keepalive 128; }
  upstream rampart { server 127.0.0.1:$RMP; keepalive 128; }
  upstream floor   { server 127.0.0.1:$FLOOR; keepalive 128; }
  # (b) plain reverse proxy with upstream keep-alive.
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }
  # (f) forward-auth to Rampart, (g) forward-auth to a trivial endpoint.
  server {
    listen 127.0.0.1:$FWD;
    location = /_rampart { internal; proxy_pass http://rampart/auth/verify; proxy_pass_request_body off;
      proxy_set_header Content-Length \"\"; proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Method \$request_method; proxy_set_header X-Forwarded-Host \$host;
      proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    location = /_floor { internal; proxy_pass http://floor/ok; proxy_pass_request_body off;
      proxy_set_header Content-Length \"\"; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    location /app/   { auth_request /_rampart; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    location /floor/ { auth_request /_floor;   proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }
"

# --- Rampart ------------------------------------------------------------------------
mkdir -p "$work/rampart"
{
  # nginx in front (f) is a trusted proxy: its X-Forwarded-* describe the request.
  rampart_config "$work/rampart/data" "$RMP" 'trusted_proxies = ["127.0.0.1/32"]'
  cat <<TOML

[upstreams.app]
url = "http://127.0.0.1:$UP"

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "app"
auth = "public"

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "app"
auth = "required"

[[routes]]
name = "forward"
path_prefix = "/app"
upstream = "app"
auth = "required"
TOML
} > "$work/rampart/rampart.toml"
create_user "$work/rampart/rampart.toml"
taskset -c "$PROXY_CPU" "$rampart" serve --config "$work/rampart/rampart.toml" >"$work/rampart/stdout" 2>"$work/rampart/stderr" &
pids+=($!)
for port in $UP $NGX $FWD $FLOOR $RMP; do wait_port "$port"; done

token=$(curl -sf -X POST "http://127.0.0.1:$RMP/api/v1/auth/token" -H 'content-type: application/json' \
  -d "{\"grant_type\":\"password\",\"username\":\"bench\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
cookie=$(curl -sf -D - -o /dev/null -X POST "http://127.0.0.1:$RMP/api/v1/auth/login" \
  -H 'content-type: application/json' -H "origin: http://127.0.0.1:$RMP" \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
[ -n "$token" ] && [ -n "$cookie" ] || { echo "could not sign in" >&2; cat "$work/rampart/stderr" >&2; exit 1; }

# --- the runs -------------------------------------------------------------------------
results="$work/results.tsv"
: > "$results"
run() { # label url [header]
  local label=$1 url=$2 header=${3:-}
  # Warm-up: fills connection pools and caches (verified tokens, sessions).
  if [ -n "$header" ]; then
    taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d2s -H "$header" "$url" >/dev/null
    taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"$duration" --latency -H "$header" "$url" > "$work/$label.txt"
  else
    taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d2s "$url" >/dev/null
    taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"$duration" --latency "$url" > "$work/$label.txt"
  fi
  python3 - "$label" "$work/$label.txt" >> "$results" <<'PY'
import re, sys
label, path = sys.argv[1], sys.argv[2]
text = open(path).read()
if "Latency Distribution" not in text:
    sys.exit(f"wrk produced no latency figures for {label}:\n{text}")
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        sys.exit(f"cannot read wrk latency {v!r} for {label}")
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{label}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{errors.group(1) if errors else 0}")
PY
}
run a_upstream_direct     "http://127.0.0.1:$UP/"
run b_nginx_proxy         "http://127.0.0.1:$NGX/"
run c_rampart_public      "http://127.0.0.1:$RMP/public/"
run d_rampart_bearer      "http://127.0.0.1:$RMP/private/" "Authorization: Bearer $token"
run e_rampart_session     "http://127.0.0.1:$RMP/private/" "Cookie: $cookie"
run f_nginx_authreq_rampart "http://127.0.0.1:$FWD/app/" "Authorization: Bearer $token"
run g_nginx_authreq_floor "http://127.0.0.1:$FWD/floor/"

report=$(python3 - "$results" "$connections" "$duration" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
r = {row[0]: (float(row[1]), float(row[2]), float(row[3]), int(row[4])) for row in rows}
print(f"wrk -t1 -c{sys.argv[2]} -d{sys.argv[3]}, servers on CPU 0, wrk on CPU 1\n")
print("| case | requests/s | p50 ms | p99 ms | non-2xx |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, (rps, p50, p99, err) in r.items():
    print(f"| {name} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {err} |")
b, d, e, f, g = (r[k] for k in ["b_nginx_proxy", "d_rampart_bearer", "e_rampart_session", "f_nginx_authreq_rampart", "g_nginx_authreq_floor"])
print()
print(f"- (d) bearer / (b) nginx: throughput {d[0]/b[0]:.2f}x, p99 {d[2]/b[2]:.2f}x (target >= 1.00x, p99 <= 1.25x)")
print(f"- (e) session / (b) nginx: throughput {e[0]/b[0]:.2f}x, p99 {e[2]/b[2]:.2f}x (target >= 1.00x, p99 <= 1.25x)")
print(f"- (f) auth_request to Rampart / (g) floor: throughput {f[0]/g[0]:.2f}x (target >= 0.90x)")
print(f"- (c) public / (b) nginx: throughput {r['c_rampart_public'][0]/b[0]:.2f}x")
PY
)
echo "$report"
if [ -n "$out" ]; then echo "$report" > "$out"; fi
