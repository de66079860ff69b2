//! The `plastic` package as a library: the CLI's commands, run folders, records, TensorBoard
//! logging and checkpoints. The `plastic` binary (`main.rs`) is a thin shell over it, and the
//! Python extension (`python/`) trains through the same code, so a run trained from Python is
//! the run `plastic train` would have written.
pub mod chart;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod durable;
pub mod event_files;
pub mod interrupt;
pub mod out_of_memory;
pub mod output;
pub mod overrides;
pub mod pending;
pub mod pictures;
pub mod progress;
pub mod records;
pub mod remedy;
pub mod render;
pub mod run_dir;
pub mod starting;
pub mod stats;
pub mod stream;
pub mod sweep;
pub mod tensorboard;
