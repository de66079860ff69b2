//! Maze environment-steps per second at the batch sizes the agents use (one thread).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plastic_envs::maze::{Maze, MazeConfig, NUM_ACTIONS};
use plastic_envs::VecEnv;
use rand::Rng;

fn maze_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("maze_step");
    for b in [1usize, 30, 1024] {
        let mut env = Maze::new(MazeConfig::default(), b);
        env.reset(0).unwrap();
        let mut rng = plastic_envs::rng::stream(1, 0);
        let actions: Vec<Vec<u32>> = (0..64)
            .map(|_| {
                (0..b)
                    .map(|_| rng.random_range(0..NUM_ACTIONS as u32))
                    .collect()
            })
            .collect();
        let mut i = 0;
        group.throughput(Throughput::Elements(b as u64));
        group.bench_function(BenchmarkId::from_parameter(b), |bench| {
            bench.iter(|| {
                i = (i + 1) % actions.len();
                env.step(&actions[i]).unwrap().rewards[0]
            })
        });
    }
    group.finish();
}

criterion_group!(benches, maze_step);
criterion_main!(benches);
