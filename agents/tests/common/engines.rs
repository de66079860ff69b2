//! The hand-written engine against autograd through the trainer: the same updates, A2C's and
//! PPO's alike.
use plastic_agents::a2c::{Trainer, UpdateStats};
use plastic_agents::cores::{Bptt, Engine};

/// Every model and optimiser tensor of `t`'s snapshot by name, as f32 values.
pub fn model_values(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.snapshot()
        .tensors
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect()
}

/// Equal to within `1e-4` relative (plus `1e-6` absolute): float32 sums in another order.
pub fn close(x: f64, y: f64) -> bool {
    (x - y).abs() <= 1e-4 * x.abs().max(y.abs()) + 1e-6
}

/// What the two engines' runs of [`compare_engines`] gave.
pub struct EngineRuns {
    /// Each update's statistics: autograd's, then the hand-written pass's.
    pub stats: Vec<(UpdateStats, UpdateStats)>,
    /// The hand-written run's tensors after its updates.
    pub fused_model: Vec<(String, Vec<f32>)>,
}

/// Runs two updates of `trainer(Bptt::Autograd)` and of `trainer(Bptt::Auto)` (the
/// hand-written pass on the CPU) and checks that they took those engines, collected the same
/// episodes, measured gradient norms that are [`close`], ended with every tensor within
/// `tolerance` of each other, and moved away from the initial tensors. `label` names the case
/// in failures.
pub fn compare_engines(
    label: &str,
    trainer: impl Fn(Bptt) -> Trainer,
    tolerance: f32,
) -> EngineRuns {
    let run = |bptt: Bptt| {
        let mut t = trainer(bptt);
        let stats: Vec<_> = (0..2).map(|_| t.update().unwrap()).collect();
        (t.engine(), stats, model_values(&t))
    };
    let (auto_engine, auto_stats, auto_model) = run(Bptt::Autograd);
    let (fused_engine, fused_stats, fused_model) = run(Bptt::Auto);
    assert_eq!(
        (auto_engine, fused_engine),
        (Engine::Autograd, Engine::Fused),
        "{label}"
    );
    for (a, f) in auto_stats.iter().zip(&fused_stats) {
        assert_eq!(a.episodes, f.episodes, "{label}: the rollouts differ");
        assert!(
            close(a.grad_norm, f.grad_norm),
            "{label}: gradient norm {} vs {}",
            a.grad_norm,
            f.grad_norm
        );
    }
    for ((name, a), (_, f)) in auto_model.iter().zip(&fused_model) {
        for (x, y) in a.iter().zip(f) {
            assert!(
                (x - y).abs() <= tolerance,
                "{label}: {name} differs: {x} vs {y}"
            );
        }
    }
    // The updates did something: the tensors are not the initial ones.
    let initial = model_values(&trainer(Bptt::Auto));
    assert_ne!(initial, fused_model, "{label}: the updates changed nothing");
    EngineRuns {
        stats: auto_stats.into_iter().zip(fused_stats).collect(),
        fused_model,
    }
}
