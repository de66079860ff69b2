//! An RGB canvas in memory that embedded-graphics draws shapes and bitmap-font text on.
use crate::Frame;
use embedded_graphics::mono_font::iso_8859_1::{FONT_6X10, FONT_7X13_BOLD};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use std::convert::Infallible;

/// A colour: red, green, blue.
pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const INK: Rgb = [30, 30, 30];
pub const GREY: Rgb = [120, 120, 120];

/// The two text sizes: labels, and titles (bold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Label,
    Title,
}

impl Font {
    fn mono(self) -> &'static MonoFont<'static> {
        match self {
            Self::Label => &FONT_6X10,
            Self::Title => &FONT_7X13_BOLD,
        }
    }

    /// Pixels from one line of text to the next.
    pub fn line_height(self) -> i32 {
        self.mono().character_size.height as i32 + 2
    }

    /// Width of `text` in pixels (the fonts are monospaced).
    pub fn width(self, text: &str) -> i32 {
        let m = self.mono();
        (text.chars().count() as u32 * (m.character_size.width + m.character_spacing)) as i32
    }
}

/// The font of a caption's line `i`: the first is the picture's title.
fn caption_font(i: usize) -> Font {
    if i == 0 {
        Font::Title
    } else {
        Font::Label
    }
}

/// The width a picture needs for its caption `lines` ([`Canvas::caption`]): the widest line
/// plus the margins.
pub fn caption_width(lines: &[String]) -> i32 {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| caption_font(i).width(l))
        .max()
        .unwrap_or(0)
        + 8
}

/// Where a text's anchor point is, horizontally: its left end, middle or right end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Centre,
    Right,
}

/// Pixels, row-major, 3 bytes each; drawing outside the canvas is clipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Self {
            width,
            height,
            rgb: background.repeat(width * height),
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Writes a picture's caption at its top: the title, then a line each on what it shows.
    pub fn caption(&mut self, lines: &[String], ink: Rgb) {
        let line = Font::Label.line_height();
        for (i, l) in lines.iter().enumerate() {
            self.text(4, 2 + i as i32 * line, l, caption_font(i), Align::Left, ink);
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    pub fn set(&mut self, x: i32, y: i32, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&colour);
        }
    }

    pub fn fill_rect(&mut self, x: i32, y: i32, w: u32, h: u32, colour: Rgb) {
        self.draw_styled(
            Rectangle::new(Point::new(x, y), Size::new(w, h))
                .into_styled(PrimitiveStyle::with_fill(rgb888(colour))),
        );
    }

    /// The border of a rectangle, `stroke` pixels thick, inside its bounds.
    pub fn outline_rect(&mut self, x: i32, y: i32, w: u32, h: u32, stroke: u32, colour: Rgb) {
        let mut style = PrimitiveStyle::with_stroke(rgb888(colour), stroke);
        style.stroke_alignment = embedded_graphics::primitives::StrokeAlignment::Inside;
        self.draw_styled(Rectangle::new(Point::new(x, y), Size::new(w, h)).into_styled(style));
    }

    pub fn line(&mut self, from: (i32, i32), to: (i32, i32), width: u32, colour: Rgb) {
        self.draw_styled(
            Line::new(Point::new(from.0, from.1), Point::new(to.0, to.1))
                .into_styled(PrimitiveStyle::with_stroke(rgb888(colour), width)),
        );
    }

    pub fn disc(&mut self, centre: (i32, i32), diameter: u32, colour: Rgb) {
        self.draw_styled(
            Circle::with_center(Point::new(centre.0, centre.1), diameter)
                .into_styled(PrimitiveStyle::with_fill(rgb888(colour))),
        );
    }

    pub fn ring(&mut self, centre: (i32, i32), diameter: u32, stroke: u32, colour: Rgb) {
        self.draw_styled(
            Circle::with_center(Point::new(centre.0, centre.1), diameter)
                .into_styled(PrimitiveStyle::with_stroke(rgb888(colour), stroke)),
        );
    }

    /// One line of `text` whose top is at `y`, anchored at `x` as `align` says.
    pub fn text(&mut self, x: i32, y: i32, text: &str, font: Font, align: Align, colour: Rgb) {
        let style = MonoTextStyle::new(font.mono(), rgb888(colour));
        let alignment = match align {
            Align::Left => Alignment::Left,
            Align::Centre => Alignment::Center,
            Align::Right => Alignment::Right,
        };
        let layout = TextStyleBuilder::new()
            .alignment(alignment)
            .baseline(Baseline::Top)
            .build();
        let Ok(_) = Text::with_text_style(text, Point::new(x, y), style, layout).draw(self);
    }

    /// Copies `other` with its top left corner at (`x`, `y`).
    pub fn blit(&mut self, other: &Canvas, x: i32, y: i32) {
        for oy in 0..other.height {
            for ox in 0..other.width {
                self.set(x + ox as i32, y + oy as i32, other.pixel(ox, oy));
            }
        }
    }

    pub fn into_frame(self) -> Frame {
        Frame {
            width: self.width,
            height: self.height,
            rgb: self.rgb,
        }
    }

    fn draw_styled(&mut self, shape: impl Drawable<Color = Rgb888>) {
        let Ok(_) = shape.draw(self);
    }
}

fn rgb888([r, g, b]: Rgb) -> Rgb888 {
    Rgb888::new(r, g, b)
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width as u32, self.height as u32)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Infallible> {
        for Pixel(p, c) in pixels {
            self.set(p.x, p.y, [c.r(), c.g(), c.b()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_where_it_is_anchored_and_clipped_at_the_edges() {
        let mut c = Canvas::new(60, 20, WHITE);
        c.text(30, 2, "Hello", Font::Label, Align::Centre, BLACK);
        let inked: Vec<usize> = (0..60)
            .filter(|&x| (0..20).any(|y| c.pixel(x, y) == BLACK))
            .collect();
        let (first, last) = (inked[0], *inked.last().unwrap());
        // Five 6-pixel glyphs centred on x = 30.
        assert!(
            first >= 15 && last < 45 && first < 20 && last > 40,
            "{first}..{last}"
        );
        c.text(55, 15, "clipped", Font::Title, Align::Left, BLACK);
        assert_eq!(Font::Label.width("abc"), 18);
    }

    #[test]
    fn shapes_fill_what_they_cover() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.fill_rect(2, 2, 3, 3, BLACK);
        assert_eq!(c.pixel(2, 2), BLACK);
        assert_eq!(c.pixel(4, 4), BLACK);
        assert_eq!(c.pixel(5, 5), WHITE);
        c.disc((7, 7), 3, GREY);
        assert_eq!(c.pixel(7, 7), GREY);
        c.line((0, 9), (9, 9), 1, INK);
        assert_eq!(c.pixel(5, 9), INK);
    }
}
