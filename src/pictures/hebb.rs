//! A plastic core's per-episode matrix at the end of one episode (the Hebbian trace, or
//! STPN's fast weights), with how it and the modulator moved during it.
use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::cores::State;
use plastic_agents::ActorCritic;
use plastic_envs::draw::{
    caption_width, colour_bar, colour_bar_width, diverging, tick, Canvas, Chart, Font, INK, WHITE,
};
use plastic_envs::{Actions, EnvError, Environment};
use tch::{Kind, Tensor};

/// Episodes that have not ended by then are drawn as they stand.
const MAX_STEPS: usize = 10_000;

/// Which per-episode matrix of a core's state a picture shows.
#[derive(Debug, Clone, Copy)]
pub enum PlasticMatrix {
    /// The Hebbian trace of a plastic core, `[H × H]`.
    Hebb,
    /// STPN's fast weights `F`, `[H × (in + H)]`.
    Fast,
}

impl PlasticMatrix {
    fn of(self, state: &State) -> Option<&Tensor> {
        match self {
            Self::Hebb => state.hebb(),
            Self::Fast => state.fast(),
        }
    }

    /// Its name in a caption, and in the chart of its mean magnitude.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Hebb => ("Hebbian trace", "Hebb"),
            Self::Fast => ("Fast weights F", "F"),
        }
    }

    /// The caption line that says what rows and columns are.
    fn axes(self) -> &'static str {
        match self {
            Self::Hebb => {
                "row: receiving neuron, column: sending neuron, each sorted by the trace's"
            }
            Self::Fast => {
                "row: receiving neuron, column: sending input or neuron, each sorted by F's"
            }
        }
    }
}

/// What one episode of a plastic core showed, step by step.
struct TraceEpisode {
    matrix: PlasticMatrix,
    /// `[rows × columns]` at the last step, rows post-synaptic, columns pre-synaptic.
    values: Vec<f32>,
    rows: usize,
    columns: usize,
    mean_abs: Vec<f64>,
    /// The modulator's output (its mean over neurons with a fan-out); empty without one.
    modulator: Vec<f64>,
    fan_out: bool,
    rewards: Vec<f32>,
}

/// The picture of `matrix` over one episode of `ac` on `env`; `None` for cores without it.
pub fn plastic_picture(
    ac: &ActorCritic,
    env: &dyn Environment,
    seed: u64,
    matrix: PlasticMatrix,
    title: &str,
) -> Result<Option<Canvas>, EnvError> {
    let mut policy = AgentPolicy::new(ac, 1, ActionMode::Sample, seed);
    // Checked before the environment is built: a Gymnasium one costs a Python env.
    if matrix.of(policy.state()).is_none() {
        return Ok(None);
    }
    let mut env = env.build(1)?;
    let mut obs = env.reset(seed)?.to_vec();
    let mut actions = Actions::for_env(&*env);
    let (mut mean_abs, mut modulator, mut rewards) = (Vec::new(), Vec::new(), Vec::new());
    let mut fan_out = false;
    for _ in 0..MAX_STEPS {
        actions.choose(&mut policy, &obs)?;
        let state = policy.state();
        let values = matrix.of(state).expect("checked above");
        mean_abs.push(values.get(0).abs().mean(Kind::Double).double_value(&[]));
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
    let last = matrix.of(policy.state()).expect("checked above").get(0);
    let (rows, columns) = (last.size()[0] as usize, last.size()[1] as usize);
    let values =
        Vec::<f32>::try_from(last.to_kind(Kind::Float).flatten(0, -1)).expect("a float matrix");
    let episode = TraceEpisode {
        matrix,
        values,
        rows,
        columns,
        mean_abs,
        modulator,
        fan_out,
        rewards,
    };
    Ok(Some(episode.picture(title)))
}

/// Receiving neurons (rows) sorted by their entry in the leading left singular vector of the
/// `[rows × columns]` matrix, senders (columns) by the right one (power iteration on `A Aᵀ`):
/// neurons the matrix treats alike sit together, so its structure shows as blocks.
fn neuron_orders(trace: &[f32], rows: usize, columns: usize) -> (Vec<usize>, Vec<usize>) {
    let a = |i: usize, j: usize| f64::from(trace[i * columns + j]);
    // A start with no symmetry, so it is not orthogonal to the leading vector by accident.
    let mut u: Vec<f64> = (0..rows)
        .map(|i| 1.0 + (i as f64 * 0.618).fract())
        .collect();
    for _ in 0..100 {
        let w: Vec<f64> = (0..columns)
            .map(|j| (0..rows).map(|i| a(i, j) * u[i]).sum())
            .collect();
        let next: Vec<f64> = (0..rows)
            .map(|i| (0..columns).map(|j| a(i, j) * w[j]).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        u = next.iter().map(|x| x / norm).collect();
    }
    let v: Vec<f64> = (0..columns)
        .map(|j| (0..rows).map(|i| a(i, j) * u[i]).sum())
        .collect();
    let sorted = |by: &[f64]| {
        let mut order: Vec<usize> = (0..by.len()).collect();
        order.sort_by(|&x, &y| by[x].total_cmp(&by[y]));
        order
    };
    (sorted(&u), sorted(&v))
}

impl TraceEpisode {
    fn picture(&self, title: &str) -> Canvas {
        let (name, short) = self.matrix.names();
        let (rows, columns) = neuron_orders(&self.values, self.rows, self.columns);
        let limit = self
            .values
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-12);
        let at_limit = self
            .values
            .iter()
            .filter(|v| v.abs() >= 0.99 * limit)
            .count();
        let px = (400 / self.rows.max(self.columns)).clamp(2, 16) as i32;
        let line = Font::Label.line_height();
        let lines = [
            title.to_string(),
            format!(
                "{name} after the last of {} steps of one episode: red +, blue -",
                self.rewards.len()
            ),
            self.matrix.axes().to_string(),
            "leading singular vector (left, right), so that alike neurons sit together".to_string(),
            format!(
                "scale +/-{}, its largest |value|; {:.0}% of the entries are within 1% of it",
                tick(f64::from(limit)),
                100.0 * at_limit as f64 / self.values.len() as f64
            ),
        ];
        let header = lines.len() as i32 * line + 8;
        let (matrix_w, matrix_h) = (self.columns as i32 * px, self.rows as i32 * px);
        let bar = colour_bar_width(-f64::from(limit), f64::from(limit));
        let chart_h = 110;
        let charts = if self.modulator.is_empty() { 1 } else { 2 };
        let width = (4 + matrix_w + 8 + bar + 4)
            .max(caption_width(&lines))
            .max(420);
        let height = header + matrix_h + 8 + charts * (chart_h + 4) + line + 4;
        let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
        canvas.caption(&lines, INK);
        for (r, &post) in rows.iter().enumerate() {
            for (c, &pre) in columns.iter().enumerate() {
                let v = self.values[post * self.columns + pre] / limit;
                let (x, y) = (4 + c as i32 * px, header + r as i32 * px);
                canvas.fill_rect(x, y, px as u32, px as u32, diverging(f64::from(v)));
            }
        }
        colour_bar(
            &mut canvas,
            (4 + matrix_w + 8, header),
            matrix_h,
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
        let mut y = header + matrix_h + 8;
        let chart_w = width - 8;
        let rewarded = if marks.is_empty() {
            ""
        } else {
            "; green ticks: rewarded steps"
        };
        Chart {
            at: (4, y),
            size: (chart_w, chart_h),
            title: &format!("mean |{short}| over the episode{rewarded}"),
            values: &self.mean_abs,
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
        let (rows, columns) = neuron_orders(&t, 3, 3);
        assert!(rows == [1, 2, 0] || rows == [0, 2, 1], "{rows:?}");
        assert_eq!(rows, columns, "a symmetric trace sorts both sides alike");
        // Rank one u vᵀ with another v: the columns follow v.
        let v = [-0.5f32, 0.2, 0.8];
        let t: Vec<f32> = (0..9).map(|k| u[k / 3] * v[k % 3]).collect();
        let (rows, columns) = neuron_orders(&t, 3, 3);
        let ascending = rows == [1, 2, 0];
        assert!(ascending || rows == [0, 2, 1], "{rows:?}");
        // u and v keep their relative sign: sorted alike, v runs -0.5, 0.2, 0.8 (or reversed).
        assert_eq!(columns, if ascending { [0, 1, 2] } else { [2, 1, 0] });
    }

    #[test]
    fn a_rectangular_matrix_sorts_its_rows_and_columns_apart() {
        // STPN's fast weights are `H × (in + H)`: rank one u vᵀ with 2 rows and 4 columns.
        let (u, v) = ([0.7f32, -0.4], [0.1f32, -0.6, 0.9, 0.3]);
        let t: Vec<f32> = (0..8).map(|k| u[k / 4] * v[k % 4]).collect();
        let (rows, columns) = neuron_orders(&t, 2, 4);
        let ascending = rows == [1, 0];
        assert!(ascending || rows == [0, 1], "{rows:?}");
        assert_eq!(
            columns,
            if ascending {
                [1, 0, 3, 2]
            } else {
                [2, 3, 0, 1]
            }
        );
    }
}
