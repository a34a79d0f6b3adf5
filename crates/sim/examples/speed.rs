#![allow(clippy::unwrap_used)] // test and example code: a panic is the report
//! The speed measurement: one simulated week of 100 groups × 20 instances at 1-minute steps.
//! `cargo run --release -p spotswap-sim --example speed [-- POLICIES]` (release only; timing
//! belongs here, never in a test).

use std::fmt::Write as _;
use std::time::Instant;

use spotswap_sim::{run, Format, PolicyName, Scenario};

fn main() {
    let azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let types = [
        ("m5.large", 0.096),
        ("m5a.large", 0.086),
        ("m6i.large", 0.096),
        ("m5n.large", 0.119),
    ];
    let mut pools = String::new();
    for (t, od) in types {
        for (i, az) in azs.iter().enumerate() {
            let _ = write!(
                pools,
                r#"{{"type":"{t}","az":"{az}","spot_price":{:.4},"on_demand_price":{od}}},"#,
                od * (0.30 + 0.01 * i as f64)
            );
        }
    }
    pools.pop();
    let groups: Vec<String> = (0..100)
        .map(|g| {
            format!(
                r#"{{"name":"g{g:03}","instance_type":"m5.large","azs":["us-east-1a","us-east-1b","us-east-1c"],"desired":20,"tags":{{"spotswap:enabled":"true","spotswap:on-demand-percent":"{}"}}}}"#,
                (g % 3) * 10
            )
        })
        .collect();
    let text = format!(
        r#"{{"name":"speed-100x20-week","hours":168,"seed":7,"interruption_rate_per_hour":0.002,
        "pools":[{pools}],"groups":[{}],
        "events":[{{"at_minute":2000,"kind":"capacity_lost","pools":["m5.large/us-east-1a"],"minutes":90,"rebalance_minutes_ahead":10}},
                  {{"at_minute":6000,"kind":"capacity_lost","pools":["*/us-east-1b"],"minutes":60}}]}}"#,
        groups.join(",")
    );
    let scenario = Scenario::parse(&text, std::path::Path::new(".")).expect("the speed scenario");
    let policies = PolicyName::parse_list(std::env::args().nth(1).as_deref()).expect("policies");
    for p in &policies {
        let t = Instant::now();
        let r = run(&scenario, &[*p]);
        let secs = t.elapsed().as_secs_f64();
        print!("{}", r.render(Format::Table).lines().nth(2).unwrap_or_default());
        println!("   {secs:.2} s");
    }
}
