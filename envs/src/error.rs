/// Everything that can go wrong building or stepping an environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "unknown environment `{id}`{}; known environments: {known}",
        did_you_mean(suggestion)
    )]
    UnknownEnv {
        id: String,
        /// The known name closest to the one given, where one is close.
        suggestion: Option<String>,
        known: String,
    },
    #[error("environment `{env}` has no parameter `{key}`; its parameters are: {known}")]
    UnknownParam {
        env: String,
        key: String,
        known: String,
    },
    #[error("environment `{env}`: parameter `{key}` = `{value}` is invalid: {reason}")]
    BadParam {
        env: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error(
        "malformed environment id `{id}`: {reason} (expected {})",
        id_forms(id)
    )]
    BadId { id: String, reason: String },
    #[error("expected one action per environment ({expected}), got {got}")]
    ActionCount { expected: usize, got: usize },
    #[error("action {action} for environment {row} is out of range (the action space has {num_actions} actions)")]
    InvalidAction {
        row: usize,
        action: u32,
        num_actions: usize,
    },
    #[error(
        "action of environment {row} is NaN: the policy has diverged (its outputs are no \
         longer numbers); lower the learning rate or restart from an earlier checkpoint"
    )]
    NanAction { row: usize },
    #[error("environment `{id}` takes {expected} actions, not {given} ones")]
    ActionKind {
        id: String,
        expected: &'static str,
        given: &'static str,
    },
    #[error(
        "this policy chooses discrete actions, and the environment takes continuous ones \
         (a Box action space): only a trained agent acts there"
    )]
    DiscretePolicy,
    #[error("an environment family named `{name}` exists already")]
    NameTaken { name: &'static str },
    #[error("an environment batch needs at least one environment")]
    NoEnvs,
    #[error("step() called before reset()")]
    NotReset,
    #[error("saved state of environment `{id}` does not fit: {reason}")]
    BadState { id: String, reason: String },
    #[error("`{id}` needs the Gymnasium bridge, and this build has none (cargo feature `gym`)")]
    GymNotBuilt { id: String },
    #[error("the Gymnasium bridge cannot start: {reason}")]
    GymSetup { reason: String },
    #[error("Gymnasium environment `{id}`: {during} failed: {message}")]
    Gym {
        id: String,
        during: &'static str,
        message: String,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map_or(String::new(), |name| format!(" (did you mean `{name}`?)"))
}

/// The name among `known` that `given` is most likely a misspelling of: within a third of
/// its length in edits (a swapped pair of letters is one), at least one.
pub(crate) fn closest<'a>(
    given: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let most = (given.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(given, name), name))
        .filter(|&(distance, _)| distance <= most)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name)
}

/// The forms an id may take, for the kind of id that was malformed.
fn id_forms(id: &str) -> &'static str {
    match id.trim_start().starts_with(crate::gym::ID_PREFIX) {
        true => "`gym:<id>` or `gym:<id>?key=value&key=value`",
        false => "`name` or `name:key=value,key=value`",
    }
}
