//! The outputs: a plain table on stdout and `results.json`, plus the machine they ran on.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The machine and its load, written beside the numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gb: f64,
    pub kernel: String,
    pub load_at_start: String,
    pub load_at_end: String,
}

fn first_line_with(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(prefix)).map(|l| {
        l.split_once(':')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    })
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    /// Reads the machine from `/proc`.
    pub fn read() -> Machine {
        let memory_kb: f64 = first_line_with("/proc/meminfo", "MemTotal")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0.0);
        Machine {
            cpu: first_line_with("/proc/cpuinfo", "model name").unwrap_or_default(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_gb: memory_kb / 1_048_576.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            load_at_start: load_average(),
            load_at_end: String::new(),
        }
    }
}

/// A table: a title, column names, rows of cells.
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, columns: &[&str]) -> Table {
        Table {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as aligned text.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.len());
                }
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = String::new();
        let _ = writeln!(out, "\n## {}", self.title);
        let _ = writeln!(out, "{}", line(&self.columns));
        let _ = writeln!(
            out,
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        );
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }
}

/// A number with `digits` decimals, or `-` when it is not a number.
pub fn num(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{value:.digits$}")
    } else {
        "-".into()
    }
}

/// A JSON number, or `null` when it is not finite.
pub fn json_num(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new("t", &["a", "long name"]);
        t.row(vec!["12345".into(), "x".into()]);
        let text = t.render();
        assert!(text.contains("a      long name"), "{text}");
        assert!(text.contains("12345  x"), "{text}");
    }

    #[test]
    fn numbers_that_are_not_print_as_dashes() {
        assert_eq!(num(f64::NAN, 1), "-");
        assert_eq!(num(2.345, 1), "2.3");
        assert_eq!(json_num(f64::INFINITY), Value::Null);
    }
}
