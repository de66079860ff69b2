//! Several timescales (`core.timescales`, docs/timescales.md) in the hand-written pass: the
//! `K` traces of a synapse, each the `decay` rule at its own rate, are stacked along the
//! post-synaptic axis into one trace of `K·H` rows of `H` cells, `[B × K·H × H]`. Row
//! `k·H + i` is trace `k`'s row of neuron `i`: its `keep` and `s` come from `η_k[i]` and
//! `post_i`, its α from `α_k`, and every row reads the same `h_{t−1}`. The one-trace passes of
//! `trace_update/` already run on any number of post-synaptic rows, so the stacked trace is
//! the one-trace update, not a copy of it; what differs is only where a per-neuron quantity
//! meets the stack: repeated onto it (`post`, `dL/dplastic`) or summed off it (the plastic
//! input, `dL/dpost`). One timescale stacks nothing: every function here gives its input
//! back, so that core runs exactly as before.
use crate::cores::{Plasticity, Traces};
use tch::{Kind, Tensor};

/// How many traces a plastic core stacks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stacked {
    count: i64,
}

impl Stacked {
    pub(super) fn of(p: &Plasticity) -> Self {
        Self {
            count: p.timescale_count() as i64,
        }
    }

    fn single(self) -> bool {
        self.count == 1
    }

    /// The stacked trace's post-synaptic rows, `K·H`.
    pub(super) fn posts(self, hidden: i64) -> i64 {
        self.count * hidden
    }

    /// A per-neuron `[N × H]` quantity on every timescale's rows, `[N × K·H]`.
    pub(super) fn repeat(self, x: &Tensor) -> Tensor {
        if self.single() {
            x.shallow_clone()
        } else {
            x.repeat([1, self.count])
        }
    }

    /// The sum over timescales of an `[N × K·H]` quantity, `[N × H]`.
    pub(super) fn sum(self, x: &Tensor) -> Tensor {
        if self.single() {
            return x.shallow_clone();
        }
        let n = x.size()[0];
        x.view([n, self.count, -1])
            .sum_dim_intlist(1, false, None::<Kind>)
    }

    /// A per-trace parameter as the stacked rows read it: `η` (`[K × 1]` or `[K × H]`) as one
    /// rate per row, `[K·H]`; α (`[K × H × H]` or `[K × H]`) as `[K·H × H]` or `[K·H]`.
    pub(super) fn param(self, param: &Tensor, hidden: i64) -> Tensor {
        match (self.single(), param.dim()) {
            (true, _) => param.shallow_clone(),
            (false, 2) => param.expand([self.count, hidden], false).reshape([-1]),
            (false, _) => param.flatten(0, 1),
        }
    }

    /// The Hebbian traces of `traces` as one, `[B × K·H × H]`.
    pub(super) fn traces(self, traces: &Traces) -> Tensor {
        match traces.hebbs() {
            [one] => one.shallow_clone(),
            many => Tensor::cat(many, 1),
        }
    }

    /// A stacked trace `[B × K·H × H]` as the core's traces, one per timescale (retroactive
    /// modulation's are made by the caller).
    pub(super) fn unstack(self, stacked: &Tensor) -> Traces {
        if self.single() {
            return Traces::Hebb(stacked.shallow_clone());
        }
        let hebbs = stacked.chunk(self.count, 1);
        Traces::from_timescales(hebbs.iter().map(Tensor::contiguous).collect())
    }
}
