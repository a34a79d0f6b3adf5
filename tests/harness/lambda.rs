//! The real Lambda runtime API, locally: `cargo lambda watch --only-lambda-apis` serves it on
//! loopback, our prebuilt function binary polls it as it would in Lambda, and
//! `cargo lambda invoke` sends an event through it.
//!
//! Why `--only-lambda-apis`: without it the watcher builds the function with `cargo run`, which
//! waits for the build-directory lock that the running `cargo test` holds, so inside
//! `make test` it would deadlock. `make test` builds every binary before the tests run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A workspace binary built by `cargo build` (which `make test` runs first).
pub fn workspace_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join(name)
}

fn cargo_lambda() -> PathBuf {
    let venv = std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    venv.join("bin").join("cargo-lambda")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `cargo lambda watch` and one function binary polling it, both stopped on drop.
pub struct LambdaWatch {
    watch: Child,
    function: Child,
    port: u16,
    log: PathBuf,
}

impl LambdaWatch {
    /// Serve the runtime API on a free loopback port and start the workspace binary `bin`
    /// against it, with `env` in its environment.
    pub fn start(bin: &str, env: &[(&str, &str)]) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let watch = Command::new(cargo_lambda())
            .current_dir(workspace_root())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start cargo lambda watch (is .venv installed? run `make venv`)");
        let until = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "cargo lambda watch did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let path = workspace_bin(bin);
        assert!(
            path.exists(),
            "{} is not built: run `cargo build --workspace`",
            path.display()
        );
        // The variables the watcher prints for a function started outside it; `_` is the name
        // it serves such a function under.
        let log = workspace_root()
            .join("target")
            .join("tmp")
            .join(format!("lambda-{bin}-{port}.log"));
        std::fs::create_dir_all(log.parent().expect("has a parent")).expect("target/tmp");
        let out = std::fs::File::create(&log).expect("function log");
        let err = out.try_clone().expect("function log");
        let function = Command::new(&path)
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        Self {
            watch,
            function,
            port,
            log,
        }
    }

    /// The function's log lines so far (its stdout and stderr), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invoke the function with the event in `events/<file>` (or at an absolute path); the
    /// function's JSON answer.
    pub fn invoke(&self, event_file: &str) -> Result<serde_json::Value, String> {
        let out = Command::new(cargo_lambda())
            .current_dir(workspace_root())
            .args([
                "lambda",
                "invoke",
                "_",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(workspace_root().join("events").join(event_file))
            .args(["--output-format", "json"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "invoke failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        // The watcher may run helpers of its own: stop its whole process group.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.watch.id()))
            .status();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}
