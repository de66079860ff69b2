//! Core configs: serde names, defaults, and validation errors that name the key.
use plastic_agents::cores::{
    AlphaShape, Core, CoreConfig, CoreConfigError, CoreKind, EtaShape, InitScheme, Modulation,
    ModulatorShape, Rule, StpShape,
};
use plastic_agents::ActorCritic;
use tch::{nn, Device};

fn parse(json: &str) -> Result<CoreConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn defaults_are_backpropamine() {
    let c = CoreConfig::default();
    assert_eq!(c.kind, CoreKind::PlasticRnn);
    assert_eq!(c.hidden, 100);
    assert_eq!(c.rule, Rule::Hebb);
    assert_eq!(c.clip, 1.0);
    assert_eq!(c.eta, EtaShape::Scalar);
    assert_eq!(c.alpha, AlphaShape::PerConnection);
    assert_eq!(c.modulation, Modulation::Simple);
    assert_eq!(c.modulator, ModulatorShape::Scalar);
    assert_eq!(c.init, InitScheme::Backpropamine);
    assert_eq!(c.gain, 1.0);
    assert_eq!(parse("{}").unwrap(), c);
    assert!(c.validate().is_ok());
}

#[test]
fn every_option_has_a_kebab_case_name() {
    let c = parse(
        r#"{"kind": "plastic-lstm", "hidden": 7, "rule": "oja", "clip": 2.5, "eta": "per-neuron",
            "alpha": "per-neuron", "modulation": "retroactive", "modulator": "fan-out",
            "init": "orthogonal", "gain": 1.5}"#,
    )
    .unwrap();
    let expected = CoreConfig {
        kind: CoreKind::PlasticLstm,
        hidden: 7,
        rule: Rule::Oja,
        clip: 2.5,
        eta: EtaShape::PerNeuron,
        alpha: AlphaShape::PerNeuron,
        modulation: Modulation::Retroactive,
        modulator: ModulatorShape::FanOut,
        init: InitScheme::Orthogonal,
        gain: 1.5,
        stp: StpShape::PerSynapse,
        stp_learned: true,
        timescales: Vec::new(),
    };
    assert_eq!(c, expected);
    // `timescales` is written only where set, like `stp`.
    assert!(!serde_json::to_string(&c).unwrap().contains("timescales"));
    let multi = parse(r#"{"rule": "decay", "modulation": "none", "timescales": [3, 30]}"#).unwrap();
    assert_eq!(multi.timescales, [3.0, 30.0]);
    assert_eq!(
        parse(&serde_json::to_string(&multi).unwrap()).unwrap(),
        multi
    );
    let stpn = parse(r#"{"kind": "stpn", "modulation": "none", "stp": "scalar"}"#).unwrap();
    assert_eq!((stpn.kind, stpn.stp), (CoreKind::Stpn, StpShape::Scalar));
    // `stp` is written only where it is not the default: other kinds' configs are unchanged.
    assert!(!serde_json::to_string(&c).unwrap().contains("stp"));
    assert!(serde_json::to_string(&stpn)
        .unwrap()
        .contains(r#""stp":"scalar""#));
    assert_eq!(parse(&serde_json::to_string(&stpn).unwrap()).unwrap(), stpn);
    // `stp_learned` too (the brief's spelling, snake case as the other sections' keys).
    assert!(!serde_json::to_string(&stpn)
        .unwrap()
        .contains("stp_learned"));
    let fixed = parse(r#"{"kind": "stpn", "modulation": "none", "stp_learned": false}"#).unwrap();
    assert!(!fixed.stp_learned);
    assert_eq!(
        parse(&serde_json::to_string(&fixed).unwrap()).unwrap(),
        fixed
    );
    // Round trip.
    assert_eq!(parse(&serde_json::to_string(&c).unwrap()).unwrap(), c);
    for (kind, name) in [
        (CoreKind::Rnn, "rnn"),
        (CoreKind::Lstm, "lstm"),
        (CoreKind::PlasticRnn, "plastic-rnn"),
    ] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
    }
    for (m, name) in [(Modulation::None, "none"), (Modulation::Simple, "simple")] {
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{name}\""));
    }
    assert_eq!(serde_json::to_string(&Rule::Decay).unwrap(), "\"decay\"");
    assert_eq!(
        serde_json::to_string(&AlphaShape::PerConnection).unwrap(),
        "\"per-connection\""
    );
    assert_eq!(
        serde_json::to_string(&EtaShape::Scalar).unwrap(),
        "\"scalar\""
    );
    assert_eq!(
        serde_json::to_string(&ModulatorShape::Scalar).unwrap(),
        "\"scalar\""
    );
    assert_eq!(
        serde_json::to_string(&InitScheme::Backpropamine).unwrap(),
        "\"backpropamine\""
    );
}

#[test]
fn unknown_keys_and_values_are_rejected() {
    let e = parse(r#"{"hiden": 5}"#).unwrap_err().to_string();
    assert!(e.contains("hiden"), "{e}");
    let e = parse(r#"{"rule": "hebbian"}"#).unwrap_err().to_string();
    assert!(e.contains("hebbian"), "{e}");
}

#[test]
fn validation_names_the_bad_key() {
    let d = CoreConfig::default();
    let cases: Vec<(CoreConfig, &str)> = vec![
        (
            CoreConfig {
                hidden: 0,
                ..d.clone()
            },
            "hidden",
        ),
        (
            CoreConfig {
                clip: 0.0,
                ..d.clone()
            },
            "clip",
        ),
        (
            CoreConfig {
                clip: -1.0,
                ..d.clone()
            },
            "clip",
        ),
        (
            CoreConfig {
                clip: f64::NAN,
                ..d.clone()
            },
            "clip",
        ),
        (
            CoreConfig {
                init: InitScheme::Orthogonal,
                gain: 0.0,
                ..d.clone()
            },
            "gain",
        ),
        (
            CoreConfig {
                gain: 2.0,
                ..d.clone()
            },
            "gain",
        ),
        (
            CoreConfig {
                kind: CoreKind::Rnn,
                ..d.clone()
            },
            "modulation",
        ),
        (
            CoreConfig {
                kind: CoreKind::Lstm,
                modulation: Modulation::Retroactive,
                ..d.clone()
            },
            "modulation",
        ),
        (
            CoreConfig {
                rule: Rule::Oja,
                ..CoreConfig::rnn(4)
            },
            "rule",
        ),
        (
            CoreConfig {
                alpha: AlphaShape::PerNeuron,
                ..CoreConfig::lstm(4)
            },
            "alpha",
        ),
        (
            CoreConfig {
                clip: 2.0,
                ..CoreConfig::rnn(4)
            },
            "clip",
        ),
        (
            CoreConfig {
                rule: Rule::Decay,
                modulation: Modulation::Retroactive,
                ..d.clone()
            },
            "rule",
        ),
        (
            CoreConfig {
                eta: EtaShape::PerNeuron,
                ..d.clone()
            },
            "eta",
        ),
        (
            CoreConfig {
                modulator: ModulatorShape::FanOut,
                modulation: Modulation::None,
                ..d.clone()
            },
            "modulator",
        ),
    ];
    for (config, key) in cases {
        let err = config
            .validate()
            .expect_err(&format!("{config:?} should be rejected"));
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(
            err.to_string().contains(key),
            "message should name `{key}`: {err}"
        );
        // Building refuses it too, rather than panicking.
        let vs = nn::VarStore::new(Device::Cpu);
        let built = Core::new(&vs.root(), 3, &config).unwrap_err();
        assert_eq!(built.to_string(), err.to_string());
    }
}

#[test]
fn valid_combinations_build() {
    for config in [
        CoreConfig::rnn(3),
        CoreConfig::lstm(3),
        CoreConfig::plastic_rnn(3, Rule::Decay),
        CoreConfig::backpropamine(3),
        CoreConfig {
            kind: CoreKind::PlasticLstm,
            init: InitScheme::Orthogonal,
            gain: 1.3,
            ..CoreConfig::backpropamine(3)
        },
        CoreConfig {
            modulation: Modulation::Retroactive,
            eta: EtaShape::PerNeuron,
            ..CoreConfig::backpropamine(3)
        },
        CoreConfig {
            init: InitScheme::Orthogonal,
            gain: 0.9,
            ..CoreConfig::rnn(3)
        },
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(Core::new(&vs.root(), 2, &config).is_ok(), "{config:?}");
    }
}

#[test]
fn zero_inputs_or_actions_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    assert_eq!(
        Core::new(&vs.root(), 0, &CoreConfig::default()).unwrap_err(),
        CoreConfigError::ZeroInput
    );
    assert_eq!(
        ActorCritic::new(&vs.root(), 3, 0, &CoreConfig::default()).unwrap_err(),
        CoreConfigError::ZeroActions
    );
}

#[test]
fn every_option_value_is_listed_once_under_its_config_name() {
    fn check<T>(all: &[T], name: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    {
        assert!(all.len() >= 2);
        for (i, &v) in all.iter().enumerate() {
            assert!(!all[..i].contains(&v), "{v:?} is listed twice");
            let json = format!("\"{}\"", name(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), json);
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        }
    }
    check(CoreKind::ALL, CoreKind::name);
    check(Rule::ALL, Rule::name);
    check(EtaShape::ALL, EtaShape::name);
    check(AlphaShape::ALL, AlphaShape::name);
    check(Modulation::ALL, Modulation::name);
    check(ModulatorShape::ALL, ModulatorShape::name);
    check(InitScheme::ALL, InitScheme::name);
    check(StpShape::ALL, StpShape::name);
}
