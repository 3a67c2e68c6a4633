//! A small YAML writer for the manifests: block maps and lists in the order built, strings
//! plain only where no YAML reader (1.1 or 1.2) could take them for anything else, otherwise
//! double-quoted with JSON's escapes (a subset of YAML's).

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    /// A string written double-quoted whatever it is.
    Quoted(String),
    Int(i64),
    Bool(bool),
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
}

/// A string node.
pub fn s(text: impl Into<String>) -> Node {
    Node::Str(text.into())
}

/// A map node from `(key, value)` pairs, in that order.
pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
    Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// A list of strings, each double-quoted (command lines read best that way).
pub fn quoted_list<'a>(items: impl IntoIterator<Item = &'a String>) -> Node {
    Node::List(items.into_iter().map(|i| Node::Quoted(i.clone())).collect())
}

/// One YAML document: `---`, then the node (a map) in block style.
pub fn document(node: &Node) -> String {
    let mut out = String::from("---\n");
    match node {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        Node::List(items) if !items.is_empty() => write_list(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (key, value) in entries {
        pad(out, indent);
        out.push_str(key);
        out.push(':');
        write_value(out, value, indent);
    }
}

/// What follows `key:` at `indent`: a scalar on the same line, or a block below.
fn write_value(out: &mut String, value: &Node, indent: usize) {
    match value {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            write_list(out, items, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn write_list(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                let (key, value) = &entries[0];
                out.push(' ');
                out.push_str(key);
                out.push(':');
                write_value(out, value, indent + 2);
                write_map(out, &entries[1..], indent + 2);
            }
            Node::List(inner) if !inner.is_empty() => {
                out.push('\n');
                write_list(out, inner, indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(node: &Node) -> String {
    match node {
        Node::Str(text) if plain_is_safe(text) => text.clone(),
        // JSON's string syntax is valid YAML double-quoted syntax.
        Node::Str(text) | Node::Quoted(text) => serde_json::Value::String(text.clone()).to_string(),
        Node::Int(n) => n.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Map(_) => "{}".to_string(),
        Node::List(_) => "[]".to_string(),
    }
}

/// Words that YAML 1.1 readers (Kubernetes' among them) take for booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// A name-like string (`Job`, `batch/v1`, `kubernetes.io/hostname`): a letter first, then
/// letters, digits and `._/-`, and not a word YAML reads as something else.
fn plain_is_safe(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_nest_and_scalars_are_quoted_when_needed() {
        let node = map([
            ("kind", s("Job")),
            ("count", Node::Int(3)),
            ("enabled", Node::Bool(true)),
            ("empty", Node::Map(vec![])),
            (
                "list",
                Node::List(vec![
                    s("yes"),
                    s("--out"),
                    map([("name", s("a")), ("x", map([("y", s("1"))]))]),
                ]),
            ),
        ]);
        assert_eq!(
            document(&node),
            "---\nkind: Job\ncount: 3\nenabled: true\nempty: {}\nlist:\n- \"yes\"\n- \"--out\"\n- name: a\n  x:\n    y: \"1\"\n"
        );
    }

    #[test]
    fn strings_that_need_quotes_get_them() {
        for (text, plain) in [
            ("batch/v1", true),
            ("kubernetes.io/hostname", true),
            ("No", false),
            ("null", false),
            ("1", false),
            ("500m", false),
            ("a: b", false),
            ("", false),
            ("$(X)", false),
            ("-x", false),
        ] {
            assert_eq!(plain_is_safe(text), plain, "{text}");
        }
        assert_eq!(scalar(&s("say \"hi\"\n")), r#""say \"hi\"\n""#);
    }
}
