//! Just enough Markdown: the fenced code blocks of a page (with their info strings) and its
//! pipe tables.

use std::path::PathBuf;

/// One page of `docs/`.
pub struct Doc {
    /// `docs/<name>`, for messages.
    pub name: String,
    /// The whole text.
    pub text: String,
    /// Its fenced code blocks, in order.
    pub blocks: Vec<Block>,
}

/// A fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The first word of the info string (`sh`, `json`, ...).
    pub lang: String,
    /// The other words of the info string (`grpcurl`, `expect=NotFound`, ...).
    pub attrs: Vec<String>,
    /// The content, without the fences, ending with a newline.
    pub code: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The closest heading above the block.
    pub heading: String,
}

impl Block {
    /// The second word of the info string, which says what the block is for.
    pub fn marker(&self) -> &str {
        self.attrs.first().map(String::as_str).unwrap_or("")
    }

    /// The value of a `key=value` word of the info string.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// `docs/x.md:12 (## Heading)`, for messages.
    pub fn at(&self, doc: &Doc) -> String {
        format!("{}:{} ({})", doc.name, self.line, self.heading)
    }
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `docs/<name>`; a missing page fails the test.
pub fn load(name: &str) -> Doc {
    let path = root().join("docs").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let blocks = parse_blocks(&text);
    Doc {
        name: format!("docs/{name}"),
        text,
        blocks,
    }
}

/// The fenced blocks of `text`. Fences are three backticks at the start of a line; an unclosed
/// block is an error.
pub fn parse_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = String::from("(top)");
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        match &mut open {
            Some(block) => {
                if line.trim_end() == "```" {
                    blocks.push(open.take().expect("open block"));
                } else {
                    block.code.push_str(line);
                    block.code.push('\n');
                }
            }
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace().map(str::to_owned);
                    open = Some(Block {
                        lang: words.next().unwrap_or_default(),
                        attrs: words.collect(),
                        code: String::new(),
                        line: index + 1,
                        heading: heading.clone(),
                    });
                } else if line.starts_with('#') {
                    heading = line.trim().to_owned();
                }
            }
        }
    }
    if let Some(block) = open {
        panic!("a code block opened at line {} is never closed", block.line);
    }
    blocks
}

/// The rows of the pipe table whose header row is exactly `header` (cells trimmed, backticks
/// kept), without the separator row. Panics when there is no such table.
pub fn table(doc: &Doc, header: &str) -> Vec<Vec<String>> {
    let mut lines = doc.text.lines().skip_while(|line| line.trim() != header);
    assert!(
        lines.next().is_some(),
        "{} has no table with the header `{header}`",
        doc.name
    );
    let separator = lines.next().unwrap_or_default();
    assert!(
        separator.trim_start().starts_with("| ---"),
        "{}: the table `{header}` has no separator row",
        doc.name
    );
    lines
        .take_while(|line| line.trim_start().starts_with('|'))
        .map(cells)
        .collect()
}

/// The cells of one table row.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split(" | ").map(|c| c.trim().to_owned()).collect()
}

/// A cell's text without surrounding backticks.
pub fn unquote(cell: &str) -> &str {
    cell.trim().trim_matches('`')
}

/// `text` with every run of white space (line breaks included) turned into one space, for
/// looking up phrases whatever the line wrapping.
pub fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The part of the page under the heading `heading` (a whole line, e.g. `## Metrics`), up to the
/// next heading of the same or a higher level.
pub fn section<'a>(doc: &'a Doc, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = doc
        .text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{} has no section `{heading}`", doc.name));
    let body = &doc.text[start + heading.len() + 2..];
    let end = body
        .match_indices("\n#")
        .find(|(i, _)| {
            let hashes = body[i + 1..].chars().take_while(|c| *c == '#').count();
            hashes <= level && body[i + 1 + hashes..].starts_with(' ')
        })
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    &body[..end]
}

#[test]
fn blocks_and_tables_parse() {
    let text = "# T\n\n```sh grpcurl expect=NotFound\ngrpcurl x\n```\n\n## S\n\n| a | b |\n| --- | --- |\n| `x` | y |\n\ntext\n";
    let blocks = parse_blocks(text);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].lang, "sh");
    assert_eq!(blocks[0].marker(), "grpcurl");
    assert_eq!(blocks[0].attr("expect"), Some("NotFound"));
    assert_eq!(blocks[0].code, "grpcurl x\n");
    assert_eq!(blocks[0].heading, "# T");
    let doc = Doc {
        name: "t".into(),
        text: text.into(),
        blocks,
    };
    assert_eq!(table(&doc, "| a | b |"), vec![vec!["`x`", "y"]]);
    assert!(section(&doc, "## S").contains("| `x` | y |"));
}
