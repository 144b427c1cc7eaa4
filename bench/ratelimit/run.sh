#!/usr/bin/env bash
# Rate-limiting benchmark: what a rate-limit decision costs on the proxied path, per
# backend, and what sharing one Redis budget between two replicas costs. One run, on
# loopback, wrk at --connections connections against Rampart's public route (nginx
# upstream with a small body), budgets far above what is sent so nothing is refused:
#
#   (i)   rate_limit.enabled = false: no decision at all (the reference)
#   (ii)  memory backend (governor GCRA per client IP)
#   (iii) Redis backend (leases of the shared budget; [redis] on 127.0.0.1:6379)
#   (iv)  one replica on PostgreSQL + Redis
#   (v)   two replicas on the same PostgreSQL database and Redis key prefix, wrk's
#         connections split between them
#
# Rampart and the nginx upstream are pinned to CPU 0 and wrk to CPU 1 (this machine
# has 2 cores). Redis and PostgreSQL are the machine's, unpinned. In (iv) and (v) the
# load comes from two wrk processes of --connections/2 each (both at the one replica
# in (iv), one per replica in (v)), and both replicas share CPU 0: (v) vs (iv) measures
# the coordination overhead of two replicas (one shared per-IP budget taken in leases
# from Redis, two connection pools), NOT scaling, which 2 cores cannot show.
#
# Usage: bench/ratelimit/run.sh [--duration 10s] [--connections 64] [--out FILE]
# KEEP_WORK=1 keeps the temporary directory (configs, logs, raw wrk output).
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

REDIS_URL=${RAMPART_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
PG_HOST=127.0.0.1; PG_USER=postgres
have_redis=0
if command -v redis-cli >/dev/null && [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ]; then
  have_redis=1
else
  echo "note: Redis at $REDIS_URL is not reachable: cases (iii)-(v) are skipped" >&2
fi
have_pg=0
if command -v createdb >/dev/null && psql -h "$PG_HOST" -U "$PG_USER" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  have_pg=1
else
  echo "note: PostgreSQL at $PG_HOST is not reachable: cases (iv)-(v) are skipped" >&2
fi

suffix=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
db="rampart_bench_$suffix"
db_created=0
bench_cleanup() {
  if [ "$db_created" = 1 ]; then dropdb -h "$PG_HOST" -U "$PG_USER" --if-exists --force "$db" || true; fi
}
. bench/lib.sh
bench_setup ratelimit

# Ports of their own, so this can run beside bench/proxy/run.sh (18080–18090).
UP=18280; RMP=18290; RMP2=18291

# --- nginx: the upstream -------------------------------------------------------------
start_nginx upstream 0 "$(upstream_server "$UP")"
wait_port $UP

# --- Rampart ------------------------------------------------------------------------
# write_config NAME PORT EXTRA: a config in $work/NAME/rampart.toml.
write_config() {
  local name=$1 port=$2 extra=$3
  mkdir -p "$work/$name"
  {
    rampart_config "$work/$name/data" "$port"
    cat <<TOML

[upstreams.app]
url = "http://127.0.0.1:$UP"

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "app"
auth = "public"
$extra
TOML
  } > "$work/$name/rampart.toml"
}

# start NAME PORT [ENV=VALUE…]: starts `rampart serve` on CPU 0; sets $started.
started=""
start() {
  local name=$1 port=$2; shift 2
  env "$@" taskset -c 0 "$rampart" serve --config "$work/$name/rampart.toml" \
    >"$work/$name/stdout" 2>"$work/$name/stderr" &
  started=$!
  pids+=($started)
  if ! wait_port "$port"; then cat "$work/$name/stderr" >&2; exit 1; fi
  curl -sf -o /dev/null "http://127.0.0.1:$port/public/" \
    || { echo "$name: the public route does not answer 200" >&2; cat "$work/$name/stderr" >&2; exit 1; }
  # Start-up warnings (dev mode) are expected; what is logged from here on is not.
  wc -l < "$work/$name/stderr" > "$work/$name/logged"
}
# stop NAME PID: stops it; says so if it logged anything (warn level: a Redis
# fallback, a slow database…), since that would explain odd figures.
stop() {
  kill "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
  local logged
  logged=$(cat "$work/$1/logged")
  if [ "$(wc -l < "$work/$1/stderr")" -gt "$logged" ]; then
    echo "note: $1 logged during the run (warn or above); the first lines:" >&2
    tail -n +"$((logged + 1))" "$work/$1/stderr" | head -5 >&2
  fi
}

# --- wrk: results as one tab-separated line from done() ----------------------------
cat > "$work/report.lua" <<'LUA'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT\t%d\t%.3f\t%d\t%.3f\t%.3f\n",
    summary.requests, summary.duration / 1e6, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
results="$work/results.tsv"
: > "$results"
# measure LABEL URL…: one wrk per URL, all at once, --connections split between them;
# requests/s summed, p50 averaged, the worse p99 kept.
measure() {
  local label=$1; shift
  local n=$# per=$(( connections / $# )) i=0 files=() wpids=()
  for url in "$@"; do taskset -c 1 wrk -t1 -c"$per" -d2s "$url" >/dev/null & wpids+=($!); done
  for pid in "${wpids[@]}"; do wait "$pid"; done
  wpids=()
  for url in "$@"; do
    i=$((i + 1))
    taskset -c 1 wrk -t1 -c"$per" -d"$duration" -s "$work/report.lua" "$url" > "$work/$label.$i.txt" &
    wpids+=($!); files+=("$work/$label.$i.txt")
  done
  for pid in "${wpids[@]}"; do wait "$pid"; done
  python3 - "$label" "$n" "$per" "${files[@]}" >> "$results" <<'PY'
import sys
label, n, per, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rows = []
for f in files:
    text = open(f).read()
    line = next((l for l in text.splitlines() if l.startswith("RESULT\t")), None)
    if line is None:
        sys.exit(f"wrk produced no result for {label}:\n{text}")
    _, reqs, secs, errors, p50, p99 = line.split("\t")
    rows.append((int(reqs) / float(secs), int(errors), float(p50), float(p99)))
rps = sum(r[0] for r in rows)
errors = sum(r[1] for r in rows)
p50 = sum(r[2] for r in rows) / len(rows)
p99 = max(r[3] for r in rows)
split = "+".join(f"{r[0]:.0f}" for r in rows)
layout = f"{n}x{per}" + (f" ({split})" if n > 1 else "")
print(f"{label}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{errors}\t{layout}")
PY
}

# (i) no rate limiting
write_config none $RMP $'[rate_limit]\nenabled = false'
start none $RMP
# Whatever runs first in a run measured ~7% slower than the same case run later (cold
# upstream, caches, CPU clocks): an extra, unrecorded warm-up before the first case.
taskset -c 1 wrk -t1 -c"$connections" -d5s "http://127.0.0.1:$RMP/public/" >/dev/null
measure i_no_ratelimit "http://127.0.0.1:$RMP/public/"
stop none "$started"

# (ii) memory backend
write_config memory $RMP $'[rate_limit]\nbackend = "memory"'
start memory $RMP
measure ii_memory "http://127.0.0.1:$RMP/public/"
stop memory "$started"

if [ "$have_redis" = 1 ]; then
  # (iii) Redis backend, a key prefix of this run's own
  write_config redis $RMP "$(printf '[rate_limit]\nbackend = "redis"\n\n[redis]\nkey_prefix = "rampart-bench-%s"' "$suffix")"
  start redis $RMP RAMPART_REDIS_URL="$REDIS_URL"
  measure iii_redis "http://127.0.0.1:$RMP/public/"
  stop redis "$started"
fi

if [ "$have_redis" = 1 ] && [ "$have_pg" = 1 ]; then
  createdb -h "$PG_HOST" -U "$PG_USER" "$db"
  db_created=1
  ha=$(printf '[rate_limit]\nbackend = "redis"\n\n[redis]\nkey_prefix = "rampart-bench-ha-%s"\n\n[storage]\nbackend = "postgres"' "$suffix")
  write_config node1 $RMP "$ha"
  write_config node2 $RMP2 "$ha"
  ha_env=(RAMPART_REDIS_URL="$REDIS_URL" RAMPART_STORAGE_URL="postgres://$PG_USER@$PG_HOST:5432/$db")
  env "${ha_env[@]}" "$rampart" migrate --config "$work/node1/rampart.toml" >/dev/null
  # The first replica initializes the instance; the second starts once it listens.
  start node1 $RMP "${ha_env[@]}"
  node1=$started
  measure iv_one_replica "http://127.0.0.1:$RMP/public/" "http://127.0.0.1:$RMP/public/"
  start node2 $RMP2 "${ha_env[@]}"
  node2=$started
  measure v_two_replicas "http://127.0.0.1:$RMP/public/" "http://127.0.0.1:$RMP2/public/"
  stop node2 "$node2"
  stop node1 "$node1"
fi

report=$(python3 - "$results" "$connections" "$duration" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
r = {row[0]: (float(row[1]), float(row[2]), float(row[3]), int(row[4]), row[5]) for row in rows}
print(f"wrk -t1, {sys.argv[2]} connections in all, -d{sys.argv[3]}; Rampart and nginx on CPU 0, "
      "wrk on CPU 1; GET /public/ (auth = \"public\")\n")
print("| case | wrk processes x connections (requests/s each) | requests/s | p50 ms | p99 ms | errors |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for name, (rps, p50, p99, err, wrk) in r.items():
    print(f"| {name} | {wrk} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {err} |")
print()
base = r["i_no_ratelimit"]
for name in ["ii_memory", "iii_redis"]:
    if name in r:
        cost = 100 * (1 - r[name][0] / base[0])
        print(f"- {name} vs i_no_ratelimit: throughput {r[name][0] / base[0]:.3f}x "
              f"(cost {cost:.1f}%), p99 {r[name][2] / base[2]:.2f}x")
if "iv_one_replica" in r and "v_two_replicas" in r:
    one, two = r["iv_one_replica"], r["v_two_replicas"]
    print(f"- v_two_replicas vs iv_one_replica: throughput {two[0] / one[0]:.3f}x, "
          f"p99 {two[2] / one[2]:.2f}x. Both replicas share CPU 0 (2-core machine): this "
          "measures the coordination overhead of two replicas sharing one PostgreSQL and "
          "one Redis budget, not scaling.")
    print("- (iv) and (v) run on PostgreSQL with two wrk processes: compare them with each other, "
          "not with (i)-(iii). p50 is the mean of the wrk processes', p99 the worse one.")
else:
    print("- replica cases skipped (needs Redis and PostgreSQL)")
PY
)
echo "$report"
if [ -n "$out" ]; then echo "$report" > "$out"; fi
