# Shared parts of the load benchmarks (bench/*/run.sh). Sourced, not run.
#
# A script calls `bench_setup NAME` first: it checks the tools, makes the temporary
# directory $work, builds the release binary ($rampart) and arranges for every process
# whose pid is added to `pids` to be stopped on exit. A script may define
# `bench_cleanup`, which runs on exit after those processes have stopped.
# KEEP_WORK=1 keeps $work (configs, logs, raw wrk output).

bench_setup() {
  local tool
  for tool in nginx wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
  done
  work=$(mktemp -d "/tmp/rampart-bench-$1.XXXXXX")
  pids=()
  trap bench_exit EXIT
  echo "building rampart (release)…" >&2
  cargo build --release --locked -q -p rampart-cli
  rampart=$PWD/target/release/rampart
}

bench_exit() {
  local pid
  for pid in "${pids[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if declare -F bench_cleanup >/dev/null; then bench_cleanup; fi
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}

# start_nginx NAME CPU SERVERS: an nginx of its own in $work/NAME, one worker pinned
# to CPU, access log off, upstream keep-alive unlimited, with SERVERS (nginx `http`
# block content) inside.
start_nginx() {
  local name=$1 cpu=$2 servers=$3 dir="$work/$1"
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
$servers
}
NGINX
  taskset -c "$cpu" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  pids+=($!)
}

# upstream_server PORT: the benchmark upstream, a fixed 24-byte body.
upstream_server() {
  printf '  server { listen 127.0.0.1:%s; location / { return 200 "hello from the upstream\\n"; } }\n' "$1"
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (15 s at most).
wait_port() {
  local _
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  return 1
}

# rampart_config DATA_DIR PORT [SERVER_LINES]: the part every benchmark config
# shares — dev mode, warn-level logs, no metrics, plain-HTTP cookies, and rate budgets
# far above what one client address (all load comes from 127.0.0.1) can send.
# SERVER_LINES go into the [server] table.
rampart_config() {
  cat <<TOML
mode = "dev"
data_dir = "$1"
public_url = "http://127.0.0.1:$2"

[server]
listen = "127.0.0.1:$2"
${3:-}

[logging]
level = "warn"

[metrics]
enabled = false

[session]
cookie_secure = false

[rate_limit.classes.general]
rate = 10000000
burst = 10000000

[rate_limit.classes.auth]
rate = 10000000
burst = 10000000
TOML
}

# create_user CONFIG: an admin `bench` with a random password, set in $password.
create_user() {
  password="bench-password-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  "$rampart" migrate --config "$1" >/dev/null
  printf '%s\n' "$password" | "$rampart" admin create --config "$1" --username bench >/dev/null
}
