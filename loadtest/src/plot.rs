//! The latency percentile distribution as a standalone SVG, written by
//! hand: the x axis is `1/(1-q)` on a log scale (so 90%, 99%, 99.9% are
//! evenly spaced, as in HdrHistogram plots), the y axis milliseconds.

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Nines shown on the x axis: up to 99.999%.
const MAX_NINES: f64 = 5.0;

/// The SVG text for `histogram` (microsecond samples) with `title`.
pub fn percentile_svg(histogram: &Histogram<u64>, title: &str) -> String {
    let points: Vec<(f64, f64)> = if histogram.is_empty() {
        Vec::new()
    } else {
        histogram
            .iter_quantiles(5)
            .map(|v| {
                let q = v.quantile_iterated_to();
                let nines = if q >= 1.0 { MAX_NINES } else { (-(1.0 - q).log10()).min(MAX_NINES) };
                (nines, v.value_iterated_to() as f64 / 1000.0)
            })
            .collect()
    };
    let y_max = nice_ceiling(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |nines: f64| LEFT + nines / MAX_NINES * plot_w;
    let y = |ms: f64| TOP + plot_h - ms / y_max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let gx = x(i as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    for i in 0..=5 {
        let ms = y_max * f64::from(i) / 5.0;
        let gy = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{ms:.3}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            gy + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text><text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">latency (ms)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    let mut line = String::new();
    for (nines, ms) in &points {
        let _ = write!(line, "{:.1},{:.1} ", x(*nines), y(*ms));
    }
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        line.trim_end()
    );
    svg.push_str("</svg>\n");
    svg
}

/// A round axis maximum at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * base).find(|c| *c >= v).unwrap_or(10.0 * base)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_a_rising_line_within_the_frame() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            h.record(us * 10).unwrap();
        }
        let svg = percentile_svg(&h, "edge <h2>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("edge &lt;h2&gt;"));
        let points = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        let ys: Vec<f64> =
            points.split(' ').map(|p| p.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert!(ys.len() > 10);
        // SVG y grows downwards: latency rising with the percentile means y falling.
        assert!(ys.windows(2).all(|w| w[1] <= w[0]));
        assert!(ys.iter().all(|y| (TOP..=HEIGHT - BOTTOM).contains(y)));
    }

    #[test]
    fn axis_maximum_is_round() {
        assert_eq!(nice_ceiling(0.37), 0.5);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
