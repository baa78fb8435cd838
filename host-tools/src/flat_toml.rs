//! The one reader of K1OS's own TOML files (`kernel/pin.toml`,
//! `packages/<name>/package.toml`): the `toml` crate parses, this module turns
//! the document into [`Table`]s of strings, booleans, lists of strings and
//! `[[name]]` tables, each entry with its line, so that a caller can check every field
//! and report every problem at once as `line N: …`.
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// A value, as far as K1OS's files use TOML.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    /// An integer, kept as written (`1794824260`, `0x10`).
    Int(String),
    /// `true` or `false`.
    Bool(bool),
    List(Vec<String>),
    /// An array of tables (`[[name]]` headers, or `[{…}, {…}]`).
    Tables(Vec<Table>),
    /// A table (`[name]` header, inline table, dotted key).
    Table(Table),
    /// Anything else (a float, a boolean, a date, a mixed array): its TOML
    /// type, for messages.
    Other(&'static str),
}

/// One `key = value` of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The line of the key (1-based).
    pub line: usize,
    /// Where the value is in the text (bytes): what a rewrite replaces.
    pub span: Range<usize>,
    pub value: Value,
}

/// A table of the document (the top level, or one `[[name]]`), with the
/// line it starts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub line: usize,
    entries: BTreeMap<String, Entry>,
}

/// Parses a whole document. A syntax error is one error naming its line:
/// `line 2: invalid basic string, expected `"``.
pub fn parse(text: &str) -> Result<Table> {
    match DeTable::parse(text) {
        Ok(doc) => Ok(table(text, 1, doc.get_ref())),
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let snippet = e
                .span()
                .map(|s| text[s].trim())
                .filter(|s| !s.is_empty() && s.len() <= 40 && !s.contains('\n'));
            match snippet {
                Some(s) => bail!("line {}: {} (`{s}`)", line_of(text, at), e.message()),
                None => bail!("line {}: {}", line_of(text, at), e.message()),
            }
        }
    }
}

/// The 1-based line of byte `at` of `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `s` as a TOML basic string, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn table(text: &str, line: usize, t: &DeTable<'_>) -> Table {
    let entries = t
        .iter()
        .map(|(key, value)| {
            let entry = Entry {
                line: line_of(text, key.span().start),
                span: value.span(),
                value: convert(text, value.get_ref(), value.span()),
            };
            (key.get_ref().to_string(), entry)
        })
        .collect();
    Table { line, entries }
}

fn convert(text: &str, value: &DeValue<'_>, span: Range<usize>) -> Value {
    match value {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => Value::Int(i.as_str().to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Table(t) => Value::Table(table(text, line_of(text, span.start), t)),
        DeValue::Array(items) => {
            if let Some(strings) = items
                .iter()
                .map(|i| i.get_ref().as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
            {
                Value::List(strings)
            } else if let Some(tables) = items
                .iter()
                .map(|i| {
                    let t = i.get_ref().as_table()?;
                    Some(table(text, line_of(text, i.span().start), t))
                })
                .collect::<Option<Vec<Table>>>()
            {
                Value::Tables(tables)
            } else {
                Value::Other("array of mixed values")
            }
        }
        other => Value::Other(other.type_str()),
    }
}

impl Table {
    /// The entry of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Takes `key` out of the table (what is left is unknown).
    pub fn take(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// Takes a string; another type is a problem (and `None`).
    pub fn take_str(&mut self, key: &str, problems: &mut Vec<String>) -> Option<String> {
        let entry = self.take(key)?;
        match entry.value {
            Value::Str(s) => Some(s),
            _ => {
                problems.push(format!("line {}: `{key}` must be a string", entry.line));
                None
            }
        }
    }

    /// Takes a string that must be there: a missing key is the problem
    /// "the key `KEY` is missing", another type as [`Table::take_str`];
    /// `""` after either, so a parser goes on and reports every problem.
    pub fn take_required_str(&mut self, key: &str, problems: &mut Vec<String>) -> String {
        if self.get(key).is_none() {
            problems.push(format!("the key `{key}` is missing"));
        }
        self.take_str(key, problems).unwrap_or_default()
    }

    /// Takes a boolean; another type is a problem (and `None`).
    pub fn take_bool(&mut self, key: &str, problems: &mut Vec<String>) -> Option<bool> {
        let entry = self.take(key)?;
        match entry.value {
            Value::Bool(b) => Some(b),
            _ => {
                problems.push(format!(
                    "line {}: `{key}` must be `true` or `false`",
                    entry.line
                ));
                None
            }
        }
    }

    /// Takes a list of strings (empty when absent); another type is a problem.
    pub fn take_list(&mut self, key: &str, problems: &mut Vec<String>) -> Vec<String> {
        match self.take(key) {
            None => Vec::new(),
            Some(Entry {
                value: Value::List(l),
                ..
            }) => l,
            Some(entry) => {
                problems.push(format!(
                    "line {}: `{key}` must be a list of strings",
                    entry.line
                ));
                Vec::new()
            }
        }
    }

    /// Takes the `[[key]]` tables (none when absent); another type is a
    /// problem.
    pub fn take_tables(&mut self, key: &str, problems: &mut Vec<String>) -> Vec<Table> {
        match self.take(key) {
            None => Vec::new(),
            Some(Entry {
                value: Value::Tables(t),
                ..
            }) => t,
            Some(entry) => {
                problems.push(format!(
                    "line {}: `{key}` must be `[[{key}]]` tables",
                    entry.line
                ));
                Vec::new()
            }
        }
    }

    /// One problem per key not taken: what the file has that nobody reads.
    pub fn unknown_keys(&self, problems: &mut Vec<String>) {
        for (key, entry) in &self.entries {
            problems.push(match entry.value {
                Value::Table(_) => format!("line {}: unknown table `[{key}]`", entry.line),
                Value::Tables(_) => format!("line {}: unknown table `[[{key}]]`", entry.line),
                _ => format!("line {}: unknown key `{key}`", entry.line),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_with_their_lines_and_spans() {
        let text = "# c\nname = \"x\" # trailing\ndepends = [\"a\",\n  \"b\"]\nn = 17\n\n\
                    [[source]]\ndeb = \"y\"\n[[source]]\nfile = \"z\"\n";
        let mut t = parse(text).unwrap();
        let name = t.get("name").unwrap();
        assert_eq!((name.line, &text[name.span.clone()]), (2, "\"x\""));
        assert_eq!(t.get("n").unwrap().value, Value::Int("17".into()));
        let mut problems = Vec::new();
        assert_eq!(t.take_list("depends", &mut problems), ["a", "b"]);
        let sources = t.take_tables("source", &mut problems);
        assert_eq!(sources.len(), 2);
        assert_eq!(
            (sources[0].line, sources[1].line),
            (7, 9),
            "a [[source]] is at its header"
        );
        assert_eq!(sources[1].get("file").unwrap().line, 10);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_problems_with_lines() {
        let text = "name = 1\ndepends = \"a\"\ncolour = \"red\"\n[package]\nx = \"y\"\n";
        let mut t = parse(text).unwrap();
        let mut problems = Vec::new();
        assert_eq!(t.take_str("name", &mut problems), None);
        assert!(t.take_list("depends", &mut problems).is_empty());
        assert!(t.take_tables("source", &mut problems).is_empty(), "absent");
        t.unknown_keys(&mut problems);
        assert_eq!(
            problems,
            [
                "line 1: `name` must be a string",
                "line 2: `depends` must be a list of strings",
                "line 3: unknown key `colour`",
                "line 4: unknown table `[package]`",
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            ("name = \"x\nversion = \"1\"\n", "line 1: "),
            ("a = \"1\"\nb = \"2\"\na = \"3\"\n", "line 3: "),
            ("a = \"1\"\n\nb = [\"x\" \"y\"]\n", "line 3: "),
            ("a = \"1\"\nb\n", "line 2: "),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(line), "{text:?}: {err}");
        }
    }

    #[test]
    fn strings_round_trip() {
        for s in [
            "",
            "plain",
            "a \"quoted\" \\ path",
            "tab\tnew\nline",
            "\u{1}",
            "é",
        ] {
            let text = format!("k = {}\n", string(s));
            let t = parse(&text).unwrap();
            assert_eq!(
                t.get("k").unwrap().value,
                Value::Str(s.to_string()),
                "{text}"
            );
        }
    }
}
