//! The wiring reads like the diagram in `src/lib.rs`: no two top-level
//! modules import each other, directly or through others. Read from the
//! source (the `crate::` paths outside comments and test modules), so a
//! back-edge fails here, naming the files, before it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the modules it names, with one place each names it.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
            let top =
                relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (at, _) in line.match_indices("crate::") {
                    let name: String =
                        line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != top {
                        edges
                            .entry(top.clone())
                            .or_default()
                            .entry(name)
                            .or_insert_with(|| format!("{}:{}", relative.display(), n + 1));
                    }
                }
            }
        }
    }
    edges
}

/// A path of imports from `from` back to `target`, if there is one.
fn path_back(
    edges: &BTreeMap<String, BTreeMap<String, String>>,
    from: &str,
    target: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for (next, place) in edges.get(from).into_iter().flatten() {
        let step = format!("{from} -> {next} ({place})");
        if next == target {
            return Some(vec![step]);
        }
        if seen.insert(next.clone())
            && let Some(mut rest) = path_back(edges, next, target, seen)
        {
            rest.insert(0, step);
            return Some(rest);
        }
    }
    None
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let edges = imports();
    assert!(edges.contains_key("cmd") && edges.contains_key("metrics"), "the source tree was read: {edges:?}");
    for module in edges.keys() {
        if let Some(cycle) = path_back(&edges, module, module, &mut BTreeSet::new()) {
            panic!("import cycle:\n  {}", cycle.join("\n  "));
        }
    }
}
