//! Turning results into text: the human summary (one block per run, ending in a `verdict:` line), CSV,
//! JSON and the side-by-side Markdown table. JSON is written by hand: the shape is flat and fixed, and a
//! serializer would be a dependency for twenty lines.

use crate::histogram::milliseconds;
use crate::scenario::ScenarioResult;
use std::fmt::Write;

/// Violations after the first that the human summary shows; the rest are counted, and `--json` has more.
const ALSO_SHOWN_MAX: usize = 4;

/// The block printed for each run.
pub fn human(result: &ScenarioResult) -> String {
    let mut text = String::new();
    let latency = &result.latency;
    let _ = writeln!(text, "====== {} ({}) ======", result.name, result.target);
    let _ = writeln!(
        text,
        "  {} requests, {:.1} requests per second",
        result.requests, result.requests_per_second
    );
    let _ = writeln!(
        text,
        "  latency (ms): p50 {}  p99 {}  p99.9 {}  max {}",
        milliseconds(latency.p50_us),
        milliseconds(latency.p99_us),
        milliseconds(latency.p999_us),
        milliseconds(latency.max_us)
    );
    let _ = writeln!(text, "  {}", result.detail);
    let _ = writeln!(text, "  verdict: {}", result.verdict.describe());
    for violation in result
        .verdict
        .violations
        .iter()
        .skip(1)
        .take(ALSO_SHOWN_MAX)
    {
        let _ = writeln!(text, "    also: {violation}");
    }
    let shown = result.verdict.violations.len().min(ALSO_SHOWN_MAX + 1) as u64;
    if result.verdict.violation_count > shown {
        let more = result.verdict.violation_count - shown;
        let _ = writeln!(text, "    ... and {more} more (--json lists the first 20)");
    }
    text
}

pub fn csv(results: &[ScenarioResult]) -> String {
    let mut text = String::from(
        "\"test\",\"target\",\"rps\",\"p50_ms\",\"p99_ms\",\"p999_ms\",\"max_ms\",\"verdict\"\n",
    );
    for result in results {
        let latency = &result.latency;
        let _ = writeln!(
            text,
            "\"{}\",\"{}\",\"{:.2}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\"",
            result.name,
            result.target,
            result.requests_per_second,
            milliseconds(latency.p50_us),
            milliseconds(latency.p99_us),
            milliseconds(latency.p999_us),
            milliseconds(latency.max_us),
            result.verdict.describe().replace('"', "\"\"")
        );
    }
    text
}

pub fn json(results: &[ScenarioResult], seed: u64, prefix: &str) -> String {
    let mut text = format!(
        "{{\"seed\":{seed},\"prefix\":{},\"results\":[",
        json_string(prefix)
    );
    for (index, result) in results.iter().enumerate() {
        let latency = &result.latency;
        let violations: Vec<String> = result
            .verdict
            .violations
            .iter()
            .map(|violation| json_string(violation))
            .collect();
        let _ = write!(
            text,
            "{}{{\"test\":{},\"target\":{},\"requests\":{},\"rps\":{:.2},\"p50_ms\":{},\"p99_ms\":{},\
             \"p999_ms\":{},\"max_ms\":{},\"correct\":{},\"violation_count\":{},\"violations\":[{}],\
             \"detail\":{}}}",
            if index == 0 { "" } else { "," },
            json_string(&result.name),
            json_string(&result.target),
            result.requests,
            result.requests_per_second,
            milliseconds(latency.p50_us),
            milliseconds(latency.p99_us),
            milliseconds(latency.p999_us),
            milliseconds(latency.max_us),
            result.verdict.is_correct(),
            result.verdict.violation_count,
            violations.join(","),
            json_string(&result.detail)
        );
    }
    text.push_str("]}\n");
    text
}

fn json_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            control if (control as u32) < 0x20 => {
                let _ = write!(quoted, "\\u{:04x}", control as u32);
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// One table, one row per (scenario, target), so dibs and Redis sit on adjacent rows.
pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut text = String::from(
        "| scenario | target | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | verdict |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for result in results {
        let latency = &result.latency;
        let verdict = if result.verdict.is_correct() {
            "correct".to_string()
        } else {
            format!("**VIOLATED** ({})", result.verdict.violation_count)
        };
        let _ = writeln!(
            text,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            result.name,
            result.target,
            result.requests_per_second,
            milliseconds(latency.p50_us),
            milliseconds(latency.p99_us),
            milliseconds(latency.p999_us),
            milliseconds(latency.max_us),
            verdict
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::LatencySummary;
    use crate::scenario::Verdict;

    fn result(verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            name: "coupon-rush".into(),
            target: "redis".into(),
            requests: 1000,
            requests_per_second: 5000.0,
            latency: LatencySummary {
                count: 1000,
                p50_us: 200,
                p99_us: 900,
                p999_us: 1500,
                max_us: 2000,
            },
            verdict,
            detail: "issued".into(),
        }
    }

    #[test]
    fn formats_every_output() {
        let mut wrong = Verdict::default();
        wrong.fail("over-issue: \"3\"");
        let results = vec![result(Verdict::default()), result(wrong)];
        assert!(human(&results[0]).contains("verdict: correct"));
        assert!(human(&results[1]).contains("verdict: VIOLATED (1): over-issue"));
        let table = markdown(&results);
        assert!(table
            .contains("| coupon-rush | redis | 5000 | 0.200 | 0.900 | 1.500 | 2.000 | correct |"));
        assert!(table.contains("**VIOLATED** (1)"));
        assert!(csv(&results)
            .lines()
            .nth(2)
            .unwrap()
            .contains("\"VIOLATED (1): over-issue: \"\"3\"\"\""));
        let json = json(&results, 7, "p");
        assert!(json.contains("\"correct\":false"));
        assert!(json.contains("\"violations\":[\"over-issue: \\\"3\\\"\"]"));
    }
}
