//! Every native family keeps the invariants of `plastic_envs::testing::check_vec_env`, with
//! its default parameters and with small ones; ids that break them are caught by the checker.
use plastic_envs::registry::{self, families};
use plastic_envs::testing::check_vec_env;

#[test]
fn every_family_passes_the_checker() {
    for family in families() {
        check_vec_env(family.name).unwrap();
        // Short episodes, so many of them end within the steps the checker takes.
        let short = format!("{}:len=3", family.name);
        check_vec_env(&short).unwrap();
    }
}

#[test]
fn every_family_is_listed_with_parameters_its_ids_spell_out() {
    assert!(families().len() >= 9);
    for family in families() {
        let id = registry::parse(family.name).unwrap().id();
        for pair in family.params.split(", ") {
            assert!(id.contains(pair), "{id} lacks {pair}");
        }
    }
}

#[test]
fn the_checker_names_what_is_wrong() {
    let msg = check_vec_env("maze:size=8").unwrap_err();
    assert!(msg.contains("size") && msg.contains("odd"), "{msg}");
    let msg = check_vec_env("nothing-here").unwrap_err();
    assert!(msg.contains("does not parse"), "{msg}");
}

#[test]
fn a_state_that_does_not_fit_is_refused_with_the_reason() {
    for family in families() {
        let id = family.name;
        let mut small = registry::make(id, 2).unwrap();
        small.reset(5).unwrap();
        let state = small.save_state().unwrap();
        let mut env = registry::make(id, 3).unwrap();
        env.reset(7).unwrap();
        let err = env.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("needs 3"), "{id}: {err}");
        let damaged = serde_json::json!({ "t": 0 });
        let err = env.load_state(&damaged).unwrap_err().to_string();
        assert!(
            err.contains("does not fit") && err.contains("missing field"),
            "{id}: {err}"
        );
    }
}
