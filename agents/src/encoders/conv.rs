//! Convolutional encoders: a stack of valid (unpadded) convolutions with ReLUs, flattened,
//! then one linear layer with a ReLU, as Stable-Baselines3's `NatureCNN` and its MiniGrid
//! example are built, and started as Stable-Baselines3 starts them: orthogonal weights times
//! √2, zero biases.
use super::Pixels;
use crate::actor_critic::Head;
use crate::cores::init;
use plastic_envs::ImageSpace;
use tch::{nn, Tensor};

/// The gain that keeps a signal's scale through a ReLU layer (He et al. 2015). PyTorch's
/// default `U(±1/√fan_in)` shrinks it at every layer, until the core behind can hardly tell
/// one view from another (docs/gymnasium.md#image-observations).
const RELU_GAIN: f64 = std::f64::consts::SQRT_2;

/// One convolution: output channels, kernel side, stride.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layer {
    channels: i64,
    kernel: usize,
    stride: usize,
}

/// A network's shape.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    layers: [Layer; 3],
    features: i64,
}

const fn layer(channels: i64, kernel: usize, stride: usize) -> Layer {
    Layer {
        channels,
        kernel,
        stride,
    }
}

pub(super) const NATURE: Shape = Shape {
    layers: [layer(32, 8, 4), layer(64, 4, 2), layer(64, 3, 1)],
    features: 512,
};

pub(super) const MINIGRID: Shape = Shape {
    layers: [layer(16, 2, 1), layer(32, 2, 1), layer(64, 2, 1)],
    features: 128,
};

impl Shape {
    /// The side of every layer's output for an input side `side`, or `None` where a kernel
    /// no longer fits.
    fn sides(&self, side: usize) -> Option<[usize; 3]> {
        let mut out = [0; 3];
        let mut s = side;
        for (o, l) in out.iter_mut().zip(&self.layers) {
            s = s.checked_sub(l.kernel)? / l.stride + 1;
            *o = s;
        }
        Some(out)
    }

    pub(super) fn takes(&self, image: &ImageSpace) -> bool {
        self.sides(image.height.min(image.width)).is_some()
    }

    /// The features and the activations per image: the input as read (where reading makes a
    /// new tensor: scaled or one-hot), the convolutions' outputs and the features.
    pub(super) fn sizes(&self, image: &ImageSpace, pixels: Pixels) -> super::EncoderSizes {
        let hs = self.sides(image.height).expect("checked by `takes`");
        let ws = self.sides(image.width).expect("checked by `takes`");
        let conv: usize = (0..3)
            .map(|i| self.layers[i].channels as usize * hs[i] * ws[i])
            .sum();
        super::EncoderSizes {
            features: self.features as usize,
            activations: pixels.copy_len(image.len()) + conv + self.features as usize,
        }
    }

    /// The smallest side every kernel fits in.
    pub(super) fn min_side(&self) -> usize {
        (1..)
            .find(|&s| self.sides(s).is_some())
            .expect("some side fits")
    }
}

#[derive(Debug)]
struct Conv {
    /// `[out × in × k × k]`, `[out]`.
    w: Tensor,
    b: Tensor,
    stride: i64,
}

/// A convolutional encoder of one image layout.
#[derive(Debug)]
pub struct ConvEncoder {
    image: ImageSpace,
    /// How the values are read before the first convolution.
    pixels: Pixels,
    convs: Vec<Conv>,
    linear: Head,
}

impl ConvEncoder {
    pub(super) fn new(p: &nn::Path, shape: Shape, image: ImageSpace, pixels: Pixels) -> Self {
        let hs = shape.sides(image.height).expect("checked by the caller");
        let ws = shape.sides(image.width).expect("checked by the caller");
        let mut inputs = (image.channels * pixels.width()) as i64;
        let mut convs = Vec::new();
        for (i, l) in shape.layers.iter().enumerate() {
            let k = l.kernel as i64;
            let q = p / format!("conv{i}");
            let w = init::orthogonal(l.channels, inputs * k * k, RELU_GAIN);
            convs.push(Conv {
                w: init::var(&q, "weight", &w.reshape([l.channels, inputs, k, k])),
                b: init::var(&q, "bias", &init::zeros(&[l.channels])),
                stride: l.stride as i64,
            });
            inputs = l.channels;
        }
        let flat = inputs * (hs[2] * ws[2]) as i64;
        Self {
            image,
            pixels,
            convs,
            linear: Head::orthogonal(&(p / "linear"), flat, shape.features, RELU_GAIN),
        }
    }

    pub fn output_dim(&self) -> i64 {
        self.linear.b.size()[0]
    }

    /// `[N × obs_dim]` (each row an image as the environment lays it out) → `[N × features]`.
    pub fn forward(&self, obs: &Tensor) -> Tensor {
        let n = obs.size()[0];
        let ImageSpace {
            height: h,
            width: w,
            channels: c,
            ..
        } = self.image;
        let [h, w, c] = [h, w, c].map(|d| d as i64);
        let image = match self.image.channels_first {
            true => obs.reshape([n, c, h, w]),
            false => obs.reshape([n, h, w, c]).permute([0, 3, 1, 2]),
        };
        let mut x = match self.pixels {
            // `[n, c, h, w, k]` → `[n, c·k, h, w]`: each symbol of each channel one input plane.
            Pixels::OneHot(k) => {
                self.pixels
                    .apply(&image)
                    .permute([0, 1, 4, 2, 3])
                    .reshape([n, c * k, h, w])
            }
            pixels => pixels.apply(&image),
        };
        for conv in &self.convs {
            x = x
                .conv2d(&conv.w, Some(&conv.b), [conv.stride; 2], [0; 2], [1; 2], 1)
                .relu();
        }
        self.linear.forward(&x.flatten(1, -1)).relu()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_images_each_network_takes() {
        assert_eq!(NATURE.min_side(), 36);
        assert_eq!(MINIGRID.min_side(), 4);
        // Atari's 84×84: 20, 9, 7 (SB3's NatureCNN flattens 64·7·7 = 3136 values).
        assert_eq!(NATURE.sides(84), Some([20, 9, 7]));
        assert_eq!(MINIGRID.sides(7), Some([6, 5, 4]));
        assert_eq!(MINIGRID.sides(3), None);
    }
}
