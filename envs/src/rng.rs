//! Random streams. Every environment row and every policy row owns its own generator, derived
//! from a run seed and the row index, so results do not depend on the batch size.
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub type Rng = Xoshiro256PlusPlus;

/// The generator for row `row` of a batch seeded with `seed`.
pub fn stream(seed: u64, row: usize) -> Rng {
    // SplitMix64 of the pair decorrelates neighbouring seeds and rows.
    let mut z = seed
        ^ (row as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng::seed_from_u64(z ^ (z >> 31))
}

/// The generators of rows `0..num_envs` of a batch seeded with `seed`.
pub fn streams(seed: u64, num_envs: usize) -> Vec<Rng> {
    (0..num_envs).map(|row| stream(seed, row)).collect()
}

/// Policy streams are derived from the seed xor this, so a policy and an environment given
/// the same seed still draw independent numbers.
const POLICY_SALT: u64 = 0x5DEE_CE66_D1CE_B00C;

/// The generator a policy uses for row `row` of a batch seeded with `seed`.
pub fn policy_stream(seed: u64, row: usize) -> Rng {
    stream(seed ^ POLICY_SALT, row)
}
