//! `examples/bandit.rs`, the short path through the library, runs as the tests build it: a
//! plastic RNN trained briefly on a bandit must already beat the random policy's regret.
#[path = "../examples/bandit.rs"]
mod example;

#[test]
fn the_bandit_example_trains_an_agent_that_beats_random() {
    // A short run (a few seconds) already prefers the arm that paid.
    let r = example::train_and_evaluate(200_000, 0).unwrap();
    // Random pulls lose 0.8 × 50 = 40 per episode; Thompson sampling about 2.1.
    assert!((r.random - 40.0).abs() < 2.0, "{r:?}");
    assert!(r.thompson < 3.0, "{r:?}");
    assert!(r.agent < 0.75 * r.random, "{r:?}");
    // `threads = 0`: the machine's cores, all to the host loops of the plastic RNN.
    assert_eq!(r.threads, plastic_agents::threads::default_count(), "{r:?}");
}
