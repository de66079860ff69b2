//! Colour scales, and the colour bar that says what a scale's colours mean.
use super::canvas::{Align, Canvas, Font, Rgb, GREY, INK};

/// A colour scale: a value in [0, 1] (or [-1, 1] for diverging scales) to a colour.
pub type Scale = fn(f64) -> Rgb;

/// Matplotlib's viridis, from dark purple (0) to yellow (1): ordered, and readable in grey and
/// by colour-blind readers.
pub fn sequential(f: f64) -> Rgb {
    const VIRIDIS: [Rgb; 5] = [
        [68, 1, 84],
        [59, 82, 139],
        [33, 145, 140],
        [94, 201, 98],
        [253, 231, 37],
    ];
    interpolate(&VIRIDIS, f)
}

/// Blue (−1), white (0), red (+1), as ColorBrewer's RdBu: the sign of a value at a glance.
pub fn diverging(f: f64) -> Rgb {
    const RDBU: [Rgb; 5] = [
        [33, 102, 172],
        [146, 197, 222],
        [247, 247, 247],
        [244, 165, 130],
        [178, 24, 43],
    ];
    interpolate(&RDBU, (f + 1.0) / 2.0)
}

/// Time within something, blue (0, early) to red (1, late), dark enough on a light floor.
pub fn time(f: f64) -> Rgb {
    const TIME: [Rgb; 3] = [[40, 90, 220], [160, 50, 180], [225, 50, 30]];
    interpolate(&TIME, f)
}

/// `stops` spread evenly over [0, 1], linear between them; `f` is clamped.
fn interpolate(stops: &[Rgb], f: f64) -> Rgb {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = f * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let t = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + t * (f64::from(b) - f64::from(a))).round() as u8;
    [
        mix(stops[i][0], stops[i + 1][0]),
        mix(stops[i][1], stops[i + 1][1]),
        mix(stops[i][2], stops[i + 1][2]),
    ]
}

/// A number in at most 3 significant digits, as a tick label.
pub fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Width in pixels of a colour bar with these tick labels (see [`colour_bar`]).
pub fn colour_bar_width(low: f64, high: f64) -> i32 {
    let labels = [tick(low), tick(high), tick((low + high) / 2.0)];
    14 + 4
        + labels
            .iter()
            .map(|l| Font::Label.width(l))
            .max()
            .unwrap_or(0)
}

/// A vertical colour bar at (`x`, `y`), `height` pixels tall: `scale` from `low` (bottom) to
/// `high` (top), ticks at both ends and the middle. `diverging` scales take [-1, 1].
pub fn colour_bar(
    canvas: &mut Canvas,
    (x, y): (i32, i32),
    height: i32,
    scale: Scale,
    diverging_scale: bool,
    (low, high): (f64, f64),
) {
    const BAR: i32 = 14;
    for row in 0..height {
        let f = 1.0 - f64::from(row) / f64::from((height - 1).max(1));
        let f = if diverging_scale { 2.0 * f - 1.0 } else { f };
        canvas.fill_rect(x, y + row, BAR as u32, 1, scale(f));
    }
    canvas.outline_rect(x, y, BAR as u32, height as u32, 1, GREY);
    let half = Font::Label.line_height() / 2;
    for (f, v) in [(0.0, high), (0.5, (low + high) / 2.0), (1.0, low)] {
        let ty = y + (f * f64::from(height - 1)) as i32;
        canvas.line((x + BAR, ty), (x + BAR + 2, ty), 1, INK);
        let top = (ty - half).clamp(y - half, y + height - 2 * half);
        canvas.text(x + BAR + 4, top, &tick(v), Font::Label, Align::Left, INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_run_between_their_ends() {
        assert_eq!(sequential(0.0), [68, 1, 84]);
        assert_eq!(sequential(1.0), [253, 231, 37]);
        assert_eq!(diverging(0.0), [247, 247, 247]);
        assert_eq!(diverging(-1.0), [33, 102, 172]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(sequential(f64::NAN), sequential(0.0));
        assert_eq!(time(2.0), time(1.0));
    }

    #[test]
    fn ticks_keep_three_significant_digits() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(0.123456), "0.123");
        assert_eq!(tick(-12.5), "-12.5");
        assert_eq!(tick(1234.0), "1234");
    }
}
