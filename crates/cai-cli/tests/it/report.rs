//! `cai report` and `cai run --report` end to end: a real run's page next to its results,
//! runs compared with the original CAI's folders, figures saved as files, errors naming the
//! run, and the page rendered in headless Chromium (Debian's `chromium`, installed by
//! scripts/stand-ins.sh): the screenshot is not blank, shows the figures' colours, and the
//! console stays silent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common_lambda::tool;
use crate::common_workflow::{cai, Env, BUCKET};

/// Runs a small seeded-weights workflow with `--report`; returns the page's path.
fn run_with_report(env: &Env, result_path: &str, world: u64) -> PathBuf {
    let payload = env.payload(result_path, json!({"world_size": world, "model": "seed:0"}));
    let out = env.run(&payload, &["--report"], None);
    out.expect_code(0);
    let page = env.results(result_path).join("report.html");
    assert!(
        out.stdout.contains(&format!("report: {}", page.display())),
        "{}",
        out.stdout
    );
    page
}

/// What makes a page self-contained: no URL that would load anything.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "src=", "url(", "@import", "<script", "<link",
    ] {
        assert!(!lower.contains(bad), "page contains {bad:?}");
    }
}

#[test]
fn run_report_writes_a_self_contained_page_beside_the_results() {
    let env = Env::new(4, 6);
    let page = run_with_report(&env, "res/rep", 3);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    for id in [
        "run-1-accuracy-density",
        "run-1-accuracy-dz",
        "run-1-timeline",
        "run-1-ranks",
        "run-1-cost",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no figure {id}");
    }
    assert!(
        html.contains("UNTRAINED WEIGHTS"),
        "seeded weights get the banner"
    );
    assert!(html.contains("Spectroscopic redshift"));
    assert!(html.contains("World size</th>"), "the seed report's table");
}

#[test]
fn report_compares_runs_with_the_originals_and_saves_figures() {
    let env = Env::new(4, 6);
    run_with_report(&env, "res/w2", 2);
    run_with_report(&env, "res/w4", 4);
    let original = crate::common::fixture("report/original/cosmicai-data/result-partition-100MB");
    copy_dir(&original, &env.bucket().join("result-partition-100MB"));
    let out_page = env.dir.path().join("out/compare.html");
    let figures = env.dir.path().join("figs");
    let store = env.store();
    let o = cai(
        &[
            "report",
            "--store",
            store.to_str().unwrap(),
            &format!("{BUCKET}/res/w2"),
            &format!("s3://{BUCKET}/res/w4"),
            &format!("{BUCKET}/result-partition-100MB/1GB/1"),
            &format!("{BUCKET}/result-partition-100MB/2GB/1"),
            "--out",
            out_page.to_str().unwrap(),
            "--figures",
            figures.to_str().unwrap(),
        ],
        &[],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), out_page.display().to_string());
    let html = std::fs::read_to_string(&out_page).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("Runs compared"));
    assert!(html.contains("partition parts"), "the cai runs' series");
    assert!(
        html.contains("partition 100MB (original)"),
        "the original's series"
    );
    let saved = crate::common::entries(&figures);
    for f in [
        "scaling-data-size.svg",
        "scaling-world-size.svg",
        "run1-accuracy-density.svg",
        "run1-timeline.svg",
        "run2-cost.svg",
        "run3-ranks.svg",
    ] {
        assert!(saved.contains(&f.to_string()), "{f} not in {saved:?}");
    }
    let svg = std::fs::read_to_string(figures.join("run1-accuracy-density.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
}

#[test]
fn report_errors_name_the_run() {
    let env = Env::new(1, 2);
    let store = env.store();
    let o = cai(
        &[
            "report",
            "--store",
            store.to_str().unwrap(),
            &format!("{BUCKET}/no/such/run"),
        ],
        &[],
    );
    o.expect_code(2);
    assert!(
        o.stderr.contains("cosmicai-data/no/such/run"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("no results"), "{}", o.stderr);
    let o = cai(
        &[
            "report",
            "--store",
            store.to_str().unwrap(),
            "just-a-bucket",
        ],
        &[],
    );
    o.expect_code(2);
    assert!(o.stderr.contains("BUCKET/RESULT_PATH"), "{}", o.stderr);
}

#[test]
fn the_page_renders_in_headless_chromium() {
    let Some(chromium) = tool("CAI_TEST_CHROMIUM") else {
        return;
    };
    let env = Env::new(4, 6);
    let page = run_with_report(&env, "res/browser", 3);
    let shot = env.dir.path().join("page.png");
    let (console, png) = screenshot(&chromium, &page, &shot, (1200, 3200));
    assert!(console.is_empty(), "console messages: {console:#?}");
    let img = png::decode(&png);
    assert_eq!((img.width, img.height), (1200, 3200));
    let ink = img.fraction(|p| p != [255, 255, 255]);
    assert!(
        ink > 0.05,
        "screenshot is blank ({:.1}% not white)",
        100.0 * ink
    );
    // The figures are drawn: the histogram's blue, the banner's vermillion, and the density
    // plot's many colours.
    for (name, rgb) in [
        ("Okabe-Ito blue", [0, 114, 178]),
        ("vermillion", [213, 94, 0]),
    ] {
        assert!(img.fraction(|p| p == rgb) > 1e-4, "no {name} pixels");
    }
    assert!(
        img.distinct_colours() > 200,
        "{} colours",
        img.distinct_colours()
    );
    if let Some(keep) = std::env::var_os("CAI_REPORT_KEEP") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("chromium.png")).unwrap();
    }
}

/// Screenshots `page` with headless Chromium; returns the console lines it logged and the
/// PNG's bytes.
fn screenshot(
    chromium: &Path,
    page: &Path,
    png: &Path,
    size: (u32, u32),
) -> (Vec<String>, Vec<u8>) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = reader.join().unwrap();
    let console: Vec<String> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said:\n{log}"));
    (console, bytes)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Just enough PNG to read Chromium's screenshots (8-bit RGB or RGBA, not interlaced).
mod png {
    use std::io::Read;

    /// Decoded pixels, RGB.
    pub struct Image {
        pub width: u32,
        pub height: u32,
        pub rgb: Vec<[u8; 3]>,
    }

    impl Image {
        /// Fraction of pixels for which `f` holds.
        pub fn fraction(&self, f: impl Fn([u8; 3]) -> bool) -> f64 {
            self.rgb.iter().filter(|p| f(**p)).count() as f64 / self.rgb.len() as f64
        }

        /// Different colours present.
        pub fn distinct_colours(&self) -> usize {
            let mut v: Vec<[u8; 3]> = self.rgb.clone();
            v.sort_unstable();
            v.dedup();
            v.len()
        }
    }

    pub fn decode(bytes: &[u8]) -> Image {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
        let mut idat = Vec::new();
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let data = &bytes[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(data[8], 8, "bit depth");
                    channels = match data[9] {
                        2 => 3,
                        6 => 4,
                        t => panic!("colour type {t}"),
                    };
                    assert_eq!(data[12], 0, "interlaced");
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            at += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        let stride = width as usize * channels;
        let mut prev = vec![0u8; stride];
        let mut rgb = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height as usize {
            let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
            let mut cur = line[1..].to_vec();
            for i in 0..stride {
                let a = if i >= channels {
                    cur[i - channels] as i16
                } else {
                    0
                };
                let b = prev[i] as i16;
                let c = if i >= channels {
                    prev[i - channels] as i16
                } else {
                    0
                };
                let add = match line[0] {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => {
                        let p = a + b - c;
                        let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    f => panic!("filter {f}"),
                };
                cur[i] = cur[i].wrapping_add(add as u8);
            }
            rgb.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
            prev = cur;
        }
        Image { width, height, rgb }
    }
}
