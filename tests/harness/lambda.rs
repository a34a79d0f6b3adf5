//! The real Lambda runtime API, locally: `cargo lambda watch` serves it on loopback and runs
//! our function binaries; `cargo lambda invoke` sends an event through it.

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

/// A running `cargo lambda watch`, stopped (with its children) on drop.
pub struct LambdaWatch {
    child: Child,
    port: u16,
}

impl LambdaWatch {
    /// Serve the runtime API on a free loopback port, with `env` passed to the functions.
    pub fn start(env: &[(&str, &str)]) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let mut cmd = Command::new(cargo_lambda());
        cmd.current_dir(workspace_root())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        for (k, v) in env {
            cmd.arg("--env-var").arg(format!("{k}={v}"));
        }
        let child = cmd
            .spawn()
            .expect("start cargo lambda watch (is .venv installed? run `make venv`)");
        let w = Self { child, port };
        let until = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "cargo lambda watch did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        w
    }

    /// Invoke function `bin` with the event in `events/<file>`; the function's JSON answer.
    pub fn invoke(&self, bin: &str, event_file: &str) -> Result<serde_json::Value, String> {
        let out = Command::new(cargo_lambda())
            .current_dir(workspace_root())
            .args([
                "lambda",
                "invoke",
                bin,
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
        // The watcher runs the function binaries as children: stop the whole group.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
