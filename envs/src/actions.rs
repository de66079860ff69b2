//! Continuous (`Box`) action spaces: their shape and bounds, and the clipping that turns a
//! policy's unbounded sample into an action the environment accepts.
use crate::EnvError;

/// A continuous action space: each action is `dim()` `f32` components, row-major in `shape`,
/// component `k` within `[low[k], high[k]]`. Environments with one take actions through
/// [`VecEnv::step_continuous`](crate::VecEnv::step_continuous).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionBox {
    /// The action's shape as the environment takes it (`[1]` for Pendulum's torque).
    pub shape: Vec<usize>,
    /// Lower bounds, one per component; finite (unbounded spaces are refused where they are
    /// read, since a Gaussian policy's sample could not be clipped into them).
    pub low: Vec<f32>,
    /// Upper bounds, one per component; finite.
    pub high: Vec<f32>,
}

impl ActionBox {
    /// Components per action.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// `actions` (`[B × dim]` flattened) clipped to the bounds, as SB3 clips a Gaussian
    /// policy's sample before the environment sees it. A NaN (a diverged policy) is an error
    /// naming the row, not an action.
    pub fn clip_into(&self, actions: &[f32], out: &mut Vec<f32>) -> Result<(), EnvError> {
        out.clear();
        let dim = self.dim();
        for (i, &a) in actions.iter().enumerate() {
            if a.is_nan() {
                return Err(EnvError::NanAction { row: i / dim });
            }
            out.push(a.clamp(self.low[i % dim], self.high[i % dim]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_each_component_to_its_own_bounds_and_refuses_nan() {
        let space = ActionBox {
            shape: vec![2],
            low: vec![-1.0, 0.0],
            high: vec![1.0, 5.0],
        };
        let mut out = Vec::new();
        space.clip_into(&[-3.0, 7.0, 0.5, -0.5], &mut out).unwrap();
        assert_eq!(out, [-1.0, 5.0, 0.5, 0.0]);
        let err = space.clip_into(&[0.0, 0.0, 0.0, f32::NAN], &mut out);
        assert!(
            matches!(err, Err(EnvError::NanAction { row: 1 })),
            "{err:?}"
        );
    }
}
