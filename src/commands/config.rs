//! `plastic config`: a whole config, every key at its starting default (what `plastic train
//! --env` trains with), to start an experiment from.
use crate::cli::ConfigArgs;
use crate::config::ExperimentConfig;

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = ExperimentConfig::for_env(&args.env, &args.set)?;
    print!("{}", text(&config));
    Ok(())
}

/// The config as a file `plastic train` takes, under a line saying where the keys are explained.
fn text(config: &ExperimentConfig) -> String {
    format!(
        "# Every key of a plastic config at its starting default (`plastic config {}`: what \
         `plastic train --env` trains with).\n# What each key does: configs/README.md and the \
         shipped configs/*.toml. Only `env.id` is required.\n\n{}",
        config.env.id,
        config.to_toml()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::starting;
    use plastic_envs::registry::EnvId;

    #[test]
    fn the_printed_config_loads_back_as_itself_with_every_key() {
        for env in ["maze", "bandit-dependent-easy:len=10", "tmaze"] {
            let config = starting::config(EnvId::parse(env).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text(&config)).unwrap();
            assert_eq!(ExperimentConfig::load(&path, &[]).unwrap(), config, "{env}");
            let mut written = ExperimentConfig::keys_in_file(&path).unwrap();
            let mut every = config.keys();
            written.sort();
            every.sort();
            assert_eq!(written, every, "{env}");
        }
    }
}
