//! The machine's memory bandwidth, measured as STREAM's "Copy" kernel does (McCalpin's STREAM
//! benchmark: `dst[i] = src[i]` over arrays far larger than the caches, counting the bytes read
//! and written): the roof that the trace passes' achieved bandwidth is judged against.
use std::time::Instant;

/// Gigabytes (10⁹ bytes) per second of each timed round of copying `src` into `dst`, split
/// into `threads` contiguous chunks copied at once.
pub fn copy_rounds(array_bytes: usize, threads: usize, rounds: usize) -> Vec<f64> {
    let len = array_bytes / std::mem::size_of::<f32>();
    let chunk = len.div_ceil(threads.max(1)).max(1);
    let mut src = vec![0f32; len];
    let mut dst = vec![0f32; len];
    // Each thread first writes the chunks it will copy, so their pages are mapped (and, on a
    // machine with several memory nodes, placed near it) before the clock starts.
    std::thread::scope(|scope| {
        for (s, d) in src.chunks_mut(chunk).zip(dst.chunks_mut(chunk)) {
            scope.spawn(move || {
                s.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32);
                d.fill(0.0);
            });
        }
    });
    let copy = |src: &[f32], dst: &mut [f32]| {
        std::thread::scope(|scope| {
            for (s, d) in src.chunks(chunk).zip(dst.chunks_mut(chunk)) {
                scope.spawn(move || d.copy_from_slice(s));
            }
        });
    };
    copy(&src, &mut dst); // warm-up: thread start-up and first-touch effects out of the figures
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            copy(&src, &mut dst);
            let seconds = start.elapsed().as_secs_f64();
            std::hint::black_box(&dst);
            // STREAM counts each element once read and once written.
            2.0 * (len * std::mem::size_of::<f32>()) as f64 / seconds / 1e9
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_at_a_finite_positive_rate() {
        let rates = copy_rounds(1 << 20, 2, 3);
        assert_eq!(rates.len(), 3);
        assert!(rates.iter().all(|r| r.is_finite() && *r > 0.0), "{rates:?}");
    }
}
