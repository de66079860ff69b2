//! Curves across seeds as a plain SVG chart: per group, the median over runs and a band from
//! the 25th to the 75th percentile, against environment steps (learning curves) or another
//! quantity (a noise level, a lesion's size).
use crate::durable::write_atomic;
use crate::stats::quantile;
use std::fmt::Write;
use std::path::Path;

/// One group's curve: at each x, the median and the interquartile band over its runs.
pub struct Curve {
    pub name: String,
    /// (x, q25, median, q75)
    pub points: Vec<(f64, f64, f64, f64)>,
    pub runs: usize,
}

/// The band of `runs` (each a list of (x, value), x increasing) at every x any of them was
/// measured at, each run read off by linear interpolation within the x it covers.
pub fn band(name: &str, runs: &[Vec<(f64, f64)>]) -> Curve {
    let mut xs: Vec<f64> = runs.iter().flatten().map(|p| p.0).collect();
    xs.sort_unstable_by(f64::total_cmp);
    xs.dedup();
    let points = xs
        .into_iter()
        .filter_map(|x| {
            let values: Vec<f64> = runs.iter().filter_map(|r| at(r, x)).collect();
            (!values.is_empty()).then(|| {
                let q = |p| quantile(&values, p);
                (x, q(0.25), q(0.5), q(0.75))
            })
        })
        .collect();
    Curve {
        name: name.into(),
        points,
        runs: runs.len(),
    }
}

fn at(run: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = run.partition_point(|p| p.0 < x);
    let hit = run.get(i)?;
    if hit.0 == x {
        return Some(hit.1);
    }
    let before = run.get(i.checked_sub(1)?)?;
    let w = (x - before.0) / (hit.0 - before.0);
    Some(before.1 + w * (hit.1 - before.1))
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// The picture and its margins, in pixels.
const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;

/// Environment steps, the x of learning curves: its ticks read 500, 20k, 1.5M.
pub const STEPS: &str = "environment steps";

pub fn write(
    path: &Path,
    curves: &[Curve],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> anyhow::Result<()> {
    let all = curves.iter().flat_map(|c| &c.points);
    let (mut x_max, mut y_min, mut y_max) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, lo, _, hi) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(lo);
        y_max = y_max.max(hi);
    }
    anyhow::ensure!(y_min.is_finite(), "no evaluations to draw");
    let axes = Axes::new(x_max, y_min, y_max);
    let (px, py) = (|x: f64| axes.px(x), |y: f64| axes.py(y));
    let mut svg = axes.draw(
        x_label,
        &format!("{y_label}: median, 25th–75th percentile"),
        title,
    )?;
    for (i, c) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let upper = c
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.3)));
        let lower = c
            .points
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)));
        let band: Vec<String> = upper.chain(lower).collect();
        writeln!(
            svg,
            r#"<polygon points="{}" fill="{colour}" fill-opacity="0.18" stroke="none"/>"#,
            band.join(" ")
        )?;
        let median: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.2)))
            .collect();
        writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></polyline>"#,
            median.join(" "),
            xml_text(&c.name)
        )?;
        let ly = TOP + 8.0 + 18.0 * i as f64;
        writeln!(
            svg,
            r#"<rect x="{}" y="{:.1}" width="14" height="4" fill="{colour}"/>"#,
            LEFT + 10.0,
            ly - 4.0
        )?;
        writeln!(
            svg,
            r#"<text x="{}" y="{:.1}">{} ({} runs)</text>"#,
            LEFT + 30.0,
            ly,
            xml_text(&c.name),
            c.runs
        )?;
    }
    svg.push_str("</svg>\n");
    write_atomic(path, svg.as_bytes())
}

/// Lines without bands or legend, the first darkest and the last lightest: singular values
/// (each a list of (x, value), largest first) against training, like a spectrogram.
pub fn write_lines(
    path: &Path,
    lines: &[Vec<(f64, f64)>],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> anyhow::Result<()> {
    let (mut x_max, mut y_min, mut y_max) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in lines.iter().flatten() {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    anyhow::ensure!(y_min.is_finite(), "no values to draw");
    let axes = Axes::new(x_max, y_min, y_max);
    let mut svg = axes.draw(x_label, y_label, title)?;
    for (i, line) in lines.iter().enumerate() {
        // From dark blue (the first) to pale blue (the last).
        let t = i as f64 / (lines.len().max(2) - 1) as f64;
        let shade = |dark: f64, pale: f64| (dark + t * (pale - dark)).round() as u8;
        let colour = format!(
            "#{:02x}{:02x}{:02x}",
            shade(8.0, 190.0),
            shade(48.0, 215.0),
            shade(107.0, 238.0)
        );
        let points: Vec<String> = line
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", axes.px(x), axes.py(y)))
            .collect();
        writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"><title>{}</title></polyline>"#,
            points.join(" "),
            i + 1
        )?;
    }
    svg.push_str("</svg>\n");
    write_atomic(path, svg.as_bytes())
}

/// A chart's frame: its ranges, and the picture's coordinates of a point.
struct Axes {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Axes {
    /// Ranges that hold `0..=x_max` and `y_min..=y_max` with a margin.
    fn new(x_max: f64, y_min: f64, y_max: f64) -> Self {
        let (y_min, y_max) = match y_max - y_min < 1e-9 {
            true => (y_min - 1.0, y_max + 1.0),
            false => (y_min, y_max),
        };
        let pad = (y_max - y_min) * 0.05;
        Self {
            // Only a chart whose every point is at x = 0 needs a width made up.
            x_max: if x_max > 0.0 { x_max } else { 1.0 },
            y_min: y_min - pad,
            y_max: y_max + pad,
        }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + x / self.x_max * (W - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - (y - self.y_min) / (self.y_max - self.y_min) * (H - TOP - BOTTOM)
    }

    /// The picture's start: background, title, grid, ticks and axis labels.
    fn draw(&self, x_label: &str, y_label: &str, title: &str) -> anyhow::Result<String> {
        let mut svg = String::new();
        writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
        )?;
        writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#)?;
        writeln!(
            svg,
            r#"<text x="{}" y="18" text-anchor="middle" font-size="13">{}</text>"#,
            (W + LEFT) / 2.0,
            xml_text(title)
        )?;
        for x in ticks(0.0, self.x_max) {
            writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1}" stroke="#eee"/>"##,
                self.px(x),
                H - BOTTOM
            )?;
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                self.px(x),
                H - BOTTOM + 16.0,
                steps(x)
            )?;
        }
        for y in ticks(self.y_min, self.y_max) {
            writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/>"##,
                self.py(y),
                W - RIGHT
            )?;
            writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                self.py(y) + 4.0,
                trim(y)
            )?;
        }
        writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (W + LEFT) / 2.0,
            H - 12.0,
            xml_text(x_label)
        )?;
        writeln!(
            svg,
            r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">{y_label}</text>"#,
            (H - BOTTOM + TOP) / 2.0
        )?;
        Ok(svg)
    }
}

/// `text` as SVG text: group names and environment ids are the user's words.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round values (1, 2 or 5 times a power of ten apart) from `lo` to `hi`, four to ten of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 8.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Step counts as people write them: 500, 20k, 1.5M.
fn steps(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{}M", trim(x / 1e6)),
        x if x >= 1e3 => format!("{}k", trim(x / 1e3)),
        x => trim(x),
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_read_off_at_every_step_and_banded() {
        let a = vec![(100.0, 1.0), (200.0, 3.0)];
        let b = vec![(100.0, 2.0), (150.0, 4.0), (200.0, 6.0)];
        let c = band("g", &[a, b]);
        let at_150: Vec<f64> = vec![2.0, 4.0]; // a interpolated at 150
        assert_eq!(c.points.len(), 3);
        assert_eq!(
            c.points[1],
            (150.0, quantile(&at_150, 0.25), 3.0, quantile(&at_150, 0.75))
        );
        assert_eq!(c.points[2].2, 4.5);
        assert_eq!(steps(1_500_000.0), "1.5M");
        assert_eq!(steps(20_000.0), "20k");
        assert_eq!(ticks(0.0, 10_002_000.0), [0.0, 2e6, 4e6, 6e6, 8e6, 1e7]);
        assert_eq!(
            ticks(0.8, 144.6),
            [20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0]
        );
    }
}
