//! Meta's documented size and count limits for a send, checked before the
//! request leaves (the server can answer 422 instead of burning a call) and
//! by the sandbox (which answers 131009 like Meta). Lengths count Unicode
//! scalar values; whether Meta counts those or UTF-16 units is [uncertain].
//! Limits the reference marks [uncertain] are included and say so.

use std::collections::HashSet;

use crate::interactive::{Button, Header, Interactive};
use crate::send::{Media, OutboundContent, OutboundMessage};

/// The first limit a message breaks: a JSON-ish path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct LimitViolation {
    pub field: String,
    pub problem: String,
}

/// The error code Meta uses for a parameter value that breaks a limit.
pub const LIMIT_VIOLATION_CODE: i64 = 131009;

fn fail(field: impl Into<String>, problem: impl Into<String>) -> Result<(), LimitViolation> {
    Err(LimitViolation {
        field: field.into(),
        problem: problem.into(),
    })
}

fn max_len(field: &str, value: &str, max: usize) -> Result<(), LimitViolation> {
    let n = value.chars().count();
    if n > max {
        fail(field, format!("{n} characters, at most {max} allowed"))
    } else {
        Ok(())
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), LimitViolation> {
    if value.trim().is_empty() {
        fail(field, "must not be empty")
    } else {
        Ok(())
    }
}

/// Checks every limit that applies to `message`.
pub fn check_limits(message: &OutboundMessage) -> Result<(), LimitViolation> {
    match (&message.to, &message.recipient) {
        (Some(to), _) => non_empty("to", to)?,
        (None, Some(r)) => non_empty("recipient", r)?,
        (None, None) => fail("to", "`to` or `recipient` is required")?,
    }
    match &message.content {
        OutboundContent::Text(t) => {
            non_empty("text.body", &t.body)?;
            max_len("text.body", &t.body, 4096)
        }
        OutboundContent::Image(m) | OutboundContent::Video(m) => media("media", m, true, false),
        OutboundContent::Document(m) => media("document", m, true, true),
        OutboundContent::Audio(m) => media("audio", m, false, false),
        OutboundContent::Sticker(m) => media("sticker", m, false, false),
        OutboundContent::Location(l) => {
            if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
                return fail("location", "latitude/longitude out of range");
            }
            Ok(())
        }
        OutboundContent::Contacts(cs) => {
            if cs.is_empty() {
                return fail("contacts", "at least one contact");
            }
            cs.iter().try_for_each(|c| {
                non_empty("contacts[].name.formatted_name", &c.name.formatted_name)
            })
        }
        OutboundContent::Interactive(i) => interactive(i),
        OutboundContent::Template(t) => non_empty("template.name", &t.name),
        OutboundContent::Reaction(r) => non_empty("reaction.message_id", &r.message_id),
        OutboundContent::Unsupported(_) => Ok(()),
    }
}

fn media(
    field: &str,
    m: &Media,
    caption_ok: bool,
    filename_ok: bool,
) -> Result<(), LimitViolation> {
    if m.caption.is_some() && !caption_ok {
        return fail(format!("{field}.caption"), "not allowed on this media type");
    }
    if m.filename.is_some() && !filename_ok {
        return fail(format!("{field}.filename"), "only allowed on documents");
    }
    Ok(())
}

fn interactive(i: &Interactive) -> Result<(), LimitViolation> {
    match i {
        Interactive::Button(b) => {
            common(
                b.header.as_ref(),
                &b.body.text,
                b.footer.as_ref().map(|f| f.text.as_str()),
            )?;
            let n = b.action.buttons.len();
            if !(1..=3).contains(&n) {
                return fail(
                    "interactive.action.buttons",
                    format!("{n} buttons, 1 to 3 allowed"),
                );
            }
            let mut titles = HashSet::new();
            for button in &b.action.buttons {
                let Button::Reply(r) = button else { continue };
                max_len("interactive.action.buttons[].reply.title", &r.title, 20)?;
                max_len("interactive.action.buttons[].reply.id", &r.id, 256)?;
                non_empty("interactive.action.buttons[].reply.id", &r.id)?;
                if r.id.trim() != r.id {
                    return fail(
                        "interactive.action.buttons[].reply.id",
                        "no leading or trailing spaces",
                    );
                }
                if !titles.insert(r.title.as_str()) {
                    return fail(
                        "interactive.action.buttons[].reply.title",
                        "titles must be unique",
                    );
                }
            }
            Ok(())
        }
        Interactive::List(l) => {
            common(
                l.header.as_ref(),
                &l.body.text,
                l.footer.as_ref().map(|f| f.text.as_str()),
            )?;
            // [uncertain]: lists take text headers only.
            if l.header
                .as_ref()
                .is_some_and(|h| !matches!(h, Header::Text(_)))
            {
                return fail("interactive.header", "list headers must be text");
            }
            max_len("interactive.action.button", &l.action.button, 20)?;
            non_empty("interactive.action.button", &l.action.button)?;
            let sections = &l.action.sections;
            if !(1..=10).contains(&sections.len()) {
                return fail("interactive.action.sections", "1 to 10 sections allowed");
            }
            let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
            if !(1..=10).contains(&rows) {
                return fail(
                    "interactive.action.sections[].rows",
                    format!("{rows} rows in total, 1 to 10 allowed"),
                );
            }
            let mut ids = HashSet::new();
            for s in sections {
                match &s.title {
                    Some(t) => max_len("interactive.action.sections[].title", t, 24)?,
                    None if sections.len() > 1 => {
                        return fail(
                            "interactive.action.sections[].title",
                            "required with more than one section",
                        );
                    }
                    None => {}
                }
                for r in &s.rows {
                    max_len("interactive.action.sections[].rows[].id", &r.id, 200)?;
                    max_len("interactive.action.sections[].rows[].title", &r.title, 24)?;
                    if let Some(d) = &r.description {
                        max_len("interactive.action.sections[].rows[].description", d, 72)?;
                    }
                    if !ids.insert(r.id.as_str()) {
                        return fail(
                            "interactive.action.sections[].rows[].id",
                            "row ids must be unique",
                        );
                    }
                }
            }
            Ok(())
        }
        Interactive::Unsupported(_) => Ok(()),
    }
}

/// Body ≤ 1024, header text and footer ≤ 60 ([uncertain]: third-party tables).
fn common(header: Option<&Header>, body: &str, footer: Option<&str>) -> Result<(), LimitViolation> {
    non_empty("interactive.body.text", body)?;
    max_len("interactive.body.text", body, 1024)?;
    if let Some(Header::Text(t)) = header {
        max_len("interactive.header.text", t, 60)?;
    }
    if let Some(f) = footer {
        max_len("interactive.footer.text", f, 60)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: serde_json::Value) -> OutboundMessage {
        let mut base = json!({"messaging_product":"whatsapp","to":"16505551234"});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn buttons(n: usize, title: impl Fn(usize) -> String) -> OutboundMessage {
        let bs: Vec<_> = (0..n)
            .map(|i| json!({"type":"reply","reply":{"id":format!("b{i}"),"title":title(i)}}))
            .collect();
        msg(
            json!({"type":"interactive","interactive":{"type":"button","body":{"text":"Pick"},"action":{"buttons":bs}}}),
        )
    }

    fn list(rows_per_section: &[usize]) -> OutboundMessage {
        let mut k = 0;
        let sections: Vec<_> = rows_per_section
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let rows: Vec<_> = (0..n)
                    .map(|_| {
                        k += 1;
                        json!({"id":format!("r{k}"),"title":"Row"})
                    })
                    .collect();
                json!({"title":format!("S{s}"),"rows":rows})
            })
            .collect();
        msg(
            json!({"type":"interactive","interactive":{"type":"list","body":{"text":"B"},
            "action":{"button":"Options","sections":sections}}}),
        )
    }

    #[test]
    fn text_length() {
        assert!(
            check_limits(&msg(
                json!({"type":"text","text":{"body":"é".repeat(4096)}})
            ))
            .is_ok()
        );
        let e = check_limits(&msg(
            json!({"type":"text","text":{"body":"a".repeat(4097)}}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "text.body");
        assert!(check_limits(&msg(json!({"type":"text","text":{"body":"  "}}))).is_err());
    }

    #[test]
    fn button_count_title_and_uniqueness() {
        assert!(check_limits(&buttons(3, |i| format!("T{i}"))).is_ok());
        assert!(check_limits(&buttons(4, |i| format!("T{i}"))).is_err());
        assert!(check_limits(&buttons(0, |i| format!("T{i}"))).is_err());
        assert!(check_limits(&buttons(1, |_| "x".repeat(21))).is_err());
        assert!(check_limits(&buttons(2, |_| "same".into())).is_err());
    }

    #[test]
    fn list_rows_total_across_sections() {
        assert!(check_limits(&list(&[5, 5])).is_ok());
        let e = check_limits(&list(&[6, 5])).unwrap_err();
        assert!(e.problem.contains("11 rows"), "{e}");
        assert!(check_limits(&list(&[])).is_err());
    }

    #[test]
    fn media_caption_and_filename_rules() {
        assert!(
            check_limits(&msg(
                json!({"type":"audio","audio":{"id":"1","caption":"no"}})
            ))
            .is_err()
        );
        assert!(
            check_limits(&msg(
                json!({"type":"image","image":{"id":"1","filename":"x.jpg"}})
            ))
            .is_err()
        );
        assert!(
            check_limits(&msg(
                json!({"type":"document","document":{"id":"1","caption":"c","filename":"x.pdf"}})
            ))
            .is_ok()
        );
    }
}
