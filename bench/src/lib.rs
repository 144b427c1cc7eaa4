//! Rampart's benchmarks live in `benches/` (criterion) and in the load-comparison
//! scripts beside this crate; this library is empty.
