//! Backpropagation through time for the STPN cell, written by hand around its fast weights:
//! the hand-written engines' pass for `kind = "stpn"`, on the CPU in host loops
//! ([`super::host::stpn`], under [`Engine::Fused`]), else in libtorch operations.
//!
//! The forward pass runs without autograd and keeps, per step, `z_t = [x_t, h_{t−1}]` and
//! `h_t` (`[B × (in + H)]` and `[B × H]`), and the fast weights `F_t` (`[B × H × (in + H)]`)
//! of every k-th step only ([`Kept`], `a2c.trace_checkpoint_every`); going back, a dropped
//! `F_t` is rebuilt from the kept one before it by the same update, bit for bit. Each step's
//! backward pass is the cell's and the update's in `cores/stpn.rs` (or their host loops); the
//! parameters' gradients are summed over steps and handed to autograd once at the end.
use super::fused::kept::Kept;
use super::host::stpn::{HostStpn, StpnBackStep};
use super::Engine;
use crate::cores::state::foreign_state;
use crate::cores::stpn;
use crate::cores::{Core, ShortTermPlasticity, State};
use std::rc::Rc;
use tch::Tensor;

/// What one forward step recorded.
struct Record {
    /// `z_t = [x_t, h_{t−1}]`, after the previous step's resets.
    z: Tensor,
    /// `h_t`.
    h: Tensor,
    /// Rows whose episode ended after this step (`[B × 1]` bools), as the next step's episode
    /// starts mark them.
    done: Option<Tensor>,
}

pub struct StpnTape<'a> {
    core: &'a Core,
    stp: &'a ShortTermPlasticity,
    /// [`Engine::Fused`] or [`Engine::Ops`].
    engine: Engine,
    /// The host loops, under [`Engine::Fused`] on the CPU; else libtorch operations. Shared
    /// with the backward pass, which also rebuilds dropped fast weights with them.
    host: Option<Rc<HostStpn>>,
    /// `[W_in | W]` without a graph.
    w: Tensor,
    /// `F_0 … F_t`, rows zeroed where an episode ended.
    fast: Kept,
    h: Tensor,
    steps: Vec<Record>,
}

impl<'a> StpnTape<'a> {
    /// Starts from `state`, keeping the fast weights of every `keep_every`-th step (≥ 1).
    /// Panics if `state` is another core's.
    pub fn new(
        core: &'a Core,
        stp: &'a ShortTermPlasticity,
        state: &State,
        keep_every: usize,
        engine: Engine,
    ) -> Self {
        assert!(keep_every >= 1, "keep_every counts steps from 1");
        let Some(fast) = state.fast() else {
            foreign_state()
        };
        let host = match engine {
            Engine::Fused => HostStpn::new(core, stp).map(Rc::new),
            _ => None,
        };
        Self {
            core,
            stp,
            engine,
            host,
            w: core.stpn_weights().detach(),
            fast: Kept::new(fast.detach(), keep_every),
            h: state.h().detach(),
            steps: Vec::new(),
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// `F_{t+1}` from `F_t` by step `t`'s update.
    fn update(&self, fast: &Tensor, record: &Record) -> Tensor {
        if let Some(host) = &self.host {
            return host.step(&record.z, fast).1;
        }
        let clip = self.core.config().clip;
        self.stp.update(&self.w, clip, fast, &record.h, &record.z)
    }

    /// One step: returns `h_t` `[B × H]` (no autograd graph), after zeroing hidden state and
    /// fast weights of the rows in `episode_start` (`[B]` bools), if any.
    pub fn step(&mut self, x: &Tensor, episode_start: Option<&Tensor>) -> Tensor {
        if let Some(rows) = episode_start {
            self.start_episodes(rows);
        }
        tch::no_grad(|| {
            let t = self.steps.len();
            let z = Tensor::cat(&[x, &self.h], 1);
            let fast = self.fast.at(t);
            let (record, next) = match &self.host {
                Some(host) => {
                    let (h, next) = host.step(&z, fast);
                    (Record { z, h, done: None }, next)
                }
                None => {
                    let h = stpn::forward(&self.w, &self.core.bias().detach(), fast, &z);
                    let record = Record { z, h, done: None };
                    let next = self.update(fast, &record);
                    (record, next)
                }
            };
            self.fast.push(next);
            self.h = record.h.shallow_clone();
            self.steps.push(record);
            self.h.shallow_clone()
        })
    }

    /// Zeroes hidden state and fast weights of the rows in `done`, whose episode ended at the
    /// last step, out of place: outputs and states already returned keep their values.
    fn start_episodes(&mut self, done: &Tensor) {
        let done = done.to_device(self.h.device());
        let rows = done.view([-1, 1]);
        self.h = self.h.masked_fill(&rows, 0.0);
        let fast = self.fast.newest_mut();
        *fast = fast.masked_fill(&done.view([-1, 1, 1]), 0.0);
        if let Some(record) = self.steps.last_mut() {
            record.done = Some(rows);
        }
    }

    /// The state after the last step.
    pub fn state(&self) -> State {
        State {
            fast: Some(self.fast.newest().shallow_clone()),
            ..State::new(self.h.shallow_clone(), None, None)
        }
    }

    /// Rebuilds the fast weights of the segment holding step `t` from the kept ones before
    /// it, if step `t`'s were dropped.
    fn rebuild(&mut self, t: usize) {
        if !self.fast.missing(t) {
            return;
        }
        for u in self.fast.segment_start(t)..t {
            let record = &self.steps[u];
            let next = self.update(self.fast.at(u), record);
            let next = match &record.done {
                Some(rows) => next.masked_fill(&rows.unsqueeze(2), 0.0),
                None => next,
            };
            self.fast.set(u + 1, next);
        }
    }

    /// The parameters' gradients by libtorch operations.
    fn ops_backward(&mut self, grad_h: &Tensor) -> ParamGrads {
        let (core, stp) = (self.core, self.stp);
        let kind = core.kind();
        let (input, hidden) = (core.input_dim(), core.hidden());
        let (w, clip) = (&self.w.shallow_clone(), core.config().clip);
        // `dL/dF_t` and `dL/dh_t` through the steps after t.
        let mut dfast = self.fast.newest().zeros_like();
        let mut dh = self.h.zeros_like();
        let mut sums = ParamGrads {
            w: w.zeros_like(),
            b: core.bias().zeros_like(),
            lambda: stp.lambda().zeros_like(),
            gamma: stp.gamma().zeros_like(),
        };
        for t in (0..self.steps.len()).rev() {
            self.rebuild(t);
            let record = &self.steps[t];
            // The next step read this one's outputs after the resets.
            if let Some(rows) = &record.done {
                dfast = dfast.masked_fill(&rows.unsqueeze(2), 0.0);
                dh = dh.masked_fill(rows, 0.0);
            }
            let fast = self.fast.at(t);
            let inputs = (fast, &record.h, &record.z);
            let update = stp.update_backward(w, clip, inputs, &dfast);
            let cell = stpn::backward(
                (w, fast, &record.z),
                &record.h,
                &(dh + grad_h.get(t as i64)),
                &update.dh,
            );
            sums.w += update.dw + cell.dg.sum_dim_intlist(0, false, kind);
            sums.b += cell.da.sum_dim_intlist(0, false, kind);
            sums.lambda += update.dlambda;
            sums.gamma += update.dgamma;
            dfast = update.dfast + cell.dg;
            dh = (update.dz + cell.dz).narrow(1, input, hidden);
            self.fast.free(t + 1);
        }
        sums
    }

    /// The parameters' gradients by the host loops, `host` (the tape's own, which its
    /// rebuilds of dropped fast weights use too).
    fn host_backward(&mut self, host: &HostStpn, grad_h: &Tensor) -> ParamGrads {
        let mut carry = host.carry(self.h.size()[0] as usize);
        for t in (0..self.steps.len()).rev() {
            self.rebuild(t);
            let record = &self.steps[t];
            let done = record
                .done
                .as_ref()
                .map(|rows| Vec::<bool>::try_from(rows.view([-1])).expect("bools"));
            let step = StpnBackStep {
                z: &record.z,
                h: &record.h,
                fast: self.fast.at(t),
                grad_h: &grad_h.get(t as i64),
                done: done.as_deref(),
            };
            host.step_back(&mut carry, step);
            self.fast.free(t + 1);
        }
        host.grads(&carry)
    }

    /// Accumulates into the core's parameters' `.grad` the gradient of a loss whose
    /// derivative with respect to the outputs `h_1 … h_T` is `grad_h` (`[T × B × H]`).
    pub fn backward(mut self, grad_h: &Tensor) {
        if self.steps.is_empty() {
            return;
        }
        let (core, stp) = (self.core, self.stp);
        let kind = core.kind();
        let grads = tch::no_grad(|| match self.host.clone() {
            Some(host) => self.host_backward(&host, grad_h),
            None => self.ops_backward(grad_h),
        });
        let surrogate = (core.stpn_weights() * grads.w).sum(kind)
            + (core.bias() * grads.b).sum(kind)
            + (stp.lambda() * grads.lambda).sum(kind)
            + (stp.gamma() * grads.gamma).sum(kind);
        surrogate.backward();
    }
}

/// The parameters' gradients, summed over steps and batch rows.
pub(super) struct ParamGrads {
    /// `[W_in | W]`'s.
    pub w: Tensor,
    pub b: Tensor,
    pub lambda: Tensor,
    pub gamma: Tensor,
}
