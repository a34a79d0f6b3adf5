//! The test proxy as a process, for the bench: EC2's token buckets (and the rest of the
//! proxy's emulation, all off) in front of a moto server.
//!
//! ```text
//! spotswap-proxy --upstream http://127.0.0.1:5000 [--port 0] [--scale 1] [--rates SPEC]
//!                [--no-throttle] [--answer-instance-refreshes]
//! ```
//!
//! Prints `spotswap-proxy: listening on http://127.0.0.1:PORT -> UPSTREAM (scale K)` once it
//! accepts connections, then serves until killed. `GET /_counts` and `POST /_reset` report
//! and reset its counters (see the proxy's `control` module).
//!
//! `spotswap-proxy --classify OP...` prints `{"OP": "read" | "mutating" | "launch", ...}`
//! ([`spotswap_core::ops::class`]) and exits: the bench asks it rather than keep a copy of
//! the rule.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use spotswap_aws::ApiRates;
use spotswap_tests::proxy::Proxy;

const USAGE: &str = "usage: spotswap-proxy --upstream URL [--port P] [--scale K] [--rates SPEC] \
[--no-throttle] [--answer-instance-refreshes]
       spotswap-proxy --classify service:Operation...

  --upstream URL                 moto's base URL (http://HOST:PORT)
  --port P                       port on 127.0.0.1 to listen on; 0 (default) picks a free one
  --scale K                      multiply every bucket's refill rate and burst by K (default 1):
                                 T seconds at the real rates take T/K seconds
  --rates SPEC                   bucket rates at scale 1, SPOTSWAP_API_RATES spelling
                                 (class=rate/burst,...), over spotswap's defaults
  --no-throttle                  count calls, throttle none
  --answer-instance-refreshes    answer autoscaling:DescribeInstanceRefreshes (not in moto) with
                                 an empty list, as AWS does for a group that never had one
  --classify OP...               print each operation's class (read, mutating, launch) as JSON";

struct Options {
    upstream: String,
    port: u16,
    scale: f64,
    rates: ApiRates,
    throttle: bool,
    answer_refreshes: bool,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut args = args.into_iter();
    let mut upstream = None;
    let mut port = 0;
    let mut scale = 1.0;
    let mut rates = ApiRates::default();
    let mut throttle = true;
    let mut answer_refreshes = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--upstream" => upstream = Some(value("--upstream")?),
            "--port" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("--port {v}: not a port"))?;
            }
            "--scale" => {
                let v = value("--scale")?;
                scale = v
                    .parse::<f64>()
                    .ok()
                    .filter(|k| k.is_finite() && *k > 0.0)
                    .ok_or(format!("--scale {v}: must be a positive number"))?;
            }
            "--rates" => rates = ApiRates::parse("--rates", &value("--rates")?).map_err(|e| e.to_string())?,
            "--no-throttle" => throttle = false,
            "--answer-instance-refreshes" => answer_refreshes = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        upstream: upstream.ok_or("--upstream is required")?,
        port,
        scale,
        rates,
        throttle,
        answer_refreshes,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--classify") {
        let classes: serde_json::Map<String, serde_json::Value> = args[1..]
            .iter()
            .map(|op| (op.clone(), serde_json::json!(spotswap_core::ops::class(op))))
            .collect();
        println!("{}", serde_json::Value::Object(classes));
        return ExitCode::SUCCESS;
    }
    let options = match parse(args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("spotswap-proxy: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let proxy = match Proxy::bind(&options.upstream, addr).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "spotswap-proxy: cannot listen on {addr} for {}: {e}",
                options.upstream
            );
            return ExitCode::FAILURE;
        }
    };
    proxy.set_control_paths(true);
    proxy.set_answer_instance_refreshes(options.answer_refreshes);
    if options.throttle {
        proxy.set_rates(&options.rates, options.scale);
    }
    println!(
        "spotswap-proxy: listening on {} -> {} ({}{})",
        proxy.url(),
        options.upstream,
        if options.throttle {
            format!("scale {}", options.scale)
        } else {
            "no throttling".to_owned()
        },
        if options.answer_refreshes {
            ", answering DescribeInstanceRefreshes"
        } else {
            ""
        }
    );
    // Serves on the runtime's workers until the process is killed.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
