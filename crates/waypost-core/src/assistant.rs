//! The assistant's rules that need no I/O: when a conversation goes to a
//! person, what the model is told, and what counts against the budget.

use chrono::{DateTime, Datelike, Utc};

/// What the model answers when the passages do not hold the answer; the
/// instruction asks for exactly this.
pub const CANNOT_ANSWER: &str = "[[HANDOFF]]";

/// Words that mean the customer wants a person.
const ASKS_FOR_HUMAN: &[&str] = &[
    "human",
    "person",
    "agent",
    "representative",
    "operator",
    "real person",
    "someone real",
    "talk to someone",
    "mensch",
    "mitarbeiter",
];

/// Words of an upset customer: a person answers those.
const NEGATIVE: &[&str] = &[
    "angry",
    "furious",
    "terrible",
    "awful",
    "worst",
    "unacceptable",
    "complaint",
    "lawyer",
    "scam",
    "disgusting",
    "useless",
];

/// Why a conversation went to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    AskedForHuman,
    NegativeSentiment,
    CannotAnswer,
    Refused,
    LowConfidence,
    TurnCap,
    BudgetExhausted,
    ProviderFailed,
    Smishing,
}

impl Handoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Handoff::AskedForHuman => "asked_for_human",
            Handoff::NegativeSentiment => "negative_sentiment",
            Handoff::CannotAnswer => "cannot_answer",
            Handoff::Refused => "refused",
            Handoff::LowConfidence => "low_confidence",
            Handoff::TurnCap => "turn_cap",
            Handoff::BudgetExhausted => "budget_exhausted",
            Handoff::ProviderFailed => "provider_failed",
            Handoff::Smishing => "smishing",
        }
    }
}

fn has_word(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    words.iter().any(|w| {
        let phrase: Vec<&str> = w.split(' ').collect();
        tokens
            .windows(phrase.len())
            .any(|win| win == phrase.as_slice())
    })
}

/// A handoff the customer's own words call for, before any model is asked.
pub fn handoff_before_model(text: &str) -> Option<Handoff> {
    if has_word(text, ASKS_FOR_HUMAN) {
        Some(Handoff::AskedForHuman)
    } else if has_word(text, NEGATIVE) {
        Some(Handoff::NegativeSentiment)
    } else {
        None
    }
}

/// What the model's answer means: a reply to send, or a handoff.
pub fn judge_answer(
    content: Option<&str>,
    refusal: Option<&str>,
    finish_reason: Option<&str>,
) -> Result<String, Handoff> {
    if refusal.is_some_and(|r| !r.trim().is_empty()) || finish_reason == Some("content_filter") {
        return Err(Handoff::Refused);
    }
    let text = content.map(str::trim).unwrap_or_default();
    if text.is_empty() || text.contains(CANNOT_ANSWER) {
        return Err(Handoff::CannotAnswer);
    }
    // Cut off at the token limit: an answer the model did not finish is not trusted.
    if finish_reason == Some("length") {
        return Err(Handoff::LowConfidence);
    }
    Ok(text.to_owned())
}

/// The system instruction with the knowledge passages it must answer from.
pub fn system_prompt(passages: &[String]) -> String {
    let mut s = String::from(
        "You are a customer support assistant for a business on WhatsApp. Answer only from \
         the passages below; never invent facts. If the passages do not contain the answer, \
         reply with exactly ",
    );
    s.push_str(CANNOT_ANSWER);
    s.push_str(
        " and nothing else. Placeholders in square brackets such as [PHONE_1] stand for the \
         customer's personal data: keep them unchanged where you need them. Reply briefly, in \
         the customer's language.\n\nPassages:\n",
    );
    if passages.is_empty() {
        s.push_str("(none)\n");
    }
    for (i, p) in passages.iter().enumerate() {
        s.push_str(&format!("[{}] {}\n", i + 1, p));
    }
    s
}

/// The budget period a time falls in: `YYYY-MM` (UTC).
pub fn budget_month(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// Splits a document into chunks of about `max_chars`, at paragraph and then
/// sentence boundaries, so each chunk is a passage that stands on its own.
pub fn chunk_document(text: &str, max_chars: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let pieces = text
        .split("\n\n")
        .flat_map(|para| {
            if para.len() <= max_chars {
                vec![para.trim().to_owned()]
            } else {
                para.split_inclusive(['.', '!', '?'])
                    .map(|s| s.trim().to_owned())
                    .collect()
            }
        })
        .filter(|p| !p.is_empty());
    for piece in pieces {
        if !current.is_empty() && current.len() + piece.len() + 1 > max_chars {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        // A single sentence longer than a chunk is cut on characters.
        let mut rest = piece.as_str();
        while rest.len() > max_chars {
            let cut = rest
                .char_indices()
                .map(|(i, _)| i)
                .take_while(|&i| i <= max_chars)
                .last()
                .unwrap_or(rest.len());
            chunks.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        current.push_str(rest);
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_asking_for_people_or_upset_go_to_a_person() {
        assert_eq!(
            handoff_before_model("Can I talk to a human please"),
            Some(Handoff::AskedForHuman)
        );
        assert_eq!(
            handoff_before_model("This is the WORST service"),
            Some(Handoff::NegativeSentiment)
        );
        assert_eq!(handoff_before_model("When do you open?"), None);
    }

    #[test]
    fn answers_are_judged() {
        assert_eq!(
            judge_answer(Some(" Hi "), None, Some("stop")),
            Ok("Hi".into())
        );
        assert_eq!(
            judge_answer(Some(CANNOT_ANSWER), None, Some("stop")),
            Err(Handoff::CannotAnswer)
        );
        assert_eq!(judge_answer(None, Some("no"), None), Err(Handoff::Refused));
        assert_eq!(
            judge_answer(Some("Partial"), None, Some("length")),
            Err(Handoff::LowConfidence)
        );
    }

    #[test]
    fn documents_are_chunked_at_boundaries() {
        let doc = "First paragraph.\n\nSecond one is here. It has two sentences.\n\nThird.";
        let chunks = chunk_document(doc, 40);
        // Small paragraphs share a chunk while they fit.
        assert_eq!(chunks[0], "First paragraph.\nSecond one is here.");
        assert!(chunks.iter().all(|c| c.len() <= 40), "{chunks:?}");
        assert_eq!(chunks.join(" ").matches("sentences").count(), 1);
        let long = "x".repeat(95);
        assert_eq!(chunk_document(&long, 40).len(), 3);
    }
}
