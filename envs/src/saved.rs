//! Saved environment state: what a checkpoint keeps of the episodes under way so that a
//! resumed run with truncated rollouts continues exactly where it stopped.
use crate::EnvError;
use serde::{de::DeserializeOwned, Serialize};

/// An environment batch's state as [`VecEnv::save_state`](crate::VecEnv::save_state) writes
/// it: a JSON value, stored in a checkpoint next to the counters.
pub type EnvState = serde_json::Value;

pub(crate) fn encode(value: &impl Serialize) -> EnvState {
    serde_json::to_value(value).expect("environment state is plain data")
}

pub(crate) fn decode<T: DeserializeOwned>(id: &str, state: &EnvState) -> Result<T, EnvError> {
    T::deserialize(state).map_err(|e| bad(id, e.to_string()))
}

/// Checks that a saved per-row buffer has `expected` entries.
pub(crate) fn check_len(id: &str, what: &str, got: usize, expected: usize) -> Result<(), EnvError> {
    if got == expected {
        Ok(())
    } else {
        Err(bad(
            id,
            format!("`{what}` has {got} entries where this batch needs {expected}"),
        ))
    }
}

pub(crate) fn bad(id: &str, reason: String) -> EnvError {
    EnvError::BadState {
        id: id.to_string(),
        reason,
    }
}
