//! The traces a forward pass keeps for its backward pass.
use tch::Tensor;

/// The traces of steps `0 … t` (`Hebb`, or `E`), of which the pass keeps every `every`-th and
/// the newest; the others are dropped once the next step is taken, and rebuilt from the kept
/// one before them when the backward pass needs them ([`super::FusedTape::backward`]).
pub(in crate::cores::bptt) struct Kept {
    every: usize,
    traces: Vec<Option<Tensor>>,
}

impl Kept {
    pub(in crate::cores::bptt) fn new(first: Tensor, every: usize) -> Self {
        Self {
            every,
            traces: vec![Some(first)],
        }
    }

    /// The trace after step `t − 1`; panics if it was dropped and not rebuilt.
    pub(in crate::cores::bptt) fn at(&self, t: usize) -> &Tensor {
        self.traces[t]
            .as_ref()
            .unwrap_or_else(|| unreachable!("trace {t} is neither kept nor rebuilt"))
    }

    pub(in crate::cores::bptt) fn newest(&self) -> &Tensor {
        self.at(self.traces.len() - 1)
    }

    pub(in crate::cores::bptt) fn newest_mut(&mut self) -> &mut Tensor {
        self.traces
            .last_mut()
            .and_then(Option::as_mut)
            .expect("the newest trace is always kept")
    }

    /// Adds the trace after the next step, dropping the one before it unless it is kept.
    pub(in crate::cores::bptt) fn push(&mut self, next: Tensor) {
        let t = self.traces.len() - 1;
        if !t.is_multiple_of(self.every) {
            self.traces[t] = None;
        }
        self.traces.push(Some(next));
    }

    /// Every trace from the first, `None` where dropped.
    pub(in crate::cores::bptt) fn all(&self) -> Vec<Option<&Tensor>> {
        self.traces.iter().map(Option::as_ref).collect()
    }

    /// Whether the trace after step `t − 1` must be rebuilt.
    pub(in crate::cores::bptt) fn missing(&self, t: usize) -> bool {
        self.traces[t].is_none()
    }

    /// The step whose trace the segment holding step `t` is rebuilt from.
    pub(in crate::cores::bptt) fn segment_start(&self, t: usize) -> usize {
        t - t % self.every
    }

    pub(in crate::cores::bptt) fn set(&mut self, t: usize, trace: Tensor) {
        self.traces[t] = Some(trace);
    }

    /// Frees the trace after step `t − 1`, once the backward pass is past it.
    pub(in crate::cores::bptt) fn free(&mut self, t: usize) {
        self.traces[t] = None;
    }
}
