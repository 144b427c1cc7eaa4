//! Password hashing off the async executor, with bounded concurrency (F-PASSWORD).
//!
//! One Argon2id verification costs `auth.password.memory_kib` of memory and tens of
//! milliseconds of a CPU. Run on a Tokio worker it would stall every other task on
//! that worker — proxied traffic included — and a login flood would take the whole
//! server down. So every hash and verification runs on a pool of its own
//! `auth.max_concurrent_hashes` threads, and a semaphore of as many permits bounds how
//! many run at once; further logins wait for a permit (their memory is bounded too).
//!
//! The hashing threads run at the lowest normal scheduling priority (nice 19 on
//! Linux): when a login flood and proxied traffic compete for the CPU, the request
//! path wins, so a flood slows sign-ins down instead of every request behind Rampart
//! (measured in docs/PERFORMANCE.md). Whatever CPU the request path leaves goes to
//! hashing at full speed; only a CPU saturated by proxied traffic slows sign-ins to a
//! trickle (nice 19 weighs 15 against the request path's 1024).
//!
//! The permit moves into the blocking task: if the request is cancelled while the
//! hash runs, the permit is released only when the hash is done, so cancelled
//! requests cannot push the number of running hashes above the bound.
//!
//! Every computation is counted ([`PasswordStats`]), which is how tests prove that
//! the unknown-user path really spends a full verification.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rampart_crypto::SecretString;
use rampart_crypto::password::{PasswordError, PasswordHasher, PhcHash, Verification};
use tokio::sync::{Semaphore, oneshot};

/// How much lower the hashing threads' priority is than the process's (capped at
/// 19, the lowest): a login flood must not add latency to proxied requests.
const HASHING_NICE: i32 = 19;

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce(&PasswordHasher) + Send>;

/// How many Argon2 computations ran, by kind. A snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PasswordStats {
    /// New hashes (registration, password change, re-hash).
    pub hashes: u64,
    /// Verifications against a stored hash.
    pub verifications: u64,
    /// Dummy verifications for users that do not exist (or have no password).
    pub dummy_verifications: u64,
}

/// Why the pool could not run a computation.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Hashing failed (bad stored hash, unknown pepper, no randomness).
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The blocking task panicked or the pool was shut down.
    #[error("the password hashing pool is unavailable")]
    Unavailable,
}

/// The hasher on its own threads, behind a semaphore.
pub(crate) struct PasswordPool {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    hashes: AtomicU64,
    verifications: AtomicU64,
    dummy: AtomicU64,
}

impl PasswordPool {
    /// At most `concurrency` computations at once, on as many threads. The threads
    /// end when the pool is dropped.
    pub(crate) fn new(hasher: PasswordHasher, concurrency: NonZeroUsize) -> Self {
        let hasher = Arc::new(hasher);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..concurrency.get() {
            let hasher = Arc::clone(&hasher);
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("rampart-argon2-{index}"))
                .spawn(move || hashing_thread(&hasher, &queue));
            if let Err(error) = spawned {
                // Fewer threads only means fewer hashes at once; with none at all,
                // every computation fails closed with `Unavailable`.
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self {
            jobs,
            permits: Arc::new(Semaphore::new(concurrency.get())),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Hashes a new password.
    pub(crate) async fn hash(&self, password: &SecretString) -> Result<PhcHash, PoolError> {
        let password = password.clone();
        let counters = Arc::clone(&self.counters);
        self.run(move |hasher| {
            counters.hashes.fetch_add(1, Ordering::Relaxed);
            hasher.hash(&password)
        })
        .await?
        .map_err(PoolError::from)
    }

    /// Verifies `password` against `stored`.
    pub(crate) async fn verify(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verification, PoolError> {
        let password = password.clone();
        let stored = stored.to_owned();
        let counters = Arc::clone(&self.counters);
        self.run(move |hasher| {
            counters.verifications.fetch_add(1, Ordering::Relaxed);
            hasher.verify(&password, &stored)
        })
        .await?
        .map_err(PoolError::from)
    }

    /// Spends one verification's work on nothing (unknown user), so the response
    /// time does not tell whether the account exists.
    pub(crate) async fn dummy_verify(&self, password: &SecretString) -> Result<(), PoolError> {
        let password = password.clone();
        let counters = Arc::clone(&self.counters);
        self.run(move |hasher| {
            counters.dummy.fetch_add(1, Ordering::Relaxed);
            hasher.dummy_verify(&password);
        })
        .await
    }

    /// The counters.
    pub(crate) fn stats(&self) -> PasswordStats {
        PasswordStats {
            hashes: self.counters.hashes.load(Ordering::Relaxed),
            verifications: self.counters.verifications.load(Ordering::Relaxed),
            dummy_verifications: self.counters.dummy.load(Ordering::Relaxed),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Unavailable)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            let _permit = permit;
            // The caller may have gone away (a cancelled request); the work is done
            // either way and the permit released only now.
            let _ = done.send(work(hasher));
        });
        self.jobs.send(job).map_err(|_| PoolError::Unavailable)?;
        result.await.map_err(|_| PoolError::Unavailable)
    }
}

/// One hashing thread: lowers its own priority, then runs jobs until the pool is
/// dropped. A panicking job loses its result (the caller gets `Unavailable`), not the
/// thread.
fn hashing_thread(hasher: &PasswordHasher, queue: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux the nice value is per thread, so this touches no other thread. It is
    // relative to what the process was started with (19 is the lowest).
    let lowered = rustix::process::getpriority_process(None)
        .and_then(|nice| rustix::process::setpriority_process(None, (nice + HASHING_NICE).min(19)));
    if let Err(error) = lowered {
        tracing::warn!(%error, "cannot lower the priority of a password hashing thread");
    }
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            // Another thread panicked while holding the lock (it never does: the lock
            // is held only to receive); the queue itself is intact.
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else {
            return;
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(hasher)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use rampart_crypto::password::{Argon2Params, PasswordConfig};

    use super::*;

    fn pool(concurrency: usize) -> PasswordPool {
        let hasher = PasswordHasher::new(PasswordConfig {
            params: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..PasswordConfig::default()
        })
        .unwrap();
        PasswordPool::new(hasher, NonZeroUsize::new(concurrency).unwrap())
    }

    #[tokio::test]
    async fn hashing_runs_on_lower_priority_threads_of_its_own() {
        let pool = pool(1);
        let (name, nice) = pool
            .run(|_| {
                (
                    std::thread::current().name().map(str::to_owned),
                    rustix::process::getpriority_process(None).unwrap(),
                )
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("rampart-argon2-0"));
        // The test's own thread keeps its priority; the hashing thread is at least
        // HASHING_NICE lower (higher nice), whatever the test runner started at.
        let ours = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(nice, (ours + HASHING_NICE).min(19));
    }

    #[tokio::test]
    async fn hashes_verify_and_are_counted() {
        let pool = pool(2);
        let pw = SecretString::from("correct horse battery staple");
        let hash = pool.hash(&pw).await.unwrap();
        assert_eq!(
            pool.verify(&pw, hash.as_str()).await.unwrap(),
            Verification::Valid
        );
        assert_eq!(
            pool.verify(&SecretString::from("wrong"), hash.as_str())
                .await
                .unwrap(),
            Verification::Invalid
        );
        pool.dummy_verify(&pw).await.unwrap();
        assert_eq!(
            pool.stats(),
            PasswordStats {
                hashes: 1,
                verifications: 2,
                dummy_verifications: 1
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_is_bounded() {
        let pool = Arc::new(pool(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pool = Arc::clone(&pool);
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            tasks.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
