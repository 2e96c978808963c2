//! Tables: a polars DataFrame with a caption, rendered as HTML (inline in evcxr) or as
//! GitHub Markdown (exported to `assets/tables/<name>.md` and included in the journal).

use super::{check_name, evcxr_emit, write_asset, Assets};
use crate::error::Result;
use polars::prelude::{AnyValue, DataFrame};
use std::path::PathBuf;

/// A DataFrame prepared for display.
#[derive(Debug, Clone)]
pub struct Table {
    pub df: DataFrame,
    pub caption: Option<String>,
}

impl Table {
    /// Wraps a DataFrame.
    pub fn new(df: DataFrame) -> Table {
        Table { df, caption: None }
    }

    /// A table of text columns named `names`, with `caption`.
    pub fn from_strings(names: &[&str], cols: Vec<Vec<String>>, caption: &str) -> Result<Table> {
        let df = DataFrame::new_infer_height(
            names
                .iter()
                .zip(cols)
                .map(|(n, c)| polars::prelude::Column::new((*n).into(), c))
                .collect(),
        )
        .map_err(|e| crate::error::Error::failed("building a table", e))?;
        Ok(Table::new(df).caption(caption))
    }

    /// Adds a caption (shown above the HTML table, below the Markdown one).
    pub fn caption(mut self, text: impl Into<String>) -> Table {
        self.caption = Some(text.into());
        self
    }

    fn header(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Which columns hold numbers (right-aligned in both renderings).
    fn numeric_columns(&self) -> Vec<bool> {
        self.df
            .columns()
            .iter()
            .map(|c| c.dtype().is_primitive_numeric())
            .collect()
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let cols = self.df.columns();
        (0..self.df.height())
            .map(|r| {
                cols.iter()
                    .map(|c| c.get(r).map(|v| cell(&v)).unwrap_or_default())
                    .collect()
            })
            .collect()
    }

    /// GitHub-flavoured Markdown; numbers right-aligned.
    pub fn to_markdown(&self) -> String {
        let header = self.header();
        let numeric = self.numeric_columns();
        let mut o = format!(
            "| {} |\n|",
            header
                .iter()
                .map(|h| md_escape(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        for n in &numeric {
            o.push_str(if *n { "---:|" } else { "---|" });
        }
        o.push('\n');
        for row in self.rows() {
            o.push_str(&format!(
                "| {} |\n",
                row.iter()
                    .map(|c| md_escape(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        if let Some(c) = &self.caption {
            o.push_str(&format!("\n*{}*\n", md_escape(c)));
        }
        o
    }

    /// An HTML table (with caption) for notebooks.
    pub fn to_html(&self) -> String {
        let numeric = self.numeric_columns();
        let mut o = String::from("<table>\n");
        if let Some(c) = &self.caption {
            o.push_str(&format!("<caption>{}</caption>\n", html_escape(c)));
        }
        o.push_str("<thead><tr>");
        for h in self.header() {
            o.push_str(&format!("<th>{}</th>", html_escape(&h)));
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for row in self.rows() {
            o.push_str("<tr>");
            for (c, n) in row.iter().zip(&numeric) {
                let align = if *n {
                    " style=\"text-align:right\""
                } else {
                    ""
                };
                o.push_str(&format!("<td{align}>{}</td>", html_escape(c)));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody>\n</table>");
        o
    }

    /// Writes the Markdown rendering to `assets/tables/<name>.md`.
    pub fn export(&self, assets: &Assets, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        let path = assets.table_path(name);
        write_asset(&path, self.to_markdown().as_bytes())?;
        Ok(path)
    }

    /// Exports a training-derived table: the Markdown as [`export`](Table::export), plus
    /// `tables/<name>.numbers.json` with every cell at full precision and the tolerance
    /// `across` the notebook states for other CPUs (see [`super::derived`]).
    pub fn export_derived(
        &self,
        assets: &Assets,
        name: &str,
        across: &super::derived::AcrossCpus,
    ) -> Result<PathBuf> {
        for c in across
            .varies
            .iter()
            .chain(across.keys.keys())
            .chain(&across.rows_by)
        {
            if !self.header().contains(c) {
                return Err(crate::error::Error::Usage(format!(
                    "table {name}: the tolerance names column `{c}`, which the table does not have"
                )));
            }
        }
        let path = self.export(assets, name)?;
        super::derived::write_numbers(
            assets,
            &path,
            across,
            self.numbers(across.rows_by.as_deref()),
        )?;
        Ok(path)
    }

    /// Every column's cells as JSON: numbers unrounded, text as text (numbers written
    /// into text split out, see [`super::derived::text_value`]), empty as null.
    fn numbers(&self, rows_by: Option<&str>) -> super::derived::Values {
        use super::derived::{num, text_value};
        let mut order: Vec<usize> = (0..self.df.height()).collect();
        if let Some(col) = rows_by.and_then(|n| self.df.column(n).ok()) {
            let key = |i: usize| cell(&col.get(i).unwrap_or(AnyValue::Null));
            order.sort_by_key(|&i| key(i));
        }
        self.df
            .columns()
            .iter()
            .map(|c| {
                let values = order
                    .iter()
                    .map(|&i| match c.get(i).unwrap_or(AnyValue::Null) {
                        AnyValue::Null => serde_json::Value::Null,
                        AnyValue::String(s) => text_value(s),
                        AnyValue::StringOwned(s) => text_value(&s),
                        AnyValue::Boolean(b) => b.into(),
                        v => match v.extract::<f64>() {
                            Some(x) => num(x),
                            None => v.to_string().into(),
                        },
                    })
                    .collect();
                (c.name().to_string(), values)
            })
            .collect()
    }

    /// evcxr calls this to show the value of a cell: an HTML table.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.to_html());
    }
}

/// One cell as text: strings bare, floats to 4 significant digits, nulls empty.
fn cell(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float32(f) => fmt_float(*f as f64),
        AnyValue::Float64(f) => fmt_float(*f),
        other => other.to_string(),
    }
}

/// Floats with 4 significant digits, without exponent for everyday magnitudes.
pub fn fmt_float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f == 0.0 {
        return "0".into();
    }
    let mag = f.abs().log10().floor() as i32;
    if !(-4..=9).contains(&mag) {
        return format!("{f:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{f:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn sample() -> Table {
        let df = df!(
            "split" => ["train", "valid"],
            "tiles" => [2400i64, 512],
            "ratio" => [0.123456f64, 1.0]
        )
        .unwrap();
        Table::new(df).caption("SYNTHETIC a<b | c")
    }

    #[test]
    fn markdown_is_a_github_table_with_escaped_caption() {
        let md = sample().to_markdown();
        assert_eq!(
            md,
            "| split | tiles | ratio |\n|---|---:|---:|\n| train | 2400 | 0.1235 |\n| valid | 512 | 1 |\n\n*SYNTHETIC a<b \\| c*\n"
        );
    }

    #[test]
    fn html_escapes_and_aligns_numbers() {
        let h = sample().to_html();
        assert!(h.contains("<caption>SYNTHETIC a&lt;b | c</caption>"), "{h}");
        assert!(
            h.contains("<td style=\"text-align:right\">2400</td>"),
            "{h}"
        );
        assert!(h.contains("<td>train</td>"));
    }

    #[test]
    fn floats_keep_four_significant_digits() {
        assert_eq!(fmt_float(265.4321), "265.4");
        assert_eq!(fmt_float(0.000123456), "0.0001235");
        assert_eq!(fmt_float(4.0), "4");
        assert_eq!(fmt_float(1.5e12), "1.500e12");
    }

    #[test]
    fn export_writes_markdown_under_tables() {
        let d = tempfile::tempdir().unwrap();
        let a = Assets::at(d.path());
        let p = sample().export(&a, "t1").unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), sample().to_markdown());
        assert!(sample().export(&a, "Bad Name").is_err());
    }
}
