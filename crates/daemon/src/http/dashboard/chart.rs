//! Charts as inline SVG, drawn here (no chart library, nothing from the network): line charts with
//! axes, units and threshold lines, and sparklines. Pure: data in, markup out. Colours come from CSS
//! classes (`c0`…`c3`), so the page's light and dark themes both apply.

use maud::{Markup, html};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    /// A fraction shown as a percentage.
    Percent,
    /// A share of a whole (a budget left), shown as a percentage; its axis ends at 100 % unless a
    /// value is above.
    Share,
    Millis,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::PerSecond => format!("{}/s", short(v)),
            Unit::Percent | Unit::Share => format!("{}%", short(v * 100.0)),
            Unit::Millis => format!("{} ms", short(v)),
        }
    }
}

/// Few digits: 0.25, 2.5, 25, 250, 2.5k.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}").trim_end_matches(".0").to_string()
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One release's line.
pub struct Line {
    pub label: String,
    /// Colour class index.
    pub colour: usize,
    /// (unix ms, value); `None` is a gap (no traffic).
    pub points: Vec<(i64, Option<f64>)>,
    pub dashed: bool,
}

pub struct Threshold {
    pub value: f64,
    pub label: String,
}

/// 1, 2 or 5 times a power of ten, at least `v` (and above zero).
pub fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p * (1.0 + 1e-9) {
            return m * p;
        }
    }
    10.0 * p
}

// Drawn at about the size it is shown (a third of a wide page, or a phone's width), so text stays legible.
const W: f64 = 380.0;
const H: f64 = 190.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// The time axis' ticks for a span: (tick every, label unit, unit in ms). At most six ticks: a minute
/// apart over the dashboard's 5 minutes, days apart over an SLO's 30 days.
fn time_ticks(span_ms: i64) -> (i64, &'static str, i64) {
    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;
    const D: i64 = 24 * H;
    let steps = [
        (MIN, " min", MIN),
        (5 * MIN, " min", MIN),
        (15 * MIN, " min", MIN),
        (H, " h", H),
        (6 * H, " h", H),
        (D, " d", D),
        (7 * D, " d", D),
    ];
    steps
        .into_iter()
        .find(|(every, ..)| span_ms / every <= 6)
        .unwrap_or(steps[steps.len() - 1])
}

/// SVG path data for points, broken at gaps. `x` and `y` map data to pixels.
fn path(points: &[(i64, Option<f64>)], x: impl Fn(i64) -> f64, y: impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for &(t, v) in points {
        match v {
            Some(v) => {
                d.push_str(&format!(
                    "{}{:.1},{:.1}",
                    if pen_down { "L" } else { "M" },
                    x(t),
                    y(v)
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

/// A line chart over the last `span_ms` up to `now`, with a y axis in `unit` from zero.
pub fn chart(
    title: &str,
    note: Option<&str>,
    unit: Unit,
    lines: &[Line],
    thresholds: &[Threshold],
    now: i64,
    span_ms: i64,
) -> Markup {
    let top_value = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .chain(thresholds.iter().map(|t| t.value))
        .fold(0.0f64, f64::max);
    let ymax = if unit == Unit::Share && top_value <= 1.0 {
        1.0
    } else {
        nice_ceiling(top_value * 1.1)
    };
    let start = now - span_ms;
    let x = |t: i64| LEFT + (t - start).max(0) as f64 / span_ms.max(1) as f64 * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - (v / ymax).clamp(0.0, 1.0)) * (H - TOP - BOTTOM);
    let (every, label, unit_ms) = time_ticks(span_ms);
    let ticks = (span_ms / every).max(1);
    let empty = lines.iter().all(|l| l.points.iter().all(|p| p.1.is_none()));
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) {
                @for i in 0..=4 {
                    @let v = ymax * i as f64 / 4.0;
                    line.grid x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(v))) y2=(format!("{:.1}", y(v))) {}
                    text.tick x=(LEFT - 4.0) y=(format!("{:.1}", y(v) + 4.0)) text-anchor="end" { (unit.format(v)) }
                }
                @for m in 0..=ticks {
                    @let t = now - m * every;
                    text.tick x=(format!("{:.1}", x(t))) y=(H - 6.0)
                        text-anchor=(if m == 0 { "end" } else if m == ticks { "start" } else { "middle" }) {
                        @if m == 0 { "now" } @else { "-" (m * every / unit_ms) (label) }
                    }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(H - BOTTOM) {}
                line.axis x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM) {}
                @for t in thresholds {
                    line.threshold x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(t.value))) y2=(format!("{:.1}", y(t.value))) {}
                    text.threshold-label x=(W - RIGHT - 2.0) y=(format!("{:.1}", y(t.value) - 3.0)) text-anchor="end" { (t.label) }
                }
                @for l in lines {
                    path class=(format!("series c{}{}", l.colour % 4, if l.dashed { " dashed" } else { "" }))
                        d=(path(&l.points, x, y)) {}
                }
                @if empty {
                    text.tick x=(W / 2.0) y=(H / 2.0) text-anchor="middle" { "no traffic yet" }
                }
            }
            div.legend {
                @for l in lines.iter().filter(|l| !l.label.is_empty()) {
                    span { i class=(format!("swatch c{}", l.colour % 4)) {} (l.label) }
                }
                @if let Some(note) = note { span { (note) } }
            }
        }
    }
}

/// A small line with no axes, scaled to its own maximum; its last value is shown beside it.
pub fn sparkline(values: &[Option<f64>], colour: usize, unit: Unit) -> Markup {
    let (w, h) = (120.0, 24.0);
    let top = nice_ceiling(values.iter().flatten().fold(0.0f64, |a, &b| a.max(b)));
    let n = values.len().max(2) - 1;
    let points: Vec<(i64, Option<f64>)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, *v))
        .collect();
    let d = path(
        &points,
        |i| i as f64 / n as f64 * w,
        |v| 1.0 + (1.0 - (v / top).clamp(0.0, 1.0)) * (h - 2.0),
    );
    let last = values.iter().rev().flatten().next();
    html! {
        span.spark {
            svg viewBox=(format!("0 0 {w} {h}")) width="120" height="24" aria-hidden="true" {
                path class=(format!("series c{}", colour % 4)) d=(d) {}
            }
            span.spark-value { (last.map_or("–".to_string(), |v| unit.format(*v))) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(0.012), 0.02);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(5.0), 5.0);
        assert_eq!(nice_ceiling(70.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
    }

    #[test]
    fn units_read_like_people_write_them() {
        assert_eq!(Unit::Percent.format(0.015), "1.5%");
        assert_eq!(Unit::Percent.format(0.0), "0%");
        assert_eq!(Unit::PerSecond.format(12.0), "12/s");
        assert_eq!(Unit::Millis.format(250.0), "250 ms");
        assert_eq!(Unit::Millis.format(0.25), "0.25 ms");
        assert_eq!(Unit::PerSecond.format(25_000.0), "25k/s");
    }

    #[test]
    fn gaps_break_the_line_and_thresholds_are_drawn() {
        let d = path(
            &[(0, Some(1.0)), (1, None), (2, Some(2.0)), (3, Some(3.0))],
            |t| t as f64,
            |v| v,
        );
        assert_eq!(d, "M0.0,1.0M2.0,2.0L3.0,3.0");
        let svg = chart(
            "Error rate",
            None,
            Unit::Percent,
            &[Line {
                label: "v2".into(),
                colour: 1,
                points: vec![(1_000, Some(0.004)), (2_000, Some(0.006))],
                dashed: false,
            }],
            &[Threshold {
                value: 0.01,
                label: "max 1%".into(),
            }],
            2_000,
            60_000,
        )
        .into_string();
        assert!(svg.contains("class=\"threshold\""), "{svg}");
        assert!(svg.contains("max 1%") && svg.contains("now") && svg.contains("-1 min"));
        // The y axis reaches the threshold (1 % × 1.1 → 2 %).
        assert!(svg.contains(">2%<"), "{svg}");
        assert!(!svg.contains("no traffic yet"));
    }

    #[test]
    fn long_spans_get_few_ticks_in_their_own_unit() {
        assert_eq!(time_ticks(300_000), (60_000, " min", 60_000));
        assert_eq!(time_ticks(3_600_000).0, 900_000);
        assert_eq!(
            time_ticks(30 * 86_400_000),
            (7 * 86_400_000, " d", 86_400_000)
        );
        let svg = chart(
            "Error budget left",
            None,
            Unit::Share,
            &[Line {
                label: "availability".into(),
                colour: 0,
                points: vec![(0, Some(1.0)), (86_400_000, Some(0.4))],
                dashed: false,
            }],
            &[],
            2 * 86_400_000,
            30 * 86_400_000,
        )
        .into_string();
        assert!(svg.contains("-7 d") && svg.contains("-28 d"), "{svg}");
        assert!(
            svg.contains(">100%<") && !svg.contains(">200%<"),
            "a share ends at 100 %: {svg}"
        );
    }

    #[test]
    fn a_sparkline_shows_its_last_value() {
        let s = sparkline(&[Some(1.0), None, Some(4.0)], 0, Unit::PerSecond).into_string();
        assert!(s.contains("4/s") && s.contains("<path"), "{s}");
        assert!(sparkline(&[], 0, Unit::Millis).into_string().contains('–'));
    }
}
