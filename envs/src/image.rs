//! Image observations: how a rank-3 `Box` observation lies in the flat `f32` buffer, so that
//! agents can put a convolutional encoder in front of their recurrent core.

/// The layout of an image observation, one per row of the observation buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageSpace {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// The buffer holds each image as `[C, H, W]`; otherwise as `[H, W, C]` (Gymnasium's and
    /// MiniGrid's usual layout).
    pub channels_first: bool,
    /// The environment's values are `uint8` in `0..=255` (carried as `f32`): encoders divide
    /// them by 255, as Stable-Baselines3 normalises image observations.
    pub uint8: bool,
}

impl ImageSpace {
    /// The image of a Box observation of `shape`, if it has rank 3. Which axis holds the
    /// channels is Stable-Baselines3's rule (`is_image_space_channels_first`): the first when
    /// no axis is smaller, else the last.
    pub fn from_shape(shape: &[usize], uint8: bool) -> Option<Self> {
        let &[a, b, c] = shape else {
            return None;
        };
        let channels_first = a <= b.min(c);
        let (height, width, channels) = if channels_first { (b, c, a) } else { (a, b, c) };
        Some(Self {
            height,
            width,
            channels,
            channels_first,
            uint8,
        })
    }

    /// Values per image: the observation's length in the buffer.
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Never: an image has at least one value (for clippy's `len` without `is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape as the environment gives it, e.g. `(7, 7, 3)`.
    pub fn shape(&self) -> [usize; 3] {
        match self.channels_first {
            true => [self.channels, self.height, self.width],
            false => [self.height, self.width, self.channels],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_axis_is_the_channels_as_in_stable_baselines3() {
        let minigrid = ImageSpace::from_shape(&[7, 7, 3], true).unwrap();
        assert_eq!((minigrid.height, minigrid.channels), (7, 3));
        assert!(!minigrid.channels_first);
        let atari = ImageSpace::from_shape(&[4, 84, 84], true).unwrap();
        assert_eq!((atari.channels, atari.width), (4, 84));
        assert!(atari.channels_first);
        assert_eq!(atari.shape(), [4, 84, 84]);
        assert_eq!(atari.len(), 4 * 84 * 84);
        assert_eq!(ImageSpace::from_shape(&[84, 84], true), None);
        assert_eq!(ImageSpace::from_shape(&[2, 3, 4, 5], true), None);
    }
}
