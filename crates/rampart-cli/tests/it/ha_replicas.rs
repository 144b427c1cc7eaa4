//! Replicas (F-HA): real `rampart serve` processes on different ports sharing one
//! fresh PostgreSQL schema and Redis (a key prefix of their own per test, so tests in
//! parallel do not share budgets or fan-out messages).
//!
//! Shown here: a session made on one replica works on another; a logout, a revocation
//! or a disabled user on one is refused on another within 1 s (measured); a lockout
//! holds everywhere; a per-IP rate budget is one budget for the cluster, and spoofed
//! forwarding headers from an untrusted peer neither reset nor split it; a signing-key
//! rotation is honoured by every replica; and what happens when PostgreSQL or Redis is
//! unreachable for one replica (authentication fails closed; revocations still arrive
//! within 1 s through the short cache lifetime).
//!
//! Time is real here: every wait is bounded, and waits for a condition poll it with a
//! deadline (every [`POLL`]), which is also the resolution of the measured delays.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rampart_store::Backend;
use rampart_store::testing::TestDb;
use rampart_testkit::process::{Rampart, run};
use rampart_testkit::redis_server::RedisServer;
use rampart_testkit::tcp_proxy::TcpProxy;
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_auth::http;
use crate::common::{bin, env, production_config, random_hex};

const ORIGIN: &str = "https://app.example.test";
const PASSWORD: &str = "correct horse battery staple 42";
const COOKIE: &str = "__Host-rampart_session";
/// The promise: another replica refuses a revoked credential within this.
const BOUND: Duration = Duration::from_secs(1);
/// How often a condition is polled (the resolution of measured delays).
const POLL: Duration = Duration::from_millis(10);
/// The longest any condition may take to come true.
const WAIT: Duration = Duration::from_secs(15);
/// The budget of the test rate classes: burst 10, refilled once an hour, so the
/// refill during a test (rate × duration) is nil.
const BUDGET: usize = 10;

/// The shared Redis of the test machine.
fn redis_url() -> String {
    std::env::var("RAMPART_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Configuration shared by every replica of a cluster: PostgreSQL, Redis-backed rate
/// limits, open registration, small lockout, generous budgets for the endpoints the
/// tests sign in through, and two gateway routes with a tight per-IP class each.
fn cluster_toml(upstream: &str) -> String {
    format!(
        r#"
[storage]
backend = "postgres"
acquire_timeout = "1s"
min_connections = 0

[rate_limit]
backend = "redis"

[rate_limit.classes.general]
rate = 100000
burst = 100000

[rate_limit.classes.auth]
rate = 100000
burst = 100000

[rate_limit.classes.tight]
rate = 1
per = "1h"
burst = {BUDGET}

[rate_limit.classes.spoof]
rate = 1
per = "1h"
burst = {BUDGET}

[auth]
registration = "open"

[auth.lockout]
max_failures = 3

[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["profile:read"]

[csrf]
allowed_origins = ["{ORIGIN}"]

[upstreams.echo]
url = "{upstream}"

[[routes]]
name = "tight"
path_prefix = "/tight"
upstream = "echo"
auth = "public"
rate_class = "tight"

[[routes]]
name = "spoof"
path_prefix = "/spoof"
upstream = "echo"
auth = "public"
rate_class = "spoof"

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "echo"
auth = "required"
"#
    )
}

/// One `rampart serve` process.
struct Node {
    process: Rampart,
    addr: SocketAddr,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Replicas over one database and one Redis key prefix.
struct Cluster {
    nodes: Vec<Node>,
    config: String,
    env: BTreeMap<String, String>,
    upstream: Upstream,
    dir: tempfile::TempDir,
    _db: TestDb,
}

impl Cluster {
    /// Starts `n` replicas: the first migrates (and initializes the instance), the
    /// others start once it listens.
    async fn start(n: usize) -> Self {
        Self::start_with(n, &[]).await
    }

    /// Like [`Self::start`], with per-replica environment overrides for replica
    /// `index` (e.g. its database or Redis through a proxy the test cuts).
    async fn start_with(n: usize, overrides: &[(usize, &str, String)]) -> Self {
        let db = TestDb::unmigrated(Backend::Postgres).await.unwrap();
        let upstream = Upstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = production_config(dir.path(), &cluster_toml(&upstream.url()));
        let prefix = format!("ha-test-{}", random_hex(6));
        let env = env(&[
            ("RAMPART_STORAGE_URL", db.options().url.expose_secret()),
            ("RAMPART_REDIS_URL", &redis_url()),
            ("RAMPART_REDIS_KEY_PREFIX", &prefix),
        ]);
        let mut cluster = Self {
            nodes: Vec::new(),
            config: config.to_str().unwrap().to_owned(),
            env,
            upstream,
            dir,
            _db: db,
        };
        for index in 0..n {
            let node_overrides: Vec<(&str, String)> = overrides
                .iter()
                .filter(|(i, _, _)| *i == index)
                .map(|(_, k, v)| (*k, v.clone()))
                .collect();
            cluster.add(index, &node_overrides).await;
        }
        cluster
    }

    async fn add(&mut self, index: usize, overrides: &[(&str, String)]) {
        let mut env = self.env.clone();
        // Each replica its own data directory: its own audit file copy.
        let data = self.dir.path().join(format!("node{index}"));
        std::fs::create_dir_all(&data).unwrap();
        env.insert("RAMPART_DATA_DIR".into(), data.to_str().unwrap().to_owned());
        for (key, value) in overrides {
            env.insert((*key).to_owned(), value.clone());
        }
        let mut args = vec!["serve", "--config", &self.config];
        if index == 0 {
            args.push("--migrate");
        }
        let process = Rampart::spawn(&bin(), &args, &env);
        let addr = process.listening().await;
        if index == 0 {
            // The first start initializes the instance and prints the one-time setup
            // token: create the first admin with it, after which users may register.
            let token = process.wait_for_stdout("    ").await.trim().to_owned();
            let response = http()
                .post(format!("http://{addr}/api/v1/setup"))
                .json(&json!({"token": token, "username": "root", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        // Fan-out: the replica is subscribed (else its caches are merely short-lived,
        // and the tests of the subscribed case would measure the fallback).
        if !overrides.iter().any(|(k, _)| *k == "RAMPART_REDIS_URL") {
            process
                .wait_for_log(|v| v["message"] == "subscribed to the fan-out channel")
                .await;
        }
        self.nodes.push(Node { process, addr });
    }

    fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// Runs a maintenance command against the cluster's database and Redis.
    async fn command(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", &self.config]);
        let mut env = self.env.clone();
        env.insert(
            "RAMPART_DATA_DIR".into(),
            self.dir.path().join("cli").to_str().unwrap().to_owned(),
        );
        run(&bin(), &all, &env).await
    }

    async fn stop(mut self) {
        for node in &self.nodes {
            node.process.terminate();
        }
        for node in &mut self.nodes {
            node.process.wait().await;
        }
    }
}

/// A signed-in browser: its session cookie and CSRF token.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn whoami(&self, node: &Node) -> reqwest::Response {
        http()
            .get(node.url("/api/v1/auth/whoami"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn logout(&self, node: &Node) {
        let response = http()
            .post(node.url("/api/v1/auth/logout"))
            .header("cookie", &self.cookie)
            .header("origin", ORIGIN)
            .header("x-csrf-token", &self.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Registers `username` on `node` (open registration signs in).
async fn register(node: &Node, username: &str) -> Browser {
    let response = http()
        .post(node.url("/api/v1/register"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = session_cookie(&response);
    let body: Value = response.json().await.unwrap();
    Browser {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

/// Signs `username` in on `node`.
async fn login(node: &Node, username: &str) -> Browser {
    let response = http()
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response);
    let body: Value = response.json().await.unwrap();
    Browser {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

/// An access token by the password grant on `node`.
async fn access_token(node: &Node, username: &str) -> String {
    let response = http()
        .post(node.url("/api/v1/auth/token"))
        .json(&json!({"grant_type": "password", "username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn bearer_whoami(node: &Node, token: &str) -> StatusCode {
    http()
        .get(node.url("/api/v1/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `probe` until it returns `true`; returns how long after `since` that was.
/// Fails after [`WAIT`].
async fn until<F, Fut>(since: Instant, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return since.elapsed();
        }
        assert!(since.elapsed() < WAIT, "the condition never came true");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_session_works_on_every_replica_and_revocations_reach_them_within_a_second() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.node(0), cluster.node(1));

    // A session made on A works on B (and is now cached there).
    let browser = register(a, "alice").await;
    let me: Value = browser.whoami(b).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(browser.whoami(b).await.status(), StatusCode::OK);

    // Logout on A: refused on B within 1 s.
    let start = Instant::now();
    browser.logout(a).await;
    let answered = start.elapsed();
    let session_delay = until(start, || async {
        browser.whoami(b).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!(
        "propagation (subscribed): logout answered on A after {answered:?}, refused on B {:?} later",
        session_delay.saturating_sub(answered)
    );

    // An access token's family revoked on A (bearer logout): refused on B.
    let token = access_token(a, "alice").await;
    assert_eq!(bearer_whoami(b, &token).await, StatusCode::OK);
    let start = Instant::now();
    let response = http()
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let family_delay = until(start, || async {
        bearer_whoami(b, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // An API token revoked on A: refused on B.
    let bearer = access_token(a, "alice").await;
    let created: Value = http()
        .post(a.url("/api/v1/me/tokens"))
        .bearer_auth(&bearer)
        .json(&json!({"name": "ci", "scopes": ["profile:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(bearer_whoami(b, &api_token).await, StatusCode::OK);
    let start = Instant::now();
    let response = http()
        .delete(a.url(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let api_token_delay = until(start, || async {
        bearer_whoami(b, &api_token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // The user disabled by a maintenance command (another process altogether):
    // every replica refuses the user's session at once.
    let browser = login(a, "alice").await;
    assert_eq!(browser.whoami(b).await.status(), StatusCode::OK);
    assert_eq!(browser.whoami(a).await.status(), StatusCode::OK);
    let start = Instant::now();
    let (code, out, err) = cluster.command(&["users", "disable", "alice"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let cli_done = start.elapsed();
    let disable_delay = until(start, || async {
        browser.whoami(b).await.status() == StatusCode::UNAUTHORIZED
            && browser.whoami(a).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;

    eprintln!(
        "propagation (subscribed): session {session_delay:?}, token family {family_delay:?}, API token {api_token_delay:?}, disable {:?} after the command exited",
        disable_delay.saturating_sub(cli_done)
    );
    for delay in [session_delay, family_delay, api_token_delay] {
        assert!(delay <= BOUND, "seen after {delay:?}");
    }
    assert!(disable_delay.saturating_sub(cli_done) <= BOUND);
    cluster.stop().await;
}

#[tokio::test]
async fn a_lockout_on_one_replica_holds_on_another() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    register(a, "alice").await;
    // auth.lockout.max_failures = 3, all on A.
    for _ in 0..3 {
        let response = http()
            .post(a.url("/api/v1/auth/login"))
            .json(&json!({"username": "alice", "password": "wrong password here 1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The right password, on B: refused, locked.
    let response = http()
        .post(b.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::OK);
    assert_eq!(error_code(response).await, "login_locked");
    // Unlocking from the command line frees the account everywhere (the per-address
    // counter still holds this client: one valid account must not reset it).
    let (code, out, err) = cluster.command(&["users", "unlock", "alice"]).await;
    assert_eq!(code, 0, "{out}{err}");
    cluster.stop().await;
}

/// Sends `count` requests to `path`, round-robin over the replicas, each through
/// `decorate`; returns how many were admitted.
async fn admitted(
    cluster: &Cluster,
    path: &str,
    count: usize,
    decorate: impl Fn(usize, reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> usize {
    let mut admitted = 0;
    for i in 0..count {
        let node = cluster.node(i % cluster.nodes.len());
        let response = decorate(i, http().get(node.url(path)))
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                assert_eq!(error_code(response).await, "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    admitted
}

#[tokio::test]
async fn a_per_ip_budget_is_one_budget_for_the_cluster_and_spoofed_headers_do_not_split_it() {
    let cluster = Cluster::start(3).await;

    // 3 × the budget, round-robin over 3 replicas: per-replica budgets would admit
    // all of them. The cluster admits the budget, within the documented accuracy
    // bound (`rampart_ratelimit::redis`: burst + rate × (window + lease TTL); the
    // rate here is 1/h, so at most one more).
    let tight = admitted(&cluster, "/tight/x", 3 * BUDGET, |_, r| r).await;
    assert!(
        (BUDGET..=BUDGET + 1).contains(&tight),
        "admitted {tight} of a budget of {BUDGET}"
    );

    // The same from an untrusted peer (127.0.0.1; no trusted_proxies) claiming a new
    // client address on every request, in every forwarding header: the budget is
    // still the peer's, one budget.
    let seen_before = cluster.upstream.seen().len();
    let spoofed = admitted(&cluster, "/spoof/x", 3 * BUDGET, |i, r| {
        r.header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=198.51.100.{i}"))
            .header("cf-connecting-ip", format!("192.0.2.{i}"))
            .header("x-real-ip", format!("192.0.2.{i}"))
    })
    .await;
    assert!(
        (BUDGET..=BUDGET + 1).contains(&spoofed),
        "admitted {spoofed} of a budget of {BUDGET} with spoofed headers"
    );
    // And the upstream was told the real peer, never a claimed address.
    let seen = cluster.upstream.seen();
    for request in &seen[seen_before..] {
        assert_eq!(request.header("x-forwarded-for"), Some("127.0.0.1"));
        let forwarded = request.header("forwarded").unwrap_or_default();
        assert!(!forwarded.contains("198.51.100."), "{forwarded}");
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_signing_key_rotation_is_honoured_by_every_replica() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    register(a, "alice").await;
    let old = access_token(a, "alice").await;
    let old_kid = kid(&old);
    assert_eq!(bearer_whoami(b, &old).await, StatusCode::OK);

    let start = Instant::now();
    let (code, out, err) = cluster.command(&["keys", "rotate", "--signing"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("now (published"), "{out}");
    // A signs with the new key at once (the rotation was published), without
    // waiting for its periodic keyring reload (30 s).
    let new = loop {
        let token = access_token(a, "alice").await;
        if kid(&token) != old_kid {
            break token;
        }
        assert!(start.elapsed() < WAIT, "A never signed with the new key");
        tokio::time::sleep(POLL).await;
    };
    let switched = start.elapsed();
    assert!(switched < Duration::from_secs(10), "{switched:?}");
    eprintln!(
        "signing key rotation: A signs with the new key {switched:?} after the command started"
    );
    // New tokens from A verify on B; old tokens still verify everywhere.
    assert_eq!(bearer_whoami(b, &new).await, StatusCode::OK);
    assert_eq!(bearer_whoami(b, &old).await, StatusCode::OK);
    assert_eq!(bearer_whoami(a, &old).await, StatusCode::OK);
    let jwks: Value = http()
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&kid(&new).as_str()),
        "{kids:?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn with_the_database_unreachable_authentication_fails_closed() {
    // B reaches PostgreSQL through a link the test cuts; A directly.
    let db_addr: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let mut link = TcpProxy::start(db_addr).await;
    let cluster = {
        // The URL is only known once the cluster's database exists: start A, then B
        // with A's URL rewritten through the link.
        let mut cluster = Cluster::start(1).await;
        let url = cluster.env["RAMPART_STORAGE_URL"].clone();
        let proxied = url.replacen("127.0.0.1:5432", &link.addr.to_string(), 1);
        assert_ne!(proxied, url, "the test database must be at 127.0.0.1:5432");
        cluster.add(1, &[("RAMPART_STORAGE_URL", proxied)]).await;
        cluster
    };
    let (a, b) = (cluster.node(0), cluster.node(1));
    let cached = register(a, "alice").await;
    assert_eq!(cached.whoami(b).await.status(), StatusCode::OK);

    link.cut();
    // A credential B has not cached: B cannot check it, so it refuses it — 503 with
    // the envelope, never "allowed", never "unauthenticated".
    let fresh = login(a, "alice").await;
    let response = fresh.whoami(b).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(response).await, "unavailable");
    let through_gateway = http()
        .get(b.url("/private/x"))
        .header("cookie", &fresh.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(through_gateway.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(through_gateway).await, "unavailable");
    // Login needs the database too.
    let response = http()
        .post(b.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The session B did cache is logged out on A: B hears of it, forgets it, and —
    // unable to read the database — refuses it (503), within 1 s.
    // (B's answer then waits for the pool's acquire timeout, 1 s: what is measured
    // is when the first request that B no longer admitted was sent.)
    let start = Instant::now();
    cached.logout(a).await;
    let (delay, status) = loop {
        let sent = start.elapsed();
        let status = cached.whoami(b).await.status();
        if status != StatusCode::OK {
            break (sent, status);
        }
        assert!(
            start.elapsed() < WAIT,
            "B kept admitting a logged-out session"
        );
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(delay <= BOUND, "{delay:?}");
    assert_eq!(
        cluster.upstream.seen().len(),
        0,
        "nothing reached the upstream"
    );

    // The database is back: the pool reconnects; the logged-out session stays
    // refused, the other works.
    link.restore().await;
    until(Instant::now(), || async {
        fresh.whoami(b).await.status() == StatusCode::OK
    })
    .await;
    assert_eq!(cached.whoami(b).await.status(), StatusCode::UNAUTHORIZED);
    cluster.stop().await;
}

#[tokio::test]
async fn with_redis_unreachable_revocations_still_reach_a_replica_within_a_second() {
    // A private Redis: A reaches it directly, B through a link the test cuts.
    let redis = RedisServer::start().await;
    let mut link = TcpProxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let cluster = Cluster::start_with(
        2,
        &[
            (0, "RAMPART_REDIS_URL", redis.url()),
            (1, "RAMPART_REDIS_URL", format!("redis://{}", link.addr)),
        ],
    )
    .await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    for node in [a, b] {
        node.process
            .wait_for_log(|v| v["message"] == "subscribed to the fan-out channel")
            .await;
    }
    let browser = register(a, "alice").await;
    assert_eq!(browser.whoami(b).await.status(), StatusCode::OK);

    link.cut();
    b.process
        .wait_for_log(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("fan-out subscription lost"))
        })
        .await;
    // Rate limiting on B falls back to its local limiter (requests still decided).
    let response = http().get(b.url("/tight/x")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    b.process
        .wait_for_log(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("falling back to the local limiter"))
        })
        .await;
    // B still serves the session (it reads it again at least once a second)...
    assert_eq!(browser.whoami(b).await.status(), StatusCode::OK);
    // ...and a logout on A, which B cannot hear of, is refused there within 1 s
    // (plus the polling resolution: the cache lifetime counts from B's last read,
    // which may be a poll just before the logout).
    // What is measured is when the first request B refused was sent; the slack is
    // the polling interval and timer granularity.
    let start = Instant::now();
    browser.logout(a).await;
    let delay = loop {
        let sent = start.elapsed();
        if browser.whoami(b).await.status() == StatusCode::UNAUTHORIZED {
            break sent;
        }
        assert!(
            start.elapsed() < WAIT,
            "B kept admitting a logged-out session"
        );
        tokio::time::sleep(POLL).await;
    };
    eprintln!("propagation (B's fan-out down, short cache lifetime): {delay:?}");
    assert!(
        delay <= BOUND + POLL + Duration::from_millis(5),
        "{delay:?}"
    );

    // Redis back: B subscribes again.
    link.restore().await;
    until(Instant::now(), || async {
        b.process
            .stderr()
            .iter()
            .filter(|l| l.contains("subscribed to the fan-out channel"))
            .count()
            >= 2
    })
    .await;
    cluster.stop().await;
}
