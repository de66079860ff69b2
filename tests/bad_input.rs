//! No panic on bad input (acceptance): every command's inputs (config and sweep files, run
//! and checkpoint folders, records, environment ids, numbers) damaged in the ways disks,
//! editors and typing damage them. Each must end in an error (or a result), never a panic
//! (status 101) or a backtrace, and the error is one paragraph.
use std::path::{Path, PathBuf};

mod common;
use common::plastic;
use common::runs::{tiny_config, train, PLASTIC};

/// Damaged contents for a file the command reads.
fn damaged_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        (
            "garbage",
            b"\x00\xff\xfe\x9f garbage \x00\n\x01,\x02\n".to_vec(),
        ),
        ("half a TOML table", b"[run]\nname = \"x\"\n[en".to_vec()),
    ]
}

/// Runs `args`, which must not panic; an error must be one paragraph.
fn no_panic(dir: &Path, args: &[String]) {
    let out = plastic()
        .current_dir(dir)
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(101)
            && !stderr.contains("panicked")
            && !stderr.contains("RUST_BACKTRACE"),
        "plastic {args:?} panicked ({:?}):\n{stderr}",
        out.status
    );
    // Status 2 is clap's usage error, with its usage paragraph.
    if !out.status.success() && out.status.code() != Some(2) {
        let error = stderr.trim();
        assert!(
            !error.is_empty() && !error.contains("\n\n"),
            "plastic {args:?}: the error is not one paragraph:\n{stderr}"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Copies of a trained run, each with one file damaged in each way, plus folders that are no
/// run at all.
fn damaged_runs(dir: &Path, run: &Path) -> Vec<PathBuf> {
    let checkpoint = {
        let checkpoints = run.join("checkpoints");
        let last = common::runs::checkpoints(run).pop().unwrap();
        checkpoints.join(last)
    };
    let relative = |p: &Path| p.strip_prefix(run).unwrap().to_path_buf();
    let targets = [
        PathBuf::from("config.toml"),
        relative(&checkpoint.join("config.toml")),
        relative(&checkpoint.join("state.safetensors")),
        relative(&checkpoint.join("progress.json")),
        PathBuf::from("evaluations.csv"),
    ];
    let mut runs = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        for (d, (_, bytes)) in damaged_files().into_iter().enumerate() {
            let copy = dir.join(format!("run-{t}-{d}"));
            copy_dir(run, &copy);
            std::fs::write(copy.join(target), bytes).unwrap();
            runs.push(copy);
        }
        // A folder where the file should be.
        let copy = dir.join(format!("run-{t}-dir"));
        copy_dir(run, &copy);
        std::fs::remove_file(copy.join(target)).unwrap();
        std::fs::create_dir(copy.join(target)).unwrap();
        runs.push(copy);
    }
    let empty = dir.join("empty-folder");
    std::fs::create_dir_all(&empty).unwrap();
    runs.extend([
        empty,
        dir.join("no-such-run"),
        dir.join("run-0-0/config.toml"),
    ]);
    runs
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Damaged config and sweep files, and paths that are not files.
fn damaged_inputs(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = damaged_files()
        .into_iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            let path = dir.join(format!("{name}-{i}.toml"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    paths.extend([dir.to_path_buf(), dir.join("no-such-file.toml")]);
    paths
}

/// Values no key takes (a valid one would train the run).
const NUMBERS: [&str; 4] = ["nan", "-1", "1e300", "18446744073709551616"];

const ENV_IDS: [&str; 7] = [
    "",
    "nope",
    "maze:size=-1",
    "maze:size=nan",
    "maze:size=4294967296,len=4294967296",
    "bandit-dependent-easy:len=0",
    "\u{1}\u{ff}",
];

/// Runs every case, a few at a time (each is a process that mostly waits on loading libtorch).
fn run_all(dir: &Path, cases: Vec<Vec<String>>) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(args) = cases.get(i) else { break };
                no_panic(dir, args);
            });
        }
    });
}

#[test]
fn no_command_panics_on_damaged_files_or_values() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let config = tiny_config(dir, "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.join("run");
    train(&config, &run, &[]);
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut case = |args: &[&str]| cases.push(args.iter().map(|a| a.to_string()).collect());
    let (config, out) = (s(&config), dir.join("out"));
    let out = s(&out);

    for input in damaged_inputs(dir, "config") {
        let input = s(&input);
        case(&["train", input, "--out", out]);
        case(&["bench", "train", input, "--updates", "1"]);
        case(&["sweep", input, "--out", out]);
        case(&["sweep", "status", input]);
        case(&["compare", input]);
    }
    for key in [
        "run.total_steps",
        "env.num_envs",
        "core.hidden",
        "optim.lr",
        "a2c.rollout_len",
    ] {
        for value in NUMBERS {
            case(&[
                "train",
                config,
                "--set",
                &format!("{key}={value}"),
                "--out",
                out,
            ]);
        }
    }
    for (i, id) in ENV_IDS.iter().enumerate() {
        case(&["rollout", id, "--episodes", "4"]);
        // The same parser reads them everywhere: a few cases each.
        match i % 3 {
            0 => case(&[
                "train",
                config,
                "--set",
                &format!("env.id=\"{id}\""),
                "--out",
                out,
            ]),
            1 => case(&["eval", s(&run), "--env", id, "--episodes", "4"]),
            _ => case(&["bench", "env", id, "--seconds", "0.01"]),
        }
    }
    for value in ["nan", "-1", "inf", "1e300"] {
        case(&["bench", "env", "maze", &format!("--seconds={value}")]);
    }
    let huge = "18446744073709551615";
    let i64_max = "9223372036854775807";
    for args in [
        vec!["rollout", "maze", "--episodes", huge],
        vec!["rollout", "maze", "--batch", huge, "--episodes", "4"],
        vec!["rollout", "maze", "--policy", "nope", "--episodes", "4"],
        vec!["rollout", "maze", "--seed=-1"],
        vec!["eval", s(&run), "--episodes", huge],
        vec!["perturb", s(&run), "--episodes", huge],
        vec!["perturb", s(&run), "--episodes", "2", "--sigma=nan"],
        vec!["perturb", s(&run), "--episodes", "2", "--lesion=inf"],
        vec!["perturb", s(&run), "--episodes", "2", "--lesion-at", huge],
        vec!["perturb", s(&run), "--episodes", "2", "--window", "0"],
        vec!["spectra", s(&run), "--episodes", huge],
        vec!["spectra", s(&run), "--of", "nope"],
        vec!["spectra", s(&run), "--out", "/dev/null/x"],
        vec!["bench", "env", "maze", "--batch", huge],
        vec!["bench", "core", "--batch", i64_max],
        vec!["bench", "core", "--steps", i64_max],
        vec!["bench", "core", "--set", "hidden=1000000000"],
        vec!["bench", "core", "--set", "hidden=nan"],
        vec!["bench", "core", "--set", "kind=nope"],
        vec!["bench", "traces", "--batch", i64_max, "--hidden", i64_max],
        vec!["bench", "memory", "--mib", "1048576"],
        vec!["envs", "--json"],
        vec!["info", "--json"],
    ] {
        case(&args);
    }
    // Pictures: a format plastic does not write, a folder, a folder that does not exist.
    for render in ["out.txt", ".", "no-such-folder/out.gif", ""] {
        case(&["eval", s(&run), "--episodes", "2", "--render", render]);
    }
    for (i, damaged) in damaged_runs(dir, &run).iter().enumerate() {
        let damaged = s(damaged);
        case(&["eval", damaged, "--episodes", "4"]);
        case(&["resume", damaged, "--total-steps", "500"]);
        // Both read only the run's config and records: a few cases are enough.
        if i % 3 == 0 {
            case(&["compare", damaged]);
            case(&["sweep", "status", damaged]);
            case(&["perturb", damaged, "--episodes", "2"]);
            case(&["spectra", damaged, "--episodes", "2", "--out", out]);
        }
    }
    run_all(dir, cases);
}
