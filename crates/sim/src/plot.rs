//! `--plot`: an SVG of desired, InService, spot and on-demand over time for each policy, and
//! every policy's cumulative cost, drawn with `plotters` (SVG backend only).
