//! `check_vec_env` catches each invariant it promises, on an environment registered at run
//! time with one flaw at a time (its own test binary: the registry is per process).
use plastic_envs::registry::{self, register};
use plastic_envs::rng::{self, Rng};
use plastic_envs::testing::check_vec_env;
use plastic_envs::{EnvError, EnvSpec, Environment, Family, Params, Step, StepBuffers, VecEnv};
use rand::Rng as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The flaw an instance has (`flawed:flaw=<name>`); `none` keeps every invariant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    None,
    /// Row streams depend on the batch size.
    Batch,
    /// Draws from a process-wide counter: the same seed gives other episodes.
    Seed,
    /// Ends episodes without starting new ones: final_obs is what the row shows.
    NoReset,
    /// Takes actions out of range.
    Actions,
    /// Lasts twice the episode length its spec states.
    Length,
}

const LEN: usize = 4;

#[derive(Debug)]
struct Flawed(Flaw);

impl Environment for Flawed {
    fn id(&self) -> String {
        format!("flawed:flaw={}", format!("{:?}", self.0).to_lowercase())
    }

    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Ok(Box::new(FlawedEnv {
            flaw: self.0,
            spec: EnvSpec {
                id: self.id(),
                obs_dim: 2,
                num_actions: 2,
                action_start: 0,
                action_box: None,
                image: None,
                episode_len: Some(LEN),
            },
            t: vec![0; num_envs],
            rngs: Vec::new(),
            buf: StepBuffers::new(num_envs, 2, false),
        }))
    }
}

struct FlawedEnv {
    flaw: Flaw,
    spec: EnvSpec,
    t: Vec<usize>,
    rngs: Vec<Rng>,
    buf: StepBuffers,
}

static DRAWS: AtomicU64 = AtomicU64::new(0);

impl FlawedEnv {
    fn show(&mut self, row: usize) {
        let x = match self.flaw {
            Flaw::Seed => DRAWS.fetch_add(1, Ordering::Relaxed) as f32,
            _ => self.rngs[row].random::<f32>(),
        };
        let t = self.t[row] as f32;
        self.buf.obs_row_mut(row).copy_from_slice(&[t, x]);
    }
}

impl VecEnv for FlawedEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.buf.num_envs
    }

    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        let b = self.num_envs();
        let salt = if self.flaw == Flaw::Batch {
            b as u64
        } else {
            0
        };
        self.rngs = rng::streams(seed ^ salt, b);
        for row in 0..b {
            self.t[row] = 0;
            self.show(row);
        }
        Ok(&self.buf.obs)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        if self.rngs.is_empty() {
            return Err(EnvError::NotReset);
        }
        if self.flaw != Flaw::Actions {
            self.buf.check_actions(actions, 2)?;
        }
        let len = if self.flaw == Flaw::Length {
            2 * LEN
        } else {
            LEN
        };
        for (row, &a) in actions.iter().enumerate().take(self.num_envs()) {
            self.t[row] += 1;
            self.buf.rewards[row] = a as f32;
            let ended = self.t[row] == len;
            self.buf.truncated[row] = ended;
            self.show(row);
            if ended {
                self.buf.save_final_obs(row);
                if self.flaw != Flaw::NoReset {
                    self.t[row] = 0;
                    self.show(row);
                } else {
                    self.t[row] = 0;
                }
            }
        }
        Ok(self.buf.view())
    }
}

fn parse(params: &mut Params) -> Result<Box<dyn Environment>, EnvError> {
    let flaw = match params.get("flaw", String::from("none"))?.as_str() {
        "none" => Flaw::None,
        "batch" => Flaw::Batch,
        "seed" => Flaw::Seed,
        "noreset" => Flaw::NoReset,
        "actions" => Flaw::Actions,
        "length" => Flaw::Length,
        other => return Err(params.invalid("flaw", &other, "no such flaw")),
    };
    Ok(Box::new(Flawed(flaw)))
}

#[test]
fn each_broken_invariant_is_named() {
    register(Family {
        name: "flawed",
        summary: "an environment with one flaw, for the checker's own test",
        params: "flaw=none",
        parse,
    })
    .unwrap();
    assert!(
        matches!(
            register(Family {
                name: "maze",
                summary: "",
                params: "",
                parse,
            }),
            Err(EnvError::NameTaken { name: "maze" })
        ),
        "a taken name is refused"
    );
    assert!(registry::families().iter().any(|f| f.name == "flawed"));
    check_vec_env("flawed").unwrap();
    for (flaw, named) in [
        ("batch", "must not depend on the batch size"),
        // Nondeterminism shows first as a batch that no longer follows its twin.
        ("seed", "no longer follows a twin"),
        ("noreset", "does not reset within the step"),
        ("actions", "not the InvalidAction error"),
        ("length", "past the spec's episode_len 4"),
    ] {
        let msg = check_vec_env(&format!("flawed:flaw={flaw}")).unwrap_err();
        assert!(msg.contains(named), "{flaw}: {msg}");
    }
}
