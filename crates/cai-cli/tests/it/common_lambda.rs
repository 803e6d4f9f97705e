//! The Lambda stand-ins for end-to-end tests, all on 127.0.0.1: `s3s-fs` serving a test's
//! store folder over S3 (SigV4 checked), `cargo lambda watch` serving the Runtime and Invoke
//! APIs, and `cai` runtime processes (one per Lambda "container") attached to it exactly as
//! Lambda starts a `bootstrap`. Each test gets its own servers, so queues never mix.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials s3s-fs is started with (and that the runtimes sign with).
pub const ACCESS_KEY: &str = "cai-test";
/// Secret for [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "cai-test-secret";

/// A tool the stand-ins script installs, from its variable; None (with a note) when absent
/// outside CI. Under CI a missing tool fails the test instead of skipping it.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var(var) {
        Ok(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set to an installed tool: run the tests through ./scripts/test.sh")
        }
        _ => {
            eprintln!("skipped: {var} is not set (./scripts/test.sh installs the stand-ins)");
            None
        }
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what}: nothing on 127.0.0.1:{port} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Child processes killed when the test ends, however it ends.
#[derive(Default)]
pub struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// s3s-fs alone, serving a test's store folder (bucket = folder) over S3.
pub struct S3Server {
    /// The endpoint (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    _process: Processes,
}

impl S3Server {
    /// Starts s3s-fs over `store_root`; None when it is not installed (outside CI).
    pub fn start(store_root: &Path, logs: &Path) -> Option<S3Server> {
        let s3s = tool("CAI_TEST_S3S_FS")?;
        std::fs::create_dir_all(logs).unwrap();
        let port = free_port();
        let mut child = Command::new(s3s)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(store_root)
            .stdout(log_file(logs, "s3s-fs.log"))
            .stderr(log_file(logs, "s3s-fs.log"))
            .spawn()
            .expect("start s3s-fs");
        wait_port(port, "s3s-fs", &mut child);
        Some(S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _process: Processes(vec![child]),
        })
    }
}

/// A running set of stand-ins.
pub struct Emulator {
    /// The S3 endpoint (`http://127.0.0.1:PORT`).
    pub s3: String,
    /// The Invoke API endpoint for `cai run --lambda-endpoint`.
    pub lambda: String,
    /// Runtime processes started so far (pid, function).
    pub runtimes: Vec<(u32, String)>,
    processes: Processes,
    manifest_dir: tempfile::TempDir,
    lambda_port: u16,
    logs: PathBuf,
}

/// The environment a runtime and the client need to reach s3s-fs.
pub fn s3_env(s3: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL_S3", s3),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("CAI_STORE", "s3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Emulator {
    /// s3s-fs over `store_root` (bucket = folder) and `cargo lambda watch` serving the
    /// functions `cai-init`, `cai-infer`, `cai-failure` and `cai-summarize`; None when the
    /// tools are not installed (outside CI). Logs go to `logs`.
    pub fn start(store_root: &Path, logs: &Path) -> Option<Emulator> {
        let s3s = tool("CAI_TEST_S3S_FS")?;
        let cargo_lambda = tool("CAI_TEST_CARGO_LAMBDA")?;
        std::fs::create_dir_all(logs).unwrap();
        let mut processes = Processes::default();

        let s3_port = free_port();
        let mut s3 = Command::new(s3s)
            .args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(store_root)
            .stdout(log_file(logs, "s3s-fs.log"))
            .stderr(log_file(logs, "s3s-fs.log"))
            .spawn()
            .expect("start s3s-fs");
        wait_port(s3_port, "s3s-fs", &mut s3);
        processes.0.push(s3);

        // `cargo lambda watch` serves only functions named after the bin targets of the
        // manifest in its directory; this one names the four functions (never built: the
        // runtimes below are the real `cai`).
        let manifest_dir = tempfile::tempdir().unwrap();
        let bins: String = ["init", "infer", "failure", "summarize"]
            .iter()
            .map(|h| format!("[[bin]]\nname = \"cai-{h}\"\npath = \"main.rs\"\n"))
            .collect();
        std::fs::write(
            manifest_dir.path().join("Cargo.toml"),
            format!("[package]\nname = \"cai-functions\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n{bins}\n[workspace]\n"),
        )
        .unwrap();
        std::fs::write(manifest_dir.path().join("main.rs"), "fn main() {}\n").unwrap();
        let lambda_port = free_port();
        let mut watch = Command::new(cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["-A", "127.0.0.1", "-P", &lambda_port.to_string()])
            .current_dir(manifest_dir.path())
            .stdout(log_file(logs, "watch.log"))
            .stderr(log_file(logs, "watch.log"))
            .spawn()
            .expect("start cargo lambda watch");
        wait_port(lambda_port, "cargo lambda watch", &mut watch);
        processes.0.push(watch);

        Some(Emulator {
            s3: format!("http://127.0.0.1:{s3_port}"),
            lambda: format!("http://127.0.0.1:{lambda_port}"),
            runtimes: Vec::new(),
            processes,
            manifest_dir,
            lambda_port,
            logs: logs.to_path_buf(),
        })
    }

    /// Starts one `cai` runtime process ("container") for `function`, as Lambda starts a
    /// `bootstrap`: no arguments, the Runtime API and function settings in the environment.
    pub fn container(&mut self, function: &str, extra_env: &[(&str, &str)]) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cai"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{function}", self.lambda_port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("CAI_THREADS", "1")
            .envs(s3_env(&self.s3))
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file(&self.logs, &format!("{function}.log")))
            .stderr(log_file(&self.logs, &format!("{function}.log")));
        let child = cmd.spawn().expect("start a cai runtime");
        self.runtimes.push((child.id(), function.to_string()));
        self.processes.0.push(child);
    }

    /// One container for each function, `infer` of them for inference.
    pub fn containers(&mut self, infer: usize) {
        self.container("cai-init", &[]);
        for _ in 0..infer {
            self.container("cai-infer", &[]);
        }
        self.container("cai-failure", &[]);
        self.container("cai-summarize", &[]);
    }

    /// The runtime log of `function` so far.
    pub fn log(&self, function: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{function}.log"))).unwrap_or_default()
    }

    /// Keeps the manifest folder alive as long as the emulator.
    pub fn manifest_dir(&self) -> &Path {
        self.manifest_dir.path()
    }
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap()
        .into()
}
