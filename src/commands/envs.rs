use crate::output::emit;
use plastic_envs::registry::{families, make, parse};
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    name: &'static str,
    obs_dim: usize,
    num_actions: usize,
    episode_len: Option<usize>,
    /// Episodes `plastic eval` and `plastic rollout` run unless told.
    eval_episodes: usize,
    params: &'static str,
    summary: &'static str,
}

pub fn run(json: bool) -> anyhow::Result<()> {
    let rows = families()
        .into_iter()
        .map(|family| {
            let spec = make(family.name, 1)?.spec().clone();
            Ok(Row {
                obs_dim: spec.obs_dim,
                num_actions: spec.num_actions,
                episode_len: spec.episode_len,
                eval_episodes: parse(family.name)?.default_eval_episodes(),
                name: family.name,
                params: family.params,
                summary: family.summary,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    emit(json, &serde_json::json!({ "envs": rows }), || {
        let mut out = format!(
            "{:<28} {:>4} {:>7} {:>6}  {}\n",
            "ENV", "OBS", "ACTIONS", "EVAL", "PARAMETERS (defaults)"
        );
        for r in &rows {
            out += &format!(
                "{:<28} {:>4} {:>7} {:>6}  {}\n",
                r.name, r.obs_dim, r.num_actions, r.eval_episodes, r.params
            );
            out += &format!("{:<28} {}\n", "", r.summary);
        }
        out + "\nEVAL: episodes `plastic eval` and `rollout` run unless told (--episodes)\n\
               Parameters go after a colon: maze:size=9,len=100\n\
               Gymnasium environments with discrete actions: gym:<id>, keyword arguments after \
               a question mark: gym:CartPole-v1, gym:FrozenLake-v1?is_slippery=false&map_name=8x8"
    })
}
