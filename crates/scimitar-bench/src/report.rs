//! Results: a latency histogram per scenario, the table and the JSON report,
//! and what /proc says about the server and the machine.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::time::Duration;

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
#[allow(clippy::expect_used)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid bounds")
}

/// What one scenario measured.
pub struct Outcome {
    pub name: String,
    pub hist: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub first_error: Option<String>,
    /// CPU time the server used during the run, as a share of one core.
    pub server_cpu: Option<f64>,
    /// CPU time this tool used during the run, as a share of one core.
    pub client_cpu: Option<f64>,
    /// Server peak RSS (VmHWM) after the run, in KiB.
    pub server_hwm_kib: Option<u64>,
    /// Server current RSS (VmRSS) after the run, in KiB.
    pub server_rss_kib: Option<u64>,
    /// Units counted by `requests` (requests, or users for `populate`).
    pub unit: &'static str,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.requests as f64 / s } else { 0.0 }
    }

    fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.max() as f64 / 1000.0
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.name,
            "unit": self.unit,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.elapsed.as_secs_f64(), 3),
            "throughput_per_s": round(self.rate(), 1),
            "latency_ms": {
                "p50": round(self.ms(0.50), 3),
                "p90": round(self.ms(0.90), 3),
                "p99": round(self.ms(0.99), 3),
                "max": round(self.max_ms(), 3),
                "mean": round(if self.hist.is_empty() { 0.0 } else { self.hist.mean() / 1000.0 }, 3),
                "samples": self.hist.len(),
            },
            "first_error": self.first_error,
            "server_cpu_cores": self.server_cpu.map(|c| round(c, 2)),
            "client_cpu_cores": self.client_cpu.map(|c| round(c, 2)),
            "server_vmhwm_mib": self.server_hwm_kib.map(|k| round(k as f64 / 1024.0, 1)),
            "server_vmrss_mib": self.server_rss_kib.map(|k| round(k as f64 / 1024.0, 1)),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The table printed at the end.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = format!(
        "{:<18} {:>9} {:>6} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>8}\n",
        "scenario",
        "requests",
        "errors",
        "secs",
        "per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "srvCPU",
        "cliCPU",
        "HWM_MiB"
    );
    for o in outcomes {
        let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |x| format!("{x:.d$}"));
        s.push_str(&format!(
            "{:<18} {:>9} {:>6} {:>7.2} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>6} {:>6} {:>8}\n",
            o.name,
            o.requests,
            o.errors,
            o.elapsed.as_secs_f64(),
            o.rate(),
            o.ms(0.5),
            o.ms(0.9),
            o.ms(0.99),
            o.max_ms(),
            opt(o.server_cpu, 2),
            opt(o.client_cpu, 2),
            opt(o.server_hwm_kib.map(|k| k as f64 / 1024.0), 1),
        ));
    }
    s
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU time (user + system) of a process and its threads, in clock ticks.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second: 100 on Linux for every architecture we run on.
pub const TICKS_PER_SEC: f64 = 100.0;

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
