//! Experiment configs: one TOML file per experiment, every section checked with
//! `deny_unknown_fields`, overrides applied by key, the result written next to the run.
use crate::overrides;
use crate::starting;
use crate::tensorboard::HParam;
use anyhow::Context;
use plastic_agents::a2c::{A2cConfig, OptimConfig, PpoConfig, TrainerConfig};
use plastic_agents::device::DeviceChoice;
use plastic_agents::encoders::EncoderConfig;
use plastic_agents::CoreConfig;
use plastic_envs::registry::EnvId;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A whole experiment. Every key but `env.id` has a default: `[env] id = "maze"` is a whole
/// config (`plastic config` prints one with every key). A config that names no section but
/// `[env]` and `[run]` takes the starting defaults ([`starting`]); one that names any other
/// takes each section's built-in defaults below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    #[serde(default)]
    pub run: RunConfig,
    pub env: EnvSection,
    #[serde(default)]
    pub core: CoreConfig,
    /// What reads the observations before the core; left out of the written config at its
    /// default (`kind = "auto"`), so configs from before it read and write as they did.
    #[serde(default, skip_serializing_if = "EncoderConfig::is_default")]
    pub encoder: EncoderConfig,
    #[serde(default)]
    pub a2c: A2cConfig,
    /// A `[ppo]` section trains with PPO (an empty one takes sb3-contrib's defaults); left
    /// out, A2C, and the written config has no such section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppo: Option<PpoConfig>,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// More libtorch threads than any machine has cores is a typo, and libtorch would start them.
pub const MAX_THREADS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run folders are `runs/<name>_<n>`.
    pub name: String,
    pub seed: u64,
    /// Environment steps to train for (rounded up to whole updates).
    pub total_steps: u64,
    pub device: DeviceChoice,
    /// CPU threads, shared as `plastic_agents::threads` says; 0 takes libtorch's choice.
    pub threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            seed: 0,
            total_steps: 1_000_000,
            device: DeviceChoice::Auto,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// Environment id, as `plastic envs` lists them (`maze:size=9`, `bandit-dependent-easy`).
    pub id: EnvId,
    /// Environments stepped together (B).
    #[serde(default = "EnvSection::default_num_envs")]
    pub num_envs: usize,
    /// Folders put first on the Gymnasium bridge's `sys.path` before the environment is
    /// built. Training adds those its own modules came from (the current folder,
    /// `PYTHONPATH`), so the run is evaluated and resumed from anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_path: Vec<std::path::PathBuf>,
}

impl EnvSection {
    /// Backpropamine's batch: small enough for one core, large enough for A2C's gradients.
    fn default_num_envs() -> usize {
        30
    }
}

/// How often the run reports, in updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Scalars (losses, rewards, speed).
    pub every: u64,
    /// Histograms of α, W, η.
    pub histograms_every: u64,
    /// TensorBoard pictures: the maze's visits and one episode's trips, a bandit episode's
    /// pulls, the Hebbian trace and the modulator.
    pub images_every: u64,
    /// One episode drawn into `animations/<update>.gif` (`.png` for bandits); 0: never.
    pub animation_every: u64,
    /// The recurrent Jacobian's spectrum along one episode (`spectra/*`, docs/spectra.md), at
    /// the start and every so many updates; 0: never. Left out of written configs when 0, so
    /// runs without it keep the hyperparameters and checkpoints they always had.
    #[serde(skip_serializing_if = "is_zero")]
    pub spectra_every: u64,
    /// Held-out evaluation (`eval/ep_rew_mean`; bandits also `eval/regret`), printed in the
    /// console too.
    pub eval_every: u64,
    pub eval_episodes: usize,
    /// Held-out episodes take the most probable action instead of sampling one.
    pub eval_greedy: bool,
    /// Keep the checkpoint with the highest held-out mean reward as `best/<update>/`.
    pub keep_best: bool,
    /// Stop training once the held-out mean reward reaches this (`inf`: never).
    pub eval_target: f64,
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (the newest ones).
    pub keep_checkpoints: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            every: 10,
            histograms_every: 100,
            images_every: 200,
            animation_every: 0,
            spectra_every: 0,
            eval_every: 100,
            eval_episodes: 500,
            eval_greedy: false,
            keep_best: true,
            eval_target: f64::INFINITY,
            checkpoint_every: 100,
            keep_checkpoints: 3,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One config value that differs between a checkpoint and its run's `config.toml`.
#[derive(Debug, PartialEq)]
pub struct ConfigEdit {
    pub key: String,
    pub old: String,
    pub new: String,
    /// The edit changes what defines the run ([`RunDefinition`]): a checkpoint cannot go on
    /// under it.
    defines_run: bool,
}

/// What a checkpoint's numbers belong to: the environment and model it holds, the optimiser
/// its moments belong to, the seed its random streams follow, and the rollout length its
/// step counts and episodes under way assume. Everything else (learning rate, loss weights,
/// logging) may be tuned between a checkpoint and its resumption, as after a divergence.
#[derive(PartialEq)]
struct RunDefinition<'a> {
    env: &'a EnvId,
    num_envs: usize,
    core: &'a CoreConfig,
    encoder: &'a EncoderConfig,
    seed: u64,
    algorithm: plastic_agents::a2c::Algorithm,
    rollout_len: plastic_agents::a2c::RolloutLen,
}

impl ConfigEdit {
    pub fn defines_run(&self) -> bool {
        self.defines_run
    }

    pub fn list(edits: &[ConfigEdit]) -> String {
        let items: Vec<String> = edits
            .iter()
            .map(|e| format!("{} = {} (was {})", e.key, e.new, e.old))
            .collect();
        items.join(", ")
    }
}

fn dotted_keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (name, value) in table {
        match value.as_table() {
            Some(inner) => keys.extend(inner.keys().map(|k| format!("{name}.{k}"))),
            None => keys.push(name.clone()),
        }
    }
    keys
}

/// A config value as it would be written, with large and tiny numbers in exponent form (TOML's
/// own rendering spells 1e300 out in full).
fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::Float(f) if *f != 0.0 && !(1e-4..1e6).contains(&f.abs()) => format!("{f:e}"),
        other => other.to_string(),
    }
}

/// `text` with every float that equals an integer (`total_steps = 1e6`) written as that
/// integer, so that integer keys accept counts in exponent form; float keys take integers as
/// they are. Lines stay where they were, for error messages. Text that does not parse is
/// returned as it is, for the parser's own error.
pub fn integral_floats_as_integers(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return text.to_string();
    };
    toml_edit::visit_mut::visit_document_mut(&mut IntegralFloats, &mut doc);
    doc.to_string()
}

/// The integer `value` equals, if it is a float within the integers a config holds exactly.
pub fn integral_float(value: f64) -> Option<i64> {
    // 2^53: beyond it a float no longer says which integer was meant.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (value.fract() == 0.0 && value.abs() <= EXACT).then_some(value as i64)
}

struct IntegralFloats;

impl toml_edit::visit_mut::VisitMut for IntegralFloats {
    fn visit_value_mut(&mut self, node: &mut toml_edit::Value) {
        if let toml_edit::Value::Float(f) = node {
            if let Some(i) = integral_float(*f.value()) {
                let decor = f.decor().clone();
                let mut int = toml_edit::Formatted::new(i);
                *int.decor_mut() = decor;
                *node = toml_edit::Value::Integer(int);
                return;
            }
        }
        toml_edit::visit_mut::visit_value_mut(self, node);
    }
}

/// `config` as the TOML table it is written as.
fn as_table(config: &ExperimentConfig) -> toml::Table {
    match toml::Value::try_from(config) {
        Ok(toml::Value::Table(t)) => t,
        _ => unreachable!("a config serialises to a TOML table"),
    }
}

/// Refuses a config that names no environment, the one key without a default, in words
/// rather than serde's "missing field". Text that does not parse is left to the parser.
fn ensure_env_named(text: &str, path: &Path) -> anyhow::Result<()> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let named = match table.get("env") {
        Some(toml::Value::Table(env)) => env.contains_key("id"),
        // Not a table: serde's error names `env`.
        Some(_) => true,
        None => false,
    };
    anyhow::ensure!(
        named,
        "config `{}` has no `env.id`: name the environment to train on, e.g. `[env]` then \
         `id = \"maze\"` (`plastic envs` lists them); every other key has a default",
        path.display()
    );
    Ok(())
}

impl ExperimentConfig {
    /// Reads `path` and applies `overrides` (`section.key=value`).
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config `{}`", path.display()))?;
        Self::parse(&text, path, overrides)
    }

    /// The config in `text`, read from `path` (named in errors), with `overrides` applied.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        Self::parse_naming(text, path, overrides, &[])
    }

    /// The starting defaults ([`starting`]) for environment `env` (as `plastic envs` lists
    /// them), with `overrides` applied: what `plastic train --env ENV` trains.
    pub fn for_env(env: &str, overrides: &[String]) -> anyhow::Result<Self> {
        // Its own error, naming no config file.
        EnvId::parse(env)?;
        let mut table = toml::Table::new();
        table.insert("id".into(), toml::Value::String(env.into()));
        let text = format!("[env]\n{table}");
        Self::parse(&text, Path::new("--env"), overrides)
    }

    /// [`Self::parse`] of a config whose keys are partly given outside `text` (a Python
    /// dict's, passed as `overrides`): `named` lists their sections, which choose between the
    /// starting and the built-in defaults as the file's own sections do. A `--set` chooses
    /// nothing: it changes a key of whichever defaults the config took.
    pub fn parse_naming(
        text: &str,
        path: &Path,
        overrides: &[String],
        named: &[String],
    ) -> anyhow::Result<Self> {
        let text = integral_floats_as_integers(text);
        ensure_env_named(&text, path)?;
        let invalid = |e: toml::de::Error| {
            anyhow::anyhow!("{}", e.to_string().trim_end())
                .context(format!("invalid config `{}`", path.display()))
        };
        // Read from the text, so that an error shows the line at fault.
        let config: Self = toml::from_str(&text).map_err(invalid)?;
        let file: toml::Table = toml::from_str(&text).map_err(invalid)?;
        let sections = file.keys().chain(named).map(String::as_str);
        let config = match starting::applies(sections) {
            true => config
                .over_starting_defaults(file)
                .with_context(|| format!("invalid config `{}`", path.display()))?,
            false => config,
        };
        let mut config = overrides::apply(&config, overrides)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        for dir in &mut config.env.python_path {
            *dir = folder.join(&*dir);
        }
        // Before anything builds the environment (the checks below may).
        plastic_envs::gym::use_python_path(&config.env.python_path)?;
        config.validate()?;
        Ok(config)
    }

    /// The keys of `file`, this config's text, over the starting defaults of its environment.
    fn over_starting_defaults(self, file: toml::Table) -> anyhow::Result<Self> {
        let mut merged = as_table(&starting::config(self.env.id));
        for (section, keys) in file {
            if let (Some(into), Some(keys)) = (
                merged.get_mut(&section).and_then(toml::Value::as_table_mut),
                keys.as_table(),
            ) {
                into.extend(keys.clone());
            }
        }
        Self::deserialize(toml::Value::Table(merged))
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// Checks what the trainer does not: the reporting intervals.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.env.num_envs >= 1,
            "env.num_envs = 0: at least one environment is needed (Backpropamine uses 30)"
        );
        anyhow::ensure!(
            self.run.threads <= MAX_THREADS,
            "run.threads = {}: at most {MAX_THREADS} (0 leaves libtorch's choice)",
            self.run.threads
        );
        let name = &self.run.name;
        anyhow::ensure!(
            !name.is_empty() && !name.starts_with('.') && !name.contains('/'),
            "run.name = {name:?}: it names the run's folder under runs/, so it must be non-empty, \
             without `/` and not start with `.`"
        );
        anyhow::ensure!(
            self.run.total_steps >= 1,
            "run.total_steps = 0: give the number of environment steps to train for"
        );
        let l = &self.log;
        for (key, v) in [
            ("log.every", l.every),
            ("log.histograms_every", l.histograms_every),
            ("log.images_every", l.images_every),
            ("log.eval_every", l.eval_every),
            ("log.checkpoint_every", l.checkpoint_every),
        ] {
            anyhow::ensure!(v >= 1, "{key} = 0: give an interval of at least 1 update");
        }
        anyhow::ensure!(
            l.animation_every == 0 || crate::render::best_format(self.env.id.env()).is_some(),
            "log.animation_every = {}: `{}` cannot be drawn (animations: the maze and Gymnasium \
             environments; pictures: bandits); set it to 0",
            l.animation_every,
            self.env.id
        );
        anyhow::ensure!(
            l.keep_checkpoints >= 1,
            "log.keep_checkpoints = 0: keep at least the newest checkpoint"
        );
        anyhow::ensure!(
            l.eval_episodes >= 1,
            "log.eval_episodes = 0: evaluate on at least one episode"
        );
        anyhow::ensure!(
            !l.eval_target.is_nan(),
            "log.eval_target = nan: give the held-out mean reward to stop at, or inf for never"
        );
        self.core.validate().map_err(anyhow::Error::from)?;
        self.a2c.validate()?;
        if let Some(ppo) = &self.ppo {
            ppo.validate(self.env.num_envs)?;
        }
        self.optim.validate()?;
        Ok(())
    }

    pub fn trainer(&self) -> TrainerConfig {
        TrainerConfig {
            core: self.core.clone(),
            encoder: self.encoder.clone(),
            a2c: self.a2c.clone(),
            ppo: self.ppo.clone(),
            optim: self.optim.clone(),
            threads: self.run.threads,
        }
    }

    /// The dotted keys a config file spells out (`section.key`), defaults not included.
    pub fn keys_in_file(path: &Path) -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config `{}`", path.display()))?;
        Self::keys_in_text(&text, path)
    }

    /// The dotted keys of the config `text`, read from `path` (named in errors).
    pub fn keys_in_text(text: &str, path: &Path) -> anyhow::Result<Vec<String>> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
            .with_context(|| format!("invalid config `{}`", path.display()))?;
        Ok(dotted_keys(&table))
    }

    /// Every key with its value, as TensorBoard's HParams dashboard and config table show
    /// them (`core.hidden`, `optim.lr`, ...), in the order of the config file.
    pub fn hparams(&self) -> Vec<(String, HParam)> {
        let Ok(toml::Value::Table(sections)) = toml::Value::try_from(self) else {
            unreachable!("a config serialises to a TOML table")
        };
        let mut out = Vec::new();
        for (section, keys) in &sections {
            for (key, value) in keys.as_table().into_iter().flatten() {
                let value = match value {
                    toml::Value::Integer(i) => HParam::Int(*i),
                    toml::Value::Float(f) => HParam::Number(*f),
                    toml::Value::Boolean(b) => HParam::Bool(*b),
                    toml::Value::String(s) => HParam::Text(s.clone()),
                    other => HParam::Text(other.to_string()),
                };
                out.push((format!("{section}.{key}"), value));
            }
        }
        out
    }

    /// Every dotted key this config writes.
    pub fn keys(&self) -> Vec<String> {
        dotted_keys(&as_table(self))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("configs serialise to TOML")
    }

    /// The values that differ from `saved` (a checkpoint's config), other than those
    /// `plastic resume` sets itself.
    fn definition(&self) -> RunDefinition<'_> {
        RunDefinition {
            env: &self.env.id,
            num_envs: self.env.num_envs,
            core: &self.core,
            encoder: &self.encoder,
            seed: self.run.seed,
            algorithm: self.optim.algorithm,
            rollout_len: self.a2c.rollout_len,
        }
    }

    /// The values of this config that differ from `saved`'s, by key, each marked with
    /// whether it alone changes what defines the run. What `plastic resume` sets itself
    /// (`--total-steps`, `--device`) and the thread count (which changes no number) are not
    /// edits.
    pub fn edits_since(&self, saved: &ExperimentConfig) -> Vec<ConfigEdit> {
        let mut now = self.clone();
        now.run.total_steps = saved.run.total_steps;
        now.run.device = saved.run.device;
        now.run.threads = saved.run.threads;
        let (saved_table, now_table) = (as_table(saved), as_table(&now));
        let mut edits = Vec::new();
        // A section only one side writes (`[ppo]`, added or left out) counts as empty on the
        // other, so that each of its keys is named.
        let empty = toml::Table::new();
        let section_of = |t: &toml::Table, section: &str| {
            t.get(section)
                .and_then(|v| v.as_table())
                .cloned()
                .unwrap_or_else(|| empty.clone())
        };
        let mut sections: Vec<&String> = saved_table.keys().collect();
        sections.extend(now_table.keys().filter(|s| !saved_table.contains_key(*s)));
        for section in sections {
            let (old, new) = (
                section_of(&saved_table, section),
                section_of(&now_table, section),
            );
            let mut names: Vec<&String> = old.keys().collect();
            names.extend(new.keys().filter(|n| !old.contains_key(*n)));
            for name in names {
                let key = format!("{section}.{name}");
                let (old, new) = (old.get(name), new.get(name));
                if new == old {
                    continue;
                }
                // The saved config with this one edit: does what defines the run change?
                let mut alone = saved_table.clone();
                let edited = alone
                    .entry(section.as_str())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("a section is a table");
                match new {
                    Some(v) => edited.insert(name.clone(), v.clone()),
                    None => edited.remove(name),
                };
                let defines_run = ExperimentConfig::deserialize(toml::Value::Table(alone))
                    .map_or(true, |c| c.definition() != saved.definition());
                edits.push(ConfigEdit {
                    key,
                    old: old.map_or("unset".into(), show),
                    new: new.map_or("unset".into(), show),
                    defines_run,
                });
            }
        }
        edits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plastic_agents::encoders::EncoderKind;

    fn parse(text: &str) -> anyhow::Result<ExperimentConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text)?;
        ExperimentConfig::load(&path, &[])
    }

    const MINIMAL: &str = "[env]\nid = \"bandit-dependent-easy\"\nnum_envs = 4\n";

    #[test]
    fn a_config_naming_only_the_environment_is_whole() {
        let c = parse("[env]\nid = \"maze\"\n").unwrap();
        let maze = EnvId::parse("maze").unwrap();
        assert_eq!(c, starting::config(maze));
        assert_eq!(c.env.num_envs, 16);
        // The one key without a default is named, with what to write.
        for text in ["", "[run]\nseed = 3\n", "[env]\nnum_envs = 4\n"] {
            let msg = format!("{:#}", parse(text).unwrap_err());
            assert!(
                msg.contains("no `env.id`") && msg.contains("id = \"maze\""),
                "{text:?}: {msg}"
            );
        }
    }

    #[test]
    fn the_starting_defaults_are_for_configs_naming_only_env_and_run() {
        let bandit = EnvId::parse("bandit-dependent-easy").unwrap();
        let mut expected = starting::config(bandit.clone());
        expected.env.num_envs = 4;
        assert_eq!(parse(MINIMAL).unwrap(), expected);
        let with_run = parse(&format!("[run]\nseed = 3\n{MINIMAL}")).unwrap();
        assert_eq!((with_run.run.seed, with_run.ppo.is_some()), (3, true));
        // `--set` changes a key of the starting defaults; it does not choose others.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let set = ExperimentConfig::load(&path, &["core.hidden=8".into()]).unwrap();
        assert_eq!((set.core.hidden, set.ppo.is_some()), (8, true));
        // Any other section, even empty, or named by a Python dict: every section's built-in
        // defaults, as before the starting ones existed.
        let builtin = |c: &ExperimentConfig| {
            c.ppo.is_none() && c.core == CoreConfig::default() && c.a2c == A2cConfig::default()
        };
        assert!(builtin(&parse(&format!("{MINIMAL}[log]\n")).unwrap()));
        let named = ExperimentConfig::parse_naming(MINIMAL, &path, &[], &["optim".into()]);
        assert!(builtin(&named.unwrap()));
        // `plastic train --env`: the same as a file naming only the environment.
        let for_env = ExperimentConfig::for_env("bandit-dependent-easy", &[]).unwrap();
        assert_eq!(for_env, starting::config(bandit));
        let msg = format!("{:#}", ExperimentConfig::for_env("mase", &[]).unwrap_err());
        assert!(msg.contains("mase") && msg.contains("maze"), "{msg}");
    }

    #[test]
    fn a_minimal_config_round_trips_with_every_key() {
        let c = parse(MINIMAL).unwrap();
        let again: ExperimentConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(again, c);
        let written = ExperimentConfig::keys_in_text(&c.to_toml(), Path::new("c.toml")).unwrap();
        assert_eq!(written, c.keys());
        // Written whole, it names every section: read back, it is itself.
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn every_shipped_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = ExperimentConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{e:#}"));
                let stem = path.file_stem().unwrap().to_string_lossy();
                assert_eq!(c.run.name, stem, "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 12, "{n} configs");
    }

    #[test]
    fn edits_since_a_checkpoint_are_listed_and_sorted_by_what_they_touch() {
        let saved = parse(MINIMAL).unwrap();
        let mut now = saved.clone();
        assert!(now.edits_since(&saved).is_empty());
        now.run.total_steps *= 2;
        now.run.threads = 3;
        assert!(now.edits_since(&saved).is_empty());
        now.optim.lr = 1e300;
        now.core.hidden += 1;
        let edits = now.edits_since(&saved);
        let keys: Vec<(&str, bool)> = edits
            .iter()
            .map(|e| (e.key.as_str(), e.defines_run()))
            .collect();
        assert_eq!(keys, [("core.hidden", true), ("optim.lr", false)]);
        for set in [
            "env.num_envs=5",
            "run.seed=9",
            "optim.algorithm=\"rmsprop\"",
            "a2c.rollout_len=7",
            "core.modulation=\"retroactive\"",
            "log.every=3",
            "log.spectra_every=5",
            "a2c.gamma=0.5",
        ] {
            let edited = crate::overrides::apply(&saved, &[set.to_string()]).unwrap();
            let edits = edited.edits_since(&saved);
            assert_eq!(edits.len(), 1, "{set}");
            let expected = !set.starts_with("log.") && !set.starts_with("a2c.gamma");
            assert_eq!(edits[0].defines_run(), expected, "{set}");
        }
        assert!(ConfigEdit::list(&edits).contains("optim.lr = 1e300 (was "));
    }

    #[test]
    fn spectra_every_is_written_only_when_on() {
        let off = parse(MINIMAL).unwrap();
        assert!(!off.to_toml().contains("spectra_every"));
        assert!(!off.keys().iter().any(|k| k == "log.spectra_every"));
        let on = crate::overrides::apply(&off, &["log.spectra_every=50".to_string()]).unwrap();
        assert_eq!(on.log.spectra_every, 50);
        assert!(on.to_toml().contains("spectra_every = 50"));
        assert_eq!(parse(&on.to_toml()).unwrap(), on);
        // Keys a section does not know are still refused by name.
        let msg = crate::overrides::apply(&off, &["log.spectra=5".to_string()])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown key `log.spectra`"), "{msg}");
    }

    #[test]
    fn the_encoder_section_is_written_only_when_set_and_can_be_set_without_it() {
        let auto = parse(MINIMAL).unwrap();
        assert!(!auto.to_toml().contains("encoder"));
        let set = |s: &str| crate::overrides::apply(&auto, &[s.to_string()]);
        let minigrid = set("encoder.kind=minigrid").unwrap();
        assert_eq!(minigrid.encoder.kind, EncoderKind::Minigrid);
        assert!(minigrid
            .to_toml()
            .contains("[encoder]\nkind = \"minigrid\""));
        assert_eq!(parse(&minigrid.to_toml()).unwrap(), minigrid);
        // Left out, `normalize_images` is on, as in configs written before it existed.
        assert!(minigrid.encoder.normalize_images);
        let raw = set("encoder.normalize_images=false").unwrap();
        assert!(!raw.encoder.normalize_images);
        assert_eq!(parse(&raw.to_toml()).unwrap(), raw);
        let symbols = set("encoder.one_hot=11").unwrap();
        assert_eq!(symbols.encoder.one_hot, 11);
        assert_eq!(parse(&symbols.to_toml()).unwrap(), symbols);
        let msg = set("encodr.kind=flat").unwrap_err().to_string();
        assert!(
            msg.contains("unknown section `encodr` in `encodr.kind`"),
            "{msg}"
        );
        let msg = set("encoder.kind=resnet").unwrap_err().to_string();
        assert!(msg.contains("resnet") && msg.contains("minigrid"), "{msg}");
    }

    #[test]
    fn a_ppo_section_round_trips_and_switching_algorithm_is_named() {
        let ppo = parse(&format!("{MINIMAL}[ppo]\nn_epochs = 4\ntarget_kl = 0.01\n")).unwrap();
        let settings = ppo.ppo.clone().expect("a [ppo] section");
        assert_eq!((settings.n_epochs, settings.minibatches), (4, 4));
        assert_eq!(
            (settings.target_kl, settings.clip_range_vf),
            (0.01, f64::INFINITY)
        );
        let written = ppo.to_toml();
        assert!(written.contains("clip_range_vf = inf"), "{written}");
        assert_eq!(parse(&written).unwrap(), ppo);
        // A2C configs write no `[ppo]` section.
        let a2c = parse(&format!("{MINIMAL}[a2c]\n")).unwrap();
        assert!(a2c.ppo.is_none() && !a2c.to_toml().contains("ppo"));
        let edits = ppo.edits_since(&a2c);
        let list = ConfigEdit::list(&edits);
        assert!(list.contains("ppo.n_epochs = 4 (was unset)"), "{list}");
        assert!(edits.iter().all(|e| !e.defines_run()), "{list}");
        let back = ConfigEdit::list(&a2c.edits_since(&ppo));
        assert!(back.contains("ppo.target_kl = unset (was 0.01)"), "{back}");
    }

    #[test]
    fn integer_keys_take_floats_that_are_integers() {
        let c = parse(&format!(
            "{MINIMAL}[run]\ntotal_steps = 1e6\n[log]\neval_episodes = 2.5e2\n[optim]\nlr = 1\n"
        ))
        .unwrap();
        assert_eq!((c.run.total_steps, c.log.eval_episodes), (1_000_000, 250));
        assert_eq!(c.optim.lr, 1.0);
        let set = |s: &str| crate::overrides::apply(&c, &[s.to_string()]);
        assert_eq!(
            set("run.total_steps=2e6").unwrap().run.total_steps,
            2_000_000
        );
        assert_eq!(set("optim.lr=3e-4").unwrap().optim.lr, 3e-4);
        // Not an integer, or beyond what a float says exactly: refused, naming the key.
        for bad in ["1.5", "-1e3", "1e300"] {
            let msg = format!(
                "{:#}",
                parse(&format!("{MINIMAL}[run]\ntotal_steps = {bad}\n")).unwrap_err()
            );
            assert!(msg.contains("total_steps"), "{bad}: {msg}");
        }
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("[optim]\nlrr = 1e-3\n", "lrr"),
            ("[optim]\nlr = \"fast\"\n", "lr"),
            ("[a2c]\ngamma = 2.0\n", "a2c.gamma"),
            ("[core]\nhidden = 0\n", "hidden"),
            ("[log]\nevery = 0\n", "log.every"),
            ("[coer]\nhidden = 3\n", "coer"),
            ("[run]\nname = \"../out\"\n", "run.name"),
            ("[run]\nname = \"\"\n", "run.name"),
        ];
        for (extra, key) in cases {
            let msg = format!("{:#}", parse(&format!("{MINIMAL}{extra}")).unwrap_err());
            assert!(msg.contains(key), "{extra}: {msg}");
        }
        let msg = format!(
            "{:#}",
            parse("[env]\nid = \"mase\"\nnum_envs = 1\n").unwrap_err()
        );
        assert!(
            msg.contains("id = \"mase\"") && msg.contains("unknown environment"),
            "{msg}"
        );
    }
}
