//! Route templates as the host matches them: literal segments (case-insensitive), `{param}`,
//! constraints such as `{id:int}`, optional `{id?}` / `{id:int?}` parameters at the end, and a
//! catch-all `{*rest}`.

use anyhow::bail;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param {
        name: String,
        constraint: Option<String>,
        optional: bool,
        catch_all: bool,
    },
}

/// A parsed route template.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTemplate {
    template: String,
    segments: Vec<Segment>,
}

/// The route values of a match, in template order; absent optional parameters are `None`.
pub type RouteValues = Vec<(String, Option<String>)>;

impl RouteTemplate {
    /// Parses a template such as `deployments/{id}/logs/{group}/{container}`.
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let mut segments = Vec::new();
        for part in template.trim_matches('/').split('/') {
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (inner, catch_all) = match inner.strip_prefix('*') {
                    Some(rest) => (rest, true),
                    None => (inner, false),
                };
                let (inner, optional) = match inner.strip_suffix('?') {
                    Some(rest) => (rest, true),
                    None => (inner, false),
                };
                let (name, constraint) = match inner.split_once(':') {
                    Some((n, c)) => (n, Some(c.to_ascii_lowercase())),
                    None => (inner, None),
                };
                if name.is_empty() {
                    bail!("route `{template}`: empty parameter name");
                }
                segments.push(Segment::Param {
                    name: name.to_owned(),
                    constraint,
                    optional,
                    catch_all,
                });
            } else if part.contains('{') || part.contains('}') {
                bail!("route `{template}`: mixed literal and parameter segments are not simulated");
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Self {
            template: template.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// Matches a path below the route prefix, already decoded as Kestrel decodes it (see
    /// [`kestrel_path`]): route values are its segments as they stand, e.g.
    /// `deployments/d-1/history`.
    pub fn matches(&self, path: &str) -> Option<RouteValues> {
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let mut values = Vec::new();
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    if !parts.get(i)?.eq_ignore_ascii_case(literal) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Param {
                    name,
                    constraint,
                    optional,
                    catch_all,
                } => {
                    if *catch_all {
                        let rest = parts[i.min(parts.len())..].join("/");
                        i = parts.len();
                        values.push((name.clone(), Some(rest)));
                        continue;
                    }
                    match parts.get(i) {
                        Some(part) => {
                            let value = (*part).to_owned();
                            if !satisfies(constraint.as_deref(), &value) {
                                return None;
                            }
                            values.push((name.clone(), Some(value)));
                            i += 1;
                        }
                        None if *optional => values.push((name.clone(), None)),
                        None => return None,
                    }
                }
            }
        }
        (i == parts.len()).then_some(values)
    }
}

/// `HttpRequest.Path` as Kestrel makes it from the raw request target's path: percent-escapes
/// decoded once, except `%2F`, which stays encoded so a value cannot add a segment; then `.` and
/// `..` segments removed. Routing matches this path, and the Functions host builds `Data.req.Url`
/// from it, so `/api/callbacks/%252e%252e/x` arrives as `.../callbacks/%2e%2e/x`.
pub fn kestrel_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = raw
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|&b| b != b'/');
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
        // A trailing `.` or `..` leaves the path ending in a slash.
        if n + 1 == segments.len() && matches!(*segment, "." | "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

fn satisfies(constraint: Option<&str>, value: &str) -> bool {
    match constraint {
        None => true,
        Some("int") => value.parse::<i32>().is_ok(),
        Some("long") => value.parse::<i64>().is_ok(),
        Some("bool") => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Some("alpha") => !value.is_empty() && value.chars().all(|c| c.is_ascii_alphabetic()),
        Some("guid") => uuid::Uuid::parse_str(value).is_ok(),
        Some(_) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, Option<&str>)]) -> RouteValues {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn literal_and_parameter_segments() {
        let route = RouteTemplate::parse("deployments/{id}/logs/{group}/{container}").unwrap();
        assert_eq!(
            route.matches("deployments/d-1/logs/g/c"),
            Some(values(&[
                ("id", Some("d-1")),
                ("group", Some("g")),
                ("container", Some("c"))
            ]))
        );
        assert_eq!(
            route.matches("Deployments/d 1/logs/g/c").unwrap()[0]
                .1
                .as_deref(),
            Some("d 1")
        );
        assert_eq!(route.matches("deployments/d-1/logs/g"), None);
        assert_eq!(route.matches("deployments/d-1/logs/g/c/x"), None);
        assert_eq!(route.matches("deployments/d-1/log/g/c"), None);
    }

    #[test]
    fn optional_and_constrained_parameters() {
        let route = RouteTemplate::parse("products/{category}/{id:int?}").unwrap();
        assert_eq!(
            route.matches("products/electronics/42"),
            Some(values(&[
                ("category", Some("electronics")),
                ("id", Some("42"))
            ]))
        );
        assert_eq!(
            route.matches("products/electronics"),
            Some(values(&[("category", Some("electronics")), ("id", None)]))
        );
        assert_eq!(route.matches("products/electronics/forty-two"), None);
        let plain = RouteTemplate::parse("deployments").unwrap();
        assert_eq!(plain.matches("Deployments"), Some(vec![]));
        assert_eq!(plain.matches("deployments"), Some(vec![]));
        assert_eq!(plain.matches("deployments/x"), None);
    }

    #[test]
    fn kestrel_decodes_once_keeps_encoded_slashes_and_removes_dot_segments() {
        assert_eq!(
            kestrel_path("/api/deployments/d%201"),
            "/api/deployments/d 1"
        );
        assert_eq!(
            kestrel_path("/api/callbacks/%252e%252e/deployments"),
            "/api/callbacks/%2e%2e/deployments"
        );
        assert_eq!(
            kestrel_path("/api/callbacks/%2e%2e/deployments"),
            "/api/deployments"
        );
        assert_eq!(
            kestrel_path("/api/callbacks/a%2Fb/c"),
            "/api/callbacks/a%2Fb/c"
        );
        assert_eq!(kestrel_path("/api/a/./b/.."), "/api/a/");
        assert_eq!(kestrel_path("/api/x%zz"), "/api/x%zz");
    }
}
