//! HTML out of strings: escaping, and the page frame every dashboard page shares.
//!
//! Every value that comes from a deployment (its id, tags, group and container names, log lines,
//! event payloads, errors) is hostile input: it goes into a page only through [`esc`] (text and
//! attribute values alike, as every attribute is double-quoted) and into a URL only through
//! [`seg`] or [`query`].

use std::fmt::Write as _;

/// `text` escaped for HTML text and for a double- or single-quoted attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline have no business in a page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one percent-encoded URL path segment (`/`, `?`, `#`, `.` and `%` included).
pub fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'~' {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A query string (without `?`) of `pairs`, each name and value form-encoded; empty values left out.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            serializer.append_pair(name, value);
        }
    }
    serializer.finish()
}

/// A whole page: the frame (title, navigation, the stylesheet and the script) around `main`.
/// `home`, `schedules`, `templates`, `css` and `js` are hrefs as the pages make them (with
/// `?code=` in Functions mode).
pub struct Frame<'a> {
    pub title: &'a str,
    pub home: &'a str,
    pub schedules: &'a str,
    pub templates: &'a str,
    pub css: &'a str,
    pub js: &'a str,
}

impl Frame<'_> {
    /// The page with `main` (already HTML) as its content.
    pub fn page(&self, main: &str) -> String {
        format!(
            concat!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
                "<meta name=\"referrer\" content=\"same-origin\">",
                "<title>{title} · Berth</title>",
                "<link rel=\"stylesheet\" href=\"{css}\">",
                "<script src=\"{js}\" defer></script></head>\n<body>",
                "<a class=\"skip\" href=\"#main\">Skip to content</a>",
                "<header><nav aria-label=\"Berth\"><a href=\"{home}\" class=\"brand\">Berth</a> ",
                "<a href=\"{home}\">Deployments</a> <a href=\"{schedules}\">Schedules</a> ",
                "<a href=\"{templates}\">Templates</a></nav></header>\n",
                "<main id=\"main\" tabindex=\"-1\">{main}</main></body></html>\n"
            ),
            title = esc(self.title),
            css = esc(self.css),
            js = esc(self.js),
            home = esc(self.home),
            schedules = esc(self.schedules),
            templates = esc(self.templates),
            main = main,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped_everywhere() {
        let hostile = r#"<script>alert("x")</script>' onmouseover='y' &amp;"#;
        let escaped = esc(hostile);
        for forbidden in ["<", ">", "\"", "'"] {
            assert!(!escaped.contains(forbidden), "{escaped}");
        }
        assert_eq!(esc("a&b"), "a&amp;b");
        assert_eq!(esc("bell\u{7}"), "bell\u{fffd}");
        assert_eq!(esc("two\nlines\t"), "two\nlines\t");
    }

    #[test]
    fn a_segment_cannot_leave_its_place_in_a_url() {
        assert_eq!(seg("../x?y#z"), "%2E%2E%2Fx%3Fy%23z");
        assert_eq!(seg("job-1_a"), "job-1_a");
        assert_eq!(
            query([("a", "1 2"), ("b", ""), ("c", "&=")]),
            "a=1+2&c=%26%3D"
        );
    }
}
