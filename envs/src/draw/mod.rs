//! Pictures drawn in memory: a canvas with shapes and bitmap-font text (embedded-graphics),
//! colour scales with their colour bars, and a line chart. Environments draw their frames with
//! it and the command-line tool its pictures of agents, so every picture reads the same way.
mod canvas;
mod chart;
mod colours;

pub use canvas::{caption_width, Align, Canvas, Font, Rgb, BLACK, GREY, INK, WHITE};
pub use chart::Chart;
pub use colours::{colour_bar, colour_bar_width, diverging, sequential, tick, time, Scale};
