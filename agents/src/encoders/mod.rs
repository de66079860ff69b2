//! Observation encoders in front of the recurrent core (`[encoder]` in a config): flat
//! observations go in as they are; images (`EnvSpec::image`) through a small convolutional
//! network, trained by autograd with everything else, whichever engine runs the core (the
//! hand-written pass hands its input's gradient back to the encoder's graph: see
//! `cores::bptt`).
mod conv;

pub use conv::ConvEncoder;

use plastic_envs::{EnvSpec, ImageSpace};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

config_option! {
    /// Which encoder reads the observations (`encoder.kind`).
    pub enum EncoderKind {
        /// `nature` for images of at least 36×36, `minigrid` for smaller ones (from 4×4),
        /// `flat` for flat observations: what fits the observation's shape.
        #[default]
        Auto = "auto",
        /// The observation as it is (an image flattened row-major), straight into the core.
        Flat = "flat",
        /// Stable-Baselines3's `NatureCNN` (Mnih et al. 2015): 8×8, 4×4 and 3×3 convolutions
        /// with strides 4, 2, 1 (32, 64, 64 channels), then 512 features; for large frames.
        Nature = "nature",
        /// The small network of Stable-Baselines3's MiniGrid example: three 2×2 convolutions
        /// (16, 32, 64 channels), then 128 features; for MiniGrid's 7×7 views.
        Minigrid = "minigrid",
    }
}

/// The `[encoder]` section of a config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    pub kind: EncoderKind,
}

impl EncoderConfig {
    /// Left out of the written config when it is the default, so that configs without the
    /// section read and write as they always did.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncoderError {
    #[error(
        "encoder.kind = \"{kind}\" reads images, and `{env}` gives flat observations ({obs_dim} \
         values); use encoder.kind = \"flat\" (or \"auto\")"
    )]
    NotAnImage {
        kind: &'static str,
        env: String,
        obs_dim: usize,
    },
    #[error(
        "encoder.kind = \"{kind}\" needs images of at least {min}×{min}, and `{env}` gives \
         {height}×{width} ({channels} channels); {advice}"
    )]
    TooSmall {
        kind: &'static str,
        env: String,
        min: usize,
        height: usize,
        width: usize,
        channels: usize,
        advice: &'static str,
    },
}

/// What an encoder does to a batch of observations.
#[derive(Debug)]
pub enum Encoder {
    /// Observations as they are, `uint8` images divided by 255 (`scale`).
    Flat {
        scale: Option<f64>,
    },
    Conv(ConvEncoder),
}

/// What `config` makes of `spec`'s observations, before any weight is drawn.
enum Plan {
    Flat(Option<f64>),
    Conv(conv::Shape, ImageSpace),
}

fn plan(config: &EncoderConfig, spec: &EnvSpec) -> Result<Plan, EncoderError> {
    let kind = config.kind;
    let Some(image) = spec.image else {
        return match kind {
            EncoderKind::Auto | EncoderKind::Flat => Ok(Plan::Flat(None)),
            _ => Err(EncoderError::NotAnImage {
                kind: kind.name(),
                env: spec.id.clone(),
                obs_dim: spec.obs_dim,
            }),
        };
    };
    let shape = match kind {
        EncoderKind::Flat => return Ok(Plan::Flat(scale(&image))),
        EncoderKind::Nature => conv::NATURE,
        EncoderKind::Minigrid => conv::MINIGRID,
        EncoderKind::Auto if conv::NATURE.takes(&image) => conv::NATURE,
        EncoderKind::Auto => conv::MINIGRID,
    };
    if !shape.takes(&image) {
        return Err(EncoderError::TooSmall {
            kind: kind.name(),
            env: spec.id.clone(),
            min: shape.min_side(),
            height: image.height,
            width: image.width,
            channels: image.channels,
            advice: match kind {
                EncoderKind::Nature => {
                    "use encoder.kind = \"minigrid\" (from 4×4) or \"flat\" for small images"
                }
                _ => "use encoder.kind = \"flat\", which reads the image as a vector",
            },
        });
    }
    Ok(Plan::Conv(shape, image))
}

/// An encoder's sizes per observation, known before it is built: for the memory estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSizes {
    /// Features: the core's input size.
    pub features: usize,
    /// Values one observation's pass keeps for the backward pass (the convolutions' outputs
    /// and the features; none for a flat encoder).
    pub activations: usize,
}

impl EncoderSizes {
    /// The sizes of the encoder `config` picks for `spec`, or why it cannot read them.
    pub fn of(config: &EncoderConfig, spec: &EnvSpec) -> Result<Self, EncoderError> {
        Ok(match plan(config, spec)? {
            Plan::Flat(_) => Self {
                features: spec.obs_dim,
                activations: 0,
            },
            Plan::Conv(shape, image) => shape.sizes(&image),
        })
    }
}

impl Encoder {
    /// The encoder `config` picks for `spec`'s observations, its weights drawn (convolutional
    /// ones only) under `p / "encoder"`; an error if it cannot read them.
    pub fn new(p: &nn::Path, config: &EncoderConfig, spec: &EnvSpec) -> Result<Self, EncoderError> {
        Ok(match plan(config, spec)? {
            Plan::Flat(scale) => Self::Flat { scale },
            Plan::Conv(shape, image) => {
                Self::Conv(ConvEncoder::new(&(p / "encoder"), shape, image))
            }
        })
    }

    /// Features per observation: the core's input size.
    pub fn output_dim(&self, spec: &EnvSpec) -> i64 {
        match self {
            Self::Flat { .. } => spec.obs_dim as i64,
            Self::Conv(c) => c.output_dim(),
        }
    }

    /// `[N × obs_dim]` → `[N × features]`, with a graph into the encoder's weights.
    pub fn encode(&self, obs: &Tensor) -> Tensor {
        match self {
            Self::Flat { scale: None } => obs.shallow_clone(),
            Self::Flat { scale: Some(s) } => obs * *s,
            Self::Conv(c) => c.forward(obs),
        }
    }

    /// `[T × B × obs_dim]` → `[T × B × features]`: every step in one call.
    pub fn encode_steps(&self, xs: &Tensor) -> Tensor {
        match self {
            Self::Flat { scale: None } => xs.shallow_clone(),
            _ => {
                let (t, b) = (xs.size()[0], xs.size()[1]);
                self.encode(&xs.flatten(0, 1)).unflatten(0, [t, b])
            }
        }
    }
}

/// Stable-Baselines3 divides `uint8` images by 255 (`preprocess_obs`).
fn scale(image: &ImageSpace) -> Option<f64> {
    image.uint8.then_some(1.0 / 255.0)
}
