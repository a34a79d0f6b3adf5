//! The results, as JSON (FIXED keys), a table, or markdown. All three show the same numbers,
//! rounded the same way: money to the cent, percentages and minutes to one decimal.

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::engine::PolicyResult;
use crate::scenario::ScenarioError;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain text table.
    Table,
    /// JSON with the FIXED keys.
    Json,
    /// A markdown table.
    Markdown,
}

impl FromStr for Format {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "markdown" => Ok(Self::Markdown),
            other => Err(ScenarioError::new(
                "output",
                format!("unknown format {other:?} (expected table, json or markdown)"),
            )),
        }
    }
}

/// Every policy's results over one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// One result per policy, in the order asked.
    pub policies: Vec<PolicyResult>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    let r = (x * f).round() / f;
    if r == 0.0 {
        0.0 // no -0.0
    } else {
        r
    }
}

const COLUMNS: [&str; 10] = [
    "policy",
    "cost",
    "on_demand_cost",
    "savings_percent",
    "shortfall_instance_minutes",
    "max_shortfall",
    "interruptions",
    "swaps",
    "fallbacks",
    "api_calls",
];

impl Report {
    /// The JSON value with the FIXED keys.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "policies": self.policies.iter().map(|p| json!({
                "policy": p.policy.as_str(),
                "cost": round(p.cost, 2),
                "on_demand_cost": round(p.on_demand_cost, 2),
                "savings_percent": round(p.savings_percent(), 1),
                "shortfall_instance_minutes": round(p.shortfall_instance_minutes, 1),
                "max_shortfall": p.max_shortfall,
                "interruptions": p.interruptions,
                "swaps": p.swaps,
                "fallbacks": p.fallbacks,
                "api_calls": p.api_calls,
                "commitment_unused": round(p.commitment_unused, 2),
            })).collect::<Vec<_>>(),
        })
    }

    /// The columns shown: `commitment_unused` only where the scenario has commitments, so a
    /// scenario without them reads as before.
    fn columns(&self) -> Vec<&'static str> {
        let mut c = COLUMNS.to_vec();
        if self.with_commitments() {
            c.push("commitment_unused");
        }
        c
    }

    fn with_commitments(&self) -> bool {
        self.policies.iter().any(|p| p.commitments)
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let extra = self.with_commitments();
        self.policies
            .iter()
            .map(|p| {
                let mut row = vec![
                    p.policy.as_str().to_string(),
                    format!("{:.2}", round(p.cost, 2)),
                    format!("{:.2}", round(p.on_demand_cost, 2)),
                    format!("{:.1}", round(p.savings_percent(), 1)),
                    format!("{:.1}", round(p.shortfall_instance_minutes, 1)),
                    p.max_shortfall.to_string(),
                    p.interruptions.to_string(),
                    p.swaps.to_string(),
                    p.fallbacks.to_string(),
                    p.api_calls.to_string(),
                ];
                if extra {
                    row.push(format!("{:.2}", round(p.commitment_unused, 2)));
                }
                row
            })
            .collect()
    }

    /// Render in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Table => {
                let columns = self.columns();
                let rows = self.rows();
                let widths: Vec<usize> = (0..columns.len())
                    .map(|c| {
                        rows.iter()
                            .map(|r| r[c].len())
                            .chain([columns[c].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let mut out = format!("scenario: {}\n", self.scenario);
                let line = |cells: &[&str]| {
                    let mut l = String::new();
                    for (c, cell) in cells.iter().enumerate() {
                        if c == 0 {
                            let _ = write!(l, "{cell:<w$}", w = widths[c]);
                        } else {
                            let _ = write!(l, "  {cell:>w$}", w = widths[c]);
                        }
                    }
                    l.push('\n');
                    l
                };
                out += &line(&columns);
                for r in &rows {
                    out += &line(&r.iter().map(String::as_str).collect::<Vec<_>>());
                }
                out
            }
            Format::Markdown => {
                let columns = self.columns();
                let mut out = format!("### {}\n\n| {} |\n|", self.scenario, columns.join(" | "));
                for c in 0..columns.len() {
                    out += if c == 0 { " --- |" } else { " ---: |" };
                }
                out.push('\n');
                for r in self.rows() {
                    out += &format!("| {} |\n", r.join(" | "));
                }
                out
            }
        }
    }
}
