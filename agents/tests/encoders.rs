//! Observation encoders: the features each network gives, the observations each refuses,
//! and the hand-written backward pass handing its input's gradient back to a convolutional
//! encoder exactly as autograd does (f64, every engine).
mod common;
use common::*;
use plastic_agents::cores::{CoreConfig, CoreKind, Engine, Modulation, Tape, TraceCheckpoints};
use plastic_agents::encoders::{Encoder, EncoderConfig, EncoderError, EncoderKind, EncoderSizes};
use plastic_agents::parameters::{named_gradients, zero_gradients};
use plastic_agents::ActorCritic;
use plastic_envs::{EnvSpec, ImageSpace};
use tch::{Kind, Tensor};

/// An environment spec whose observations are images of `shape` (none: 10 flat values).
fn spec(shape: Option<[usize; 3]>) -> EnvSpec {
    let image = shape.map(|s| ImageSpace::from_shape(&s, true).unwrap());
    EnvSpec {
        id: "test:images".into(),
        obs_dim: image.map_or(10, |i| i.len()),
        num_actions: 3,
        action_start: 0,
        action_box: None,
        image,
        episode_len: None,
    }
}

fn config(kind: EncoderKind) -> EncoderConfig {
    EncoderConfig {
        kind,
        ..EncoderConfig::default()
    }
}

fn encoder(kind: EncoderKind, spec: &EnvSpec) -> Result<Encoder, EncoderError> {
    Encoder::new(&vs64().root(), &config(kind), spec)
}

#[test]
fn each_encoder_gives_its_features_for_a_batch_of_observations() {
    let cases = [
        // Atari's stacked frames, channels first: NatureCNN's 512 features.
        (Some([4, 84, 84]), EncoderKind::Auto, 512),
        (Some([84, 84, 3]), EncoderKind::Nature, 512),
        // MiniGrid's 7×7×3 views: the small network's 128.
        (Some([7, 7, 3]), EncoderKind::Auto, 128),
        (Some([7, 7, 3]), EncoderKind::Flat, 147),
        (None, EncoderKind::Auto, 10),
    ];
    for (shape, kind, features) in cases {
        let spec = spec(shape);
        let encoder = encoder(kind, &spec).unwrap();
        assert_eq!(encoder.output_dim(&spec), features, "{shape:?} {kind:?}");
        let sizes = EncoderSizes::of(&config(kind), &spec).unwrap();
        assert_eq!(sizes.features as i64, features);
        let obs = Tensor::rand([5, spec.obs_dim as i64], F64) * 255.0;
        assert_eq!(
            encoder.encode(&obs).size(),
            [5, features],
            "{shape:?} {kind:?}"
        );
        let steps = obs.view([1, 5, -1]).repeat([2, 1, 1]);
        assert_eq!(encoder.encode_steps(&steps).size(), [2, 5, features]);
    }
    // 7×7 through 2×2 convolutions: 16·6·6 + 32·5·5 + 64·4·4 values, and the 128 features.
    // The image divided by 255, the convolutions' outputs, the features.
    let sizes = EncoderSizes::of(&config(EncoderKind::Minigrid), &spec(Some([7, 7, 3]))).unwrap();
    assert_eq!(sizes.activations, 147 + 576 + 800 + 1024 + 128);
}

#[test]
fn convolutional_encoders_start_orthogonal_times_root_two_with_zero_biases() {
    // Stable-Baselines3's start: weights that keep a signal's scale through each ReLU layer.
    for (shape, kind) in [
        ([7, 7, 3], EncoderKind::Minigrid),
        ([84, 84, 3], EncoderKind::Nature),
    ] {
        let vs = vs64();
        Encoder::new(&vs.root(), &config(kind), &spec(Some(shape))).unwrap();
        let variables = vs.variables();
        assert_eq!(
            variables.len(),
            8,
            "{kind:?}: three convolutions and a linear layer"
        );
        for (name, v) in &variables {
            if name.ends_with("bias") {
                assert_eq!(v.abs().max().double_value(&[]), 0.0, "{kind:?} {name}");
                continue;
            }
            let out = v.size()[0];
            let w = v.reshape([out, -1]);
            let gram = match out <= w.size()[1] {
                true => w.matmul(&w.tr()),
                false => w.tr().matmul(&w),
            };
            let eye = Tensor::eye(gram.size()[0], (Kind::Double, tch::Device::Cpu));
            let err = (gram - eye * 2.0).abs().max().double_value(&[]);
            assert!(err < 1e-10, "{kind:?} {name}: off by {err}");
        }
    }
}

#[test]
fn uint8_images_are_divided_by_255_and_flat_observations_kept_as_they_are() {
    let image = spec(Some([7, 7, 3]));
    let obs = Tensor::full([2, 147], 255.0, F64);
    let flat = encoder(EncoderKind::Flat, &image).unwrap().encode(&obs);
    assert!(flat.equal(&Tensor::ones([2, 147], F64)));
    let plain = spec(None);
    let obs = Tensor::rand([2, 10], F64);
    assert!(encoder(EncoderKind::Auto, &plain)
        .unwrap()
        .encode(&obs)
        .equal(&obs));
    // The divided copy is kept for the core's gradient; flat observations make none.
    let sizes = |spec: &EnvSpec| EncoderSizes::of(&config(EncoderKind::Flat), spec).unwrap();
    assert_eq!(sizes(&image).activations, 147);
    assert_eq!(sizes(&plain).activations, 0);
}

#[test]
fn normalize_images_off_reads_uint8_images_as_they_are() {
    let image = spec(Some([7, 7, 3]));
    let raw = EncoderConfig {
        kind: EncoderKind::Flat,
        normalize_images: false,
        ..EncoderConfig::default()
    };
    let obs = Tensor::full([2, 147], 6.0, F64);
    let flat = Encoder::new(&vs64().root(), &raw, &image).unwrap();
    assert!(flat.encode(&obs).equal(&obs));
    // The convolutional encoder, the same weights either way: raw values v read as v·255 do
    // once divided by 255.
    let (normalised_vs, mut raw_vs) = (vs64(), vs64());
    let normalised = Encoder::new(
        &normalised_vs.root(),
        &config(EncoderKind::Minigrid),
        &image,
    )
    .unwrap();
    let raw = EncoderConfig {
        kind: EncoderKind::Minigrid,
        normalize_images: false,
        ..EncoderConfig::default()
    };
    let unnormalised = Encoder::new(&raw_vs.root(), &raw, &image).unwrap();
    raw_vs.copy(&normalised_vs).unwrap();
    let obs = Tensor::rand([3, 147], F64) * 10.0;
    let expected = normalised.encode(&(&obs * 255.0));
    let got = unnormalised.encode(&obs);
    assert!(got.allclose(&expected, 1e-12, 1e-12, false));
    assert!(got.abs().sum(Kind::Double).double_value(&[]) > 0.0);
}

fn one_hot(kind: EncoderKind, symbols: usize) -> EncoderConfig {
    EncoderConfig {
        kind,
        one_hot: symbols,
        ..EncoderConfig::default()
    }
}

#[test]
fn one_hot_reads_each_value_as_a_symbol_and_values_outside_as_none() {
    let image = spec(Some([1, 3, 1]));
    let flat = Encoder::new(&vs64().root(), &one_hot(EncoderKind::Flat, 3), &image).unwrap();
    assert_eq!(flat.output_dim(&image), 9);
    let obs = Tensor::from_slice(&[0.0, 2.0, 3.0, 1.0, 7.0, 0.0]).view([2, 3]);
    #[rustfmt::skip]
    let expected = Tensor::from_slice(&[
        1.0, 0.0, 0.0,  0.0, 0.0, 1.0,  0.0, 0.0, 0.0,
        0.0, 1.0, 0.0,  0.0, 0.0, 0.0,  1.0, 0.0, 0.0,
    ])
    .view([2, 9]);
    assert!(flat.encode(&obs).equal(&expected));
    // The one-hot copy is the core's input, kept for its gradient.
    let sizes = EncoderSizes::of(&one_hot(EncoderKind::Flat, 3), &image).unwrap();
    assert_eq!((sizes.features, sizes.activations), (9, 9));
}

#[test]
fn a_one_hot_convolutional_encoder_reads_one_plane_per_symbol_of_each_channel() {
    const K: i64 = 11;
    // MiniGrid's layout, [7, 7, 3] channels last, against the same network on 33 planes
    // made by hand, [channel · K + symbol], channels first.
    let minigrid = spec(Some([7, 7, 3]));
    let planes = EnvSpec {
        image: Some(ImageSpace {
            height: 7,
            width: 7,
            channels: 3 * K as usize,
            channels_first: true,
            uint8: false,
        }),
        obs_dim: 7 * 7 * 3 * K as usize,
        ..minigrid.clone()
    };
    let (symbols_vs, mut planes_vs) = (vs64(), vs64());
    let symbols = Encoder::new(
        &symbols_vs.root(),
        &one_hot(EncoderKind::Minigrid, K as usize),
        &minigrid,
    )
    .unwrap();
    let by_hand = Encoder::new(&planes_vs.root(), &config(EncoderKind::Minigrid), &planes).unwrap();
    planes_vs.copy(&symbols_vs).unwrap();
    // Values 0–12: 11 and 12 are outside the symbols and light no plane.
    let obs = Tensor::randint(13, [4, 147], F64);
    let image = obs.view([4, 7, 7, 3]);
    let mut hand = Vec::new();
    for c in 0..3 {
        for k in 0..K {
            hand.push(image.select(3, c).eq(k as f64).to_kind(Kind::Double));
        }
    }
    let hand = Tensor::stack(&hand, 1).view([4, -1]);
    let got = symbols.encode(&obs);
    assert!(got.allclose(&by_hand.encode(&hand), 1e-12, 1e-12, false));
    assert!(got.abs().sum(Kind::Double).double_value(&[]) > 0.0);
    let sizes = EncoderSizes::of(&one_hot(EncoderKind::Minigrid, K as usize), &minigrid);
    assert_eq!(
        sizes.unwrap().activations,
        147 * 11 + 576 + 800 + 1024 + 128
    );
}

#[test]
fn observations_an_encoder_cannot_read_are_one_clear_error() {
    // NatureCNN's 8×8 kernel with stride 4 and the two after it need 36×36.
    let msg = encoder(EncoderKind::Nature, &spec(Some([7, 7, 3])))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("encoder.kind = \"nature\"")
            && msg.contains("at least 36×36")
            && msg.contains("7×7")
            && msg.contains("encoder.kind = \"minigrid\""),
        "{msg}"
    );
    // A side of 3 is too small for three 2×2 convolutions, whichever picks them.
    for kind in [EncoderKind::Auto, EncoderKind::Minigrid] {
        let msg = encoder(kind, &spec(Some([3, 30, 30]).map(|_| [30, 3, 4])))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("at least 4×4") && msg.contains("encoder.kind = \"flat\""),
            "{msg}"
        );
    }
    let msg = encoder(EncoderKind::Minigrid, &spec(None))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("flat observations (10 values)") && msg.contains("`test:images`"),
        "{msg}"
    );
    // The same error from building a whole network.
    assert!(EncoderSizes::of(&config(EncoderKind::Nature), &spec(None)).is_err());
    // Symbols are read from images only.
    let msg = Encoder::new(&vs64().root(), &one_hot(EncoderKind::Auto, 11), &spec(None))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("encoder.one_hot = 11") && msg.contains("flat observations (10 values)"),
        "{msg}"
    );
}

/// Unrolls images `xs` `[T × B × obs]` through the encoder and the core with `engine`,
/// backpropagates `Σ h ⊙ weights`; returns the outputs and every parameter's gradient.
fn run_engine(
    vs: &tch::nn::VarStore,
    ac: &ActorCritic,
    engine: Engine,
    xs: &Tensor,
    weights: &Tensor,
) -> (Tensor, Vec<(String, Tensor)>) {
    zero_gradients(vs);
    let b = xs.size()[1];
    let mut tape = Tape::new(
        &ac.core,
        &ac.initial_state(b),
        engine,
        TraceCheckpoints::Every(2),
    );
    assert_eq!(tape.engine(), engine);
    let features = ac.encoder.encode_steps(xs);
    let mut outs = Vec::new();
    for t in 0..xs.size()[0] {
        // Row 1's episode ends after step 2.
        let starts = [false, t == 3, false];
        outs.push(tape.step(&features.get(t), &starts[..b as usize]));
    }
    let hs = Tensor::stack(&outs, 0).set_requires_grad(true);
    (&hs * weights).sum(Kind::Double).backward();
    tape.backward(&hs.grad());
    let grads = named_gradients(vs);
    (hs.detach(), grads)
}

#[test]
fn the_hand_written_pass_trains_a_convolutional_encoder_as_autograd_does() {
    let cores = [
        CoreConfig {
            hidden: 5,
            ..CoreConfig::backpropamine(5)
        },
        CoreConfig {
            kind: CoreKind::PlasticLstm,
            hidden: 4,
            modulation: Modulation::None,
            ..CoreConfig::default()
        },
    ];
    for core in cores {
        tch::manual_seed(3);
        // A 5×4 image of 2 channels, channels last, uint8 values.
        let spec = spec(Some([5, 4, 2]));
        let vs = vs64();
        let p = vs.root() / "ac";
        let encoder = Encoder::new(&p, &config(EncoderKind::Minigrid), &spec).unwrap();
        let features = encoder.output_dim(&spec);
        let ac = ActorCritic::with_encoder(encoder, &p, features, 3, &core).unwrap();
        randomize(&vs);
        let (t, b) = (5, 3);
        let xs = (Tensor::rand([t, b, spec.obs_dim as i64], F64) * 255.0).round();
        let weights = Tensor::randn([t, b, ac.core.hidden()], F64);
        let (h_auto, g_auto) = run_engine(&vs, &ac, Engine::Autograd, &xs, &weights);
        for engine in [Engine::Fused, Engine::Ops] {
            let who = format!("{} ({})", label(&core), engine.name());
            let (h, g) = run_engine(&vs, &ac, engine, &xs, &weights);
            assert!(max_abs_diff(&h_auto, &h) < 1e-12, "{who}: outputs differ");
            let mut encoder_grads = 0;
            for ((name, a), (_, f)) in g_auto.iter().zip(&g) {
                let scale = a.abs().max().double_value(&[]).max(1e-3);
                let diff = max_abs_diff(a, f);
                assert!(
                    diff <= 1e-10 * scale,
                    "{who}: gradient of {name} differs by {diff:e} (scale {scale:e})"
                );
                if name.contains("encoder") {
                    assert!(
                        f.abs().max().double_value(&[]) > 0.0,
                        "{who}: no gradient reaches {name}"
                    );
                    encoder_grads += 1;
                }
            }
            // Three convolutions and the linear layer, weight and bias each.
            assert_eq!(encoder_grads, 8, "{who}");
        }
    }
}
