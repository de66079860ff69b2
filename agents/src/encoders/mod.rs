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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    pub kind: EncoderKind,
    /// Divide `uint8` images by 255, as Stable-Baselines3 does (its `normalize_images`).
    pub normalize_images: bool,
    /// Read each image value as a symbol of `0..one_hot`, a one-hot vector of that many
    /// entries (all zeros outside the range): BabyAI's embedding of MiniGrid's views, whose
    /// values are object, colour and state indices (0–10) rather than intensities. 0: read
    /// values as numbers.
    pub one_hot: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            kind: EncoderKind::default(),
            normalize_images: true,
            one_hot: 0,
        }
    }
}

/// What an image's values become before the network reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pixels {
    /// The values as they are.
    AsIs,
    /// Multiplied by this (1/255 for normalised `uint8` images).
    Scaled(f64),
    /// One-hot over this many symbols: each channel becomes this many.
    OneHot(i64),
}

impl Pixels {
    fn of(config: &EncoderConfig, image: &ImageSpace) -> Self {
        match config.one_hot {
            0 if config.normalize_images && image.uint8 => Self::Scaled(1.0 / 255.0),
            0 => Self::AsIs,
            k => Self::OneHot(k as i64),
        }
    }

    /// Values per input value.
    fn width(self) -> usize {
        match self {
            Self::OneHot(k) => k as usize,
            _ => 1,
        }
    }

    /// Values of the copy reading `values` makes, which autograd keeps for the first layer's
    /// gradient: none when read as they are.
    fn copy_len(self, values: usize) -> usize {
        match self {
            Self::AsIs => 0,
            _ => values * self.width(),
        }
    }

    /// `x` read this way; a one-hot axis is appended last (`[..., k]`).
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Self::AsIs => x.shallow_clone(),
            // Out of place: `x` may be a view of the caller's observations.
            Self::Scaled(s) => x * s,
            Self::OneHot(k) => {
                let symbols = Tensor::arange(k, (x.kind(), x.device()));
                x.unsqueeze(-1).eq_tensor(&symbols).to_kind(x.kind())
            }
        }
    }
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
        "encoder.one_hot = {one_hot} reads image values as symbols, and `{env}` gives flat \
         observations ({obs_dim} values); leave encoder.one_hot at 0"
    )]
    OneHotNotAnImage {
        one_hot: usize,
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
    /// Observations as a vector, read as `pixels` says (flat observations as they are).
    Flat {
        pixels: Pixels,
    },
    Conv(ConvEncoder),
}

/// What `config` makes of `spec`'s observations, before any weight is drawn.
enum Plan {
    Flat(Pixels),
    Conv(conv::Shape, ImageSpace, Pixels),
}

fn plan(config: &EncoderConfig, spec: &EnvSpec) -> Result<Plan, EncoderError> {
    let kind = config.kind;
    let Some(image) = spec.image else {
        if config.one_hot > 0 {
            return Err(EncoderError::OneHotNotAnImage {
                one_hot: config.one_hot,
                env: spec.id.clone(),
                obs_dim: spec.obs_dim,
            });
        }
        return match kind {
            EncoderKind::Auto | EncoderKind::Flat => Ok(Plan::Flat(Pixels::AsIs)),
            _ => Err(EncoderError::NotAnImage {
                kind: kind.name(),
                env: spec.id.clone(),
                obs_dim: spec.obs_dim,
            }),
        };
    };
    let shape = match kind {
        EncoderKind::Flat => return Ok(Plan::Flat(Pixels::of(config, &image))),
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
    Ok(Plan::Conv(shape, image, Pixels::of(config, &image)))
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
            Plan::Flat(pixels) => Self {
                features: spec.obs_dim * pixels.width(),
                activations: pixels.copy_len(spec.obs_dim),
            },
            Plan::Conv(shape, image, pixels) => shape.sizes(&image, pixels),
        })
    }
}

impl Encoder {
    /// The encoder `config` picks for `spec`'s observations, its weights drawn (convolutional
    /// ones only) under `p / "encoder"`; an error if it cannot read them.
    pub fn new(p: &nn::Path, config: &EncoderConfig, spec: &EnvSpec) -> Result<Self, EncoderError> {
        Ok(match plan(config, spec)? {
            Plan::Flat(pixels) => Self::Flat { pixels },
            Plan::Conv(shape, image, pixels) => {
                Self::Conv(ConvEncoder::new(&(p / "encoder"), shape, image, pixels))
            }
        })
    }

    /// Features per observation: the core's input size.
    pub fn output_dim(&self, spec: &EnvSpec) -> i64 {
        match self {
            Self::Flat { pixels } => (spec.obs_dim * pixels.width()) as i64,
            Self::Conv(c) => c.output_dim(),
        }
    }

    /// `[N × obs_dim]` → `[N × features]`, with a graph into the encoder's weights.
    pub fn encode(&self, obs: &Tensor) -> Tensor {
        match self {
            Self::Flat { pixels } => pixels.apply(obs).flatten(1, -1),
            Self::Conv(c) => c.forward(obs),
        }
    }

    /// `[T × B × obs_dim]` → `[T × B × features]`: every step in one call.
    pub fn encode_steps(&self, xs: &Tensor) -> Tensor {
        match self {
            Self::Flat {
                pixels: Pixels::AsIs,
            } => xs.shallow_clone(),
            _ => {
                let (t, b) = (xs.size()[0], xs.size()[1]);
                self.encode(&xs.flatten(0, 1)).unflatten(0, [t, b])
            }
        }
    }
}
