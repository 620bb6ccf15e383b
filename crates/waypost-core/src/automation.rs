//! Automation rules: a welcome for a first contact, an away message outside
//! business hours (a weekly schedule in a time zone, with holidays) and
//! keyword or regular-expression replies. For each inbound message the
//! enabled rule with the highest priority that matches decides; its actions
//! reply, tag, assign or hand the conversation to the assistant.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// The longest pattern a keyword rule may have.
pub const MAX_PATTERN_LEN: usize = 500;
/// The longest reply a rule may send.
pub const MAX_REPLY_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Welcome,
    Away,
    Keyword,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Welcome => "welcome",
            RuleKind::Away => "away",
            RuleKind::Keyword => "keyword",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "welcome" => Some(Self::Welcome),
            "away" => Some(Self::Away),
            "keyword" => Some(Self::Keyword),
            _ => None,
        }
    }
}

/// What a matching rule does; any combination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleActions {
    /// A text sent to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// A label put on the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The member (user id) the conversation is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
    /// Lets the assistant answer this message.
    #[serde(default)]
    pub hand_to_assistant: bool,
}

/// Opening hours of one weekday, in the schedule's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// `mon` … `sun`.
    pub day: String,
    /// `HH:MM`.
    pub open: String,
    /// `HH:MM`, after `open`.
    pub close: String,
}

/// Business hours: when the away rule stays silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub hours: Vec<OpeningHours>,
    /// Whole days closed, `YYYY-MM-DD` in the schedule's time zone.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

fn weekday(s: &str) -> Option<Weekday> {
    s.parse().ok()
}

fn time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

impl Schedule {
    /// Checks the time zone, days and times; says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("`{}` is not an IANA time zone", self.time_zone))?;
        for h in &self.hours {
            weekday(&h.day).ok_or_else(|| format!("`{}` is not a weekday (mon … sun)", h.day))?;
            let (Some(open), Some(close)) = (time(&h.open), time(&h.close)) else {
                return Err(format!("hours of {} must be HH:MM", h.day));
            };
            if close <= open {
                return Err(format!("on {} `close` must be after `open`", h.day));
            }
        }
        Ok(())
    }

    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let Ok(tz) = self.time_zone.parse::<chrono_tz::Tz>() else {
            return false;
        };
        let local = at.with_timezone(&tz);
        if self.holidays.contains(&local.date_naive()) {
            return false;
        }
        let now = local.time();
        self.hours.iter().any(|h| {
            weekday(&h.day) == Some(local.weekday())
                && matches!((time(&h.open), time(&h.close)), (Some(o), Some(c)) if o <= now && now < c)
        })
    }
}

/// A rule as the engine sees it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    pub priority: i64,
    pub matcher: Option<Matcher>,
    pub schedule: Option<Schedule>,
    pub actions: RuleActions,
}

/// How a keyword rule recognises a message.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Any of the comma-separated words or phrases, as whole words, any case.
    Keywords(Vec<String>),
    Regex(regex::Regex),
}

impl Matcher {
    /// Builds a matcher, refusing empty or over-long patterns and bad regexes.
    pub fn new(pattern: &str, is_regex: bool) -> Result<Self, String> {
        if pattern.trim().is_empty() || pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "`pattern` must be 1 to {MAX_PATTERN_LEN} characters"
            ));
        }
        if is_regex {
            // A size limit keeps a hostile pattern from costing memory; the regex
            // crate's matching is linear in the text.
            regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| format!("`pattern` is not a valid regular expression: {e}"))
        } else {
            let words: Vec<String> = pattern
                .split(',')
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            Ok(Matcher::Keywords(words))
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Regex(r) => r.is_match(text),
            Matcher::Keywords(words) => {
                let lower = text.to_lowercase();
                let tokens: Vec<&str> = lower
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|t| !t.is_empty())
                    .collect();
                words.iter().any(|w| {
                    let phrase: Vec<&str> = w
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|t| !t.is_empty())
                        .collect();
                    !phrase.is_empty() && tokens.windows(phrase.len()).any(|win| win == phrase)
                })
            }
        }
    }
}

/// What the engine knows about one inbound message.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The text, when the message has one.
    pub text: Option<&'a str>,
    /// The contact's first message to the business.
    pub first_contact: bool,
    pub at: DateTime<Utc>,
}

/// The rule that answers `m`: the highest priority among those that match
/// (ties: welcome before away before keyword, then the list's order).
pub fn choose<'r>(rules: &'r [Rule], m: &Inbound<'_>) -> Option<&'r Rule> {
    let mut candidates: Vec<&Rule> = rules
        .iter()
        .filter(|r| match r.kind {
            RuleKind::Welcome => m.first_contact,
            RuleKind::Away => r.schedule.as_ref().is_some_and(|s| !s.is_open(m.at)),
            RuleKind::Keyword => match (&r.matcher, m.text) {
                (Some(matcher), Some(text)) => matcher.matches(text),
                _ => false,
            },
        })
        .collect();
    let order = |k: RuleKind| match k {
        RuleKind::Welcome => 0,
        RuleKind::Away => 1,
        RuleKind::Keyword => 2,
    };
    candidates.sort_by_key(|r| (std::cmp::Reverse(r.priority), order(r.kind)));
    candidates.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn berlin_weekdays() -> Schedule {
        Schedule {
            time_zone: "Europe/Berlin".into(),
            hours: ["mon", "tue", "wed", "thu", "fri"]
                .iter()
                .map(|d| OpeningHours {
                    day: (*d).into(),
                    open: "09:00".into(),
                    close: "17:00".into(),
                })
                .collect(),
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
        }
    }

    #[test]
    fn business_hours_follow_the_time_zone_and_holidays() {
        let s = berlin_weekdays();
        s.check().unwrap();
        // Monday 7 Dec 2026, 08:30 UTC = 09:30 in Berlin.
        assert!(s.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 8, 30, 0).unwrap()));
        // 07:30 UTC = 08:30 in Berlin: not yet.
        assert!(!s.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 7, 30, 0).unwrap()));
        // Saturday.
        assert!(!s.is_open(Utc.with_ymd_and_hms(2026, 12, 12, 10, 0, 0).unwrap()));
        // Christmas is a Friday, closed all day.
        assert!(!s.is_open(Utc.with_ymd_and_hms(2026, 12, 25, 10, 0, 0).unwrap()));
    }

    #[test]
    fn schedules_with_bad_parts_are_refused() {
        let mut s = berlin_weekdays();
        s.time_zone = "Mars/Olympus".into();
        assert!(s.check().unwrap_err().contains("time zone"));
        let mut s = berlin_weekdays();
        s.hours[0].close = "08:00".into();
        assert!(s.check().unwrap_err().contains("after"));
    }

    #[test]
    fn keywords_match_whole_words_and_phrases() {
        let m = Matcher::new("price, opening hours", false).unwrap();
        assert!(m.matches("What's the PRICE?"));
        assert!(m.matches("your opening hours please"));
        assert!(!m.matches("priceless"));
        assert!(!m.matches("hours of opening"));
        let r = Matcher::new(r"order\s*#?\d{4,}", true).unwrap();
        assert!(r.matches("where is Order #12345"));
        assert!(Matcher::new("(", true).is_err());
        assert!(Matcher::new(" ", false).is_err());
    }

    #[test]
    fn the_highest_priority_match_wins() {
        let rule = |id: &str, kind, priority, pattern: Option<&str>| Rule {
            id: id.into(),
            kind,
            priority,
            matcher: pattern.map(|p| Matcher::new(p, false).unwrap()),
            schedule: (kind == RuleKind::Away).then(berlin_weekdays),
            actions: RuleActions::default(),
        };
        let rules = vec![
            rule("low", RuleKind::Keyword, 1, Some("price")),
            rule("high", RuleKind::Keyword, 5, Some("price")),
            rule("away", RuleKind::Away, 3, None),
            rule("welcome", RuleKind::Welcome, 0, None),
        ];
        let open = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let closed = Utc.with_ymd_and_hms(2026, 12, 12, 10, 0, 0).unwrap();
        let m = |text, first, at| Inbound {
            text: Some(text),
            first_contact: first,
            at,
        };
        assert_eq!(
            choose(&rules, &m("price?", false, open)).unwrap().id,
            "high"
        );
        assert_eq!(choose(&rules, &m("hi", false, closed)).unwrap().id, "away");
        assert_eq!(choose(&rules, &m("hi", true, open)).unwrap().id, "welcome");
        assert!(choose(&rules, &m("hi", false, open)).is_none());
    }
}
