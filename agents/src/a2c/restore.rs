//! Copying a checkpoint's tensors into live ones, all or nothing.
use std::collections::HashMap;
use tch::Tensor;

/// Copies `source[key]` into each `(key, target)`. Every key must be in `source` with its
/// target's shape, else nothing is copied; `what` names the tensors in the error.
pub(super) fn copy_checked(
    targets: &[(String, Tensor)],
    source: &HashMap<String, Tensor>,
    what: &str,
) -> Result<(), String> {
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
        pairs.push((target.shallow_clone(), t));
    }
    tch::no_grad(|| {
        for (mut target, t) in pairs {
            target.copy_(t);
        }
    });
    Ok(())
}
