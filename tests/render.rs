//! `plastic eval --render`: a maze episode as an animated GIF and as a still picture, a bandit
//! episode as a picture, and what is refused.
use std::path::Path;

mod common;
use common::pictures::{gif_frames, png};
use common::plastic;
use common::runs::{tiny_config, train, PLASTIC};

/// The maze's colours for the goal and the agent (envs/src/grid_pictures/board.rs).
const GOAL: [u8; 3] = [40, 200, 80];
const AGENT: [u8; 3] = [215, 40, 40];

fn trained(dir: &Path, env: &str) -> std::path::PathBuf {
    let run = dir.join("run");
    train(&tiny_config(dir, env, PLASTIC), &run, &[]);
    run
}

fn render(run: &Path, file: &Path, extra: &[&str]) -> String {
    let out = plastic()
        .arg("eval")
        .arg(run)
        .args(["--episodes", "2", "--render"])
        .arg(file)
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_maze_episode_is_animated_to_its_last_step_and_drawn_as_trips() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), "maze:size=7,len=12");
    let gif = dir.path().join("maze.gif");
    // Another episode length than training's: 30 steps, so 31 frames.
    let said = render(&run, &gif, &["--env", "maze:size=7,len=30"]);
    assert!(said.contains("31 frames"), "{said}");
    let frames = gif_frames(&gif);
    assert_eq!(frames.len(), 31);
    let (first, last) = (&frames[0], frames.last().unwrap());
    // The last frame is the episode's own end: its goal where the first frame had it (the
    // next episode would have drawn another), and the agent drawn.
    let goal = first.centre_of(GOAL, 24).expect("the goal is drawn");
    let end_goal = last
        .centre_of(GOAL, 24)
        .or_else(|| last.centre_of([250, 215, 40], 24))
        .expect("the goal is drawn in the last frame");
    assert!((goal.0 - end_goal.0).abs() < 2.0 && (goal.1 - end_goal.1).abs() < 2.0);
    assert!(last.centre_of(AGENT, 24).is_some());
    assert!(last.rgb != first.rgb);

    let still = dir.path().join("maze.png");
    let said = render(&run, &still, &[]);
    assert!(said.contains("one episode"), "{said}");
    let p = png(&still);
    assert!(
        p.width >= 300 && p.height >= 200,
        "{}×{}",
        p.width,
        p.height
    );
    assert!(p.centre_of(GOAL, 0).is_some());
}

#[test]
fn a_bandit_episode_is_a_picture_and_not_an_animation() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), "bandit-dependent-easy:len=10");
    let still = dir.path().join("bandit.png");
    render(&run, &still, &[]);
    let p = png(&still);
    // Ten columns of at least 24 pixels, two arm rows.
    assert!(p.width >= 240 && p.height >= 36, "{}×{}", p.width, p.height);
    let colours: std::collections::HashSet<[u8; 3]> = (0..p.height)
        .flat_map(|y| (0..p.width).map(move |x| (x, y)))
        .map(|(x, y)| p.pixel(x, y))
        .collect();
    assert!(colours.len() > 10, "{} colours", colours.len());

    let gif = dir.path().join("bandit.gif");
    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--episodes", "2", "--render"])
        .arg(&gif)
        .assert()
        .failure()
        .stderr(predicates::str::contains("FILE.png"))
        .stdout(predicates::str::is_empty());
    assert!(!gif.exists());
    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--render"])
        .arg(dir.path().join("bandit.jpg"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("FILE.gif"));
}

#[test]
fn training_draws_an_episode_every_n_updates_into_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "maze:size=7,len=12", PLASTIC);
    let run = dir.path().join("run");
    // 480 steps / (4 × 12) = 10 updates: animations at 4, 8 and the last.
    train(&config, &run, &["--set", "log.animation_every=4"]);
    let mut names: Vec<String> = std::fs::read_dir(run.join("animations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["00000004.gif", "00000008.gif", "00000010.gif"]);
    assert_eq!(gif_frames(&run.join("animations/00000010.gif")).len(), 13);

    // An environment that cannot be drawn is a config mistake, before any run exists.
    let other = dir.path().join("tmaze");
    plastic()
        .arg("train")
        .arg(tiny_config(dir.path(), "tmaze", PLASTIC))
        .args([
            "--out",
            other.to_str().unwrap(),
            "--set",
            "log.animation_every=4",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("log.animation_every = 4"));
    assert!(!other.exists());
}
