//! `plastic train` and `plastic resume`: the training loop around the library's trainer, with
//! logging, checkpoints, a progress bar and a clean stop on Ctrl-C.
use crate::cli::{ResumeArgs, TrainArgs};
use crate::commands::eval::{agent_stats, EVAL_SALT};
use crate::config::{ConfigEdit, ExperimentConfig};
use crate::pictures;
use crate::run_dir::{folder_of, load_checkpoint, shell_word, RunDir};
use crate::tensorboard::TensorBoard;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use plastic_agents::a2c::{TrainError, Trainer};
use plastic_agents::acting::ActionMode;
use plastic_agents::device;
use plastic_agents::metrics::MetricsSink;
use plastic_envs::registry::EnvConfig;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where runs go unless `--out` says otherwise.
const RUNS: &str = "runs";

pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let mut config = ExperimentConfig::load(&args.config, &args.set)?;
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(d) = args.device {
        config.run.device = d.into();
    }
    let device = config.run.device.resolve()?;
    let trainer = build(&config, device)?;
    let run = RunDir::create(Path::new(RUNS), &config.run.name, args.out.as_deref())?;
    let _lock = run.lock()?;
    run.write_config(&config)?;
    eprintln!("run folder: {}", run.path.display());
    drive(trainer, &config, &run)
}

pub fn resume(args: &ResumeArgs) -> anyhow::Result<()> {
    let run = RunDir::open(&args.run)?;
    let _lock = run.lock()?;
    let mut config = run.config()?;
    if let Some(d) = args.device {
        config.run.device = d.into();
    }
    if let Some(steps) = args.total_steps {
        config.run.total_steps = steps;
    }
    let device = config.run.device.resolve()?;
    if run.latest_checkpoint()?.is_none() {
        // Stopped before its first checkpoint (killed, or diverged at once): nothing to
        // continue from, so the run starts over with its config.
        eprintln!(
            "`{}` has no checkpoint yet: training it from the start",
            run.path.display()
        );
        let trainer = build(&config, device)?;
        run.write_config(&config)?;
        return drive(trainer, &config, &run);
    }
    let loaded = load_checkpoint(&run.path)?;
    let run_config = run.path.join(crate::run_dir::CONFIG);
    let (fixed, tuned): (Vec<_>, Vec<_>) = config
        .edits_since(&loaded.config)
        .into_iter()
        .partition(ConfigEdit::defines_run);
    anyhow::ensure!(
        fixed.is_empty(),
        "`{}` was edited since checkpoint `{}`: {}. These keys define the run and cannot change \
         when it resumes; train with them in a new run: plastic train {} --out <new folder>",
        run_config.display(),
        loaded.path.display(),
        ConfigEdit::list(&fixed),
        shell_word(&run_config)
    );
    if !tuned.is_empty() {
        eprintln!(
            "note: `{}` was edited since the checkpoint; the run goes on with {}",
            run_config.display(),
            ConfigEdit::list(&tuned)
        );
    }
    let mut trainer = build(&config, device)?;
    trainer
        .restore(&loaded.snapshot)
        .with_context(|| format!("resuming from `{}`", loaded.path.display()))?;
    if trainer.is_done() {
        let trained = trainer.progress().env_steps;
        match args.total_steps {
            Some(steps) => anyhow::bail!(
                "--total-steps {steps} is not above the {trained} steps `{}` has trained; \
                 give a larger number",
                run.path.display()
            ),
            None => eprintln!(
                "run `{}` has already trained for {trained} steps; pass --total-steps to \
                 train longer",
                run.path.display()
            ),
        }
        return Ok(());
    }
    run.write_config(&config)?;
    eprintln!(
        "resuming {} from update {} ({} steps)",
        run.path.display(),
        trainer.progress().updates,
        trainer.progress().env_steps
    );
    if !trainer.whole_episode() && loaded.snapshot.under_way.is_none() {
        eprintln!(
            "note: the checkpoint holds no episodes under way ({} cannot save its state), so \
             training goes on with fresh episodes rather than exactly where it stopped",
            config.env.id
        );
    }
    drive(trainer, &config, &run)
}

pub(crate) fn build(config: &ExperimentConfig, device: tch::Device) -> anyhow::Result<Trainer> {
    if config.run.threads > 0 {
        tch::set_num_threads(config.run.threads as i32);
    }
    let env = EnvConfig::parse(&config.env.id)?.build(config.env.num_envs)?;
    Ok(Trainer::new(
        env,
        config.trainer(),
        config.run.total_steps,
        config.run.seed,
        device,
    )?)
}

/// Stops the loop at the next update boundary on the first Ctrl-C; a second one exits at once
/// (files are written atomically, so that loses at most the current update).
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: saving a checkpoint after this update (Ctrl-C again to quit now)"
        );
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not save a checkpoint: {e}");
    }
    flag
}

fn drive(mut trainer: Trainer, config: &ExperimentConfig, run: &RunDir) -> anyhow::Result<()> {
    device::keep_freed_memory();
    eprintln!(
        "backpropagation through time: {} (a2c.bptt = \"{}\")",
        trainer.engine().name(),
        config.a2c.bptt.name()
    );
    let stop = stop_flag();
    let mut tb = TensorBoard::new(&run.path);
    let env = EnvConfig::parse(&config.env.id)?;
    let log = &config.log;
    let bar = progress_bar(&trainer);
    let (mut last_time, mut last_steps) = (Instant::now(), trainer.progress().env_steps);
    let save = |trainer: &Trainer, tb: &mut TensorBoard| -> anyhow::Result<std::path::PathBuf> {
        tb.flush();
        run.save_checkpoint(config, &trainer.snapshot(), log.keep_checkpoints)
    };
    while !trainer.is_done() {
        if stop.load(Ordering::SeqCst) {
            let path = save(&trainer, &mut tb)?;
            bar.abandon();
            eprintln!(
                "stopped at update {}; checkpoint {}\ncontinue with: plastic resume {}",
                trainer.progress().updates,
                path.display(),
                shell_word(&run.path)
            );
            // Everything is saved; 130 (interrupted) tells scripts that training did not finish.
            std::process::exit(130);
        }
        let stats = match trainer.update() {
            Ok(s) => s,
            Err(e @ TrainError::NonFinite { .. }) => {
                bar.abandon();
                tb.flush();
                let next = match run.latest_checkpoint()? {
                    Some(p) => format!(
                        "last good checkpoint: {}; `plastic resume {}` goes on from it",
                        p.display(),
                        shell_word(&run.path)
                    ),
                    None => format!(
                        "no checkpoint was written yet; `plastic resume {}` trains it again \
                         from the start",
                        shell_word(&run.path)
                    ),
                };
                return Err(e).context(next);
            }
            Err(e) => return Err(e.into()),
        };
        let p = trainer.progress();
        let u = p.updates;
        let finished = trainer.is_done();
        if u.is_multiple_of(log.every) || finished {
            stats.log(p, &mut tb);
            let sps = (p.env_steps - last_steps) as f64 / last_time.elapsed().as_secs_f64();
            tb.scalar("time/sps", p.env_steps, sps);
            (last_time, last_steps) = (Instant::now(), p.env_steps);
            bar.set_message(match p.mean_return() {
                Some(r) => format!("{sps:.0} steps/s, reward {r:.2}"),
                None => format!("{sps:.0} steps/s"),
            });
            if bar.is_hidden() {
                eprintln!(
                    "update {u}/{}: {} steps, {sps:.0} steps/s, mean reward {}",
                    trainer.total_updates(),
                    p.env_steps,
                    p.mean_return().map_or("-".into(), |r| format!("{r:.3}"))
                );
            }
        }
        if u.is_multiple_of(log.histograms_every) || finished {
            trainer.log_parameters(&mut tb);
        }
        if u.is_multiple_of(log.eval_every) || finished {
            evaluate(&trainer, config, &env, &mut tb)?;
        }
        if u.is_multiple_of(log.images_every) || finished {
            images(&trainer, config, &env, &mut tb)?;
        }
        if u.is_multiple_of(log.checkpoint_every) || finished {
            save(&trainer, &mut tb)?;
        }
        bar.set_position(p.env_steps);
    }
    bar.finish();
    let p = trainer.progress();
    eprintln!(
        "done: {} updates, {} environment steps, mean reward of the last {} episodes {}\n\
         run folder: {}\nTensorBoard: scripts/with-env.sh tensorboard --logdir {}\n\
         evaluate:    plastic eval {}",
        p.updates,
        p.env_steps,
        p.recent.len(),
        p.mean_return().map_or("-".into(), |r| format!("{r:.3}")),
        run.path.display(),
        shell_word(folder_of(&run.path)),
        shell_word(&run.path)
    );
    Ok(())
}

fn progress_bar(trainer: &Trainer) -> ProgressBar {
    let per_update = trainer.env().num_envs() as u64 * trainer.rollout_len() as u64;
    let bar = ProgressBar::new(trainer.total_updates() * per_update);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {human_pos}/{human_len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("a valid template"),
    );
    bar.set_position(trainer.progress().env_steps);
    bar
}

/// Held-out episodes with frozen weights: `eval/ep_rew_mean`, and `eval/regret` for bandits.
fn evaluate(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &EnvConfig,
    sink: &mut dyn MetricsSink,
) -> anyhow::Result<()> {
    let stats = agent_stats(
        trainer.model(),
        env,
        config.log.eval_episodes,
        config.run.seed ^ EVAL_SALT,
        ActionMode::Sample,
    )?;
    let step = trainer.progress().env_steps;
    sink.scalar("eval/ep_rew_mean", step, stats.episode_return.mean);
    if let Some(r) = stats.regret {
        sink.scalar("eval/regret", step, r.mean);
    }
    Ok(())
}

fn images(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &EnvConfig,
    sink: &mut dyn MetricsSink,
) -> anyhow::Result<()> {
    let step = trainer.progress().env_steps;
    let seed = config.run.seed ^ EVAL_SALT;
    let hebb = match env {
        EnvConfig::Maze(maze) => {
            let pics = pictures::maze(trainer.model(), maze, 16, seed)?;
            sink.image("maze/visits", step, &pics.heat_map);
            sink.image("maze/path", step, &pics.path);
            pics.hebb
        }
        other => pictures::episode_trace(trainer.model(), other, seed)?,
    };
    if let Some(img) = hebb {
        sink.image("plasticity/hebb", step, &img);
    }
    Ok(())
}
