//! A small SVG chart writer: line charts on linear axes, with error bars, point markers (knee,
//! best), horizontal reference lines (SLO, `--min-tps`), vertical rules (step boundaries) and
//! shaded x ranges (client-bound steps). Every point carries an SVG `<title>`, so a browser
//! shows its value on hover with no script. All text is escaped here.

use super::esc;
use std::fmt::Write;

/// Series colours, chosen to stay distinct in print.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// More points than this in one series: the line alone, no hover circles.
const MAX_CIRCLES: usize = 240;
/// More points than this: every k-th one is drawn (the last always).
const MAX_POINTS: usize = 2000;

const WIDTH: f64 = 760.0;
const PLOT_HEIGHT: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 34.0;
const LEGEND_ROW: f64 = 18.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// A confidence interval of `y`, drawn as an error bar.
    pub err: Option<(f64, f64)>,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y, err: None }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    /// Index into [`PALETTE`].
    pub color: usize,
    pub dashed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Knee,
    Best,
}

impl MarkKind {
    fn class(self) -> &'static str {
        match self {
            MarkKind::Knee => "knee",
            MarkKind::Best => "best",
        }
    }
}

/// A marked point (the knee, the best step).
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub kind: MarkKind,
}

/// A labelled line across the plot at one value.
#[derive(Debug, Clone)]
pub struct Rule {
    pub value: f64,
    pub label: String,
    /// The CSS class (`slo-line`, `min-tps-line`, `step-boundary`).
    pub class: &'static str,
}

/// A shaded x range.
#[derive(Debug, Clone)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
    /// The CSS class: [`BAND`] (client-bound) or [`THROTTLED_BAND`].
    pub class: &'static str,
}

/// A client-bound step or interval.
pub const BAND: &str = "band";
/// A period in which a GPU was slowed for power or heat.
pub const THROTTLED_BAND: &str = "band throttled";

#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    /// Horizontal lines at y values.
    pub y_rules: Vec<Rule>,
    /// Vertical lines at x values.
    pub x_rules: Vec<Rule>,
    pub bands: Vec<Band>,
    /// The x axis starts at the smallest x rather than at 0.
    pub x_from_data: bool,
    /// A fixed y range (percentiles: 0–100) instead of one fitted to the data.
    pub y_range: Option<(f64, f64)>,
    /// An x range every chart of a kind shares (the run's clock), widened to fit the data.
    pub x_range: Option<(f64, f64)>,
    /// The `id` of the `<svg>` element.
    pub id: Option<&'static str>,
}

/// A linear scale from data to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// True when at least one series has a finite point.
    pub fn has_data(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.points.iter().any(|p| p.x.is_finite() && p.y.is_finite()))
    }

    /// The chart as one `<svg>` element (the caller checks [`Chart::has_data`]).
    pub fn render(&self) -> String {
        let (xs, ys) = self.domain();
        let legend_rows = self.legend_rows();
        let height = TOP + PLOT_HEIGHT + 48.0 + LEGEND_ROW * legend_rows.len() as f64 + 6.0;
        let x = Scale {
            lo: xs.0,
            hi: xs.1,
            from: LEFT,
            to: WIDTH - RIGHT,
        };
        let y = Scale {
            lo: ys.0,
            hi: ys.1,
            from: TOP + PLOT_HEIGHT,
            to: TOP,
        };
        let mut out = String::with_capacity(8192);
        let id = self.id.map(|id| format!(r#" id="{}""#, esc(id))).unwrap_or_default();
        let _ = write!(
            out,
            r#"<svg class="chart"{id} viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{t}"><title>{t}</title>"#,
            t = esc(&self.title)
        );
        let _ = write!(
            out,
            r#"<text class="chart-title" x="{LEFT}" y="20">{}</text>"#,
            esc(&self.title)
        );
        self.write_bands(&mut out, x, y);
        write_axes(&mut out, x, y, &self.x_label, &self.y_label);
        self.write_rules(&mut out, x, y);
        for s in &self.series {
            write_series(&mut out, s, x, y);
        }
        self.write_marks(&mut out, x, y);
        write_legend(&mut out, &legend_rows, TOP + PLOT_HEIGHT + 48.0);
        out.push_str("</svg>");
        out
    }

    /// The x and y ranges: every point, error bar, rule and band fits; y starts at 0.
    fn domain(&self) -> ((f64, f64), (f64, f64)) {
        let finite = |v: &f64| v.is_finite();
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let xs: Vec<f64> = points()
            .map(|p| p.x)
            .chain(self.x_rules.iter().map(|r| r.value))
            .chain(self.bands.iter().flat_map(|b| [b.from, b.to]))
            .filter(finite)
            .collect();
        let ys: Vec<f64> = points()
            .flat_map(|p| [Some(p.y), p.err.map(|e| e.1)])
            .flatten()
            .chain(self.y_rules.iter().map(|r| r.value))
            .filter(finite)
            .collect();
        let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let x_lo = if self.x_from_data { min(&xs) } else { min(&xs).min(0.0) };
        let x_range = match self.x_range {
            Some((lo, hi)) => nice_range(x_lo.min(lo), max(&xs).max(hi)),
            None => nice_range(x_lo, max(&xs)),
        };
        let y_lo = min(&ys).min(0.0);
        let y_range = self.y_range.unwrap_or_else(|| nice_range(y_lo, max(&ys) * 1.05));
        (x_range, y_range)
    }

    fn write_bands(&self, out: &mut String, x: Scale, y: Scale) {
        for b in &self.bands {
            let (x0, x1) = (x.at(b.from), x.at(b.to));
            let _ = write!(
                out,
                r#"<rect class="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                b.class,
                x0.min(x1),
                y.to,
                (x1 - x0).abs().max(2.0),
                y.from - y.to,
                esc(&b.label)
            );
        }
    }

    fn write_rules(&self, out: &mut String, x: Scale, y: Scale) {
        for r in &self.y_rules {
            let py = y.at(r.value);
            let _ = write!(
                out,
                r#"<g class="{c}"><line x1="{:.1}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{l}</text><title>{l}</title></g>"#,
                x.from,
                x.to,
                x.to - 4.0,
                py - 4.0,
                c = r.class,
                l = esc(&r.label)
            );
        }
        for r in &self.x_rules {
            let px = x.at(r.value);
            let _ = write!(
                out,
                r#"<g class="{c}"><line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}"/><title>{l}</title></g>"#,
                y.from,
                y.to,
                c = r.class,
                l = esc(&r.label)
            );
        }
    }

    fn write_marks(&self, out: &mut String, x: Scale, y: Scale) {
        for m in &self.marks {
            if !(m.x.is_finite() && m.y.is_finite()) {
                continue;
            }
            let (px, py) = (x.at(m.x), y.at(m.y));
            let shape = match m.kind {
                MarkKind::Knee => format!(r#"<path d="M{:.1} {:.1} l7 7 l-7 7 l-7 -7 z"/>"#, px, py - 7.0),
                MarkKind::Best => format!(r#"<circle cx="{px:.1}" cy="{py:.1}" r="7"/>"#),
            };
            let _ = write!(
                out,
                r#"<g class="mark {c}">{shape}<text x="{:.1}" y="{:.1}" text-anchor="middle">{l}</text><title>{l}</title></g>"#,
                px,
                py - 11.0,
                c = m.kind.class(),
                l = esc(&m.label)
            );
        }
    }

    /// Legend entries (series, then rules and bands), wrapped into rows that fit the width.
    fn legend_rows(&self) -> Vec<Vec<LegendEntry>> {
        let mut entries: Vec<LegendEntry> = self
            .series
            .iter()
            .map(|s| LegendEntry {
                label: s.name.clone(),
                swatch: Swatch::Line(s.color, s.dashed),
            })
            .collect();
        for r in &self.y_rules {
            entries.push(LegendEntry {
                label: r.label.clone(),
                swatch: Swatch::Rule(r.class),
            });
        }
        let mut classes: Vec<&str> = Vec::new();
        for b in &self.bands {
            if !classes.contains(&b.class) {
                classes.push(b.class);
                entries.push(LegendEntry {
                    label: b.label.clone(),
                    swatch: Swatch::Band(b.class),
                });
            }
        }
        let mut rows: Vec<Vec<LegendEntry>> = Vec::new();
        let mut width = f64::INFINITY;
        for e in entries {
            let w = e.width();
            if width + w > WIDTH - LEFT - RIGHT {
                rows.push(Vec::new());
                width = 0.0;
            }
            width += w;
            rows.last_mut().expect("a row was pushed").push(e);
        }
        rows
    }
}

#[derive(Debug, Clone)]
enum Swatch {
    Line(usize, bool),
    Rule(&'static str),
    Band(&'static str),
}

#[derive(Debug, Clone)]
struct LegendEntry {
    label: String,
    swatch: Swatch,
}

impl LegendEntry {
    /// An estimate: wide characters (CJK) count double.
    fn width(&self) -> f64 {
        let chars: f64 = self.label.chars().map(|c| if c.is_ascii() { 1.0 } else { 2.0 }).sum();
        34.0 + 7.0 * chars.min(60.0)
    }
}

fn write_legend(out: &mut String, rows: &[Vec<LegendEntry>], top: f64) {
    out.push_str(r#"<g class="legend">"#);
    for (i, row) in rows.iter().enumerate() {
        let y = top + LEGEND_ROW * i as f64 + 12.0;
        let mut x = LEFT;
        for e in row {
            let swatch = match e.swatch {
                Swatch::Line(color, dashed) => format!(
                    r#"<line x1="{x:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"{}/>"#,
                    x + 22.0,
                    y - 4.0,
                    y - 4.0,
                    PALETTE[color % PALETTE.len()],
                    if dashed { r#" stroke-dasharray="6 3""# } else { "" }
                ),
                Swatch::Rule(class) => format!(
                    r#"<g class="{class}"><line x1="{x:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/></g>"#,
                    x + 22.0,
                    y - 4.0,
                    y - 4.0
                ),
                Swatch::Band(class) => format!(
                    r#"<rect class="{class}" x="{x:.1}" y="{:.1}" width="22" height="10"/>"#,
                    y - 9.0
                ),
            };
            let label: String = e.label.chars().take(60).collect();
            let _ = write!(
                out,
                r#"<g class="legend-entry">{swatch}<text x="{:.1}" y="{y:.1}">{}</text></g>"#,
                x + 28.0,
                esc(&label)
            );
            x += e.width();
        }
    }
    out.push_str("</g>");
}

fn write_axes(out: &mut String, x: Scale, y: Scale, x_label: &str, y_label: &str) {
    out.push_str(r#"<g class="axis x-axis">"#);
    for v in ticks(x.lo, x.hi) {
        let px = x.at(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y.from,
            y.to,
            y.from + 16.0,
            tick_label(v, x.hi - x.lo)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis-line" x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
        x.from,
        x.to,
        y.from,
        y.from,
        (x.from + x.to) / 2.0,
        y.from + 36.0,
        esc(x_label)
    );
    out.push_str(r#"<g class="axis y-axis">"#);
    for v in ticks(y.lo, y.hi) {
        let py = y.at(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x.from,
            x.to,
            x.from - 6.0,
            py + 4.0,
            tick_label(v, y.hi - y.lo)
        );
    }
    let (cx, cy) = (16.0, (y.from + y.to) / 2.0);
    let _ = write!(
        out,
        r#"<line class="axis-line" x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis-label" x="{cx}" y="{cy:.1}" text-anchor="middle" transform="rotate(-90 {cx} {cy:.1})">{}</text></g>"#,
        x.from,
        x.from,
        y.from,
        y.to,
        esc(y_label)
    );
}

fn write_series(out: &mut String, s: &Series, x: Scale, y: Scale) {
    let mut points: Vec<Point> = s
        .points
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    if points.len() > MAX_POINTS {
        let every = points.len().div_ceil(MAX_POINTS);
        let last = *points.last().expect("not empty");
        points = points.into_iter().step_by(every).collect();
        points.push(last);
    }
    let color = PALETTE[s.color % PALETTE.len()];
    let _ = write!(
        out,
        r#"<g class="series" data-name="{}" stroke="{color}" fill="{color}">"#,
        esc(&s.name)
    );
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x.at(p.x), y.at(p.y)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke-width="2"{} points="{}"/>"#,
        if s.dashed { r#" stroke-dasharray="6 3""# } else { "" },
        path.join(" ")
    );
    for p in &points {
        if let Some((lo, hi)) = p.err.filter(|e| e.0.is_finite() && e.1.is_finite()) {
            let px = x.at(p.x);
            let (y0, y1) = (y.at(lo), y.at(hi));
            let _ = write!(
                out,
                r#"<path class="error-bar" d="M{px:.1} {y0:.1}V{y1:.1}M{:.1} {y0:.1}h8M{:.1} {y1:.1}h8"/>"#,
                px - 4.0,
                px - 4.0
            );
        }
    }
    if points.len() <= MAX_CIRCLES {
        for p in &points {
            let err = p
                .err
                .map(|(lo, hi)| format!(" [{} – {}]", fmt_value(lo), fmt_value(hi)))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3"><title>{}: {} → {}{err}</title></circle>"#,
                x.at(p.x),
                y.at(p.y),
                esc(&s.name),
                fmt_value(p.x),
                fmt_value(p.y)
            );
        }
    }
    out.push_str("</g>");
}

/// A range that starts and ends on round numbers; never empty.
fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        // One value: a unit around it, or from 0 to 1 (a count that stayed at 0).
        (true, _) if lo == 0.0 => (0.0, 1.0),
        (true, _) => (lo - 1.0, lo + 1.0),
        _ => (0.0, 1.0),
    };
    // Finer than the ticks, so the range ends close to the data.
    let step = nice_step(hi - lo, 8.0);
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

/// 1, 2 or 5 times a power of ten, for about `intervals` intervals over `range`.
fn nice_step(range: f64, intervals: f64) -> f64 {
    let raw = range / intervals;
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let step = nice_step(hi - lo, 5.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn tick_label(v: f64, range: f64) -> String {
    let step = nice_step(range, 5.0);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A value for a tooltip: three significant figures or more.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        let mut c = Chart::new("Throughput <b>", "concurrency (connections)", "throughput (tokens/s)");
        for (i, name) in ["input", "output"].iter().enumerate() {
            c.series.push(Series {
                name: name.to_string(),
                points: (1..=4)
                    .map(|k| Point::new(k as f64 * 4.0, k as f64 * 100.0 * (i + 1) as f64))
                    .collect(),
                color: i,
                dashed: false,
            });
        }
        c
    }

    #[test]
    fn axes_labels_and_series_are_drawn() {
        let svg = chart().render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("concurrency (connections)") && svg.contains("throughput (tokens/s)"));
        assert_eq!(svg.matches(r#"<g class="series""#).count(), 2);
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains(r#"class="axis x-axis""#) && svg.contains(r#"class="axis y-axis""#));
        assert!(svg.contains("Throughput &lt;b&gt;"), "the title is escaped");
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn marks_rules_bands_and_error_bars() {
        let mut c = chart();
        c.marks.push(Mark {
            x: 8.0,
            y: 400.0,
            label: "knee".into(),
            kind: MarkKind::Knee,
        });
        c.y_rules.push(Rule {
            value: 500.0,
            label: "SLO ttft_p99 ≤ 500 ms".into(),
            class: "slo-line",
        });
        c.bands.push(Band {
            from: 14.0,
            to: 18.0,
            label: "client-bound".into(),
            class: BAND,
        });
        c.series[0].points[1].err = Some((180.0, 220.0));
        let svg = c.render();
        assert_eq!(svg.matches(r#"class="mark knee""#).count(), 1);
        assert!(svg.contains(r#"<g class="slo-line">"#) && svg.contains("SLO ttft_p99 ≤ 500 ms"));
        assert!(svg.contains(r#"<rect class="band""#));
        assert_eq!(svg.matches(r#"class="error-bar""#).count(), 1);
    }

    #[test]
    fn untrusted_names_are_escaped() {
        let mut c = chart();
        c.series[0].name = r#"<script>alert(1)</script>"'</style>]]>"#.into();
        let svg = c.render();
        assert!(!svg.contains("<script") && !svg.contains("</style>") && !svg.contains("]]>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"));
    }

    #[test]
    fn ranges_and_ticks_are_round() {
        assert_eq!(nice_range(0.0, 97.0), (0.0, 100.0));
        assert_eq!(nice_range(3.0, 3.0), (2.0, 4.0));
        assert_eq!(
            nice_range(0.0, 0.0),
            (0.0, 1.0),
            "a count that stayed at 0 is not drawn below 0"
        );
        assert_eq!(nice_range(0.0, 105.0), (0.0, 120.0));
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(tick_label(0.5, 2.0), "0.5");
        assert!(!Chart::default().has_data());
    }

    #[test]
    fn long_series_are_thinned_and_lose_their_circles() {
        let mut c = chart();
        c.series[0].points = (0..10_000).map(|i| Point::new(i as f64, (i % 7) as f64)).collect();
        let svg = c.render();
        assert!(svg.len() < 200_000, "{}", svg.len());
        assert_eq!(
            svg.matches("<circle").count(),
            4,
            "only the short series has hover points"
        );
    }
}
