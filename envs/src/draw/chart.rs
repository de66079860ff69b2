//! A small line chart of one quantity over an episode's steps.
use super::canvas::{Align, Canvas, Font, Rgb, GREY, INK};
use super::colours::tick;

/// Where a chart goes and what it says.
pub struct Chart<'a> {
    /// Top left corner of the whole chart, title included.
    pub at: (i32, i32),
    pub size: (i32, i32),
    pub title: &'a str,
    /// One value per step; non-finite values are left out.
    pub values: &'a [f64],
    pub colour: Rgb,
    /// Steps marked by a tick under the axis (rewards, say), in `mark_colour`.
    pub marks: &'a [usize],
    pub mark_colour: Rgb,
}

/// Space the y-axis labels take left of the plot area.
const AXIS: i32 = 44;

impl Chart<'_> {
    pub fn draw(&self, canvas: &mut Canvas) {
        let (x0, y0) = self.at;
        let (w, h) = self.size;
        let line = Font::Label.line_height();
        canvas.text(x0, y0, self.title, Font::Label, Align::Left, INK);
        let (px, py) = (x0 + AXIS, y0 + line + 2);
        let (pw, ph) = (w - AXIS - 4, h - 2 * line - 10);
        canvas.outline_rect(px, py, pw as u32, ph as u32, 1, GREY);
        let finite = self.values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return;
        }
        // A flat series sits in the middle of a range around it.
        let (lo, hi) = if hi - lo < 1e-12 {
            (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
        } else {
            (lo, hi)
        };
        let n = self.values.len().max(2);
        let sx = |i: usize| px + 1 + (i as f64 / (n - 1) as f64 * f64::from(pw - 3)) as i32;
        let sy = |v: f64| py + 1 + ((hi - v) / (hi - lo) * f64::from(ph - 3)) as i32;
        if lo < 0.0 && hi > 0.0 {
            canvas.line((px, sy(0.0)), (px + pw - 1, sy(0.0)), 1, [200, 200, 200]);
        }
        for (label, v) in [(tick(hi), hi), (tick(lo), lo)] {
            let ty = (sy(v) - line / 2).clamp(py - 2, py + ph - line);
            canvas.text(px - 3, ty, &label, Font::Label, Align::Right, INK);
        }
        let mut previous = None;
        for (i, &v) in self.values.iter().enumerate() {
            if !v.is_finite() {
                previous = None;
                continue;
            }
            let p = (sx(i), sy(v));
            if let Some(q) = previous {
                canvas.line(q, p, 1, self.colour);
            } else {
                canvas.set(p.0, p.1, self.colour);
            }
            previous = Some(p);
        }
        for &m in self.marks {
            canvas.line(
                (sx(m), py + ph + 1),
                (sx(m), py + ph + 4),
                1,
                self.mark_colour,
            );
        }
        let axis_y = py + ph + 5;
        canvas.text(px, axis_y, "0", Font::Label, Align::Left, INK);
        canvas.text(px + pw / 2, axis_y, "step", Font::Label, Align::Centre, INK);
        let last = format!("{}", self.values.len().saturating_sub(1));
        canvas.text(px + pw, axis_y, &last, Font::Label, Align::Right, INK);
    }
}
