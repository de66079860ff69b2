//! The Hebbian trace at the end of one episode, with how it and the modulator moved during it.
use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::ActorCritic;
use plastic_envs::draw::{
    caption_width, colour_bar, colour_bar_width, diverging, tick, Canvas, Chart, Font, INK, WHITE,
};
use plastic_envs::{Actions, EnvError, Environment};
use tch::Kind;

/// Episodes that have not ended by then are drawn as they stand.
const MAX_STEPS: usize = 10_000;

/// What one episode of a plastic core showed, step by step.
struct TraceEpisode {
    /// `[H × H]` at the last step, rows post-synaptic, columns pre-synaptic.
    hebb: Vec<f32>,
    hidden: usize,
    mean_abs_hebb: Vec<f64>,
    /// The modulator's output (its mean over neurons with a fan-out); empty without one.
    modulator: Vec<f64>,
    fan_out: bool,
    rewards: Vec<f32>,
}

/// The trace picture of one episode of `ac` on `env`; `None` for cores without plasticity.
pub fn hebb_picture(
    ac: &ActorCritic,
    env: &dyn Environment,
    seed: u64,
    title: &str,
) -> Result<Option<Canvas>, EnvError> {
    let mut policy = AgentPolicy::new(ac, 1, ActionMode::Sample, seed);
    // Checked before the environment is built: a Gymnasium one costs a Python env.
    if policy.state().hebb().is_none() {
        return Ok(None);
    }
    let mut env = env.build(1)?;
    let mut obs = env.reset(seed)?.to_vec();
    let mut actions = Actions::for_env(&*env);
    let (mut mean_abs_hebb, mut modulator, mut rewards) = (Vec::new(), Vec::new(), Vec::new());
    let mut fan_out = false;
    for _ in 0..MAX_STEPS {
        actions.choose(&mut policy, &obs)?;
        let state = policy.state();
        let hebb = state.hebb().expect("a plastic core");
        mean_abs_hebb.push(hebb.get(0).abs().mean(Kind::Double).double_value(&[]));
        if let Some(m) = state.modulator() {
            fan_out = m.size()[1] > 1;
            modulator.push(m.get(0).mean(Kind::Double).double_value(&[]));
        }
        let step = actions.apply(&mut *env)?;
        rewards.push(step.rewards[0]);
        // The policy has not been told of the end, so its traces are still the episode's.
        if step.done(0) {
            break;
        }
        obs.copy_from_slice(step.obs);
    }
    let last = policy.state().hebb().expect("a plastic core").get(0);
    let hidden = last.size()[0] as usize;
    let hebb =
        Vec::<f32>::try_from(last.to_kind(Kind::Float).flatten(0, -1)).expect("a float trace");
    let episode = TraceEpisode {
        hebb,
        hidden,
        mean_abs_hebb,
        modulator,
        fan_out,
        rewards,
    };
    Ok(Some(episode.picture(title)))
}

/// Receiving neurons (rows) sorted by their entry in the leading left singular vector of the
/// `[h × h]` trace, sending neurons (columns) by the right one (power iteration on `A Aᵀ`):
/// neurons the trace treats alike sit together, so its structure shows as blocks.
fn neuron_orders(trace: &[f32], h: usize) -> (Vec<usize>, Vec<usize>) {
    let a = |i: usize, j: usize| f64::from(trace[i * h + j]);
    // A start with no symmetry, so it is not orthogonal to the leading vector by accident.
    let mut u: Vec<f64> = (0..h).map(|i| 1.0 + (i as f64 * 0.618).fract()).collect();
    for _ in 0..100 {
        let w: Vec<f64> = (0..h)
            .map(|j| (0..h).map(|i| a(i, j) * u[i]).sum())
            .collect();
        let next: Vec<f64> = (0..h)
            .map(|i| (0..h).map(|j| a(i, j) * w[j]).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        u = next.iter().map(|x| x / norm).collect();
    }
    let v: Vec<f64> = (0..h)
        .map(|j| (0..h).map(|i| a(i, j) * u[i]).sum())
        .collect();
    let sorted = |by: &[f64]| {
        let mut order: Vec<usize> = (0..h).collect();
        order.sort_by(|&x, &y| by[x].total_cmp(&by[y]));
        order
    };
    (sorted(&u), sorted(&v))
}

impl TraceEpisode {
    fn picture(&self, title: &str) -> Canvas {
        let h = self.hidden;
        let (rows, columns) = neuron_orders(&self.hebb, h);
        let limit = self
            .hebb
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-12);
        let at_limit = self.hebb.iter().filter(|v| v.abs() >= 0.99 * limit).count();
        let px = (400 / h).clamp(2, 16) as i32;
        let line = Font::Label.line_height();
        let lines = [
            title.to_string(),
            format!(
                "Hebbian trace after the last of {} steps of one episode: red +, blue -",
                self.rewards.len()
            ),
            "row: receiving neuron, column: sending neuron, each sorted by the trace's".to_string(),
            "leading singular vector (left, right), so that alike neurons sit together".to_string(),
            format!(
                "scale +/-{}, its largest |value|; {:.0}% of the entries are within 1% of it",
                tick(f64::from(limit)),
                100.0 * at_limit as f64 / self.hebb.len() as f64
            ),
        ];
        let header = lines.len() as i32 * line + 8;
        let matrix = h as i32 * px;
        let bar = colour_bar_width(-f64::from(limit), f64::from(limit));
        let chart_h = 110;
        let charts = if self.modulator.is_empty() { 1 } else { 2 };
        let width = (4 + matrix + 8 + bar + 4)
            .max(caption_width(&lines))
            .max(420);
        let height = header + matrix + 8 + charts * (chart_h + 4) + line + 4;
        let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
        canvas.caption(&lines, INK);
        for (r, &post) in rows.iter().enumerate() {
            for (c, &pre) in columns.iter().enumerate() {
                let v = self.hebb[post * h + pre] / limit;
                let (x, y) = (4 + c as i32 * px, header + r as i32 * px);
                canvas.fill_rect(x, y, px as u32, px as u32, diverging(f64::from(v)));
            }
        }
        colour_bar(
            &mut canvas,
            (4 + matrix + 8, header),
            matrix,
            diverging,
            true,
            (-f64::from(limit), f64::from(limit)),
        );
        // Rewards as ticks under the charts, unless nearly every step pays (CartPole).
        let paid: Vec<usize> = (0..self.rewards.len())
            .filter(|&t| self.rewards[t] > 0.0)
            .collect();
        let marks = if paid.len() * 2 < self.rewards.len() {
            &paid[..]
        } else {
            &[]
        };
        let mut y = header + matrix + 8;
        let chart_w = width - 8;
        let rewarded = if marks.is_empty() {
            ""
        } else {
            "; green ticks: rewarded steps"
        };
        Chart {
            at: (4, y),
            size: (chart_w, chart_h),
            title: &format!("mean |Hebb| over the episode{rewarded}"),
            values: &self.mean_abs_hebb,
            colour: INK,
            marks,
            mark_colour: [40, 160, 60],
        }
        .draw(&mut canvas);
        if !self.modulator.is_empty() {
            y += chart_h + 4;
            Chart {
                at: (4, y),
                size: (chart_w, chart_h),
                title: &format!(
                    "modulator M(t){}{rewarded}",
                    if self.fan_out {
                        ", mean over neurons"
                    } else {
                        ""
                    }
                ),
                values: &self.modulator,
                colour: [178, 24, 43],
                marks,
                mark_colour: [40, 160, 60],
            }
            .draw(&mut canvas);
        }
        canvas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neurons_are_sorted_along_the_leading_singular_vectors() {
        // A rank-one trace u uᵀ with u = (0.3, -0.9, 0.1): sorted, u runs -0.9, 0.1, 0.3 (or
        // the reverse: a singular vector's sign is arbitrary).
        let u = [0.3f32, -0.9, 0.1];
        let t: Vec<f32> = (0..9).map(|k| u[k / 3] * u[k % 3]).collect();
        let (rows, columns) = neuron_orders(&t, 3);
        assert!(rows == [1, 2, 0] || rows == [0, 2, 1], "{rows:?}");
        assert_eq!(rows, columns, "a symmetric trace sorts both sides alike");
        // Rank one u vᵀ with another v: the columns follow v.
        let v = [-0.5f32, 0.2, 0.8];
        let t: Vec<f32> = (0..9).map(|k| u[k / 3] * v[k % 3]).collect();
        let (rows, columns) = neuron_orders(&t, 3);
        let ascending = rows == [1, 2, 0];
        assert!(ascending || rows == [0, 2, 1], "{rows:?}");
        // u and v keep their relative sign: sorted alike, v runs -0.5, 0.2, 0.8 (or reversed).
        assert_eq!(columns, if ascending { [0, 1, 2] } else { [2, 1, 0] });
    }
}
