//! Criterion benches for the segment store: the hook path's durable append, bulk import,
//! sealing and a full scan. Whole-process figures (hyperfine) are in `benches/README.md`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dokku_audit::record::{ActorStamp, Event};
use dokku_audit::store::{AppendContext, Durability, Ownership, Store, StoreOptions};

fn events(n: usize) -> Vec<Event> {
    let end = dokku_audit::timefmt::parse_canonical("2026-04-08T20:00:00Z").unwrap();
    // One day keeps everything in one segment, so only the size rule rotates.
    dokku_audit::demo::history(n, 1, end, 11)
}

fn ctx() -> AppendContext {
    AppendContext {
        now: "2026-04-08T20:00:00Z".into(),
        source_trigger: "bench".into(),
        actor: ActorStamp::system(),
    }
}

fn store(dir: &Path, durability: Durability) -> Store {
    let opts = StoreOptions {
        durability,
        ..StoreOptions::default()
    };
    Store::new(dir, opts, Ownership::default())
}

/// One event, fsynced: what every trigger pays after process start. The store already holds
/// 2,000 events so the head is found in a real active segment, not an empty directory.
fn append_durable_single(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), Durability::Always);
    s.append(&mut events(2_000), &ctx()).unwrap();
    let one = events(1);
    let mut g = c.benchmark_group("append");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    g.bench_function("durable_single", |b| {
        b.iter(|| {
            let mut batch = one.clone();
            black_box(s.append(&mut batch, &ctx()).unwrap());
        })
    });
    g.finish();
}

/// 10,000 events in one batch without per-event fsync: the import path. A fresh directory
/// each time, so every iteration does the same work (including sealing when it rotates).
fn append_batch(c: &mut Criterion) {
    let batch = events(10_000);
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("batch_10k_relaxed", |b| {
        b.iter_batched(
            || (tempfile::tempdir().unwrap(), batch.clone()),
            |(dir, mut evs)| {
                let s = store(dir.path(), Durability::Relaxed);
                black_box(s.append(&mut evs, &ctx()).unwrap());
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Sealing one full segment (16 MiB of plain JSONL) at the default level, as the writer does
/// when the active segment reaches `segment_max_bytes`.
fn seal_full_segment(c: &mut Criterion) {
    let src = tempfile::tempdir().unwrap();
    let s = store(src.path(), Durability::Relaxed);
    let opts = StoreOptions {
        segment_max_bytes: 1 << 40,
        ..StoreOptions::default()
    };
    let big = Store::new(src.path(), opts.clone(), Ownership::default());
    let mut evs = events(40_000);
    big.append(&mut evs, &ctx()).unwrap();
    let plain = s.segments().unwrap().last().unwrap().plain.clone().unwrap();
    let bytes = std::fs::metadata(&plain).unwrap().len();
    let mut g = c.benchmark_group("seal");
    g.sample_size(10).throughput(Throughput::Bytes(bytes));
    g.bench_function(
        format!("{}MiB_level{}", bytes >> 20, opts.zstd_level),
        |b| {
            b.iter_batched(
                || {
                    let d = tempfile::tempdir().unwrap();
                    let p = d.path().join(plain.file_name().unwrap());
                    std::fs::copy(&plain, &p).unwrap();
                    (d, p)
                },
                |(d, p)| {
                    black_box(
                        dokku_audit::store::codec::seal_plain(&p, &opts, &Ownership::default())
                            .unwrap(),
                    );
                    d
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

/// A full scan of 100,000 events (sealed segments plus the active one) with CRC checks: the
/// export path, with a sink that only counts.
fn scan_full(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), Durability::Relaxed);
    let end = dokku_audit::timefmt::parse_canonical("2026-04-08T20:00:00Z").unwrap();
    let mut evs = dokku_audit::demo::history(100_000, 20, end, 5);
    s.append(&mut evs, &ctx()).unwrap();
    let mut g = c.benchmark_group("scan");
    g.sample_size(10).throughput(Throughput::Elements(100_001));
    g.bench_function("full_100k", |b| {
        b.iter(|| {
            let mut n = 0u64;
            dokku_audit::query::scan_events(&s, &Default::default(), &mut |ev| {
                n += ev.len() as u64;
                Ok(())
            })
            .unwrap();
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    append_durable_single,
    append_batch,
    seal_full_segment,
    scan_full
);
criterion_main!(benches);
