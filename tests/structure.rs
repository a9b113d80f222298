//! The wiring reads like the diagram in `src/lib.rs`: no two top-level
//! modules import each other, directly or through others. Read from the
//! source (the `crate::` paths outside comments and test modules), so a
//! back-edge fails here, naming the files, before it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `src/`: its path from `src/` and its text.
fn source_files() -> Vec<(std::path::PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file is readable");
                files.push((path.strip_prefix(&src).expect("under src").to_path_buf(), text));
            }
        }
    }
    files
}

/// Top-level module → the modules it names, with one place each names it.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (relative, text) in source_files() {
        let top =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
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

/// A file's module path from `src/` (`src/probe/dns/config.rs` → probe,
/// dns, config; a `mod.rs` is its folder; `lib.rs` the crate root).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "mod.rs" | "lib.rs" | "main.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The file that holds module `path`, taking the longest prefix that is one.
fn file_of(src: &Path, path: &[String]) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let dir: std::path::PathBuf = path[..n].iter().collect();
        let candidates = if n == 0 {
            vec![Path::new("lib.rs").to_path_buf()]
        } else {
            vec![dir.with_extension("rs"), dir.join("mod.rs")]
        };
        candidates.into_iter().find(|c| src.join(c).is_file()).map(|c| c.display().to_string())
    })
}

/// The paths a piece of code names after `crate::`, `super::` or `self::`,
/// braces expanded (`super::{kind::Reason, tcp}` is two paths), each as
/// module names from the crate root.
fn named_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
    /// Parses `a::b::{c, d::e}` at `s`, pushing every full path.
    fn paths(mut s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let start = s.len();
        let mut path = prefix;
        loop {
            s = s.trim_start();
            if let Some(rest) = s.strip_prefix('{') {
                let mut rest = rest;
                loop {
                    let used = paths(rest, path.clone(), out);
                    rest = rest[used..].trim_start();
                    match rest.chars().next() {
                        Some(',') => rest = &rest[1..],
                        Some('}') => return start - rest.len() + 1,
                        _ => return start - rest.len(),
                    }
                    if rest.trim_start().starts_with('}') {
                        return start - rest.trim_start().len() + 1;
                    }
                }
            }
            let (name, rest) = ident(s);
            if name.is_empty() {
                out.push(path);
                return start - s.len();
            }
            path.push(name.to_string());
            match rest.strip_prefix("::") {
                Some(after) => s = after,
                None => {
                    out.push(path);
                    return start - rest.len();
                }
            }
        }
    }
    let mut out = Vec::new();
    for (at, _) in code.match_indices("::") {
        let before = &code[..at];
        let word_start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let word = &before[word_start..];
        let base: Vec<String> = match word {
            "crate" => Vec::new(),
            "super" if before[..word_start].ends_with("::") => continue,
            "super" => {
                // The module path of a mod.rs already is its folder, so
                // `super` goes one up from it as from any other file.
                let mut up = here.to_vec();
                up.pop();
                // `super::super::x`: each further `super` goes one more up.
                let mut rest = &code[at + 2..];
                while let Some(r) = rest.strip_prefix("super::") {
                    up.pop();
                    rest = r;
                }
                paths(rest, up, &mut out);
                continue;
            }
            // `self::x` (not `super::self`): a child of this module.
            "self" if !before[..word_start].ends_with("::") => here.to_vec(),
            _ => continue,
        };
        paths(&code[at + 2..], base, &mut out);
    }
    out
}

/// File → the files it names, with one line that names each.
fn file_imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (relative, text) in source_files() {
        let name = relative.display().to_string();
        let here = module_path(&relative);
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for named in named_paths(line, &here) {
                if let Some(file) = file_of(&src, &named)
                    && file != name
                {
                    edges.entry(name.clone()).or_default().entry(file).or_insert_with(|| format!("{name}:{}", n + 1));
                }
            }
        }
    }
    edges
}

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    let edges = file_imports();
    assert!(
        edges.get("probe/tls.rs").is_some_and(|to| to.contains_key("probe/tcp.rs")),
        "the file graph was read: {edges:?}"
    );
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|file| path_back(&edges, file, file, &mut BTreeSet::new()))
        .map(|cycle| cycle.join("\n  "))
        .collect();
    assert!(cycles.is_empty(), "import cycles between files:\n  {}", cycles.join("\n\n  "));
}

#[test]
fn the_map_in_lib_rs_names_every_module_and_every_probe_kind() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let map: String = lib.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if matches!(name.as_str(), "lib" | "main") || (path.is_file() && path.extension().is_none_or(|e| e != "rs")) {
            continue;
        }
        assert!(map.contains(&format!("[`{name}`]")), "src/lib.rs's map does not name the module {name}");
    }
    for kind in chatpulse::probe::Kind::ALL {
        assert!(
            map.contains(&format!(" {kind}")) || map.contains(&format!("({kind}")),
            "src/lib.rs's map does not name the probe kind {kind}"
        );
        assert!(src.join("probe").join(format!("{kind}.rs")).is_file(), "the kind {kind} has its own file");
    }
}
