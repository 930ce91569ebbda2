//! The latency plot: each run's distribution as latency against quantile,
//! the quantile axis in "nines" (p90, p99, p99.9, …) so the tail is as
//! readable as the median.

use std::path::Path;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Text needs a font file: Debian's DejaVu (`fonts-dejavu-core`).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const NINES: f64 = 4.0;

/// Why the plot has no font.
#[derive(Debug, Clone, thiserror::Error)]
enum FontError {
    #[error("{FONT}: {0} (install fonts-dejavu-core)")]
    Read(std::sync::Arc<std::io::Error>),
    #[error("{FONT} is not a font plotters can read")]
    Unreadable,
}

fn register_font() -> Result<(), FontError> {
    static DONE: std::sync::OnceLock<Result<(), FontError>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = std::fs::read(FONT).map_err(|e| FontError::Read(std::sync::Arc::new(e)))?;
        // plotters keeps the font for the process's life.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| FontError::Unreadable)
    })
    .clone()
}

/// The points of one distribution: (nines, ms).
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=400)
        .map(|step| {
            let nines = f64::from(step) / 100.0;
            let q = 1.0 - 10f64.powf(-nines);
            (nines, h.value_at_quantile(q) as f64 / 1_000.0)
        })
        .collect()
}

/// Draws each run's end-to-end curve and its SMTP acceptance curve.
pub(crate) fn draw(
    path: &Path,
    runs: &[(&String, &Histogram<u64>, &Histogram<u64>)],
) -> anyhow::Result<()> {
    register_font()?;
    let top = runs
        .iter()
        .map(|(_, e2e, _)| e2e.value_at_quantile(0.9999) as f64 / 1_000.0)
        .fold(1.0, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).context("plot")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "pushmail: mail to phone latency by quantile",
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..NINES, 0.0..top)
        .context("plot")?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "p0".to_owned(),
            1 => "p90".to_owned(),
            2 => "p99".to_owned(),
            3 => "p99.9".to_owned(),
            _ => "p99.99".to_owned(),
        })
        .x_desc("quantile")
        .y_desc("ms")
        .draw()
        .context("plot")?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (i, (name, e2e, accept)) in runs.iter().enumerate() {
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(curve(e2e), colour.stroke_width(2)))
            .context("plot")?
            .label(format!("{name}: end of DATA → phone"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(curve(accept), colour.mix(0.4)))
            .context("plot")?
            .label(format!("{name}: end of DATA → 250"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.mix(0.4)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .context("plot")?;
    root.present().context("plot")?;
    Ok(())
}
