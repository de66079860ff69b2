//! Forward + backward of one whole-episode batch in Backpropamine's maze setting
//! (T = 200, H = 100, simple neuromodulation, 4 actions), at B = 30 and a larger B, with the
//! hand-written backward pass and with autograd.
//! `PLASTIC_BENCH_BATCHES=30,256` overrides the batch sizes.
use criterion::{criterion_group, criterion_main, Criterion};
use plastic_agents::bench::{forward_backward, Bench, BenchSpec};
use plastic_agents::cores::Bptt;
use std::time::Duration;

fn batches() -> Vec<i64> {
    std::env::var("PLASTIC_BENCH_BATCHES")
        .ok()
        .map(|s| s.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![30, 128])
}

fn maze_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("plastic_rnn_fwd_bwd_T200_H100");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for batch in batches() {
        for bptt in [Bptt::Fused, Bptt::Autograd] {
            let spec = BenchSpec {
                batch,
                bptt,
                ..BenchSpec::default()
            };
            let bench = Bench::new(&spec).expect("valid bench spec");
            group.bench_function(format!("B{batch}/{bptt:?}"), |b| {
                b.iter(|| bench.run_once())
            });
            drop(bench);
            // Seconds per batch, throughput and memory as the CLI would report them.
            let report = forward_backward(&spec).expect("valid bench spec");
            eprintln!(
                "B={batch} {bptt:?}: {:.4} s/batch, {:.0} env-steps/s, forward RSS growth {:?} B, peak {:?} B, {} threads",
                report.seconds_per_batch,
                report.env_steps_per_sec,
                report.forward_rss_growth_bytes,
                report.peak_rss_growth_bytes,
                report.threads
            );
        }
    }
    group.finish();
}

criterion_group!(benches, maze_batch);
criterion_main!(benches);
