//! Copying a checkpoint's tensors into live ones, all or nothing: [`matched`] checks every
//! tensor first, [`Matched::copy`] then writes them.
use std::collections::HashMap;
use tch::Tensor;

/// Live tensors paired with the checkpoint values they are to take.
pub(crate) struct Matched(Vec<(Tensor, Tensor)>);

impl Matched {
    pub fn copy(self) {
        tch::no_grad(|| {
            for (mut target, t) in self.0 {
                target.copy_(&t);
            }
        });
    }
}

/// Pairs each `(key, target)` with `source[key]`; every key must be in `source` with its
/// target's shape. `what` names the tensors in the error.
pub(crate) fn matched(
    targets: &[(String, Tensor)],
    source: &HashMap<String, Tensor>,
    what: &str,
) -> Result<Matched, String> {
    let mut pairs = Vec::with_capacity(targets.len());
    for (key, target) in targets {
        let t = source
            .get(key)
            .ok_or_else(|| format!("{what} `{key}` is missing"))?;
        if t.size() != target.size() {
            return Err(format!(
                "{what} `{key}` has shape {:?} in the checkpoint, the configured model needs {:?}",
                t.size(),
                target.size()
            ));
        }
        pairs.push((target.shallow_clone(), t.shallow_clone()));
    }
    Ok(Matched(pairs))
}

/// The first key of `source` under `prefix` that no target has: a tensor the checkpoint
/// holds and the configured model does not.
pub(crate) fn unexpected<'a>(
    targets: &[(String, Tensor)],
    source: &'a HashMap<String, Tensor>,
    prefix: &str,
) -> Option<&'a str> {
    source
        .keys()
        .find(|k| k.starts_with(prefix) && !targets.iter().any(|(n, _)| n == *k))
        .map(String::as_str)
}
