//! Charts drawn on the server as inline SVG: no script, no image request, readable without
//! colour (each series has its own dash pattern and a table of the same numbers follows).

use maud::{Markup, html};

/// One line of a line chart: a label and a value per day.
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    /// SVG `stroke-dasharray`; empty for a solid line.
    pub dash: &'a str,
    pub values: Vec<u64>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A "nice" top for the y axis: 1, 2 or 5 times a power of ten at or above `max`.
pub fn nice_ceiling(max: u64) -> u64 {
    if max <= 5 {
        return 5;
    }
    let mut step = 1_u64;
    loop {
        for factor in [1, 2, 5] {
            let top = step.saturating_mul(factor);
            if top >= max {
                return top;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The points of one series scaled into the plot area, as an SVG `points` list.
pub fn points(values: &[u64], top: u64) -> String {
    let width = WIDTH - LEFT - RIGHT;
    let height = HEIGHT - TOP - BOTTOM;
    let step = if values.len() > 1 { width / (values.len() - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let x = LEFT + step * i as f64;
            let y = TOP + height - height * (*value as f64) / (top.max(1) as f64);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lines over days, with a y axis from 0 and the first, middle and last day on the x axis.
pub fn lines(id: &str, title: &str, days: &[String], series: &[Series<'_>]) -> Markup {
    let max = series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0);
    let top = nice_ceiling(max);
    let height = HEIGHT - TOP - BOTTOM;
    let ticks = [0, top / 2, top];
    let last = days.len().saturating_sub(1);
    let step = if last > 0 { (WIDTH - LEFT - RIGHT) / last as f64 } else { 0.0 };
    let labelled: Vec<usize> = if last == 0 { vec![0] } else { vec![0, last / 2, last] };
    let description = series
        .iter()
        .map(|s| format!("{}: {} in total", s.label, s.values.iter().sum::<u64>()))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        figure {
            svg.chart id=(id) role="img" aria-labelledby=(format!("{id}-title {id}-desc")) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (description) }
                @for tick in ticks {
                    @let y = TOP + height - height * (tick as f64) / (top as f64);
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(format!("{y:.1}")) y2=(format!("{y:.1}")) stroke="#c8c8c8" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(format!("{:.1}", y + 4.0)) text-anchor="end" font-size="12" fill="#4a4a4a" { (tick) }
                }
                @for i in &labelled {
                    @if let Some(label) = days.get(*i) {
                        text x=(format!("{:.1}", LEFT + step * *i as f64)) y=(HEIGHT - 8.0) text-anchor=(if *i == 0 { "start" } else if *i == last { "end" } else { "middle" }) font-size="12" fill="#4a4a4a" { (label) }
                    }
                }
                @for s in series {
                    polyline fill="none" stroke=(s.colour) stroke-width="2.5" stroke-dasharray=(s.dash) points=(points(&s.values, top)) {}
                }
            }
            figcaption {
                @for s in series {
                    span style=(format!("border-bottom:3px {} {};margin-right:1rem", if s.dash.is_empty() { "solid" } else { "dashed" }, s.colour)) { (s.label) ": " strong { (s.values.iter().sum::<u64>()) } }
                }
            }
        }
    }
}

/// Horizontal bars, largest first, each with its number.
pub fn bars(id: &str, title: &str, rows: &[(String, u64)]) -> Markup {
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let row_height = 26.0;
    let label_width = 180.0;
    let height = (rows.len().max(1) as f64) * row_height + 8.0;
    html! {
        figure {
            svg.chart id=(id) role="img" aria-label=(title) viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height) xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @if rows.is_empty() {
                    text x="0" y="18" font-size="13" fill="#4a4a4a" { "No data in this period." }
                }
                @for (i, (label, value)) in rows.iter().enumerate() {
                    @let y = 4.0 + row_height * i as f64;
                    @let width = (WIDTH - label_width - 60.0) * (*value as f64) / (max as f64);
                    text x=(label_width - 8.0) y=(format!("{:.1}", y + 17.0)) text-anchor="end" font-size="13" fill="#1a1a1a" { (short(label, 28)) }
                    rect x=(label_width) y=(format!("{y:.1}")) width=(format!("{width:.1}")) height=(row_height - 8.0) fill="#0b57a4" {}
                    text x=(format!("{:.1}", label_width + width + 6.0)) y=(format!("{:.1}", y + 15.0)) font-size="13" fill="#1a1a1a" { (value) }
                }
            }
        }
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_a_round_number_at_or_above_the_maximum() {
        assert_eq!(nice_ceiling(0), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(20), 20);
        assert_eq!(nice_ceiling(201), 500);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn points_span_the_plot_from_the_baseline_up() {
        let text = points(&[0, 5, 10], 10);
        let coords: Vec<(f64, f64)> = text
            .split(' ')
            .map(|pair| {
                let (x, y) = pair.split_once(',').unwrap_or_default();
                (x.parse().unwrap_or(-1.0), y.parse().unwrap_or(-1.0))
            })
            .collect();
        assert_eq!(coords.len(), 3);
        assert_eq!(coords[0], (LEFT, HEIGHT - BOTTOM), "zero sits on the baseline at the left edge");
        assert_eq!(coords[2], (WIDTH - RIGHT, TOP), "the top value touches the top at the right edge");
        assert!((coords[1].1 - (TOP + (HEIGHT - TOP - BOTTOM) / 2.0)).abs() < 0.11, "half way up");
    }

    #[test]
    fn labels_are_escaped_and_long_ones_cut() {
        let html = bars("b", "Top", &[("<script>alert(1)</script>".into(), 3)]).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert_eq!(short("abcdef", 4), "abc…");
    }
}
