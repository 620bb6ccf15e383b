//! A conversation's messages as the thread shows them: what was said (or why
//! it is not kept), media previews, the delivery status, and shield flags.

use chrono::{DateTime, Utc};
use serde_json::Value;
use waypost_store::messaging::MessageRow;

use super::page::{PageError, short_time};
use crate::ops::message_content::{ContentState, content_of};
use crate::state::AppState;

/// One message bubble.
pub struct MessageItem {
    pub id: String,
    pub outbound: bool,
    pub text: String,
    /// What kind of message, when not plain text (`Image`, `Template: order_update`).
    pub kind: Option<String>,
    /// A preview link for images a customer sent.
    pub image: Option<String>,
    pub status: String,
    pub time: String,
    pub shield: Option<String>,
    pub error: Option<String>,
    /// Content the workspace does not keep: why.
    pub absent: Option<&'static str>,
}

impl MessageItem {
    /// Ticks for outbound messages, as messaging apps show them.
    pub fn ticks(&self) -> &'static str {
        match self.status.as_str() {
            "sent" => "✓",
            "delivered" | "read" => "✓✓",
            "failed" => "!",
            _ => "…",
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The text and kind of a message's content.
fn describe(kind: &str, content: &Value) -> (String, Option<String>, Option<String>) {
    let media = |name: &str| {
        let caption = str_at(content, &[name, "caption"])
            .or_else(|| str_at(content, &[name, "filename"]))
            .unwrap_or_default()
            .to_owned();
        let preview = (name == "image")
            .then(|| str_at(content, &[name, "id"]))
            .flatten()
            .filter(|id| id.starts_with("med_"))
            .map(|id| format!("/inbox/media/{id}"));
        let mut label = name.to_owned();
        label[..1].make_ascii_uppercase();
        (caption, Some(label), preview)
    };
    match kind {
        "text" => (
            str_at(content, &["text", "body"])
                .unwrap_or_default()
                .to_owned(),
            None,
            None,
        ),
        "image" | "video" | "audio" | "document" | "sticker" => media(kind),
        "template" => (
            String::new(),
            Some(format!(
                "Template: {}",
                str_at(content, &["template", "name"]).unwrap_or("?")
            )),
            None,
        ),
        "location" => (
            [
                str_at(content, &["location", "name"]),
                str_at(content, &["location", "address"]),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
            Some("Location".into()),
            None,
        ),
        "interactive" => (
            str_at(content, &["interactive", "button_reply", "title"])
                .or_else(|| str_at(content, &["interactive", "list_reply", "title"]))
                .unwrap_or_default()
                .to_owned(),
            Some("Reply".into()),
            None,
        ),
        "button" => (
            str_at(content, &["button", "text"])
                .unwrap_or_default()
                .to_owned(),
            Some("Button".into()),
            None,
        ),
        "reaction" => (
            str_at(content, &["reaction", "emoji"])
                .unwrap_or_default()
                .to_owned(),
            Some("Reaction".into()),
            None,
        ),
        other => (String::new(), Some(other.to_owned()), None),
    }
}

/// The thread's bubbles, oldest first.
pub async fn message_items(
    state: &AppState,
    workspace: &str,
    rows: Vec<MessageRow>,
    now: DateTime<Utc>,
) -> Result<Vec<MessageItem>, PageError> {
    let said = content_of(state, workspace, &rows, now).await?;
    Ok(rows
        .into_iter()
        .zip(said)
        .map(|(m, said)| {
            let (text, mut kind, image) = match &said.content {
                Some(c) => describe(&m.message_type, c),
                None => (String::new(), None, None),
            };
            if said.content.is_none() && m.message_type == "template" {
                kind = Some(format!(
                    "Template: {}",
                    m.template_name.as_deref().unwrap_or("?")
                ));
            }
            let absent = match said.state {
                Some(ContentState::NotRetained) if kind.is_none() => {
                    Some("Content not kept (this workspace's retention is off).")
                }
                Some(ContentState::Erased) => Some("Content erased."),
                Some(ContentState::Expired) => Some("Content past its retention period."),
                _ => None,
            };
            MessageItem {
                outbound: m.direction == "outbound",
                time: short_time(m.created_at, now),
                shield: m.shield_label.filter(|l| l != "ham" && l != "clean"),
                error: m.error_title.map(|t| match m.error_code {
                    Some(code) => format!("{t} ({code})"),
                    None => t,
                }),
                id: m.id,
                text,
                kind,
                image,
                status: m.status,
                absent,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_was_said() {
        let text = serde_json::json!({"text": {"body": "Hi there"}});
        assert_eq!(describe("text", &text).0, "Hi there");
        let image = serde_json::json!({"image": {"id": "med_01", "caption": "receipt"}});
        let (caption, kind, preview) = describe("image", &image);
        assert_eq!(caption, "receipt");
        assert_eq!(kind.as_deref(), Some("Image"));
        assert_eq!(preview.as_deref(), Some("/inbox/media/med_01"));
        let provider_image = serde_json::json!({"image": {"id": "1234567890"}});
        assert_eq!(describe("image", &provider_image).2, None);
        let template = serde_json::json!({"template": {"name": "order_update"}});
        assert_eq!(
            describe("template", &template).1.as_deref(),
            Some("Template: order_update")
        );
    }
}
