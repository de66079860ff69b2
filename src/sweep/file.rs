//! Sweep files: a base config, named variants (overrides), optional grid axes, and seeds,
//! expanded into one resolved config per (variant, seed). Every mistake is found before
//! anything starts, with the key or variant named.
use crate::config::ExperimentConfig;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub sweep: SweepSection,
    /// Variant name → its overrides (`section.key=value`). None: one variant, `base`.
    #[serde(default)]
    pub variants: BTreeMap<String, Vec<String>>,
    /// Config key → values: every combination is crossed with every variant.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub slurm: SlurmSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// The sweep's folder is `runs/<name>/` (default: the file's name).
    pub name: Option<String>,
    /// The base config, relative to the sweep file.
    pub config: PathBuf,
    /// A count (seeds 0..n) or a list of seeds.
    pub seeds: Seeds,
    /// Overrides for every run.
    #[serde(default)]
    pub set: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// `#SBATCH` settings for `--backend slurm`; flags of `plastic sweep` take precedence.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub partition: Option<String>,
    /// Time limit of each array task, in SLURM's form (`HH:MM:SS`, `D-HH:MM:SS`, minutes).
    pub time: Option<String>,
    /// CPUs per task (default: the runs' `run.threads`, at least 1).
    pub cpus_per_task: Option<usize>,
    /// Seconds before the time limit at which a task checkpoints and requeues itself.
    pub signal_seconds: Option<u64>,
    /// More `sbatch` options, one per item (e.g. `--mem=4G`, `--account=lab`).
    #[serde(default)]
    pub sbatch: Vec<String>,
}

/// One run of the sweep, resolved.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub variant: String,
    pub seed: u64,
    pub config: ExperimentConfig,
}

impl SweepFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep file `{}`", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
            .with_context(|| format!("invalid sweep file `{}`", path.display()))
    }

    /// The sweep's name: `sweep.name`, or the file's stem.
    pub fn name(&self, path: &Path) -> anyhow::Result<String> {
        let name = match &self.sweep.name {
            Some(n) => n.clone(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        ensure_folder_name(&name, "sweep.name")?;
        Ok(name)
    }

    pub fn seeds(&self) -> anyhow::Result<Vec<u64>> {
        let seeds = match &self.sweep.seeds {
            Seeds::Count(n) => (0..*n).collect(),
            Seeds::List(list) => list.clone(),
        };
        anyhow::ensure!(!seeds.is_empty(), "sweep.seeds: give at least one seed");
        if let Some((i, j)) = first_repeat(&seeds, |a, b| a == b) {
            bail!(
                "sweep.seeds lists seed {} twice (items {} and {}): each seed is one run, so \
                 list it once",
                seeds[i],
                i + 1,
                j + 1
            );
        }
        Ok(seeds)
    }

    /// Every (variant, seed) with its resolved config, seed by seed (every variant of seed 0
    /// first), so that a sweep stopped part-way has as many seeds of each variant.
    pub fn expand(&self, path: &Path) -> anyhow::Result<Vec<PlannedRun>> {
        let base = crate::durable::folder_of(path).join(&self.sweep.config);
        let seeds = self.seeds()?;
        let variants: Vec<(String, Vec<String>)> = match self.variants.is_empty() {
            true => vec![("base".into(), Vec::new())],
            false => self.variants.clone().into_iter().collect(),
        };
        let mut configs: Vec<(String, ExperimentConfig)> = Vec::new();
        for (name, overrides) in variants {
            for (suffix, grid) in self.grid_points()? {
                let variant = format!("{name}{suffix}");
                ensure_folder_name(&variant, &format!("variant `{variant}`"))?;
                // Two entries in one folder would train one run and count it twice.
                anyhow::ensure!(
                    !configs.iter().any(|(v, _)| *v == variant),
                    "the sweep has two runs named `{variant}` (a variant's name and a grid \
                     value's text make the same `<variant>,<key>=<value>`): each run needs its \
                     own folder, so rename the variant"
                );
                let all: Vec<String> = self
                    .sweep
                    .set
                    .iter()
                    .chain(&overrides)
                    .chain(&grid)
                    .cloned()
                    .collect();
                let config = ExperimentConfig::load(&base, &all)
                    .with_context(|| format!("variant `{variant}` of the sweep"))?;
                configs.push((variant, config));
            }
        }
        let mut planned = Vec::new();
        for &seed in &seeds {
            for (variant, config) in &configs {
                let mut config = config.clone();
                config.run.seed = seed;
                planned.push(PlannedRun {
                    variant: variant.clone(),
                    seed,
                    config,
                });
            }
        }
        Ok(planned)
    }

    /// Every combination of the grid's values: a name suffix (`,key=value` each) and the
    /// overrides. One empty point without a grid.
    fn grid_points(&self) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        let mut points = vec![(String::new(), Vec::new())];
        for (key, values) in &self.grid {
            anyhow::ensure!(
                !values.is_empty(),
                "grid.\"{key}\": give at least one value"
            );
            if let Some((i, j)) = first_repeat(values, same_value) {
                bail!(
                    "grid.\"{key}\" lists the value {} twice (items {} and {}, equal as \
                     read, as 1e-3 and 0.001 are): each value is one run per seed, so list it \
                     once",
                    values[i],
                    i + 1,
                    j + 1
                );
            }
            let mut next = Vec::new();
            for (suffix, sets) in &points {
                for v in values {
                    let shown = match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let mut sets = sets.clone();
                    sets.push(format!("{key}={v}"));
                    next.push((format!("{suffix},{key}={shown}"), sets));
                }
            }
            points = next;
        }
        Ok(points)
    }
}

/// The positions of the first item that equals an earlier one.
fn first_repeat<T>(items: &[T], same: impl Fn(&T, &T) -> bool) -> Option<(usize, usize)> {
    (1..items.len()).find_map(|j| (0..j).find(|&i| same(&items[i], &items[j])).map(|i| (i, j)))
}

/// Whether two grid values set a key alike: as parsed, with `1` and `1.0` one number (a
/// float key reads both).
fn same_value(a: &toml::Value, b: &toml::Value) -> bool {
    use toml::Value::{Float, Integer};
    match (a, b) {
        (Integer(i), Float(f)) | (Float(f), Integer(i)) => *i as f64 == *f,
        _ => a == b,
    }
}

/// Names that become folders: not empty, no `/`, not starting with `.`.
fn ensure_folder_name(name: &str, what: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        bail!("{what} = {name:?}: it names a folder, so it must be non-empty, without `/` and not start with `.`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_sweep_file_expands() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sweeps");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = SweepFile::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            let runs = file.expand(&path).unwrap_or_else(|e| panic!("{e:#}"));
            let seeds = file.seeds().unwrap().len();
            assert_eq!(
                runs.len(),
                seeds * file.variants.len().max(1),
                "{}",
                path.display()
            );
            n += 1;
        }
        assert!(n >= 3, "{n} sweep files");
    }
}
