//! Counting the kernel's lines of code (the `kernel_loc` benchmark key).
//!
//! The rule, also written in `docs/testing.md` and the bench report:
//! - Rust files (`*.rs`) under `kernel/src`, `kcore/src` and `abi/src`;
//! - not test code: files named `tests.rs`, files under a `tests/` folder, and any item
//!   marked `#[cfg(test)]` (a `mod tests { ... }` block is skipped by counting braces, a
//!   `mod tests;` line is skipped);
//! - not host-only code: items marked [`HOST_ONLY`] (compiled for tests and the host tools'
//!   `host` feature of the abi crate, never into the kernel), and files whose first line
//!   is that attribute as an inner one (`#![...]`);
//! - a line counts if it is not blank and not only a comment (`//`, `///`, `//!`, or inside
//!   a `/* ... */` block that starts a line).
//!
//! Braces inside string and character literals and after `//` are ignored; a string literal
//! spanning lines could confuse the brace count (the kernel has none).

use std::path::{Path, PathBuf};

use crate::workspace::{io_error, Result};

/// The attribute of code only the host tools and tests compile (the abi crate's `host`
/// feature: the plan encoder, the Image header reader).
pub const HOST_ONLY: &str = "#[cfg(any(test, feature = \"host\"))]";

/// Folders whose Rust code is the kernel's trusted computing base.
pub const KERNEL_SOURCES: &[&str] = &["kernel/src", "kcore/src", "abi/src"];

/// Counted lines of all non-test Rust files under `roots`.
pub fn count_tree(roots: &[PathBuf]) -> Result<usize> {
    let mut files = Vec::new();
    for root in roots {
        collect_rust_files(root, &mut files)?;
    }
    let mut total = 0;
    for file in files {
        let source = std::fs::read_to_string(&file).map_err(io_error(&file))?;
        total += count_source(&source);
    }
    Ok(total)
}

fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    for entry in entries {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "tests" {
                collect_rust_files(&path, files)?;
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            files.push(path);
        }
    }
    Ok(())
}

/// Counted lines of one Rust source file.
pub fn count_source(source: &str) -> usize {
    let first = source.lines().map(str::trim).find(|line| !line.is_empty());
    let outer = first.map(|line| line.replacen("#!", "#", 1));
    if outer.is_some_and(|line| after_attribute(&line, HOST_ONLY) == Some("")) {
        return 0;
    }
    let mut count = 0;
    let mut in_block_comment = false;
    let mut skip: Option<Skip> = None;
    for line in source.lines() {
        let code = line.trim();
        if in_block_comment {
            in_block_comment = !code.contains("*/");
            continue;
        }
        if code.starts_with("/*") {
            in_block_comment = !code.contains("*/");
            continue;
        }
        if code.is_empty() || code.starts_with("//") {
            continue;
        }
        if let Some(state) = &mut skip {
            if state.ends_with(code) {
                skip = None;
            }
            continue;
        }
        if let Some(rest) = after_cfg_test(code) {
            let mut state = Skip::default();
            if rest.is_empty() || !state.ends_with(rest) {
                skip = Some(state);
            }
            continue;
        }
        count += 1;
    }
    count
}

/// Skipping the item after `#[cfg(test)]`: until its braces balance, or until a `;` ends
/// an item without braces (such as `mod tests;`).
#[derive(Default)]
struct Skip {
    depth: i64,
    opened: bool,
}

impl Skip {
    /// Takes one more line of the item; true if the item ends on it.
    fn ends_with(&mut self, code: &str) -> bool {
        let (opens, closes) = braces(code);
        self.depth += opens - closes;
        self.opened |= opens > 0;
        let attribute = code.starts_with("#[") && !self.opened;
        (self.opened && self.depth <= 0) || (!self.opened && !attribute && code.ends_with(';'))
    }
}

/// If `code` starts with `#[cfg(test)]` or [`HOST_ONLY`] (spaces allowed), what follows it
/// on the line.
fn after_cfg_test(code: &str) -> Option<&str> {
    after_attribute(code, "#[cfg(test)]").or_else(|| after_attribute(code, HOST_ONLY))
}

fn after_attribute<'a>(code: &'a str, attribute: &str) -> Option<&'a str> {
    let mut wanted = attribute.chars().filter(|c| !c.is_whitespace()).peekable();
    for (at, c) in code.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        if wanted.next() != Some(c) {
            return None;
        }
        if wanted.peek().is_none() {
            return Some(code[at + 1..].trim());
        }
    }
    None
}

/// Opening and closing braces on a line, outside literals and comments.
fn braces(code: &str) -> (i64, i64) {
    let chars: Vec<char> = code.chars().collect();
    let (mut opens, mut closes) = (0, 0);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => break,
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            '\'' => {
                if chars.get(i + 1) == Some(&'\\') {
                    // An escaped character literal: skip to its closing quote.
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
                // Otherwise a lifetime: nothing to skip.
            }
            '{' => opens += 1,
            '}' => closes += 1,
            _ => {}
        }
        i += 1;
    }
    (opens, closes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_comments_do_not_count() {
        let source = "//! Crate docs.\n\n/// A function.\nfn f() {\n    // note\n    let x = 1; // trailing\n}\n/* block\n still block\n*/\nconst A: u8 = 0;\n";
        assert_eq!(count_source(source), 4);
    }

    #[test]
    fn cfg_test_modules_are_skipped_by_braces() {
        let source = r#"fn real() {}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn t() {
        let s = "}";
        let c = '}';
        if true { assert!(true); }
    }
}
fn after<'a>(x: &'a u8) -> &'a u8 {
    x
}
"#;
        assert_eq!(count_source(source), 4);
    }

    #[test]
    fn cfg_test_declarations_and_attributed_items_are_skipped() {
        let source = "#[cfg(test)]\nmod tests;\n#[cfg(test)]\n#[allow(dead_code)]\nfn helper()\n{\n}\n#[cfg( test )]\nuse std::vec;\nfn kept() {}\n#[cfg(test)] fn inline() {}\nfn also_kept() {}\n";
        assert_eq!(count_source(source), 2);
    }

    #[test]
    fn host_only_items_and_files_are_skipped() {
        let source = "fn kept() {}\n#[cfg(any(test, feature = \"host\"))]\npub use encode::encode;\n#[cfg(any(test, feature = \"host\"))]\nfn host() {\n}\n";
        assert_eq!(count_source(source), 1);
        let file = "\n#![cfg(any(test, feature = \"host\"))]\nuse super::*;\nfn f() {}\n";
        assert_eq!(count_source(file), 0);
        assert_eq!(count_source("#![cfg(feature = \"other\")]\nfn f() {}\n"), 2);
    }

    #[test]
    fn escaped_characters_do_not_confuse_braces() {
        assert_eq!(braces(r#"let s = "\"{"; let c = '\''; {"#), (1, 0));
        assert_eq!(braces("match x { '{' => {}, _ => {} } // }"), (3, 3));
    }

    #[test]
    fn test_files_and_folders_are_excluded() {
        let root = std::env::temp_dir().join(format!("xtask-loc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("src/tests")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "fn a() {}\nfn b() {}\n").unwrap();
        std::fs::write(root.join("src/tests.rs"), "fn t() {}\n").unwrap();
        std::fs::write(root.join("src/tests/more.rs"), "fn t() {}\n").unwrap();
        std::fs::write(root.join("src/notes.txt"), "fn t() {}\n").unwrap();
        let count = count_tree(&[root.join("src")]).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(count, 2);
    }
}
