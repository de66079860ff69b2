//! `plastic train` and `plastic resume`: the training loop around the library's trainer, with
//! logging, checkpoints, a progress bar and a clean stop on Ctrl-C.
use crate::checkpoint;
use crate::cli::{ResumeArgs, TrainArgs};
use crate::commands::eval::{agent_stats, EVAL_SALT};
use crate::config::{ConfigEdit, ExperimentConfig};
use crate::durable::{folder_of, is_disk_full};
use crate::interrupt::{self, EXIT_INTERRUPTED};
use crate::output::plus_minus;
use crate::pending::Pending;
use crate::progress::TrainingLines;
use crate::records::Records;
use crate::run_dir::{shell_word, RunDir};
use crate::tensorboard::{HParam, TensorBoard};
use crate::{event_files, pictures, render};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use plastic_agents::a2c::{training_needs, TrainError, Trainer, TrainerConfig, UpdateStats};
use plastic_agents::acting::ActionMode;
use plastic_agents::device;
use plastic_agents::learning_dynamics::LearningDynamics;
use plastic_agents::metrics::{tags, MetricsSink};
use plastic_agents::spectra;
use plastic_envs::memory;
use plastic_envs::rollout::RolloutStats;
use plastic_envs::Environment;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where runs go unless `--out` says otherwise.
const RUNS: &str = "runs";

/// How a training process ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Trained to its total (or had already).
    Finished,
    /// Stopped by a signal, with a checkpoint saved.
    Stopped,
}

impl Ended {
    /// 130 (interrupted) tells scripts that training did not finish.
    pub fn exit_code(self) -> std::process::ExitCode {
        match self {
            Self::Finished => std::process::ExitCode::SUCCESS,
            Self::Stopped => std::process::ExitCode::from(EXIT_INTERRUPTED),
        }
    }
}

/// What a caller that embeds the training loop does around it: the Python trainer's callbacks
/// and its Ctrl-C check (`python/`). The CLI does nothing there ([`Unwatched`]).
pub trait Watch {
    /// The run's folder, once created or opened.
    fn run_folder(&mut self, _path: &Path) {}
    /// After each update and its periodic work, with the held-out evaluation that update did
    /// (`log.eval_every`); `false` stops training there with a checkpoint, as Ctrl-C does.
    fn after_update(&mut self, _trainer: &Trainer, _evaluation: Option<&RolloutStats>) -> bool {
        true
    }
}

/// The CLI's [`Watch`]: nothing between updates.
pub struct Unwatched;

impl Watch for Unwatched {}

pub fn train(args: &TrainArgs) -> anyhow::Result<Ended> {
    // Last, so it wins over a `--set` of the same key.
    let total_steps = args.total_steps.map(|n| format!("run.total_steps={n}"));
    let set: Vec<String> = args.set.iter().cloned().chain(total_steps).collect();
    let mut config = match (&args.config, &args.env) {
        (Some(path), _) => ExperimentConfig::load(path, &set)?,
        (None, Some(env)) => ExperimentConfig::for_env(env, &set)?,
        (None, None) => anyhow::bail!("give a config file or `--env ID` to train on"),
    };
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(d) = args.device {
        config.run.device = d;
    }
    train_config(config, args.out.as_deref(), &mut Unwatched)
}

/// Trains a new run of `config` in `out` (or the next free `runs/<name>_<n>`), as `plastic
/// train` does.
pub fn train_config(
    mut config: ExperimentConfig,
    out: Option<&Path>,
    watch: &mut dyn Watch,
) -> anyhow::Result<Ended> {
    let device = config.run.device.resolve()?;
    let trainer = build(&config, device, config.run.threads)?;
    record_python_path(&mut config)?;
    let run = RunDir::create(Path::new(RUNS), &config.run.name, out)?;
    let _lock = run.lock()?;
    eprintln!("run folder: {}", run.path.display());
    watch.run_folder(&run.path);
    run.write_config(&config)
        .and_then(|()| drive(trainer, &config, &run, watch))
        .map_err(|e| explain_disk_full(e, &run.path))
}

pub fn resume(args: &ResumeArgs) -> anyhow::Result<Ended> {
    resume_watched(args, &mut Unwatched)
}

/// [`resume`] with `watch` around the training loop.
pub fn resume_watched(args: &ResumeArgs, watch: &mut dyn Watch) -> anyhow::Result<Ended> {
    let run = RunDir::open(&args.run)?;
    let _lock = run.lock()?;
    watch.run_folder(&run.path);
    resume_locked(args, &run, watch).map_err(|e| explain_disk_full(e, &run.path))
}

/// [`resume`] by a caller that holds the run's lock already (a sweep task, which does more
/// under the same lock).
pub fn resume_held(
    args: &ResumeArgs,
    run: &RunDir,
    _lock: &std::fs::File,
) -> anyhow::Result<Ended> {
    resume_locked(args, run, &mut Unwatched).map_err(|e| explain_disk_full(e, &run.path))
}

fn resume_locked(args: &ResumeArgs, run: &RunDir, watch: &mut dyn Watch) -> anyhow::Result<Ended> {
    let newest = checkpoint::newest_good(&run.path)?;
    // Before the config is read: cut off, it may not read, or read with defaults.
    ensure_whole(run, newest.as_ref())?;
    let mut config = run.config()?;
    if let Some(d) = args.device {
        config.run.device = d;
    }
    let configured_steps = config.run.total_steps;
    if let Some(steps) = args.total_steps {
        config.run.total_steps = steps;
    }
    let device = config.run.device.resolve()?;
    let Some(loaded) = newest else {
        // Never trained (a sweep's run, created with its config), or stopped before its first
        // checkpoint (killed, or diverged at once): nothing to continue from, so the run
        // starts over with its config.
        match run.path.join(crate::records::EPISODES).exists() {
            false => eprintln!("training `{}` from the start", run.path.display()),
            true => eprintln!(
                "`{}` stopped before its first checkpoint: training it from the start",
                run.path.display()
            ),
        }
        let trainer = build(&config, device, config.run.threads)?;
        record_python_path(&mut config)?;
        run.write_config(&config)?;
        return drive(trainer, &config, run, watch);
    };
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
        loaded.checkpoint.path.display(),
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
    let threads = resume_threads(config.run.threads, loaded.checkpoint.threads);
    let mut trainer = build(&config, device, threads)?;
    trainer
        .restore(&loaded.checkpoint.snapshot)
        .with_context(|| format!("resuming from `{}`", loaded.checkpoint.path.display()))?;
    // A run stopped during its last update's evaluation is done once the resume has done it.
    let left_undone = Pending::at(&run.path, trainer.progress().updates)?.is_some();
    if trainer.is_done() && !left_undone {
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
        // A kill between the last checkpoint and its mark leaves the run unmarked.
        let p = trainer.progress();
        run.mark_done(p.updates, p.env_steps)?;
        return Ok(Ended::Finished);
    }
    if config.run.total_steps != configured_steps {
        note_new_length(&trainer, &config, configured_steps);
    }
    run.write_config(&config)?;
    eprintln!(
        "resuming {} from update {} ({} steps)",
        run.path.display(),
        trainer.progress().updates,
        trainer.progress().env_steps
    );
    if !trainer.whole_episode() && loaded.checkpoint.snapshot.under_way.is_none() {
        eprintln!(
            "note: the checkpoint holds no episodes under way ({} cannot save its state), so \
             training goes on with fresh episodes rather than exactly where it stopped",
            config.env.id
        );
    }
    drive(trainer, &config, run, watch)
}

/// Refuses a run `config.toml` that lacks keys plastic wrote into it: cut off (by a full disk,
/// or an editor's crash), it would resume with defaults the user never chose.
fn ensure_whole(run: &RunDir, newest: Option<&checkpoint::Loaded>) -> anyhow::Result<()> {
    let path = run.path.join(crate::run_dir::CONFIG);
    // The checkpoint's copy, written by the same version, is the reference where there is one.
    let (expected, source) = match newest {
        Some(c) => {
            let copy = c.checkpoint.path.join(crate::run_dir::CONFIG);
            let keys = ExperimentConfig::keys_in_text(&c.checkpoint.config, &copy)?;
            (keys, format!("`{}`", copy.display()))
        }
        None => (
            run.config()?.keys(),
            "a config of `plastic train`".to_string(),
        ),
    };
    let present = ExperimentConfig::keys_in_file(&path)?;
    let missing: Vec<String> = expected
        .into_iter()
        .filter(|k| !present.contains(k))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "`{}` lacks {} that plastic wrote into it ({}): it was cut off or emptied. Copy them \
         back from {source}, then resume",
        path.display(),
        match missing.len() {
            1 => "a key".to_string(),
            n => format!("{n} keys"),
        },
        missing.join(", ")
    );
    Ok(())
}

/// libtorch threads for a resumed run. Its sums depend on the thread count, so `run.threads
/// = 0` keeps the count the run was trained with (another machine's default would differ),
/// and an explicit other count is allowed with a warning.
fn resume_threads(configured: usize, trained_with: Option<usize>) -> usize {
    let Some(trained_with) = trained_with else {
        return configured;
    };
    if configured == 0 {
        let default = plastic_agents::threads::default_count();
        if default != trained_with {
            eprintln!(
                "note: keeping the {trained_with} libtorch threads the run was trained with, \
                 so that it goes on exactly as it would have (libtorch would choose {default} \
                 here; set run.threads to change it)"
            );
        }
        return trained_with;
    }
    if configured != trained_with {
        eprintln!(
            "warning: run.threads = {configured}, and the run was trained with {trained_with} \
             threads up to here: libtorch's sums depend on the thread count, so from here on \
             its numbers differ from those of an uninterrupted run"
        );
    }
    configured
}

/// Says what a new `--total-steps` changes besides the length, where the user may not expect
/// it: a run ending before its configured total, and the schedules that span the whole run.
fn note_new_length(trainer: &Trainer, config: &ExperimentConfig, configured_steps: u64) {
    let per_update = (trainer.env().num_envs() * trainer.rollout_len()) as u64;
    let before = configured_steps.div_ceil(per_update).max(1);
    let (now, update) = (trainer.total_updates(), trainer.progress().updates);
    let lr = |total| config.optim.lr_at(update, total);
    let entropy = |total| config.a2c.entropy_at(update, total);
    let mut changed = Vec::new();
    if lr(before) != lr(now) {
        changed.push("learning rate");
    }
    if entropy(before) != entropy(now) {
        changed.push("entropy bonus");
    }
    let shorter = config.run.total_steps < configured_steps;
    if !shorter && changed.is_empty() {
        // Longer, and nothing else changes: what was asked for.
        return;
    }
    let shorter = match shorter {
        true => "shortened",
        false => "lengthened",
    };
    eprintln!(
        "note: the run is {shorter} from {configured_steps} to {} steps{}",
        config.run.total_steps,
        match changed.is_empty() {
            true => String::new(),
            false => format!(
                "; the {} schedule spans the whole run, so it changes from here on",
                changed.join(" and ")
            ),
        }
    );
}

/// The trainer for `config`, with `threads` CPU threads (0: libtorch's choice; shared as
/// [`plastic_agents::threads`] says), once its sizes are known to fit in memory.
pub(crate) fn build(
    config: &ExperimentConfig,
    device: tch::Device,
    threads: usize,
) -> anyhow::Result<Trainer> {
    ensure_training_fits(config)?;
    let env = config.env.id.env().build(config.env.num_envs)?;
    let trainer = TrainerConfig {
        threads,
        ..config.trainer()
    };
    Ok(Trainer::new(
        env,
        trainer,
        config.run.total_steps,
        config.run.seed,
        device,
    )?)
}

/// Adds the folders the environment's own Python modules came from (the current folder,
/// `PYTHONPATH`) to `env.python_path`, so that the run's config builds it again from anywhere.
fn record_python_path(config: &mut ExperimentConfig) -> anyhow::Result<()> {
    for dir in config.env.id.env().python_path()? {
        if !config.env.python_path.contains(&dir) {
            config.env.python_path.push(dir);
        }
    }
    Ok(())
}

/// Refuses `config` when training it needs more memory than this machine has now: checked by
/// every start of a run, and by a sweep for each of its runs before it creates any.
pub(crate) fn ensure_training_fits(config: &ExperimentConfig) -> anyhow::Result<()> {
    let spec = config.env.id.env().build(1)?.spec().clone();
    let mut needs = training_needs(&config.trainer(), &spec, config.env.num_envs)?;
    let evaluations = config.log.eval_episodes;
    needs.push(memory::episode_records(evaluations, "log.eval_episodes ="));
    memory::ensure_fits(
        &needs,
        "env.num_envs, core.hidden, a2c.rollout_len or log.eval_episodes",
    )?;
    Ok(())
}

/// A full disk stops the run with its checkpoints intact: one paragraph saying which one is
/// good and what to do, in place of the bare system error.
fn explain_disk_full(err: anyhow::Error, run: &Path) -> anyhow::Error {
    if !is_disk_full(&err) {
        return err;
    }
    let resume = format!("plastic resume {}", shell_word(run));
    let newest = checkpoint::newest(run).ok().flatten();
    let state = match newest {
        Some(p) => format!(
            "its newest checkpoint, `{}`, is complete. Free some space, then continue with \
             `{resume}`",
            p.display()
        ),
        None => format!(
            "it has no checkpoint yet. Free some space, then `{resume}` trains it from the start"
        ),
    };
    anyhow::anyhow!(
        "the disk holding `{}` is full (No space left on device), so training stopped; {state}",
        run.display()
    )
}

fn drive(
    trainer: Trainer,
    config: &ExperimentConfig,
    run: &RunDir,
    watch: &mut dyn Watch,
) -> anyhow::Result<Ended> {
    let newest = checkpoint::newest(&run.path)?;
    let result = drive_logged(trainer, config, run, watch);
    // Stopped by a full disk before saving a checkpoint, this process logged only points past
    // the newest one, which the next resume drops: its event file goes, so that retries on
    // the full disk add no files.
    if let Err(e) = &result {
        if is_disk_full(e) && checkpoint::newest(&run.path).ok().flatten() == newest {
            event_files::remove_this_process(&run.path);
        }
    }
    result
}

fn drive_logged(
    mut trainer: Trainer,
    config: &ExperimentConfig,
    run: &RunDir,
    watch: &mut dyn Watch,
) -> anyhow::Result<Ended> {
    device::keep_freed_memory();
    eprintln!(
        "backpropagation through time: {} (a2c.bptt = \"{}\")",
        trainer.engine().name(),
        config.a2c.bptt.name()
    );
    run.mark_unfinished()?;
    let pending = Pending::at(&run.path, trainer.progress().updates)?;
    let redone = |redo: &Redo| pending.as_ref().is_some_and(|p| p.holds(redo.name));
    // What a process killed after its last checkpoint logged is logged again from here, and
    // what the checkpoint's update left undone is done again.
    let redone_tags: Vec<&str> = REDOABLE
        .iter()
        .filter(|r| redone(r))
        .flat_map(|r| r.tags.iter().copied())
        .collect();
    event_files::cut_after(&run.path, trainer.progress().env_steps, &redone_tags)?;
    let mut tb = TensorBoard::new(&run.path);
    // What produced the event files, in them: the resolved config (again after a resume,
    // which may have tuned it).
    let mut hparams = config.hparams();
    // A sweep's runs differ by their variant: a hyperparameter to filter and compare by.
    if let Some(variant) = crate::sweep::variant_of(&run.path) {
        hparams.push(("sweep.variant".into(), HParam::Text(variant)));
    }
    tb.config(trainer.progress().env_steps, &hparams);
    let mut records = Records::open(&run.path, trainer.progress().env_steps, redone(&EVALUATION))?;
    let env = config.env.id.env();
    let log = &config.log;
    // `log.animation_every` was checked to fit the environment with the config.
    let animation_format = (log.animation_every > 0)
        .then(|| render::best_format(env))
        .flatten();
    let bar = progress_bar(&trainer);
    let (mut last_time, mut last_steps) = (Instant::now(), trainer.progress().env_steps);
    // Off a terminal, a line of progress every so often, however fast updates go.
    let mut lines = TrainingLines::new(trainer.progress().env_steps);
    let total_steps =
        trainer.total_updates() * (trainer.env().num_envs() * trainer.rollout_len()) as u64;
    // Time spent in updates by this process: the lines' pace leaves evaluations out.
    let training = std::cell::Cell::new(Duration::ZERO);
    // The best held-out score so far: the best checkpoint's, kept across resumes.
    let mut best = checkpoint::best_score(&run.path).map(|b| b.reward_mean);
    let reached = std::cell::Cell::new(None::<String>);
    // This update's held-out evaluation, for the watch.
    let evaluated = std::cell::Cell::new(None::<RolloutStats>);
    let save = |trainer: &Trainer,
                tb: &mut TensorBoard,
                records: &mut Records|
     -> anyhow::Result<std::path::PathBuf> {
        tb.flush();
        records.sync()?;
        checkpoint::save(&run.path, config, &trainer.snapshot(), log.keep_checkpoints)
    };
    // In this order after an update; a stop request skips the pictures, not the checkpoint.
    // The singular values at each spectra point so far, drawn into pictures as they grow (a
    // resumed run's start at its resume).
    let dynamics = std::cell::RefCell::new(LearningDynamics::new(trainer.model()));
    let mut periodic = [
        Periodic::new(log.every, |t| {
            let p = t.trainer.progress();
            if let Some(stats) = t.stats {
                stats.log(p, t.tb);
            }
            let sps = (p.env_steps - last_steps) as f64 / last_time.elapsed().as_secs_f64();
            t.tb.scalar(tags::time::SPS, p.env_steps, sps);
            (last_time, last_steps) = (Instant::now(), p.env_steps);
            bar.set_message(match p.mean_return() {
                Some(r) => format!("{sps:.0} steps/s, reward {r:.2}"),
                None => format!("{sps:.0} steps/s"),
            });
            let line = bar.is_hidden().then(|| {
                let last = t.trainer.is_done();
                lines.due(p.env_steps, total_steps, training.get(), last)
            });
            if let Some(pace) = line.flatten() {
                eprintln!(
                    "update {}/{}: {} steps, {pace}, mean reward {}",
                    p.updates,
                    t.trainer.total_updates(),
                    p.env_steps,
                    p.mean_return().map_or("-".into(), |r| format!("{r:.3}"))
                );
            }
            Ok(true)
        }),
        Periodic::new(log.histograms_every, |t| {
            t.trainer.log_parameters(t.tb);
            Ok(true)
        }),
        Periodic::redoable(EVALUATION, log.eval_every, |t| {
            let Some(stats) = evaluate(t.trainer, config, env, t.tb, t.records)? else {
                return Ok(false);
            };
            let p = t.trainer.progress();
            let score = stats.episode_return;
            let improved = best.is_none_or(|b| score.mean > b);
            let mut line = format!(
                "eval at update {} ({} steps): {}",
                p.updates,
                p.env_steps,
                eval_summary(&stats, config.log.eval_greedy)
            );
            if improved {
                best = Some(score.mean);
                if log.keep_best {
                    let saved = checkpoint::save_best(
                        &run.path,
                        config,
                        &t.trainer.snapshot(),
                        &checkpoint::BestScore {
                            update: p.updates,
                            step: p.env_steps,
                            reward_mean: score.mean,
                            reward_ci95: score.ci95(),
                            episodes: stats.episodes,
                            greedy: config.log.eval_greedy,
                        },
                    )?;
                    line += &format!("; best so far, saved as {}", saved.display());
                }
            }
            say(&bar, &line);
            if score.mean >= log.eval_target {
                reached.set(Some(format!(
                    "reached log.eval_target = {}: held-out mean reward {:.3} at update {}",
                    log.eval_target, score.mean, p.updates
                )));
            }
            evaluated.set(Some(stats));
            Ok(true)
        }),
        Periodic::redoable(IMAGES, log.images_every, |t| {
            images(t.trainer, config, env, t.tb).map(|()| true)
        }),
        Periodic::redoable(ANIMATION, log.animation_every, |t| match animation_format {
            Some(format) => animation(t.trainer, config, env, &run.path, format).map(|()| true),
            None => Ok(true),
        }),
        Periodic::new(log.spectra_every, |t| match log.spectra_every {
            0 => Ok(true),
            _ => spectra_point(t.trainer, config, env, t.tb, &mut dynamics.borrow_mut())
                .map(|()| true),
        }),
        Periodic::new(log.checkpoint_every, |t| {
            save(t.trainer, t.tb, t.records).map(|_| true)
        }),
    ];
    if let Some(p) = &pending {
        say(
            &bar,
            &format!(
                "doing what update {} left undone when it was stopped: {}",
                p.update,
                p.work.join(", ")
            ),
        );
        let mut after = AfterUpdate {
            trainer: &trainer,
            stats: None,
            tb: &mut tb,
            records: &mut records,
            run: &run.path,
        };
        for work in periodic
            .iter_mut()
            .filter(|w| w.redo.is_some_and(|r| redone(&r)))
        {
            work.now(&mut after)?;
        }
        if !interrupt::requested() {
            tb.flush();
            records.sync()?;
            Pending::clear(&run.path)?;
        }
    }
    // The untrained network's spectrum: where training starts from.
    if log.spectra_every > 0 && trainer.progress().updates == 0 {
        spectra_point(&trainer, config, env, &mut tb, &mut dynamics.borrow_mut())?;
    }
    let mut exploding = ExplodingUpdates::default();
    let mut watch_stopped = false;
    loop {
        if let Some(why) = reached.take() {
            // Stopped early, as finished: the checkpoint holds the weights that reached it.
            let path = save(&trainer, &mut tb, &mut records)?;
            bar.abandon();
            eprintln!("{why}; training stops here, checkpoint {}", path.display());
            break;
        }
        let u = trainer.progress().updates;
        // A stop after the last update is a stop only if that update left work undone.
        let stop = (interrupt::requested() || watch_stopped)
            && (!trainer.is_done() || Pending::left_at(&run.path, u));
        if stop {
            let path = save(&trainer, &mut tb, &mut records)?;
            bar.abandon();
            eprintln!(
                "stopped at update {}; checkpoint {}\ncontinue with: plastic resume {}",
                trainer.progress().updates,
                path.display(),
                shell_word(&run.path)
            );
            return Ok(Ended::Stopped);
        }
        if trainer.is_done() {
            break;
        }
        let update_started = Instant::now();
        let updated = trainer.update();
        training.set(training.get() + update_started.elapsed());
        let stats = match updated {
            Ok(s) => s,
            Err(e @ (TrainError::NonFinite { .. } | TrainError::EnvNonFinite { .. })) => {
                bar.abandon();
                tb.flush();
                // Checkpoints are checked finite when saved, so the newest is a good one.
                let next = match checkpoint::newest(&run.path)? {
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
        exploding.check(stats.update_ratio, u);
        records.episodes(&stats.episodes, p.env_steps)?;
        let mut after = AfterUpdate {
            trainer: &trainer,
            stats: Some(&stats),
            tb: &mut tb,
            records: &mut records,
            run: &run.path,
        };
        for work in &mut periodic {
            work.run(u, finished, &mut after)?;
        }
        bar.set_position(p.env_steps);
        watch_stopped = !watch.after_update(&trainer, evaluated.take().as_ref());
    }
    bar.finish();
    let p = trainer.progress();
    run.mark_done(p.updates, p.env_steps)?;
    // Absolute paths: the hints work from any folder.
    let folder = std::path::absolute(&run.path).unwrap_or_else(|_| run.path.clone());
    let best = match log.keep_best {
        true => format!(
            " (best: plastic eval {})",
            shell_word(&folder.join(checkpoint::BEST))
        ),
        false => String::new(),
    };
    eprintln!(
        "done: {} updates, {} environment steps, mean reward of the last {} episodes {}\n\
         run folder: {}\nTensorBoard: {}\nevaluate:    plastic eval {}{best}",
        p.updates,
        p.env_steps,
        p.recent.len(),
        p.mean_return().map_or("-".into(), |r| format!("{r:.3}")),
        run.path.display(),
        tensorboard_hint(folder_of(&folder)),
        shell_word(&folder)
    );
    Ok(Ended::Finished)
}

/// A line for the console beside the progress bar (above it on a terminal).
fn say(bar: &ProgressBar, line: &str) {
    match bar.is_hidden() {
        true => eprintln!("{line}"),
        false => bar.println(line),
    }
}

/// A held-out evaluation in one line: mean reward (and regret) with 95% intervals.
fn eval_summary(stats: &RolloutStats, greedy: bool) -> String {
    let mut out = format!(
        "reward {}",
        plus_minus(stats.episode_return.mean, stats.episode_return.ci95())
    );
    if let Some(r) = stats.regret {
        out += &format!(", regret {}", plus_minus(r.mean, r.ci95()));
    }
    let mode = match greedy {
        true => ", greedy",
        false => "",
    };
    out + &format!(" (95% CI, {} episodes{mode})", stats.episodes)
}

/// The command that shows `logdir` in TensorBoard, from any folder: absolute paths, through the
/// repository's `scripts/with-env.sh` (whose environment has TensorBoard) when this binary was
/// built from one that still has it.
fn tensorboard_hint(logdir: &Path) -> String {
    let logdir = std::path::absolute(logdir).unwrap_or_else(|_| logdir.to_path_buf());
    let with_env = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/with-env.sh");
    let launcher = match with_env.is_file() {
        true => format!("{} tensorboard", shell_word(&with_env)),
        false => "tensorboard".to_string(),
    };
    format!("{launcher} --logdir {}", shell_word(&logdir))
}

/// The folder of a run that holds its periodic animations.
pub const ANIMATIONS: &str = "animations";

/// Work `drive` does besides training, every `every` updates (a `log.*_every` key) and after
/// the last one.
struct Periodic<'w> {
    every: u64,
    /// For work on the model alone, which a stop leaves to the resume: `None` for work on the
    /// update (its statistics, the checkpoint), which is never left.
    redo: Option<Redo>,
    work: Work<'w>,
}

/// Work that a stop leaves undone for the resume to do ([`Pending`]): its name there and the
/// TensorBoard tags it logs under.
#[derive(Clone, Copy)]
struct Redo {
    name: &'static str,
    tags: &'static [&'static str],
}

const EVALUATION: Redo = Redo {
    name: "evaluation",
    tags: &[tags::eval::EP_REW_MEAN, tags::eval::REGRET],
};
const IMAGES: Redo = Redo {
    name: "images",
    tags: &pictures::TENSORBOARD_TAGS,
};
const ANIMATION: Redo = Redo {
    name: "animation",
    tags: &[],
};
const REDOABLE: [Redo; 3] = [EVALUATION, IMAGES, ANIMATION];

/// `Ok(false)`: given up for a stop.
type Work<'w> = Box<dyn FnMut(&mut AfterUpdate<'_>) -> anyhow::Result<bool> + 'w>;

/// What periodic work has at hand after an update.
struct AfterUpdate<'a> {
    trainer: &'a Trainer,
    /// `None` when a resume redoes the work an update left.
    stats: Option<&'a UpdateStats>,
    tb: &'a mut TensorBoard,
    records: &'a mut Records,
    run: &'a Path,
}

impl<'w> Periodic<'w> {
    fn new(
        every: u64,
        work: impl FnMut(&mut AfterUpdate<'_>) -> anyhow::Result<bool> + 'w,
    ) -> Self {
        Self {
            every,
            redo: None,
            work: Box::new(work),
        }
    }

    fn redoable(
        redo: Redo,
        every: u64,
        work: impl FnMut(&mut AfterUpdate<'_>) -> anyhow::Result<bool> + 'w,
    ) -> Self {
        Self {
            redo: Some(redo),
            ..Self::new(every, work)
        }
    }

    /// Does the work if `update` is one of its updates or, `finished`, the last.
    fn run(
        &mut self,
        update: u64,
        finished: bool,
        after: &mut AfterUpdate<'_>,
    ) -> anyhow::Result<()> {
        match update.is_multiple_of(self.every) || finished {
            true => self.now(after),
            false => Ok(()),
        }
    }

    /// Does the work now. Redoable work is not started once a stop is asked for (the
    /// checkpoint the stop saves comes first); left or given up, it is named for the resume.
    fn now(&mut self, after: &mut AfterUpdate<'_>) -> anyhow::Result<()> {
        let Some(redo) = self.redo else {
            return (self.work)(after).map(drop);
        };
        if !interrupt::requested() && (self.work)(after)? {
            return Ok(());
        }
        let p = after.trainer.progress();
        Pending::leave(after.run, p.updates, p.env_steps, redo.name)
    }
}

/// Updates that change the parameters by more than their own norm: with Adam, a learning
/// rate far too high (1e9 keeps every number finite and trains nothing). Warned about in the
/// console; `train/update_ratio` shows it in TensorBoard.
#[derive(Default)]
struct ExplodingUpdates {
    count: u64,
}

impl ExplodingUpdates {
    /// ‖Δθ‖ / ‖θ‖ above which an update is exploding; healthy runs stay near 1e-3–1e-2.
    const BOUND: f64 = 1.0;
    /// Repeats of the warning are this many exploding updates apart.
    const EVERY: u64 = 100;

    fn check(&mut self, ratio: f64, update: u64) {
        if ratio <= Self::BOUND {
            return;
        }
        if self.count.is_multiple_of(Self::EVERY) {
            eprintln!(
                "warning: update {update} changed the parameters by {ratio:.3e} times their \
                 own norm ({} such updates so far): training is exploding; lower optim.lr",
                self.count + 1
            );
        }
        self.count += 1;
    }
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

/// Held-out episodes with frozen weights: `eval/ep_rew_mean`, and `eval/regret` for bandits,
/// in TensorBoard and `evaluations.csv`; `None` when given up for a stop.
fn evaluate(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &dyn Environment,
    sink: &mut dyn MetricsSink,
    records: &mut Records,
) -> anyhow::Result<Option<RolloutStats>> {
    let mode = match config.log.eval_greedy {
        true => ActionMode::Greedy,
        false => ActionMode::Sample,
    };
    // Given up when a stop is asked for: the checkpoint matters, this evaluation does not.
    let Some(stats) = agent_stats(
        trainer.model(),
        env,
        config.log.eval_episodes,
        config.run.seed ^ EVAL_SALT,
        mode,
    )?
    else {
        return Ok(None);
    };
    let (update, step) = (trainer.progress().updates, trainer.progress().env_steps);
    records.evaluation(update, step, &stats)?;
    sink.scalar(tags::eval::EP_REW_MEAN, step, stats.episode_return.mean);
    if let Some(r) = stats.regret {
        sink.scalar(tags::eval::REGRET, step, r.mean);
    }
    Ok(Some(stats))
}

fn images(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &dyn Environment,
    sink: &mut dyn MetricsSink,
) -> anyhow::Result<()> {
    let step = trainer.progress().env_steps;
    let seed = config.run.seed ^ EVAL_SALT;
    for (tag, picture) in pictures::tensorboard_pictures(trainer.model(), env, seed)? {
        sink.image(tag, step, &picture.into_frame().into());
    }
    Ok(())
}

/// The recurrent Jacobian's spectrum along one held-out episode, and the learning-dynamics
/// pictures with this point added (`log.spectra_every`).
fn spectra_point(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &dyn Environment,
    sink: &mut dyn MetricsSink,
    dynamics: &mut LearningDynamics,
) -> anyhow::Result<()> {
    let step = trainer.progress().env_steps;
    let seed = config.run.seed ^ EVAL_SALT;
    let s = spectra::episode_jacobian_spectrum(trainer.model(), env, seed)?;
    sink.scalar(tags::spectra::JACOBIAN_LARGEST, step, s.largest);
    sink.scalar(tags::spectra::JACOBIAN_MEAN_LOG, step, s.mean_log);
    for (tag, picture) in dynamics.record(trainer.model(), env, seed)? {
        sink.image(tag, step, &picture);
    }
    Ok(())
}

/// One episode drawn into `<run>/animations/<update>.<gif or png>` (`log.animation_every`).
fn animation(
    trainer: &Trainer,
    config: &ExperimentConfig,
    env: &dyn Environment,
    run: &Path,
    format: render::Format,
) -> anyhow::Result<()> {
    let dir = run.join(ANIMATIONS);
    std::fs::create_dir_all(&dir)?;
    let p = trainer.progress();
    let path = dir.join(format!("{:08}.{}", p.updates, format.extension()));
    let title = format!("{} after {} steps", config.run.name, p.env_steps);
    let seed = config.run.seed ^ EVAL_SALT;
    render::episode(
        trainer.model(),
        env,
        &path,
        ActionMode::Sample,
        seed,
        &title,
    )?;
    Ok(())
}
