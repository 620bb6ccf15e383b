//! Validation of a Meta-format components array: which components and fields
//! are allowed, Meta's lengths and button limits, positional placeholders
//! numbered without gaps, and an example for each placeholder.

use serde_json::Value;

use super::*;

const URL_MAX: usize = 2000;
const PHONE_MAX: usize = 20;
const EXAMPLE_MAX: usize = 1024;

/// Collects errors with JSON pointers under `/components`.
struct Check {
    errors: Vec<ComponentError>,
}

impl Check {
    fn fail(&mut self, pointer: String, message: impl Into<String>) {
        // A bounded list: a huge bad array must not produce a huge answer.
        if self.errors.len() < 20 {
            self.errors.push(ComponentError {
                pointer,
                message: message.into(),
            });
        }
    }

    fn only_fields(&mut self, v: &Value, at: &str, allowed: &[&str]) {
        if let Some(obj) = v.as_object() {
            for key in obj.keys() {
                if !allowed.contains(&key.as_str()) {
                    self.fail(
                        format!("{at}/{}", escape(key)),
                        format!("is not supported (allowed: {})", allowed.join(", ")),
                    );
                }
            }
        }
    }

    /// Checks positional placeholders in `text`; returns how many there are.
    fn placeholders(&mut self, text: &str, at: &str, allow_at_edges: bool) -> usize {
        let found = placeholders(text);
        let mut numbers = Vec::new();
        for p in &found {
            match p.number {
                Some(n) => numbers.push(n),
                None => {
                    self.fail(
                        at.to_owned(),
                        format!(
                            "`{}` is not a positional placeholder; use `{{{{1}}}}`, `{{{{2}}}}`, …",
                            truncate(&text[p.start..p.end], 20)
                        ),
                    );
                    return 0;
                }
            }
        }
        numbers.sort_unstable();
        numbers.dedup();
        if let Some(gap) = (1..=numbers.len()).find(|n| numbers[n - 1] != *n) {
            self.fail(
                at.to_owned(),
                format!("placeholders must be numbered from {{{{1}}}} without gaps; {{{{{gap}}}}} is missing"),
            );
            return 0;
        }
        for pair in found.windows(2) {
            if pair[0].end == pair[1].start {
                self.fail(at.to_owned(), "placeholders must not be next to each other");
                break;
            }
        }
        if !allow_at_edges
            && let (Some(first), Some(last)) = (found.first(), found.last())
            && (text[..first.start].trim().is_empty() || text[last.end..].trim().is_empty())
        {
            self.fail(at.to_owned(), "must not start or end with a placeholder");
        }
        numbers.len()
    }

    fn text(&mut self, c: &Value, at: &str, max: usize) -> Option<String> {
        match c.get("text") {
            Some(Value::String(t)) if !t.trim().is_empty() => {
                let len = t.chars().count();
                if len > max {
                    self.fail(
                        format!("{at}/text"),
                        format!("is {len} characters; at most {max}"),
                    );
                }
                Some(t.clone())
            }
            _ => {
                self.fail(format!("{at}/text"), "is required (non-empty text)");
                None
            }
        }
    }

    /// `example.<key>` as a list of `count` non-empty strings.
    fn examples(&mut self, list: Option<&Value>, at: &str, count: usize) {
        let Some(items) = list.and_then(Value::as_array) else {
            self.fail(
                at.to_owned(),
                format!("needs {count} example value(s), one per placeholder"),
            );
            return;
        };
        if items.len() != count {
            self.fail(
                at.to_owned(),
                format!(
                    "has {} example value(s); the text has {count} placeholder(s)",
                    items.len()
                ),
            );
        }
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) if !s.trim().is_empty() && s.chars().count() <= EXAMPLE_MAX => {}
                _ => self.fail(format!("{at}/{i}"), "must be a non-empty string"),
            }
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Validates a components array against Meta's rules; returns the counts a
/// send must supply, or every problem found (bounded).
pub fn validate_components(components: &Value) -> Result<ParameterCounts, Vec<ComponentError>> {
    let mut check = Check { errors: Vec::new() };
    let Some(list) = components.as_array() else {
        check.fail("/components".into(), "must be an array of components");
        return Err(check.errors);
    };
    let mut seen: Vec<String> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let at = format!("/components/{i}");
        if !c.is_object() {
            check.fail(at, "must be an object");
            continue;
        }
        let kind = c["type"].as_str().unwrap_or("").to_ascii_uppercase();
        if seen.contains(&kind) {
            check.fail(
                format!("{at}/type"),
                format!("`{kind}` appears more than once"),
            );
            continue;
        }
        match kind.as_str() {
            "HEADER" => header(&mut check, c, &at),
            "BODY" => body(&mut check, c, &at),
            "FOOTER" => {
                check.only_fields(c, &at, &["type", "text"]);
                if let Some(t) = check.text(c, &at, FOOTER_MAX)
                    && !placeholders(&t).is_empty()
                {
                    check.fail(format!("{at}/text"), "a footer takes no placeholders");
                }
            }
            "BUTTONS" => buttons(&mut check, c, &at),
            _ => {
                check.fail(
                    format!("{at}/type"),
                    "must be HEADER, BODY, FOOTER or BUTTONS",
                );
                continue;
            }
        }
        seen.push(kind);
    }
    if !seen.iter().any(|k| k == "BODY") && check.errors.is_empty() {
        check.fail("/components".into(), "needs a BODY component");
    }
    let order = ["HEADER", "BODY", "FOOTER", "BUTTONS"];
    let ranks: Vec<usize> = seen
        .iter()
        .filter_map(|k| order.iter().position(|o| o == k))
        .collect();
    if ranks.windows(2).any(|w| w[0] > w[1]) {
        check.fail(
            "/components".into(),
            "components must be in the order HEADER, BODY, FOOTER, BUTTONS",
        );
    }
    if check.errors.is_empty() {
        Ok(parameter_counts(components))
    } else {
        Err(check.errors)
    }
}

fn header(check: &mut Check, c: &Value, at: &str) {
    check.only_fields(c, at, &["type", "format", "text", "example"]);
    let format = c["format"].as_str().unwrap_or("").to_ascii_uppercase();
    match format.as_str() {
        "TEXT" => {
            let Some(text) = check.text(c, at, HEADER_TEXT_MAX) else {
                return;
            };
            let n = check.placeholders(&text, &format!("{at}/text"), true);
            if n > 1 {
                check.fail(
                    format!("{at}/text"),
                    "a header takes at most one placeholder",
                );
            }
            check.only_fields(&c["example"], &format!("{at}/example"), &["header_text"]);
            if n > 0 {
                check.examples(
                    c["example"].get("header_text"),
                    &format!("{at}/example/header_text"),
                    n,
                );
            }
        }
        "IMAGE" | "VIDEO" | "DOCUMENT" => {
            if c.get("text").is_some() {
                check.fail(format!("{at}/text"), "only a TEXT header has text");
            }
            check.only_fields(&c["example"], &format!("{at}/example"), &["header_handle"]);
            let handles = c["example"].get("header_handle").and_then(Value::as_array);
            if handles.is_none_or(|h| h.len() != 1 || !h[0].is_string()) {
                check.fail(
                    format!("{at}/example/header_handle"),
                    "a media header needs one example upload handle",
                );
            }
        }
        "LOCATION" => check.only_fields(c, at, &["type", "format"]),
        _ => check.fail(
            format!("{at}/format"),
            "must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION",
        ),
    }
}

fn body(check: &mut Check, c: &Value, at: &str) {
    check.only_fields(c, at, &["type", "text", "example"]);
    let Some(text) = check.text(c, at, BODY_MAX) else {
        return;
    };
    let n = check.placeholders(&text, &format!("{at}/text"), false);
    check.only_fields(&c["example"], &format!("{at}/example"), &["body_text"]);
    if n > 0 {
        let rows = c["example"].get("body_text").and_then(Value::as_array);
        match rows {
            Some(rows) if rows.len() == 1 => {
                check.examples(Some(&rows[0]), &format!("{at}/example/body_text/0"), n)
            }
            _ => check.fail(
                format!("{at}/example/body_text"),
                format!("needs one row of {n} example value(s), e.g. [[\"Ana\", …]]"),
            ),
        }
    }
}

fn buttons(check: &mut Check, c: &Value, at: &str) {
    check.only_fields(c, at, &["type", "buttons"]);
    let Some(list) = c["buttons"].as_array().filter(|b| !b.is_empty()) else {
        check.fail(format!("{at}/buttons"), "must be a non-empty array");
        return;
    };
    if list.len() > BUTTONS_MAX {
        check.fail(
            format!("{at}/buttons"),
            format!("at most {BUTTONS_MAX} buttons"),
        );
    }
    let (mut urls, mut phones, mut codes) = (0, 0, 0);
    let mut kinds = Vec::new();
    for (i, b) in list.iter().enumerate() {
        let at = format!("{at}/buttons/{i}");
        let kind = b["type"].as_str().unwrap_or("").to_ascii_uppercase();
        match kind.as_str() {
            "QUICK_REPLY" => check.only_fields(b, &at, &["type", "text"]),
            "URL" => {
                urls += 1;
                check.only_fields(b, &at, &["type", "text", "url", "example"]);
                url_button(check, b, &at);
            }
            "PHONE_NUMBER" => {
                phones += 1;
                check.only_fields(b, &at, &["type", "text", "phone_number"]);
                let ok = b["phone_number"].as_str().is_some_and(|p| {
                    p.starts_with('+')
                        && p.len() <= PHONE_MAX
                        && p[1..].bytes().all(|d| d.is_ascii_digit())
                });
                if !ok {
                    check.fail(format!("{at}/phone_number"), "must be + and digits (E.164)");
                }
            }
            "COPY_CODE" => {
                codes += 1;
                check.only_fields(b, &at, &["type", "example"]);
                if !b["example"]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty() && s.len() <= 15)
                {
                    check.fail(
                        format!("{at}/example"),
                        "needs an example code of at most 15 characters",
                    );
                }
            }
            _ => {
                check.fail(
                    format!("{at}/type"),
                    "must be QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE",
                );
                continue;
            }
        }
        if kind != "COPY_CODE" {
            check.text(b, &at, BUTTON_TEXT_MAX);
        }
        kinds.push(kind);
    }
    for (count, max, what) in [
        (urls, URL_BUTTONS_MAX, "URL"),
        (phones, PHONE_BUTTONS_MAX, "PHONE_NUMBER"),
        (codes, COPY_CODE_BUTTONS_MAX, "COPY_CODE"),
    ] {
        if count > max {
            check.fail(
                format!("{at}/buttons"),
                format!("at most {max} {what} button(s)"),
            );
        }
    }
    // Meta groups quick replies together (all before or all after the others).
    let runs = kinds
        .windows(2)
        .filter(|w| (w[0] == "QUICK_REPLY") != (w[1] == "QUICK_REPLY"))
        .count();
    if runs > 1 {
        check.fail(
            format!("{at}/buttons"),
            "QUICK_REPLY buttons must be grouped together",
        );
    }
}

fn url_button(check: &mut Check, b: &Value, at: &str) {
    let Some(url) = b["url"].as_str() else {
        check.fail(format!("{at}/url"), "is required");
        return;
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > URL_MAX {
        check.fail(
            format!("{at}/url"),
            format!("must be an http(s) URL of at most {URL_MAX} characters"),
        );
        return;
    }
    let found = placeholders(url);
    match found.as_slice() {
        [] => {
            if b.get("example").is_some() {
                check.fail(
                    format!("{at}/example"),
                    "only a URL with {{1}} takes an example",
                );
            }
        }
        [p] if p.number == Some(1) && p.end == url.len() => {
            check.examples(b.get("example"), &format!("{at}/example"), 1)
        }
        _ => check.fail(
            format!("{at}/url"),
            "may hold one placeholder, {{1}}, at the end of the URL",
        ),
    }
}
