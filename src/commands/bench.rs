use crate::cli::{
    BenchBatchArgs, BenchCoreArgs, BenchEnvArgs, BenchGradientsArgs, BenchMemoryArgs,
    BenchTracesArgs, BenchTrainArgs,
};
use crate::output::emit;
use plastic_envs::{registry, Actions, Environment};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Serialize)]
struct EnvBench {
    env: String,
    batch: usize,
    steps: u64,
    seconds: f64,
    steps_per_second: f64,
    /// Gymnasium environments: the same vector env stepped by a plain Python loop.
    python_loop_steps_per_second: Option<f64>,
}

/// Timed rounds of `bench env`.
const ROUNDS: usize = 5;

/// The longest `bench env --seconds` (beyond it, a typo rather than a plan).
const MAX_SECONDS: f64 = 86_400.0;

/// Steps the environment with actions drawn in advance, so only the environment is timed.
/// For a Gymnasium environment, also times a plain Python loop over the same vector env, the
/// figure the bridge's cost is judged against.
pub fn env(args: &BenchEnvArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= MAX_SECONDS,
        "--seconds must be a number above 0 and at most {MAX_SECONDS} (a day), got {}",
        args.seconds
    );
    let batch = usize::try_from(args.batch)?;
    let config = registry::parse(&args.env)?;
    let spec = config.build(1)?.spec().clone();
    // Beside the environments: the 64 action batches below (each row a u32, and the
    // components of a continuous action).
    let action_bytes = 64 * 4 * (1 + spec.action_box.as_ref().map_or(0, |b| b.dim()));
    plastic_envs::memory::ensure_fits(
        &[plastic_envs::memory::env_batch(
            &spec,
            batch,
            "--batch",
            action_bytes,
        )],
        "--batch",
    )?;
    let mut env = config.build(batch)?;
    // A few distinct batches of random actions (uniform in a Box action space), cycled, keep
    // the policy out of the measurement.
    let mut random = plastic_envs::rollout::reference_policy(config.as_ref(), "random", batch, 0)?;
    let action_sets = (0..64)
        .map(|_| {
            let mut actions = Actions::for_env(env.as_ref());
            actions.choose(random.as_mut(), &[]).map(|()| actions)
        })
        .collect::<Result<Vec<_>, _>>()?;
    env.reset(0)?;
    let run_for =
        |env: &mut dyn plastic_envs::VecEnv, budget: Duration| -> anyhow::Result<(u64, Duration)> {
            let start = Instant::now();
            let mut calls = 0u64;
            while start.elapsed() < budget {
                for actions in &action_sets {
                    actions.apply(env)?;
                }
                calls += action_sets.len() as u64;
            }
            Ok((calls, start.elapsed()))
        };
    run_for(
        env.as_mut(),
        Duration::from_secs_f64((args.seconds / 10.0).min(0.5)),
    )?;
    // Rounds alternate with the Python loop's, so both see the same machine load; medians.
    let round = Duration::from_secs_f64(args.seconds / ROUNDS as f64);
    let (mut steps, mut seconds) = (0, 0.0);
    let (mut rates, mut python_rates) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (calls, elapsed) = run_for(env.as_mut(), round)?;
        steps += calls * batch as u64;
        seconds += elapsed.as_secs_f64();
        rates.push((calls * batch as u64) as f64 / elapsed.as_secs_f64());
        python_rates.extend(python_loop(config.as_ref(), batch, calls)?);
    }
    let median = plastic_agents::bench::median;
    let report = EnvBench {
        env: env.spec().id.clone(),
        batch,
        steps,
        seconds,
        steps_per_second: median(&rates),
        python_loop_steps_per_second: (!python_rates.is_empty()).then(|| median(&python_rates)),
    };
    emit(args.json, &report, || {
        let mut out = format!(
            "{} at batch {}: {} env-steps/s (median of {ROUNDS} rounds, {} steps in {:.2} s, \
             one thread)",
            report.env,
            report.batch,
            rate(report.steps_per_second),
            report.steps,
            report.seconds
        );
        if let Some(py) = report.python_loop_steps_per_second {
            out += &format!(
                "\nthe same vector env in a plain Python loop: {} env-steps/s; \
                 through the bridge: {:.2}× that",
                rate(py),
                report.steps_per_second / py
            );
        }
        out
    })
}

/// `38.20 million` or `41235`: native environments run at millions of steps per second,
/// Gymnasium ones at thousands.
fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} million", per_second / 1e6)
    } else {
        format!("{per_second:.0}")
    }
}

/// Steps per second of `calls` vector steps from a plain Python loop, for Gymnasium envs.
fn python_loop(env: &dyn Environment, batch: usize, calls: u64) -> anyhow::Result<Option<f64>> {
    let Some(seconds) = env.python_loop_seconds(batch, calls) else {
        return Ok(None);
    };
    Ok(Some((calls * batch as u64) as f64 / seconds?))
}

#[derive(Serialize)]
struct CoreBench {
    core: plastic_agents::CoreConfig,
    device: String,
    /// `autograd` or `fused`.
    bptt: &'static str,
    trace_checkpoint_every: usize,
    batch: i64,
    steps: i64,
    threads: i32,
    seconds_per_batch: f64,
    /// The forward pass's part of `seconds_per_batch`.
    forward_seconds: f64,
    runs: Vec<f64>,
    env_steps_per_second: f64,
    forward_rss_growth_bytes: Option<u64>,
    peak_rss_growth_bytes: Option<u64>,
}

/// The benchmark's defaults with the batch, core and engine of the command line.
fn batch_spec(
    args: &BenchBatchArgs,
    bptt: plastic_agents::cores::Bptt,
) -> anyhow::Result<plastic_agents::bench::BenchSpec> {
    let defaults = plastic_agents::bench::BenchSpec::default();
    Ok(plastic_agents::bench::BenchSpec {
        batch: args.batch,
        steps: args.steps,
        core: crate::overrides::apply(&defaults.core, &args.set)?,
        bptt,
        trace_checkpoint_every: args.trace_checkpoint_every,
        device: args.device.resolve()?,
        ..defaults
    })
}

/// Times forward + backward of one whole-episode batch through an actor-critic.
pub fn core(args: &BenchCoreArgs) -> anyhow::Result<()> {
    let spec = plastic_agents::bench::BenchSpec {
        repeats: usize::try_from(args.repeats)?,
        threads: args.threads,
        ..batch_spec(&args.batch, args.bptt)?
    };
    let device = spec.device;
    plastic_envs::memory::ensure_fits(
        &plastic_agents::bench::memory_needs(&spec),
        "--batch, --steps or hidden",
    )?;
    let r = plastic_agents::bench::forward_backward(&spec)?;
    let report = CoreBench {
        core: spec.core,
        device: format!("{device:?}"),
        bptt: r.engine.name(),
        trace_checkpoint_every: r.trace_checkpoint_every,
        batch: spec.batch,
        steps: spec.steps,
        threads: r.threads,
        seconds_per_batch: r.seconds_per_batch,
        forward_seconds: r.forward_seconds,
        runs: r.runs,
        env_steps_per_second: r.env_steps_per_sec,
        forward_rss_growth_bytes: r.forward_rss_growth_bytes,
        peak_rss_growth_bytes: r.peak_rss_growth_bytes,
    };
    emit(args.json, &report, || {
        let mib =
            |b: Option<u64>| b.map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0));
        format!(
            "{} core, H {}, B {} × T {} on {} ({} threads, {} BPTT, trace checkpoint every {}): {:.3} \
             s per forward+backward (forward {:.3} s; {:.0} env-steps/s); memory: forward +{}, \
             peak +{}",
            report.core.kind.name(),
            report.core.hidden,
            report.batch,
            report.steps,
            report.device,
            report.threads,
            report.bptt,
            report.trace_checkpoint_every,
            report.seconds_per_batch,
            report.forward_seconds,
            report.env_steps_per_second,
            mib(report.forward_rss_growth_bytes),
            mib(report.peak_rss_growth_bytes)
        )
    })
}

#[derive(Serialize)]
struct GradientCheck {
    core: plastic_agents::CoreConfig,
    device: String,
    /// The engine checked against autograd.
    bptt: &'static str,
    precision: &'static str,
    batch: i64,
    steps: i64,
    parameters: Vec<plastic_agents::bench::GradientError>,
    /// The largest of `parameters`' relative errors.
    max_relative_error: f64,
}

/// `plastic bench gradients`: one engine's gradients against autograd's on the same batch.
pub fn gradients(args: &BenchGradientsArgs) -> anyhow::Result<()> {
    let spec = plastic_agents::bench::BenchSpec {
        kind: args.precision.kind(),
        ..batch_spec(&args.batch, args.bptt)?
    };
    let device = spec.device;
    let (engine, parameters) = plastic_agents::bench::gradient_errors(&spec)?;
    let report = GradientCheck {
        core: spec.core,
        device: format!("{device:?}"),
        bptt: engine.name(),
        precision: args.precision.name(),
        batch: spec.batch,
        steps: spec.steps,
        max_relative_error: parameters
            .iter()
            .map(|p| p.relative_error)
            .fold(0.0, f64::max),
        parameters,
    };
    emit(args.json, &report, || {
        let mut out = format!(
            "{} core, H {}, B {} × T {} on {} in {}: {} BPTT against autograd, largest \
             gradient difference relative to autograd's largest entry, per parameter:",
            report.core.kind.name(),
            report.core.hidden,
            report.batch,
            report.steps,
            report.device,
            report.precision,
            report.bptt,
        );
        for p in &report.parameters {
            out += &format!("\n  {:<32} {:.3e}", p.parameter, p.relative_error);
        }
        out
    })
}

#[derive(Serialize)]
struct TrainBench {
    env: String,
    core: plastic_agents::CoreConfig,
    device: String,
    threads: i32,
    /// `autograd` or `fused`.
    bptt: &'static str,
    num_envs: usize,
    rollout_len: usize,
    /// Every how many steps the hand-written pass kept the traces.
    trace_checkpoint_every: usize,
    seconds_per_update: f64,
    runs: Vec<f64>,
    env_steps_per_second: f64,
    /// The whole process's peak resident memory after the updates: what training needs.
    peak_resident_bytes: Option<u64>,
}

/// Times whole training updates of a config: what `plastic train` spends per update, minus
/// logging and checkpoints.
pub fn train(args: &BenchTrainArgs) -> anyhow::Result<()> {
    let mut config = crate::config::ExperimentConfig::load(&args.config, &args.set)?;
    if let Some(d) = args.device {
        config.run.device = d;
    }
    let device = config.run.device.resolve()?;
    plastic_agents::device::keep_freed_memory();
    let runs = usize::try_from(args.updates)?;
    // Enough budget that the timed updates never reach the end of training.
    config.run.total_steps = u64::MAX / 2;
    let mut trainer = crate::commands::train::build(&config, device, config.run.threads)?;
    trainer.update()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        trainer.update()?;
        times.push(start.elapsed().as_secs_f64());
    }
    let median = plastic_agents::bench::median(&times);
    let steps = (trainer.env().num_envs() * trainer.rollout_len()) as f64;
    let report = TrainBench {
        env: trainer.env().spec().id.clone(),
        core: config.core.clone(),
        device: format!("{device:?}"),
        threads: plastic_agents::threads::count() as i32,
        bptt: trainer.engine().name(),
        num_envs: trainer.env().num_envs(),
        rollout_len: trainer.rollout_len(),
        trace_checkpoint_every: trainer.trace_checkpoint_every(),
        seconds_per_update: median,
        runs: times,
        env_steps_per_second: steps / median,
        peak_resident_bytes: plastic_agents::bench::peak_resident_bytes(),
    };
    emit(args.json, &report, || {
        format!(
            "{} core, H {} on {}: B {} × T {} on {} ({} threads, {} BPTT, trace checkpoint \
             every {}): {:.3} s per update, {:.0} env-steps/s (median of {runs}); the \
             process's peak resident memory {}",
            report.core.kind.name(),
            report.core.hidden,
            report.env,
            report.num_envs,
            report.rollout_len,
            report.device,
            report.threads,
            report.bptt,
            report.trace_checkpoint_every,
            report.seconds_per_update,
            report.env_steps_per_second,
            report
                .peak_resident_bytes
                .map_or("unknown".into(), |b| format!(
                    "{:.2} GiB",
                    b as f64 / f64::from(1u32 << 30)
                )),
        )
    })
}

#[derive(Serialize)]
struct MemoryBench {
    threads: usize,
    array_mib: u64,
    /// STREAM's copy rate: bytes read plus bytes written per second, in GB/s (10⁹ bytes).
    best_gb_per_second: f64,
    median_gb_per_second: f64,
}

/// `plastic bench memory`: STREAM's copy kernel on two arrays of `--mib` each.
pub fn memory(args: &BenchMemoryArgs) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(n) => usize::try_from(n)?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let array_bytes = usize::try_from(args.mib << 20)?;
    plastic_envs::memory::ensure_fits(
        &[plastic_envs::memory::MemoryNeed {
            what: format!("two arrays of --mib {}", args.mib),
            bytes: 2.0 * array_bytes as f64,
        }],
        "--mib",
    )?;
    let rates = crate::stream::copy_rounds(array_bytes, threads, usize::try_from(args.rounds)?);
    let report = MemoryBench {
        threads,
        array_mib: args.mib,
        best_gb_per_second: rates.iter().copied().fold(0.0, f64::max),
        median_gb_per_second: plastic_agents::bench::median(&rates),
    };
    emit(args.json, &report, || {
        format!(
            "memory bandwidth (STREAM copy, {} threads, 2 × {} MiB): best {:.1} GB/s, median {:.1} GB/s",
            report.threads, report.array_mib, report.best_gb_per_second, report.median_gb_per_second
        )
    })
}

#[derive(Serialize)]
struct TracesBench {
    batch: i64,
    hidden: i64,
    threads: i32,
    passes: Vec<PassReport>,
}

#[derive(Serialize)]
struct PassReport {
    #[serde(flatten)]
    rate: plastic_agents::cores::roofline::PassRate,
    gb_per_s: f64,
    gflop_per_s: f64,
}

/// Times each CPU trace pass alone and reports its achieved bandwidth and arithmetic rate.
pub fn traces(args: &BenchTracesArgs) -> anyhow::Result<()> {
    // The passes run as in training where steps run on the host: all threads to the loops,
    // and freed memory kept for reuse (else the allocator may hand a pass's outputs back to
    // the kernel between runs, and each run times their page faults: 10× the retroactive
    // forward pass's time).
    plastic_envs::memory::ensure_fits(
        &[plastic_agents::cores::roofline::memory_need(
            args.batch,
            args.hidden,
        )],
        "--batch or --hidden",
    )?;
    plastic_agents::threads::assign(args.threads.map_or(0, |n| n as usize), true);
    plastic_agents::device::keep_freed_memory();
    let rates = plastic_agents::cores::roofline::measure(
        args.batch,
        args.hidden,
        usize::try_from(args.repeats)?,
    );
    let report = TracesBench {
        batch: args.batch,
        hidden: args.hidden,
        threads: plastic_agents::threads::count() as i32,
        passes: rates
            .into_iter()
            .map(|rate| PassReport {
                gb_per_s: rate.gb_per_s(),
                gflop_per_s: rate.gflop_per_s(),
                rate,
            })
            .collect(),
    };
    emit(args.json, &report, || {
        let mut text = format!(
            "trace passes, B {} × H {}² f32 on the CPU ({} threads), median of {}:",
            report.batch, report.hidden, report.threads, args.repeats
        );
        for p in &report.passes {
            text += &format!(
                "\n  {:<28} {:>9.1} µs  {:>6.1} GB/s  {:>6.1} GFLOP/s",
                p.rate.pass,
                p.rate.seconds * 1e6,
                p.gb_per_s,
                p.gflop_per_s
            );
        }
        text
    })
}
