//! The real binary in a real window: starts `wsa-lab-app --autorun` on an Xvfb display (rendered
//! by Mesa: lavapipe for wgpu), takes a screenshot of the screen with ImageMagick's `import`, and
//! fails on a crashed or blank window. Ignored unless asked for (`--include-ignored`, as `.ci/run`
//! does); asked for, it fails without Xvfb or `import`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SIGTERM first: Xvfb then removes its lock file and socket, which a SIGKILL leaves
        // behind to mislead the next run that picks the same display.
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A display number no X server holds, nor left a lock file or socket for (an Xvfb killed
/// earlier leaves both, and a new one then refuses the display while the stale socket looks
/// alive).
fn free_display() -> String {
    let first = 50 + std::process::id() % 200;
    let n = (first..first + 400)
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists() && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .expect("a free X display number");
    format!(":{n}")
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Distinct colours in a PNG: a blank window has one or two.
fn distinct_colours(path: &Path) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("open screenshot")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).expect("png frame");
    let channels = info.color_type.samples();
    let mut colours: Vec<u32> = buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(*p.get(2).unwrap_or(&0)))
        .collect();
    colours.sort_unstable();
    colours.dedup();
    colours.len()
}

#[test]
#[ignore = "needs Xvfb and ImageMagick's import; CI runs it"]
fn the_app_opens_a_window_that_draws() {
    for program in ["Xvfb", "import"] {
        assert!(found(program), "the real-window test needs {program} (apt install xvfb imagemagick)");
    }
    let display = free_display();
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    let _xvfb = KillOnDrop(
        Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x860x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb"),
    );
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "Xvfb did not come up on {display}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let home = std::env::temp_dir().join(format!("wsa-lab-window-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("mkdir");
    let runtime = home.join("xdg-runtime");
    std::fs::create_dir_all(&runtime).expect("mkdir");
    let log = home.join("app.log");
    let mut app = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_wsa-lab-app"))
            .arg("--autorun")
            .env("DISPLAY", &display)
            .env("XDG_DATA_HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start wsa-lab-app"),
    );
    // The default experiment takes well under a second; give the window time to draw its result.
    std::thread::sleep(Duration::from_secs(8));
    if let Some(status) = app.0.try_wait().expect("poll") {
        panic!("the app exited early with {status}:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wsa-lab-window.png");
    let status =
        Command::new("import").args(["-display", &display, "-window", "root"]).arg(&shot).status().expect("run import");
    assert!(status.success(), "import failed");
    let colours = distinct_colours(&shot);
    eprintln!("screenshot: {} ({colours} distinct colours)", shot.display());
    assert!(colours > 100, "the window looks blank: {colours} distinct colours in {}", shot.display());
    assert!(app.0.try_wait().expect("poll").is_none(), "the app crashed while drawing");
    std::fs::remove_dir_all(&home).ok();
}
