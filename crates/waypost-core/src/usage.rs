//! Usage metering rules: the names of the daily counters, which Meta pricing
//! category and billability a status's `pricing` object means, and the
//! operator's rate card (one unit price per pricing category, loaded as data).
//!
//! Counter names are dotted: `messages.<direction>.<type>`,
//! `accepted.<category>` (outbound messages by the category they were sent
//! in: the template's, or `service` for a free-form reply), `priced.<category>`
//! and `billable.<category>` (from status webhooks), `conversations.opened`,
//! `shield.scans`, `assistant.tokens`, `contacts.active` (distinct contacts per
//! day) and `contacts.active_month` (distinct per month, counted on the day a
//! contact is first active in the month, so a month's sum is its distinct count),
//! and `storage.content_bytes` (retained content held, a daily snapshot).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// Customer-service windows opened: an inbound message when the contact had
/// not written on that channel in the last 24 hours.
pub const CONVERSATIONS_OPENED: &str = "conversations.opened";
/// Messages scanned through the shield's scan API.
pub const SHIELD_SCANS: &str = "shield.scans";
/// Tokens the assistant's model used (prompt and completion).
pub const ASSISTANT_TOKENS: &str = "assistant.tokens";
/// Distinct contacts a workspace exchanged messages with, per day.
pub const CONTACTS_ACTIVE: &str = "contacts.active";
/// Distinct contacts per month, counted once on their first day in the month.
pub const CONTACTS_ACTIVE_MONTH: &str = "contacts.active_month";
/// Bytes of retained content (message content and kept media copies, as
/// stored, encrypted) held at the day's last snapshot: a level, not a count.
pub const STORAGE_CONTENT_BYTES: &str = "storage.content_bytes";

/// Whether a counter is a level measured by snapshots (a period reports its
/// peak) rather than a count of events (a period reports the sum).
pub fn is_level(metric: &str) -> bool {
    metric == STORAGE_CONTENT_BYTES
}

/// A Meta pricing category, as status webhooks and templates name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PricingCategory {
    Marketing,
    MarketingLite,
    Utility,
    Authentication,
    AuthenticationInternational,
    Service,
    /// A category this version does not know (Meta adds some); counted together.
    Other,
}

impl PricingCategory {
    pub const ALL: [PricingCategory; 7] = [
        Self::Marketing,
        Self::MarketingLite,
        Self::Utility,
        Self::Authentication,
        Self::AuthenticationInternational,
        Self::Service,
        Self::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::MarketingLite => "marketing_lite",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
            Self::AuthenticationInternational => "authentication_international",
            Self::Service => "service",
            Self::Other => "other",
        }
    }

    /// Any spelling Meta uses (case, `-` or `_`); unknown names are [`Self::Other`].
    pub fn from_provider(s: &str) -> Self {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Self::Other)
    }

    /// A category name as an operator writes it (rate cards, quotas); exact names only.
    pub fn parse(s: &str) -> Option<Self> {
        let c = Self::from_provider(s);
        (c != Self::Other || s.trim().eq_ignore_ascii_case("other")).then_some(c)
    }
}

impl fmt::Display for PricingCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keeps a message type or direction safe as a counter name segment.
fn segment(s: &str) -> &str {
    let ok =
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok { s } else { "other" }
}

/// `messages.<direction>.<type>`.
pub fn message_metric(direction: &str, message_type: &str) -> String {
    format!("messages.{}.{}", segment(direction), segment(message_type))
}

/// `accepted.<category>`: an outbound message by the category it is sent in
/// (a template's category; a free-form message is `service`).
pub fn accepted_metric(template_category: Option<&str>) -> String {
    let c = template_category.map_or(PricingCategory::Service, PricingCategory::from_provider);
    format!("accepted.{c}")
}

pub fn priced_metric(c: PricingCategory) -> String {
    format!("priced.{c}")
}

pub fn billable_metric(c: PricingCategory) -> String {
    format!("billable.{c}")
}

/// Whether a reported price is charged: `billable` when present, else (Meta
/// deprecates `billable`) a `pricing.type` of `regular`.
pub fn is_billable(billable: Option<bool>, pricing_type: Option<&str>) -> bool {
    billable.unwrap_or(pricing_type == Some("regular"))
}

/// The counters a message's reported price moves, as `(metric, +1)` for the
/// new report and `(metric, -1)` for a previous one it replaces; empty when
/// the report repeats what was counted.
pub fn pricing_change(
    before: Option<(PricingCategory, bool)>,
    after: (PricingCategory, bool),
) -> Vec<(String, i64)> {
    if before == Some(after) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some((c, billable)) = before {
        out.push((priced_metric(c), -1));
        if billable {
            out.push((billable_metric(c), -1));
        }
    }
    out.push((priced_metric(after.0), 1));
    if after.1 {
        out.push((billable_metric(after.0), 1));
    }
    out
}

/// The UTC day of an instant, as counters store it (`YYYY-MM-DD`).
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The UTC month of an instant (`YYYY-MM`).
pub fn month_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// The first day (`YYYY-MM-DD`) of the month before `at`'s.
pub fn previous_month_start(at: DateTime<Utc>) -> String {
    use chrono::Datelike;
    let (y, m) = if at.month() == 1 {
        (at.year() - 1, 12)
    } else {
        (at.year(), at.month() - 1)
    };
    format!("{y:04}-{m:02}-01")
}

/// The first day of the month after `day`'s, when a monthly quota resets.
pub fn next_month_start(day: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day)
}

/// How a usage report groups days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Month,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The period a `YYYY-MM-DD` day falls in.
    pub fn period_of(self, day: &str) -> String {
        match self {
            Self::Day => day.to_owned(),
            Self::Month => day.get(..7).unwrap_or(day).to_owned(),
        }
    }

    /// Whether `metric` belongs in a report at this granularity: distinct
    /// contacts per day do not add up to a month, distinct per month do.
    pub fn reports(self, metric: &str) -> bool {
        match self {
            Self::Day => metric != CONTACTS_ACTIVE_MONTH,
            Self::Month => metric != CONTACTS_ACTIVE,
        }
    }
}

/// Billable messages of a category to recipients in one country
/// (`billable_by_country.<category>.<CC>`), counted beside `billable.<category>`
/// for messages whose recipient's number is known.
pub fn billable_country_metric(c: PricingCategory, country: &str) -> String {
    format!("billable_by_country.{c}.{country}")
}

/// The category and country of a `billable_by_country.…` counter.
pub fn parse_billable_country(metric: &str) -> Option<(PricingCategory, &str)> {
    let (category, country) = metric
        .strip_prefix("billable_by_country.")?
        .rsplit_once('.')?;
    Some((PricingCategory::parse(category)?, country))
}

/// Whether a country code is two ASCII letters (ISO 3166-1 alpha-2).
pub fn is_country_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// One price of the rate card: what one billable message of `category` costs
/// (to a recipient in `country`, or anywhere the card names no price for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub category: PricingCategory,
    /// ISO 3166-1 alpha-2, upper case; `None`: the category's default price.
    pub country: Option<String>,
    /// ISO 4217, upper case.
    pub currency: String,
    /// Millionths of the currency unit.
    pub unit_price_micros: i64,
}

/// Why a rate card was refused; names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateCardError {
    #[error("line {0}: expected `category,currency,unit_price` and optionally `,country`")]
    Shape(usize),
    #[error("line {0}: country must be empty (the default) or a two-letter ISO 3166 code")]
    Country(usize),
    #[error("line {0}: unknown pricing category `{1}`")]
    Category(usize, String),
    #[error("line {0}: currency must be a three-letter ISO 4217 code")]
    Currency(usize),
    #[error("line {0}: unit_price must be a non-negative decimal with at most 6 decimals")]
    Price(usize),
    #[error("line {0}: `{1}` appears twice")]
    Duplicate(usize, String),
    #[error("all prices must be in one currency")]
    MixedCurrencies,
    #[error("the rate card has no prices")]
    Empty,
}

/// Parses a decimal like `0.0252` into millionths; at most 6 decimals.
pub fn parse_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || frac.len() > 6 || !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(frac)
}

/// Millionths as a decimal with six places, e.g. `0.025200`.
pub fn format_micros(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// Parses a rate card CSV: a `category,currency,unit_price` header (with an
/// optional fourth column `country`), then one line per price (blank lines
/// and `#` comments skipped). A line without a country is the category's
/// default; one with a country prices recipients there.
pub fn parse_rate_card(csv: &str) -> Result<Vec<Rate>, RateCardError> {
    let mut rates: BTreeMap<(PricingCategory, Option<String>), Rate> = BTreeMap::new();
    let mut columns = 0;
    for (i, line) in csv.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if columns == 0 {
            columns = match cells.as_slice() {
                ["category", "currency", "unit_price"] => 3,
                ["category", "currency", "unit_price", "country"] => 4,
                _ => return Err(RateCardError::Shape(n)),
            };
            continue;
        }
        if cells.len() != columns {
            return Err(RateCardError::Shape(n));
        }
        let category = PricingCategory::parse(cells[0])
            .ok_or_else(|| RateCardError::Category(n, cells[0].chars().take(40).collect()))?;
        let currency = cells[1];
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(RateCardError::Currency(n));
        }
        let unit_price_micros = parse_micros(cells[2]).ok_or(RateCardError::Price(n))?;
        let country = match cells.get(3).map(|c| c.to_ascii_uppercase()) {
            None => None,
            Some(c) if c.is_empty() => None,
            Some(c) if is_country_code(&c) => Some(c),
            Some(_) => return Err(RateCardError::Country(n)),
        };
        let rate = Rate {
            category,
            country: country.clone(),
            currency: currency.to_ascii_uppercase(),
            unit_price_micros,
        };
        if rates.insert((category, country.clone()), rate).is_some() {
            let what = match country {
                Some(c) => format!("{category} for {c}"),
                None => category.to_string(),
            };
            return Err(RateCardError::Duplicate(n, what));
        }
    }
    let rates: Vec<Rate> = rates.into_values().collect();
    if rates.is_empty() {
        return Err(RateCardError::Empty);
    }
    if rates.iter().any(|r| r.currency != rates[0].currency) {
        return Err(RateCardError::MixedCurrencies);
    }
    Ok(rates)
}

/// A day given as `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_categories_in_any_spelling() {
        assert_eq!(
            PricingCategory::from_provider("authentication-international"),
            PricingCategory::AuthenticationInternational
        );
        assert_eq!(
            PricingCategory::from_provider("MARKETING"),
            PricingCategory::Marketing
        );
        assert_eq!(
            PricingCategory::from_provider("referral_conversion"),
            PricingCategory::Other
        );
        assert_eq!(PricingCategory::parse("bogus"), None);
        assert_eq!(
            PricingCategory::parse("other"),
            Some(PricingCategory::Other)
        );
    }

    #[test]
    fn metric_names_are_safe() {
        assert_eq!(message_metric("outbound", "text"), "messages.outbound.text");
        assert_eq!(message_metric("inbound", "Te.xt"), "messages.inbound.other");
        assert_eq!(accepted_metric(None), "accepted.service");
        assert_eq!(accepted_metric(Some("utility")), "accepted.utility");
    }

    #[test]
    fn billable_falls_back_to_the_pricing_type() {
        assert!(is_billable(Some(true), None));
        assert!(!is_billable(Some(false), Some("regular")));
        assert!(is_billable(None, Some("regular")));
        assert!(!is_billable(None, Some("free_customer_service")));
    }

    #[test]
    fn a_repeated_price_counts_once_and_a_changed_one_moves() {
        let m = (PricingCategory::Marketing, true);
        assert_eq!(
            pricing_change(None, m),
            vec![
                ("priced.marketing".into(), 1),
                ("billable.marketing".into(), 1)
            ]
        );
        assert!(pricing_change(Some(m), m).is_empty());
        let u = (PricingCategory::Utility, false);
        assert_eq!(
            pricing_change(Some(m), u),
            vec![
                ("priced.marketing".into(), -1),
                ("billable.marketing".into(), -1),
                ("priced.utility".into(), 1)
            ]
        );
    }

    #[test]
    fn money_parses_and_prints_exactly() {
        assert_eq!(parse_micros("0.0252"), Some(25_200));
        assert_eq!(parse_micros("3"), Some(3_000_000));
        assert_eq!(parse_micros("1.1234567"), None);
        assert_eq!(parse_micros("-1"), None);
        assert_eq!(parse_micros(".5"), None);
        assert_eq!(format_micros(25_200 * 3), "0.075600");
        assert_eq!(format_micros(-1), "-0.000001");
    }

    #[test]
    fn rate_cards_parse_and_refuse_with_the_line() {
        let card = parse_rate_card(
            "category,currency,unit_price\n# Germany\nmarketing,eur,0.1131\nutility, EUR ,0.0456\n",
        )
        .unwrap();
        assert_eq!(card.len(), 2);
        assert_eq!(card[0].category, PricingCategory::Marketing);
        assert_eq!(card[0].currency, "EUR");
        assert_eq!(card[1].unit_price_micros, 45_600);
        assert_eq!(
            parse_rate_card("marketing,EUR,1"),
            Err(RateCardError::Shape(1))
        );
        assert_eq!(
            parse_rate_card("category,currency,unit_price\nfoo,EUR,1"),
            Err(RateCardError::Category(2, "foo".into()))
        );
        assert_eq!(
            parse_rate_card("category,currency,unit_price\nmarketing,EUR,1\nutility,USD,1"),
            Err(RateCardError::MixedCurrencies)
        );
        assert_eq!(
            parse_rate_card("category,currency,unit_price\nmarketing,EUR,1\nmarketing,EUR,2"),
            Err(RateCardError::Duplicate(3, "marketing".into()))
        );
        assert_eq!(
            parse_rate_card("category,currency,unit_price\n"),
            Err(RateCardError::Empty)
        );
    }

    #[test]
    fn rate_cards_carry_prices_per_country_beside_a_default() {
        let card = parse_rate_card(
            "category,currency,unit_price,country\nmarketing,EUR,0.1131,\nmarketing,EUR,0.0625,br\nutility,EUR,0.0080,BR\n",
        )
        .unwrap();
        assert_eq!(card.len(), 3);
        assert_eq!(
            (card[0].country.as_deref(), card[0].unit_price_micros),
            (None, 113_100)
        );
        assert_eq!(
            (card[1].country.as_deref(), card[1].unit_price_micros),
            (Some("BR"), 62_500)
        );
        let header = "category,currency,unit_price,country\n";
        assert_eq!(
            parse_rate_card(&format!("{header}marketing,EUR,1,Brazil")),
            Err(RateCardError::Country(2))
        );
        assert_eq!(
            parse_rate_card(&format!("{header}marketing,EUR,1")),
            Err(RateCardError::Shape(2))
        );
        assert_eq!(
            parse_rate_card(&format!("{header}marketing,EUR,1,DE\nmarketing,EUR,2,de")),
            Err(RateCardError::Duplicate(3, "marketing for DE".into()))
        );
        assert_eq!(
            parse_billable_country(&billable_country_metric(PricingCategory::Utility, "BR")),
            Some((PricingCategory::Utility, "BR"))
        );
        assert_eq!(parse_billable_country("billable.utility"), None);
    }

    #[test]
    fn month_bounds() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            previous_month_start(at("2026-01-15T00:00:00Z")),
            "2025-12-01"
        );
        assert_eq!(
            previous_month_start(at("2026-12-07T10:00:00Z")),
            "2026-11-01"
        );
        assert_eq!(
            next_month_start(parse_day("2026-12-31").unwrap()),
            parse_day("2027-01-01").unwrap()
        );
    }

    #[test]
    fn granularity_groups_days_and_picks_the_distinct_counter() {
        assert_eq!(Granularity::Month.period_of("2026-12-07"), "2026-12");
        assert!(Granularity::Day.reports(CONTACTS_ACTIVE));
        assert!(!Granularity::Day.reports(CONTACTS_ACTIVE_MONTH));
        assert!(Granularity::Month.reports(CONTACTS_ACTIVE_MONTH));
    }
}
