//! What every command-line test needs: the binary, and its `--json` output parsed.
pub mod pictures;
pub mod runs;

use assert_cmd::Command;
use serde_json::Value;

pub fn plastic() -> Command {
    Command::cargo_bin("plastic").unwrap()
}

/// Runs `cmd`, which must succeed, and parses the one JSON object it prints.
pub fn json_stdout(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("--json prints one JSON object")
}
