//! Every metric the shipped dashboard and alert rules query is one chatpulse
//! exports (checked against the live registry, not a list), and the
//! dashboard is well-formed JSON with the variables operators need.

use std::collections::BTreeSet;
use std::path::Path;

use chatpulse::metrics::Metrics;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// `chatpulse_…` identifiers in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("chatpulse_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn expressions_of_dashboard() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(&read("dashboards/chatpulse.json")).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    exprs
}

fn expressions_of_rules(file: &str) -> Vec<String> {
    // `expr:` values, including folded (`>-`) multi-line ones and test series.
    let text = read(file);
    let mut exprs = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let value = trimmed.strip_prefix("expr:").or_else(|| trimmed.strip_prefix("- series:"));
        let Some(value) = value else { continue };
        let mut expr = value.trim().to_string();
        if expr == ">-" || expr == ">" || expr == "|" {
            let indent = line.len() - trimmed.len();
            expr.clear();
            while let Some(next) = lines.peek() {
                if next.trim().is_empty() || next.len() - next.trim_start().len() <= indent {
                    break;
                }
                expr.push_str(next.trim());
                expr.push(' ');
                lines.next();
            }
        }
        exprs.push(expr);
    }
    exprs
}

#[test]
fn every_metric_in_the_dashboard_and_rules_is_exported() {
    let exported = Metrics::exported_names();
    let mut queried = BTreeSet::new();
    for expr in expressions_of_dashboard().iter().chain(&expressions_of_rules("dashboards/alerts.yml")) {
        queried.extend(metric_names(expr));
    }
    assert!(queried.len() >= 12, "the dashboard and rules use most metrics: {queried:?}");
    for name in &queried {
        assert!(exported.contains(name), "{name} is queried but chatpulse does not export it (exports {exported:?})");
    }
    // The rule tests feed series under the same names.
    for expr in expressions_of_rules("dashboards/alerts.test.yml") {
        for name in metric_names(&expr) {
            assert!(exported.contains(&name), "{name} in alerts.test.yml is not exported");
        }
    }
}

#[test]
fn dashboard_has_a_datasource_and_a_vantage_variable_and_the_panels_the_operator_needs() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("dashboards/chatpulse.json")).unwrap();
    let vars: Vec<(&str, &str)> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
        .collect();
    assert!(vars.contains(&("datasource", "datasource")));
    assert!(vars.contains(&("vantage", "query")), "vantage points are named by chatpulse_build_info{{vantage}}");
    let titles: Vec<&str> =
        dashboard["panels"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    for wanted in [
        "Service status",
        "Uptime 1d / 7d / 30d",
        "Probe latency by kind",
        "Failure reasons",
        "BGP visibility per prefix",
        "BGP feed",
        "Alert outbox and delivery",
        "Consensus: vantage points seeing each service down",
        "Why: root cause per service and vantage point",
        "Since when: down and degraded periods",
        "Guards",
        "TLS certificates: days left",
        "In maintenance",
    ] {
        assert!(titles.contains(&wanted), "{wanted} missing from {titles:?}");
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} uses the datasource variable", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(
                expr.contains(r#"group_left (vantage) chatpulse_build_info{vantage=~"$vantage"}"#),
                "{} names and filters vantage points by chatpulse_build_info: {expr}",
                panel["title"]
            );
            assert!(!expr.contains("$instance"), "{} never names a vantage point by scrape address", panel["title"]);
        }
    }
}
