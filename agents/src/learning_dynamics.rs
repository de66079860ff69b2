//! The learning-dynamics pictures of `log.spectra_every` (docs/spectra.md): the singular
//! values of `W`, `α` and the episode-averaged Hebbian trace against update, drawn like a
//! spectrogram, one TensorBoard image per matrix. Saxe, McClelland and Ganguli (2014) saw deep
//! linear networks learn their input–output modes one by one, each singular value rising in a
//! sigmoidal step; here each row of a picture is one singular value (largest at the top) and
//! each column one logging point, so such stages show as rows that light up one after another.
use crate::metrics::{tags, RgbImage};
use crate::spectra::{singular_values, Matrix};
use crate::ActorCritic;
use plastic_envs::{EnvError, Environment};

/// Episodes the Hebbian trace is averaged over at each point (`plastic spectra`'s default).
const HEBB_EPISODES: usize = 8;

/// Singular values below this are drawn as this: `log σ` needs a floor, and a rank-deficient
/// matrix (a per-neuron `α` with a zero entry) has exact zeros.
const FLOOR: f64 = 1e-6;

/// Widest and tallest a picture grows before its cells shrink (pixels).
const MAX_WIDTH: usize = 600;
const MAX_HEIGHT: usize = 300;

/// Viridis at five points, dark (smallest `log σ` of the picture) to bright (largest).
const COLOURS: [[f64; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

/// The singular values of one matrix at each logging point so far.
#[derive(Debug, Default, Clone)]
pub struct Spectrogram {
    /// One column per point, largest singular value first.
    columns: Vec<Vec<f64>>,
}

impl Spectrogram {
    pub fn push(&mut self, singular_values: Vec<f64>) {
        self.columns.push(singular_values);
    }

    /// Column `c` is point `c`, row `r` the `r`-th largest singular value; the colour is
    /// `log σ` between the smallest and the largest of the whole picture, so the colours of
    /// different points compare. Cells are as large as fit 600 × 300 pixels, at
    /// least one pixel.
    pub fn picture(&self) -> RgbImage {
        let rows = self.columns.iter().map(Vec::len).max().unwrap_or(0);
        let cols = self.columns.len();
        let cell_w = (MAX_WIDTH / cols.max(1)).clamp(1, 16);
        let cell_h = (MAX_HEIGHT / rows.max(1)).clamp(1, 8);
        let logs: Vec<Vec<f64>> = self
            .columns
            .iter()
            .map(|c| c.iter().map(|s| s.max(FLOOR).log10()).collect())
            .collect();
        let all = logs.iter().flatten();
        let lo = all.clone().copied().fold(f64::INFINITY, f64::min);
        let hi = all.copied().fold(f64::NEG_INFINITY, f64::max);
        let (width, height) = (cols * cell_w, rows * cell_h);
        let mut pixels = vec![0u8; width * height * 3];
        for (c, column) in logs.iter().enumerate() {
            for (r, &v) in column.iter().enumerate() {
                // A picture of one value throughout has no range: the middle colour.
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                let rgb = colour(t);
                for y in r * cell_h..(r + 1) * cell_h {
                    for x in c * cell_w..(c + 1) * cell_w {
                        pixels[(y * width + x) * 3..][..3].copy_from_slice(&rgb);
                    }
                }
            }
        }
        RgbImage {
            width,
            height,
            pixels,
        }
    }
}

/// [`COLOURS`] at `t` in [0, 1], linearly between its points.
fn colour(t: f64) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * (COLOURS.len() - 1) as f64;
    let i = (x.floor() as usize).min(COLOURS.len() - 2);
    let f = x - i as f64;
    let mix = |k: usize| (COLOURS[i][k] * (1.0 - f) + COLOURS[i + 1][k] * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// The spectrograms of every matrix the core has, grown at each logging point of a run.
pub struct LearningDynamics {
    matrices: Vec<(Matrix, Spectrogram)>,
}

impl LearningDynamics {
    /// Empty spectrograms of `W`, and of `α` and the Hebbian trace for a plastic core.
    pub fn new(ac: &ActorCritic) -> Self {
        let matrices = Matrix::ALL
            .iter()
            .filter(|m| m.exists_in(&ac.core))
            .map(|&m| (m, Spectrogram::default()))
            .collect();
        Self { matrices }
    }

    /// Adds the matrices of `ac` now (the trace averaged over episodes of `env` seeded with
    /// `seed`) and returns each picture with its TensorBoard tag.
    pub fn record(
        &mut self,
        ac: &ActorCritic,
        env: &dyn Environment,
        seed: u64,
    ) -> Result<Vec<(&'static str, RgbImage)>, EnvError> {
        let mut pictures = Vec::new();
        for (matrix, spectrogram) in &mut self.matrices {
            let Some(m) = matrix.of(ac, env, HEBB_EPISODES, seed)? else {
                continue;
            };
            let s = Vec::<f64>::try_from(singular_values(&m)).expect("f64 singular values");
            spectrogram.push(s);
            pictures.push((tag(*matrix), spectrogram.picture()));
        }
        Ok(pictures)
    }
}

fn tag(matrix: Matrix) -> &'static str {
    match matrix {
        Matrix::W => tags::spectra::SINGULAR_VALUES_W,
        Matrix::Alpha => tags::spectra::SINGULAR_VALUES_ALPHA,
        Matrix::Hebb => tags::spectra::SINGULAR_VALUES_HEBB,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn pixel(p: &RgbImage, x: usize, y: usize) -> [u8; 3] {
        let at = (y * p.width + x) * 3;
        [p.pixels[at], p.pixels[at + 1], p.pixels[at + 2]]
    }

    /// Rotations on both sides keep the singular values: a matrix with known ones.
    fn known(values: &[f64]) -> Vec<f64> {
        let n = values.len() as i64;
        let rotation = || crate::cores::init::orthogonal_blocks(1, n, 1.0);
        let (q1, q2) = (rotation(), rotation());
        let m = q1.matmul(&Tensor::from_slice(values).diag(0)).matmul(&q2);
        Vec::<f64>::try_from(singular_values(&m)).unwrap()
    }

    #[test]
    fn a_known_spectrum_is_drawn_largest_on_top_and_brighter_where_larger() {
        tch::manual_seed(1);
        let mut s = Spectrogram::default();
        // The second mode grows from 0.01 to 1 over three points: a learned stage.
        for second in [0.01, 0.1, 1.0] {
            let got = known(&[10.0, second, 0.001]);
            assert!((got[1] - second).abs() < 1e-9, "{got:?}");
            s.push(got);
        }
        let p = s.picture();
        // 3 columns of 16 px (600 / 3 capped at 16), 3 rows of 8 px.
        assert_eq!((p.width, p.height, p.pixels.len()), (48, 24, 48 * 24 * 3));
        // The largest value of the picture is the brightest colour, the smallest the darkest.
        assert_eq!(pixel(&p, 0, 0), colour(1.0));
        assert_eq!(pixel(&p, 47, 23), colour(0.0));
        // The second row brightens from point to point; the first stays as it was.
        let second: Vec<[u8; 3]> = (0..3).map(|c| pixel(&p, c * 16 + 8, 12)).collect();
        let green = |rgb: [u8; 3]| rgb[1];
        assert!(green(second[0]) < green(second[1]) && green(second[1]) < green(second[2]));
        assert_eq!(pixel(&p, 0, 0), pixel(&p, 40, 4));
    }

    #[test]
    fn one_value_throughout_is_the_middle_colour_and_zero_is_floored() {
        let mut s = Spectrogram::default();
        s.push(vec![2.0, 2.0]);
        let p = s.picture();
        assert!(p.pixels.chunks(3).all(|rgb| rgb == colour(0.5)));
        s.push(vec![0.0, 0.0]);
        assert_eq!(pixel(&s.picture(), 20, 0), colour(0.0));
    }
}
