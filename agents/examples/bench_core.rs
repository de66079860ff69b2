//! Prints forward + backward timing of one whole-episode batch in Backpropamine's maze setting.
//! Usage (the benchmark code is behind the crate's `bench` feature):
//! `cargo run --release -p plastic-agents --features bench --example bench_core -- [B ...]`
//! Environment: `PLASTIC_BENCH_THREADS` (libtorch intra-op threads), `PLASTIC_BENCH_REPEATS`,
//! `PLASTIC_BENCH_DEVICE=cuda`, `PLASTIC_BENCH_HIDDEN`,
//! `PLASTIC_BENCH_KIND` (core kind, e.g. `rnn`), `PLASTIC_BENCH_ALPHA` (`per-neuron`).
use plastic_agents::bench::{forward_backward, BenchSpec};
use plastic_agents::cores::{AlphaShape, CoreConfig, CoreKind, Modulation};
use tch::Device;

fn main() {
    let batches: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batches = if batches.is_empty() {
        vec![30]
    } else {
        batches
    };
    let threads = std::env::var("PLASTIC_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    let repeats = std::env::var("PLASTIC_BENCH_REPEATS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(5);
    let device = match std::env::var("PLASTIC_BENCH_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    let hidden = std::env::var("PLASTIC_BENCH_HIDDEN")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    let mut core = CoreConfig::backpropamine(hidden);
    match std::env::var("PLASTIC_BENCH_KIND").as_deref() {
        Ok("rnn") => core = CoreConfig::rnn(hidden),
        Ok("lstm") => core = CoreConfig::lstm(hidden),
        Ok("plastic-lstm") => core.kind = CoreKind::PlasticLstm,
        Ok("retroactive") => core.modulation = Modulation::Retroactive,
        Ok("plastic") => core.modulation = Modulation::None,
        _ => {}
    }
    if std::env::var("PLASTIC_BENCH_ALPHA").as_deref() == Ok("per-neuron") {
        core.alpha = AlphaShape::PerNeuron;
    }
    for batch in batches {
        let spec = BenchSpec {
            batch,
            device,
            threads,
            repeats,
            core: core.clone(),
            ..BenchSpec::default()
        };
        let r = forward_backward(&spec).expect("valid bench spec");
        let mib = |b: Option<u64>| {
            b.map_or("n/a".to_string(), |b| {
                format!("{:.0} MiB", b as f64 / 1048576.0)
            })
        };
        println!(
            "{} B={batch} T={} H={} threads={}: {:.4} s/batch (forward {:.4} s; runs {:?}), \
             {:.0} env-steps/s, forward RSS growth {}, peak RSS growth {}",
            core.kind.name(),
            spec.steps,
            core.hidden,
            r.threads,
            r.seconds_per_batch,
            r.forward_seconds,
            r.runs
                .iter()
                .map(|s| (s * 1e4).round() / 1e4)
                .collect::<Vec<_>>(),
            r.env_steps_per_sec,
            mib(r.forward_rss_growth_bytes),
            mib(r.peak_rss_growth_bytes),
        );
    }
}
