//! Storage benchmarks (issue: storage): audit-record append throughput and vault read
//! latency, each on SQLite and on PostgreSQL.
//!
//! Run: `cargo bench -p rampart-bench --bench storage` (PostgreSQL from
//! `RAMPART_TEST_POSTGRES_URL`, default the local test database).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rampart_core::audit::{
    AuditEvent, AuditOptions, Auditor, CheckpointSigner, EventKind, Outcome,
};
use rampart_core::keys::DataKeys;
use rampart_core::vault::{SecretName, Vault};
use rampart_core::{Clock, SystemClock};
use rampart_crypto::{MasterKey, SecretString};
use rampart_store::Backend;
use rampart_store::testing::TestDb;

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn keys(db: &TestDb) -> Arc<DataKeys> {
    let master = MasterKey::generate().unwrap();
    Arc::new(
        DataKeys::initialize(db.store(), &master, &SystemClock)
            .await
            .unwrap(),
    )
}

fn audit_append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("audit_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    const BATCH: u64 = 2_000;
    group.throughput(Throughput::Elements(BATCH));
    for backend in BACKENDS {
        let (db, auditor) = rt.block_on(async {
            let db = TestDb::new(backend).await.unwrap();
            let keys = keys(&db).await;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let auditor = Auditor::start(
                Arc::new(db.store().clone()),
                AuditOptions::default(),
                CheckpointSigner::from_data_keys(&keys),
                clock,
            )
            .await
            .unwrap();
            (db, auditor)
        });
        group.bench_with_input(
            BenchmarkId::from_parameter(backend.name()),
            &backend,
            |b, _| {
                b.iter_custom(|iterations| {
                    rt.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iterations {
                            for i in 0..BATCH {
                                auditor
                                    .record(
                                        AuditEvent::new(
                                            EventKind::AuthLoginFailed,
                                            Outcome::Failure,
                                        )
                                        .actor("bench")
                                        .target(format!("user-{i}")),
                                    )
                                    .await
                                    .unwrap();
                            }
                            auditor.flush().await.unwrap();
                        }
                        started.elapsed()
                    })
                });
            },
        );
        rt.block_on(auditor.shutdown()).unwrap();
        drop(db);
    }
    group.finish();
}

fn vault_get(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("vault_get");
    for backend in BACKENDS {
        let (db, vault, name) = rt.block_on(async {
            let db = TestDb::new(backend).await.unwrap();
            let keys = keys(&db).await;
            let vault = Vault::new(Arc::new(db.store().clone()), keys, Arc::new(SystemClock));
            let name = SecretName::new("third_party").unwrap();
            vault
                .set(
                    &name,
                    &SecretString::from("sk_live_0123456789abcdef0123456789"),
                )
                .await
                .unwrap();
            (db, vault, name)
        });
        group.bench_with_input(
            BenchmarkId::from_parameter(backend.name()),
            &backend,
            |b, _| {
                b.to_async(&rt)
                    .iter(|| async { vault.get(&name).await.unwrap() });
            },
        );
        drop(db);
    }
    group.finish();
}

criterion_group!(benches, audit_append, vault_get);
criterion_main!(benches);
