//! Command-line arguments.
// The doc comments are the `--help` text, where `<name>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]
use clap::{Parser, Subcommand};
use plastic_agents::cores::Bptt;
use plastic_agents::device::DeviceChoice;
use plastic_agents::options::ConfigOption;
use plastic_agents::perturbation::ParamGroup;
use plastic_agents::spectra::Matrix;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "plastic",
    version,
    about = "Reinforcement learning with plastic recurrent policies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an agent from a config file, or with the starting defaults on `--env ID`; writes
    /// a run folder under runs/.
    Train(TrainArgs),
    /// Print a whole config, every key at its default, to start one from:
    /// `plastic config maze > my.toml`, then `plastic train my.toml`.
    Config(ConfigArgs),
    /// Continue a run from its newest checkpoint.
    Resume(ResumeArgs),
    /// Train many runs (variants × seeds of a sweep file) here or on a SLURM cluster;
    /// `plastic sweep status <dir>` shows where they stand.
    Sweep(SweepArgs),
    /// Statistics across seeds: each variant's final score (median, IQR, IQM with a
    /// bootstrap interval), pairwise rank-sum tests, and learning curves with bands.
    Compare(CompareArgs),
    /// Evaluate a trained agent on held-out episodes, next to reference policies.
    Eval(EvalArgs),
    /// Evaluate trained runs under relative noise on groups of their parameters and under
    /// lesions of their hidden neurons, across seeds (docs/perturbation.md).
    Perturb(PerturbArgs),
    /// Singular values of W, α and the episode-averaged Hebbian trace at each of a run's kept
    /// checkpoints, as JSON and charts (docs/spectra.md).
    Spectra(SpectraArgs),
    /// List the environments with their observation size, action count and parameters.
    Envs {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a reference policy for whole episodes and report mean reward (and regret).
    Rollout(RolloutArgs),
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Show what libtorch can use here (CUDA devices, CPU threads).
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["config", "env"])))]
pub struct TrainArgs {
    /// Experiment config (TOML), e.g. configs/bandit-dependent-easy.toml.
    pub config: Option<PathBuf>,
    /// Train on this environment with the starting defaults (`plastic config ID` prints them)
    /// instead of a config file: `--env gym:CartPole-v1`. With a config file, change its
    /// environment with `--set env.id=ID`.
    #[arg(long, value_name = "ID")]
    pub env: Option<String>,
    /// Override a config value, repeatable: `--set optim.lr=3e-4 --set core.hidden=64`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    /// Where tensors live (default: the config's `run.device`).
    #[arg(long, value_parser = option::<DeviceChoice>())]
    pub device: Option<DeviceChoice>,
    /// Run folder (default: runs/<run.name>_<n>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed (default: the config's `run.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Environment steps to train for, as `--set run.total_steps=` (default: the config's).
    #[arg(long, value_parser = steps)]
    pub total_steps: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Environment id, as `plastic envs` lists them: `maze`, `maze:size=9`,
    /// `bandit-dependent-easy`, `gym:CartPole-v1`.
    #[arg(default_value = "maze")]
    pub env: String,
    /// Override a default, repeatable: `--set core.kind=lstm --set run.total_steps=2e6`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
}

/// A count of environment steps: a whole number, in exponent form too (`2e6`), as in configs.
fn steps(text: &str) -> Result<u64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of steps"))?;
    crate::config::integral_float(value)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("`{text}` is not a whole number of steps of at least 1"))
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Run folder written by `plastic train`.
    pub run: PathBuf,
    #[arg(long, value_parser = option::<DeviceChoice>())]
    pub device: Option<DeviceChoice>,
    /// Train until this many environment steps in all (to extend a finished run).
    #[arg(long, value_parser = steps)]
    pub total_steps: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Run folder (its newest checkpoint) or one checkpoint folder.
    pub run: PathBuf,
    /// Episodes to average over (default: the environment's, `plastic envs` lists them).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: Option<u64>,
    /// Evaluate on this environment instead of the run's (same observation size and actions),
    /// e.g. `gym:CartPole-v1?max_episode_steps=1000`.
    #[arg(long)]
    pub env: Option<String>,
    /// Also draw one episode of the agent: FILE.gif animates it (the maze; Gymnasium
    /// environments from their rgb_array frames), FILE.png draws it still (a panel per trip to
    /// the maze's reward; a bandit episode's pulls and rewards).
    #[arg(long, value_name = "FILE.gif|FILE.png")]
    pub render: Option<PathBuf>,
    /// Seed of the evaluation episodes (and of the policies' draws), as `plastic rollout --seed`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Take the most probable action instead of sampling.
    #[arg(long)]
    pub greedy: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PerturbArgs {
    /// Run folders or sweep folders, grouped as `plastic compare` groups them (`LABEL=PATH`
    /// puts the runs under PATH in group LABEL).
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Parameter groups to add noise to: `w` (fixed recurrent weights), `alpha` (plasticity
    /// coefficients), `input` (input weights and bias), `heads` (policy and value heads).
    /// Default: every group all the runs' cores have.
    #[arg(long, value_delimiter = ',', value_parser = option::<ParamGroup>())]
    pub group: Vec<ParamGroup>,
    /// Noise levels σ: each parameter p of a group becomes p·(1 + σ·ε), ε ~ N(0, 1).
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "0,0.05,0.1,0.2,0.5"
    )]
    pub sigma: Vec<f64>,
    /// Lesions: the fractions of hidden neurons silenced (their output forced to 0).
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "0,0.1,0.25,0.5"
    )]
    pub lesion: Vec<f64>,
    /// The step of each episode (from 0) at which the lesion begins; after 0, the reward in
    /// windows of steps after it is reported too (recovery).
    #[arg(long, default_value_t = 0)]
    pub lesion_at: usize,
    /// Steps per recovery window (default: a fifth of the steps from the lesion to the
    /// episode's end, rounded up).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: Option<u64>,
    /// Episodes per evaluation (default: the environment's, as `plastic eval`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: Option<u64>,
    /// Seed of the evaluation episodes and action draws (as `plastic eval --seed`), and of
    /// the noise and of which neurons a lesion silences.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Take the most probable action instead of sampling.
    #[arg(long)]
    pub greedy: bool,
    /// Draw each curve (median and inter-quartile band per group) as an SVG file in this
    /// folder: `noise-<group>.svg`, `lesion.svg`, and after a mid-episode lesion
    /// `recovery-<fraction>.svg`.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SpectraArgs {
    /// Run folder: every checkpoint it keeps, oldest first.
    pub run: PathBuf,
    /// Matrices: `w` (fixed recurrent weights), `alpha` (plasticity coefficients), `hebb`
    /// (the Hebbian trace averaged over episodes). Default: every one the core has.
    #[arg(long, value_delimiter = ',', value_parser = option::<Matrix>())]
    pub of: Vec<Matrix>,
    /// Episodes the Hebbian trace is averaged over, at each checkpoint (stepped together, so
    /// at most 4096).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub episodes: u64,
    /// Seed of those episodes and of their action draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for `spectra.json` and `<matrix>.svg` (default: `<RUN>/spectra`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    /// Environment id, e.g. `maze`, `maze:size=9,len=100`, `bandit-dependent-easy`.
    pub env: String,
    /// Reference policy: `random`; `oracle` (maze); `greedy`, `thompson`, `ucb1`, `gittins`,
    /// `bayes` (bandits).
    #[arg(long, default_value = "random")]
    pub policy: String,
    /// Number of whole episodes to run (default: the environment's, as `plastic eval`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: Option<u64>,
    /// Environments stepped together.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Seed of the episodes (and of the policy's draws), as `plastic eval --seed`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Environment steps per second (observation writing included, policy excluded).
    Env(BenchEnvArgs),
    /// Forward + backward of one whole-episode batch through an actor-critic core
    /// (default: Backpropamine's maze setting, B 30, T 200, H 100, simple neuromodulation).
    Core(BenchCoreArgs),
    /// Whole training updates (rollout, losses, backward, optimiser step) of a config.
    Train(BenchTrainArgs),
    /// Not a timing: one forward + backward pass as `bench core` runs it, by `--bptt`'s
    /// engine and by autograd on the same weights and batch, and each parameter's largest
    /// gradient difference relative to autograd's largest entry.
    Gradients(BenchGradientsArgs),
    /// The machine's memory bandwidth (STREAM's copy kernel), the roof for the trace passes.
    Memory(BenchMemoryArgs),
    /// The CPU passes over the `[B × H × H]` traces alone: achieved GB/s and GFLOP/s from
    /// the bytes and arithmetic each must do, to set next to the memory bandwidth.
    Traces(BenchTracesArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchMemoryArgs {
    /// Size of each of the two arrays, in MiB (far larger than the caches).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub mib: u64,
    /// Threads copying at once (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Timed rounds; the best and the median are reported.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BenchTracesArgs {
    /// Batch rows (B).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..))]
    pub batch: i64,
    /// Neurons (H).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub hidden: i64,
    /// Threads (default: libtorch's choice, as in training).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=crate::config::MAX_THREADS as i64))]
    pub threads: Option<i32>,
    /// Timed runs of each pass; the median is reported.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeats: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BenchTrainArgs {
    /// Experiment config, e.g. configs/maze-backpropamine-simple.toml.
    pub config: PathBuf,
    /// Override a config value, repeatable: `--set env.num_envs=256`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_parser = option::<DeviceChoice>())]
    pub device: Option<DeviceChoice>,
    /// Timed updates (after one untimed warm-up update); the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub updates: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The batch and core that `bench core` and `bench gradients` run.
#[derive(Debug, clap::Args)]
pub struct BenchBatchArgs {
    /// Episodes per batch (B).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..))]
    pub batch: i64,
    /// Steps per episode (T).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i64).range(1..))]
    pub steps: i64,
    /// Core setting, repeatable: `--set kind=lstm --set hidden=64 --set modulation=none`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_parser = option::<DeviceChoice>(), default_value = "cpu")]
    pub device: DeviceChoice,
    /// The hand-written pass keeps every k-th step's traces and rebuilds the others going
    /// back (`a2c.trace_checkpoint_every`: `auto`, as in training, or k; 1 keeps them all).
    #[arg(long, default_value = "auto")]
    pub trace_checkpoint_every: plastic_agents::cores::TraceCheckpoints,
}

#[derive(Debug, clap::Args)]
pub struct BenchGradientsArgs {
    #[command(flatten)]
    pub batch: BenchBatchArgs,
    /// The engine checked against autograd (default `ops`, what `fused` runs on CUDA).
    #[arg(long, value_parser = option::<Bptt>(), default_value = "ops")]
    pub bptt: Bptt,
    /// The parameters' and inputs' element type.
    #[arg(long, value_enum, default_value = "f64")]
    pub precision: Precision,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }

    pub fn kind(self) -> tch::Kind {
        match self {
            Self::F32 => tch::Kind::Float,
            Self::F64 => tch::Kind::Double,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct BenchCoreArgs {
    #[command(flatten)]
    pub batch: BenchBatchArgs,
    /// Backpropagation through time: `auto` (the hand-written pass where it applies, as in
    /// training), `fused`, `autograd` or `ops` (the hand-written pass in libtorch operations,
    /// as `fused` runs on CUDA).
    #[arg(long, value_parser = option::<Bptt>(), default_value = "auto")]
    pub bptt: Bptt,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=crate::config::MAX_THREADS as i64))]
    pub threads: Option<i32>,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeats: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_counts_take_the_exponent_form_configs_take() {
        assert_eq!(steps("2e6"), Ok(2_000_000));
        assert_eq!(steps("480"), Ok(480));
        for bad in ["0", "1.5", "-3e3", "1e300", "lots"] {
            assert!(steps(bad).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["plastic", "train", "c.toml", "--total-steps", "4e6"]);
        match cli.map(|c| c.command) {
            Ok(Command::Train(args)) => assert_eq!(args.total_steps, Some(4_000_000)),
            other => panic!("{other:?}"),
        }
    }
}

/// A config option on the command line: the names config files use, listed in `--help`.
fn option<T: ConfigOption + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::all().iter().map(|v| v.name()))
        .map(|name: String| T::from_name(&name).expect("clap lets only the listed names through"))
}

#[derive(Debug, clap::Args)]
pub struct BenchEnvArgs {
    /// Environment id.
    pub env: String,
    /// Environments stepped together.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Seconds to measure for (after a short warm-up).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where sweeps go unless `--out` says otherwise.
pub const DEFAULT_OUT: &str = "runs";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    /// Sweep file (TOML), e.g. configs/sweeps/maze-small.toml.
    pub file: Option<PathBuf>,
    /// Runs trained at once here (default: the cores over each run's `run.threads`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Train runs that failed before again (they are skipped otherwise).
    #[arg(long)]
    pub retry_failed: bool,
    /// Where the runs train.
    #[arg(long, value_enum, default_value = "local")]
    pub backend: Backend,
    /// Folder the sweep's folder goes in.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// SLURM partition (default: the sweep file's `slurm.partition`, else the cluster's).
    #[arg(long)]
    pub partition: Option<String>,
    /// SLURM time limit of each task, e.g. 02:00:00 (a task near it checkpoints and
    /// requeues itself).
    #[arg(long)]
    pub time: Option<String>,
    /// SLURM CPUs per task (default: the runs' `run.threads`, at least 1).
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Another `sbatch` option for the job array, repeatable, e.g. --sbatch=--mem=4G.
    #[arg(long = "sbatch", value_name = "OPTION")]
    pub sbatch: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A pool of processes on this machine.
    Local,
    /// One SLURM job array, submitted with sbatch.
    Slurm,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Where every run of a sweep stands, read from the run folders.
    Status {
        /// The sweep's folder (runs/<sweep name>).
        dir: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train (or resume) one run of a sweep: what each local worker and SLURM task runs.
    #[command(hide = true)]
    Task { dir: PathBuf, index: usize },
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Sweep folders or run folders. Runs are grouped by their sweep variant (a run outside
    /// a sweep by its `run.name`); `LABEL=PATH` puts the runs under PATH in group LABEL.
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// The score: held-out `reward`, or `regret` (bandits). Default: regret where every run
    /// has it, else reward.
    #[arg(long, value_enum)]
    pub metric: Option<Metric>,
    /// Score each run at its last evaluation at or before this environment step (default:
    /// its last evaluation).
    #[arg(long)]
    pub step: Option<u64>,
    /// Score learning speed instead: the environment steps each run took to first reach this
    /// held-out score (a reward at least this high; a regret at most this low) by its last
    /// evaluation (or `--step`); fewer is better, and a run that never reaches it ranks last.
    #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
    pub steps_to: Option<f64>,
    /// Learning curves (median and inter-quartile band per group) as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Reward,
    Regret,
}
