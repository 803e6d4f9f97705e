//! The HTML page: one self-contained file (inline SVG and CSS, no script, nothing loaded from
//! anywhere), readable offline and printable, with the untrained-weights banner on top when
//! any run used seeded weights.

pub mod html;
pub mod tables;

use std::fmt::Write as _;

use html::{escape, inline_svg, text};

use crate::figures::Figure;
use crate::report::{Options, RunSection, Slot};
use crate::run::RunData;

/// The page's CSS, inlined.
const CSS: &str = include_str!("style.css");

/// Numbers figures in page order.
struct Counter(usize);

impl Counter {
    fn figure(&mut self, out: &mut String, f: &Figure, anchor: &str) {
        self.0 += 1;
        let _ = writeln!(
            out,
            "<figure id=\"{}\">\n{}\n<figcaption><b>Figure {}. {}.</b> {}</figcaption>\n</figure>",
            escape(anchor),
            inline_svg(&f.svg, &f.title),
            self.0,
            text(&f.title),
            text(&f.caption)
        );
    }

    fn slot(&mut self, out: &mut String, s: &Slot, prefix: &str) {
        match s {
            Slot::Drawn(f) => self.figure(out, f, &format!("{prefix}-{}", f.id)),
            Slot::Skipped(title, why) => {
                let _ = writeln!(
                    out,
                    "<p class=\"skipped\"><b>{} (not drawn).</b> {}</p>",
                    text(title),
                    text(why)
                );
            }
        }
    }
}

fn banner(runs: &[&RunData]) -> Option<String> {
    let untrained: Vec<&str> = runs
        .iter()
        .filter(|r| r.untrained())
        .map(|r| r.label.as_str())
        .collect();
    if untrained.is_empty() {
        return None;
    }
    let which = if untrained.len() == runs.len() {
        if runs.len() == 1 {
            "This run".to_string()
        } else {
            "Every run here".to_string()
        }
    } else {
        format!("Runs {}", untrained.join(", "))
    };
    Some(format!(
        "<div class=\"banner\" role=\"alert\">UNTRAINED WEIGHTS: the accuracy figures are meaningless.<p>{} used seeded random weights, not a trained AstroMAE checkpoint. Their predictions, and every accuracy figure and metric drawn from them, show that the pipeline works, not how well the model predicts redshifts. Timing, throughput, memory and cost are real.</p></div>",
        escape(&which)
    ))
}

/// Renders the page.
pub fn render(sections: &[RunSection<'_>], comparison: &[Figure], opts: &Options) -> String {
    let runs: Vec<&RunData> = sections.iter().map(|s| s.run).collect();
    let mut out = String::with_capacity(1 << 20);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"cai {}\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n<p class=\"meta\">{} run{} · made {} by cai {}</p>\n</header>",
        escape(&opts.version),
        escape(&opts.title),
        escape(&opts.title),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        escape(&opts.generated),
        escape(&opts.version)
    );
    if let Some(b) = banner(&runs) {
        out.push_str(&b);
        out.push('\n');
    }
    let mut count = Counter(0);
    if runs.len() > 1 {
        out.push_str("<nav><ol>\n<li><a href=\"#compare\">Runs compared</a></li>\n");
        for (i, r) in runs.iter().enumerate() {
            let _ = writeln!(
                out,
                "<li><a href=\"#run-{}\">{}</a></li>",
                i + 1,
                escape(&r.label)
            );
        }
        out.push_str("</ol></nav>\n<section id=\"compare\">\n<h2>Runs compared</h2>\n");
        out.push_str("<div class=\"wide\">\n");
        out.push_str(&tables::comparison(&runs));
        out.push_str("</div>\n");
        for f in comparison {
            count.figure(&mut out, f, &format!("compare-{}", f.id));
        }
        let seed: Vec<(&str, &cai_workflow::cost::PerformanceRow)> = runs
            .iter()
            .filter_map(|r| Some((r.label.as_str(), r.performance()?)))
            .collect();
        if !seed.is_empty() {
            out.push_str("<h3>The seed report's table</h3>\n");
            out.push_str(&tables::seed(&seed, true));
        }
        out.push_str("</section>\n");
    }
    for (i, s) in sections.iter().enumerate() {
        let prefix = format!("run-{}", i + 1);
        let _ = writeln!(
            out,
            "<section class=\"run\" id=\"{prefix}\">\n<h2>{}{}</h2>",
            if runs.len() > 1 {
                format!("Run {}: ", i + 1)
            } else {
                String::new()
            },
            escape(&s.run.label)
        );
        out.push_str(&tables::facts(s.run, s.metrics.as_ref()));
        out.push_str("<h3>Accuracy</h3>\n");
        for slot in &s.accuracy {
            count.slot(&mut out, slot, &prefix);
        }
        out.push_str("<h3>Execution</h3>\n");
        for slot in &s.execution {
            count.slot(&mut out, slot, &prefix);
        }
        out.push_str("<h3>Cost</h3>\n<div class=\"cost\">\n");
        count.slot(&mut out, &s.cost, &prefix);
        if let Some(p) = s.run.performance() {
            out.push_str("<div class=\"seed\"><p>The seed report's table:</p>\n");
            out.push_str(&tables::seed(&[(s.run.label.as_str(), p)], false));
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");
        if let Some(t) = tables::failed(s.run) {
            out.push_str("<h3>Failed ranks</h3>\n");
            out.push_str(&t);
        }
        if !s.run.notes.is_empty() {
            out.push_str("<h3>Notes</h3>\n<ul class=\"notes\">\n");
            for n in &s.run.notes {
                let _ = writeln!(out, "<li>{}</li>", text(n));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str(
        "<footer>Made by <code>cai report</code> from the runs' result folders (summary.json, plan.json, combined_data.json, per-rank results and Parquet predictions). Figures are SVG drawn with plotters; this page loads nothing from the network.</footer>\n</body>\n</html>\n",
    );
    out
}
