//! The live progress display. On a terminal it redraws one bar in place; otherwise (CI logs, pipes) it
//! prints a plain line about once a second so logs stay readable. It always writes to stderr so that
//! `--csv` and `--json` on stdout stay machine-readable.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStyle {
    /// A bar redrawn with carriage returns.
    Terminal,
    /// One line per interval.
    Lines,
    Quiet,
}

const BAR_WIDTH: usize = 30;
const TERMINAL_INTERVAL: Duration = Duration::from_millis(200);
const LINES_INTERVAL: Duration = Duration::from_secs(1);

/// Shows `done` out of `total` for `label` until `finished` is set. Run it on its own thread.
pub fn show(
    style: ProgressStyle,
    label: &str,
    total: u64,
    done: &AtomicU64,
    finished: &AtomicBool,
) {
    if style == ProgressStyle::Quiet {
        return;
    }
    let interval = match style {
        ProgressStyle::Terminal => TERMINAL_INTERVAL,
        _ => LINES_INTERVAL,
    };
    let started = Instant::now();
    let mut last_drawn = Instant::now();
    loop {
        // Sleep in short steps so a short run does not wait a whole interval to end.
        std::thread::sleep(Duration::from_millis(20));
        let over = finished.load(Ordering::Acquire);
        if !over && last_drawn.elapsed() < interval {
            continue;
        }
        last_drawn = Instant::now();
        let count = done.load(Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let rate = count as f64 / seconds;
        let mut stderr = std::io::stderr().lock();
        match style {
            ProgressStyle::Terminal => {
                let _ = write!(stderr, "\r\x1b[2K{}", bar_line(label, count, total, rate));
                if over {
                    let _ = writeln!(stderr);
                }
            }
            _ => {
                if !over {
                    let _ = writeln!(stderr, "{}", bar_line(label, count, total, rate));
                }
            }
        }
        let _ = stderr.flush();
        if over {
            return;
        }
    }
}

/// `label [#####.....]  45%  4500/10000  81234 ops/s`
pub fn bar_line(label: &str, done: u64, total: u64, rate: f64) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "{label} [{}{}] {:>3.0}% {done}/{total} {rate:.0} ops/s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        fraction * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_shows_the_fraction_done() {
        let line = bar_line("set", 50, 100, 1234.4);
        assert!(line.starts_with("set [###############...............]  50% 50/100 1234 ops/s"));
        assert!(bar_line("x", 0, 0, 0.0).contains("100%"));
    }
}
