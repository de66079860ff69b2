//! A var store's variables and their gradients by name, in one order: what the gradient
//! checks (`plastic bench gradients`, the engine tests) compare between engines and var
//! stores, and what the Python package lists.
use tch::{nn, Tensor};

/// Every variable, sorted by name, so two var stores of one network list them alike.
pub fn named_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Every variable's gradient after a backward pass, sorted by name (copies, so the next
/// pass leaves them alone); zeros where the loss did not reach the variable (the heads, in a
/// loss of the core's outputs), so two engines' lists always line up.
pub fn named_gradients(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    named_variables(vs)
        .into_iter()
        .map(|(name, v)| {
            let g = v.grad();
            let g = if g.defined() {
                g.copy()
            } else {
                v.zeros_like()
            };
            (name, g)
        })
        .collect()
}

/// Clears every trainable variable's gradient, before a backward pass whose gradients are
/// read (libtorch adds to what a previous pass left).
pub fn zero_gradients(vs: &nn::VarStore) {
    for mut v in vs.trainable_variables() {
        v.zero_grad();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn gradients_are_sorted_by_name_with_zeros_where_the_loss_did_not_reach() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let b = root.var("b", &[2], nn::Init::Const(1.0));
        let _unused = root.var("a", &[3], nn::Init::Const(1.0));
        let c = root.var("c", &[1], nn::Init::Const(2.0));
        (&b * &c).sum(Kind::Float).backward();
        let names = |list: &[(String, Tensor)]| -> Vec<String> {
            list.iter().map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(names(&named_variables(&vs)), ["a", "b", "c"]);
        let grads = named_gradients(&vs);
        assert_eq!(names(&grads), ["a", "b", "c"]);
        let values: Vec<Vec<f32>> = grads
            .iter()
            .map(|(_, g)| Vec::<f32>::try_from(g).unwrap())
            .collect();
        assert_eq!(values, [vec![0.0; 3], vec![2.0, 2.0], vec![2.0]]);
        zero_gradients(&vs);
        assert_eq!(Vec::<f32>::try_from(c.grad()).unwrap(), [0.0]);
    }
}
