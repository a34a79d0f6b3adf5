//! `--plot`: an SVG of desired, InService, spot and on-demand over time for each policy, and
//! every policy's cumulative cost, drawn with `plotters` (SVG backend only).

use plotters::prelude::*;

use crate::report::Report;

/// One line of a capacity panel.
type Series = fn(&crate::Sample) -> u32;

const PANEL_HEIGHT: u32 = 220;
const WIDTH: u32 = 960;

/// Colours of the series, and of the policies in the cost panel.
const COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// The SVG text of `report`'s series: one panel per policy, then the cost panel.
pub fn svg(report: &Report) -> Result<String, String> {
    let mut out = String::new();
    {
        let panels = report.policies.len() as u32 + 1;
        let root = SVGBackend::with_string(&mut out, (WIDTH, PANEL_HEIGHT * panels)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels as usize, 1));
        let hours = report
            .policies
            .iter()
            .flat_map(|p| p.series.last())
            .map(|s| s.hour)
            .fold(0.0_f64, f64::max)
            .max(1.0);
        let top = report
            .policies
            .iter()
            .flat_map(|p| p.series.iter())
            .map(|s| s.desired.max(s.in_service))
            .max()
            .unwrap_or(1)
            .max(1);
        for (p, area) in report.policies.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{} — {}", report.scenario, p.policy), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..hours, 0.0..f64::from(top) * 1.1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("hours")
                .y_desc("instances")
                .draw()
                .map_err(|e| e.to_string())?;
            let lines: [(&str, Series); 4] = [
                ("desired", |s| s.desired),
                ("InService", |s| s.in_service),
                ("spot", |s| s.spot),
                ("on-demand", |s| s.on_demand),
            ];
            for (i, (label, f)) in lines.iter().enumerate() {
                let colour = COLOURS[i];
                chart
                    .draw_series(LineSeries::new(
                        p.series.iter().map(|s| (s.hour, f64::from(f(s)))),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        let max_cost = report
            .policies
            .iter()
            .map(|p| p.cost)
            .fold(0.0_f64, f64::max)
            .max(0.01);
        let area = areas.last().ok_or("no panel")?;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{} — cumulative cost", report.scenario),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..hours, 0.0..max_cost * 1.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("hours")
            .y_desc("USD")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, p) in report.policies.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    p.series.iter().map(|s| (s.hour, s.cost)),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(p.policy.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
