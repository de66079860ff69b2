//! Environment steps per second of the bandits, without any policy in the loop.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plastic_envs::{registry, VecEnv};
use std::hint::black_box;

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("bandit_step");
    // A Bernoulli family, the one that also moves its arms every step, and the deterministic one.
    for id in [
        "bandit-independent",
        "bandit-restless",
        "bandit-informative-11",
    ] {
        for batch in [1usize, 30, 1024] {
            let mut env = registry::make(id, batch).unwrap();
            env.reset(0).unwrap();
            let arms = env.spec().num_actions as u32;
            // Every arm in use; fixed, so the figure is the environment's alone.
            let actions: Vec<u32> = (0..batch as u32).map(|row| row % arms).collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(id, batch), &actions, |b, actions| {
                b.iter(|| black_box(env.step(actions).unwrap().rewards[0]))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
