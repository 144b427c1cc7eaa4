//! Hot-path micro-benchmarks: what every proxied request pays (authenticating a bearer
//! access token, a rate-limit decision) and the reference cost of a sign-in (Argon2id).
//!
//! - `token_verify`: an EdDSA access token through the real [`Authenticator`] (wired
//!   as `rampart serve` wires it, on a temporary SQLite store): a token never seen
//!   before (signature, claims, family and user checks, cache insert), a token from
//!   the verified-token cache, and the keyring's signature + claims check alone.
//! - `ratelimit`: one decision on the memory backend and on Redis (leases: the cost is
//!   amortized over the decisions a lease covers), for one hot key and for 10 000
//!   client IPs in turn. Redis at `RAMPART_BENCH_REDIS_URL` (default
//!   `redis://127.0.0.1:6379`), keys under a fresh prefix; skipped with a note when
//!   it cannot be reached.
//! - `argon2_hash`: Argon2id at the default cost (m=19456 KiB, t=2, p=1), raw and as
//!   the login path's password verification, to compare with `bench/login/run.sh`.
//!
//! Run: `cargo bench -p rampart-bench --bench hotpath` (about a minute).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::request::Parts;
use rampart_cli::services;
use rampart_config::Config;
use rampart_core::keys::DataKeys;
use rampart_core::{Clock, SystemClock};
use rampart_crypto::password::{Argon2Params, PasswordConfig, PasswordHasher, Verification};
use rampart_crypto::{MasterKey, SecretString};
use rampart_identity::accounts::{ClientContext, LoginStep, NewAccount};
use rampart_identity::authenticate::Authenticator;
use rampart_identity::sessions::ClientDetails;
use rampart_identity::tokens::{AccessClaims, Tokens};
use rampart_ratelimit::{Bucket, Key, Limit, RateLimiter};
use rampart_store::Backend;
use rampart_store::testing::TestDb;

const MEASUREMENT: Duration = Duration::from_secs(3);
const WARM_UP: Duration = Duration::from_secs(1);
const PASSWORD: &str = "correct horse battery staple 42";
/// Distinct client addresses in the many-keys rate-limit case.
const MANY_KEYS: usize = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The configuration the identity services are built from: the defaults (Argon2id
/// m=19456 t=2 p=1, 15-minute access tokens, the default roles).
fn config() -> Config {
    rampart_config::from_toml_str(
        "mode = \"dev\"\npublic_url = \"http://127.0.0.1:9171\"\n",
        &BTreeMap::new(),
    )
    .expect("bench config")
}

/// The identity services, wired by `rampart_cli::services` as for `rampart serve`,
/// with a signed-in user's access token.
struct Identity {
    authenticator: Arc<Authenticator>,
    tokens: Arc<Tokens>,
    /// The claims of `token`, to sign fresh tokens of the same login.
    claims: AccessClaims,
    token: String,
    _db: TestDb,
}

async fn identity() -> Identity {
    let config = config();
    let db = TestDb::new(Backend::Sqlite).await.expect("SQLite test db");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = Arc::new(
        DataKeys::initialize(
            db.store(),
            &MasterKey::generate().expect("master key"),
            &SystemClock,
        )
        .await
        .expect("data keys"),
    );
    let audit = services::start_audit(&config, db.store(), &keys, Arc::clone(&clock))
        .await
        .expect("auditor");
    let roles = Arc::new(services::roles(&config));
    let fanout = services::fanout(&config, services::FanoutRole::Server).expect("fan-out");
    let (accounts, authenticator) =
        services::identity(&config, db.store(), &keys, &audit, &clock, &roles, &fanout)
            .await
            .expect("identity services");
    let tokens = Arc::clone(authenticator.tokens());

    // A user, signed in with the password grant's flow: login, then a token pair.
    let password = SecretString::from(PASSWORD);
    accounts
        .create_admin_from_cli(
            NewAccount {
                username: "bench".to_owned(),
                password: Some(password.clone()),
                email: None,
                display_name: None,
                roles: Vec::new(),
                tenants: Vec::new(),
                attributes: BTreeMap::new(),
            },
            false,
        )
        .await
        .expect("create the bench user");
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let step = accounts
        .login_password(
            "bench",
            &password,
            &ClientContext {
                ip,
                request_id: None,
            },
        )
        .await
        .expect("login");
    let LoginStep::Complete(verified) = step else {
        panic!("the bench user has no second factor");
    };
    let pair = tokens
        .issue(
            &verified,
            ClientDetails {
                ip,
                user_agent: None,
                request_id: None,
            },
        )
        .await
        .expect("issue a token pair");
    let token = pair.access_token.expose_secret().to_owned();
    let claims = tokens.verify_access(&token).await.expect("own token");
    Identity {
        authenticator,
        tokens,
        claims,
        token,
        _db: db,
    }
}

/// A request's head carrying `Authorization: Bearer <token>`.
fn bearer(token: &str) -> Parts {
    http::Request::builder()
        .uri("/private/hello")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .expect("request")
        .into_parts()
        .0
}

fn token_verify(c: &mut Criterion) {
    let rt = runtime();
    let id = rt.block_on(identity());
    let mut group = c.benchmark_group("token_verify");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(WARM_UP);

    // (i) A token this process has not verified yet: signature, claims, cache insert,
    // refresh-family and user checks (both from their caches, as in steady state).
    // Each iteration signs a fresh token of the same login outside the timing.
    let keyring = id.tokens.signing().keyring();
    let serial = Cell::new(0u64);
    let authenticator = &id.authenticator;
    group.bench_function("authenticate_uncached", |b| {
        b.to_async(&rt).iter_batched(
            || {
                serial.set(serial.get() + 1);
                let claims = AccessClaims {
                    jti: format!("bench-{}", serial.get()),
                    ..id.claims.clone()
                };
                bearer(&keyring.sign(&claims).expect("sign"))
            },
            |parts| async move {
                let principal = authenticator
                    .authenticate(&parts)
                    .await
                    .expect("authenticated");
                black_box(principal.expect("a principal"))
            },
            BatchSize::SmallInput,
        );
    });

    // (ii) The same token again: served from the verified-token cache.
    let parts = bearer(&id.token);
    group.bench_function("authenticate_cached", |b| {
        b.to_async(&rt).iter(|| async {
            let principal = authenticator
                .authenticate(&parts)
                .await
                .expect("authenticated");
            black_box(principal.expect("a principal"))
        });
    });

    // The part of (i) that the cache saves: Ed25519 signature and claims checks only.
    let validation = id.tokens.validation().clone();
    group.bench_function("signature_and_claims_only", |b| {
        b.iter(|| {
            let now = SystemClock.unix();
            black_box(
                keyring
                    .verify::<AccessClaims>(&id.token, &validation, now)
                    .expect("valid"),
            )
        });
    });
    group.finish();
    drop(id);
}

/// A limit that never refuses: the cost of a decision, not of a refusal.
fn unlimited() -> Limit {
    Limit::new(
        NonZeroU32::MAX,
        Duration::from_secs(1),
        NonZeroU32::new(1_000_000_000).expect("non-zero"),
    )
}

fn many_ips() -> Vec<Key> {
    (0..MANY_KEYS)
        .map(|i| {
            let i = u32::try_from(i).expect("small");
            Key::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        })
        .collect()
}

/// Benchmarks `bucket` for one hot key and for [`MANY_KEYS`] keys in turn.
fn bench_bucket(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    backend: &str,
    bucket: &Bucket,
) {
    let one = Key::Ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
    let keys = many_ips();
    group.bench_function(format!("{backend}/one_key"), |b| {
        b.to_async(rt).iter(|| async {
            let decision = bucket.check(&one).await;
            assert!(decision.is_allowed());
            black_box(decision)
        });
    });
    let next = Cell::new(0usize);
    group.bench_function(format!("{backend}/{MANY_KEYS}_ips"), |b| {
        // iter_custom: the position in the key cycle carries over between samples,
        // so every key is revisited at the same period whatever the sample size.
        b.to_async(rt).iter_custom(|iterations| {
            let keys = &keys;
            let next = &next;
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    let i = next.get();
                    next.set((i + 1) % keys.len());
                    let decision = bucket.check(&keys[i]).await;
                    assert!(decision.is_allowed());
                    black_box(decision);
                }
                started.elapsed()
            }
        });
    });
}

fn redis_url() -> SecretString {
    SecretString::from(
        std::env::var("RAMPART_BENCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
    )
}

fn ratelimit(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("ratelimit");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(WARM_UP);
    group.throughput(Throughput::Elements(1));

    let memory = rt.block_on(async { RateLimiter::memory(Arc::new(SystemClock)) });
    let bucket = memory.bucket("bench", unlimited());
    bench_bucket(&mut group, &rt, "memory", &bucket);

    // A fresh prefix per run: no budget left over from an earlier run. (The keys
    // expire by themselves a few milliseconds after their last use.)
    let prefix = format!(
        "rampart-bench-{}",
        rampart_crypto::random::token::<8>().expect("random")
    );
    let redis = rt.block_on(RateLimiter::redis(
        &redis_url(),
        Duration::from_secs(1),
        Duration::from_millis(500),
        &prefix,
        Arc::new(SystemClock),
    ));
    match redis {
        Ok(limiter) if !limiter.in_fallback() => {
            // Round trips dominate: fewer, longer samples.
            group.sample_size(20);
            let bucket = limiter.bucket("bench", unlimited());
            bench_bucket(&mut group, &rt, "redis", &bucket);
            if limiter.in_fallback() {
                eprintln!(
                    "note: Redis failed during the run; the redis figures include local-fallback decisions"
                );
            }
        }
        Ok(_) => eprintln!("note: Redis is not reachable; skipping ratelimit/redis/*"),
        Err(error) => eprintln!("note: Redis is not usable ({error}); skipping ratelimit/redis/*"),
    }
    group.finish();
}

fn argon2_hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2_hash");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(WARM_UP);
    group.sample_size(10);
    let owasp = Argon2Params::OWASP;

    // The argon2 crate alone, Argon2id v0x13, 32-byte output, 16-byte salt.
    let params = argon2::Params::new(
        owasp.memory_kib,
        owasp.iterations,
        owasp.parallelism,
        Some(32),
    )
    .expect("argon2 params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = [7u8; 16];
    group.bench_function("argon2id_m19456_t2_p1", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            argon
                .hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
                .expect("hash");
            black_box(out)
        });
    });

    // What a login spends on the password: rampart-crypto's verification (parse the
    // PHC string, hash, constant-time compare) at the default cost.
    let hasher = PasswordHasher::new(PasswordConfig {
        params: owasp,
        ..PasswordConfig::default()
    })
    .expect("hasher");
    let password = SecretString::from(PASSWORD);
    let stored = hasher.hash(&password).expect("hash");
    group.bench_function("password_verify", |b| {
        b.iter(|| {
            let verification = hasher.verify(&password, stored.as_str()).expect("verify");
            assert!(matches!(verification, Verification::Valid));
        });
    });
    group.finish();
}

criterion_group!(benches, token_verify, ratelimit, argon2_hash);
criterion_main!(benches);
