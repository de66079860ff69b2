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
    EncoderConfig { kind }
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
    let sizes = EncoderSizes::of(&config(EncoderKind::Minigrid), &spec(Some([7, 7, 3]))).unwrap();
    assert_eq!(sizes.activations, 576 + 800 + 1024 + 128);
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
