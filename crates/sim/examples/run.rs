#![allow(clippy::unwrap_used)] // test and example code: a panic is the report
//! `cargo run --release -p spotswap-sim --example run -- FILE...`: every policy over each
//! scenario, as a table (the speed measurement uses it too).
fn main() {
    for path in std::env::args().skip(1) {
        let s = match spotswap_sim::Scenario::load(std::path::Path::new(&path)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let t = std::time::Instant::now();
        let r = spotswap_sim::run(&s, &spotswap_sim::PolicyName::ALL);
        print!("{}", r.render(spotswap_sim::Format::Table));
        for p in &r.policies {
            for v in p.violations.iter().take(5) {
                println!("  VIOLATION {}: {v}", p.policy);
            }
        }
        eprintln!("{path}: {:.2} s", t.elapsed().as_secs_f64());
    }
}
