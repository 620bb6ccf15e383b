//! Usage reports: a workspace's daily counters over a range of days, by day
//! or month, optionally per channel, with an estimated cost of its billable
//! messages from the operator's rate card; the same report as CSV; and
//! loading the rate card (data the operator keeps current, not code).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::usage::{
    Granularity, PricingCategory, Rate, format_micros, is_level, parse_billable_country,
    parse_rate_card,
};
use waypost_store::usage::RateRow;

use super::Ctx;
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::{AppState, RequestOrigin};

/// The longest range one report covers.
pub const MAX_DAYS: i64 = 400;

/// What to report.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    /// First day, inclusive; default the first day of the current month.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive; default today.
    pub to: Option<NaiveDate>,
    pub granularity: Granularity,
    /// One row per channel (workspace-wide counts have no channel).
    pub by_channel: bool,
}

/// One period's (and channel's) counters.
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePeriod {
    pub period: String,
    /// Set when broken down by channel; `None` for workspace-wide counts.
    pub channel_id: Option<String>,
    pub metrics: BTreeMap<String, i64>,
}

/// Billable messages of a category to one country the rate card prices.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryCost {
    pub country: String,
    pub billable: i64,
    pub unit_price: String,
    pub cost: String,
}

/// What one category of billable messages is estimated to cost: messages to
/// countries the card prices at their price, the rest at the default.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryCost {
    pub category: String,
    pub billable: i64,
    /// The category's default price; `None` when the card has only country prices.
    pub unit_price: Option<String>,
    pub countries: Vec<CountryCost>,
    pub cost: String,
}

/// The estimate over the whole range.
#[derive(Debug, Clone, PartialEq)]
pub struct CostEstimate {
    pub currency: String,
    pub categories: Vec<CategoryCost>,
    pub total: String,
    /// Categories with billable messages the card has no price for (no
    /// default, nor one for their country): those are not in the total.
    pub unpriced: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub periods: Vec<UsagePeriod>,
    /// `None` until an operator loads a rate card.
    pub estimated_cost: Option<CostEstimate>,
}

/// The workspace's usage over the query's range.
pub async fn report(state: &AppState, ctx: &Ctx, q: UsageQuery) -> Result<UsageReport, ApiError> {
    let today = state.clock.now().date_naive();
    let to = q.to.unwrap_or(today);
    let from = q.from.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
    if from > to {
        return Err(unprocessable("`from` must not be after `to`."));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(unprocessable(format!(
            "A report covers at most {MAX_DAYS} days; narrow `from` and `to`."
        )));
    }
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let rows = state
        .store
        .usage_totals(&ctx.workspace, &day(from), &day(to), q.by_channel)
        .await?;
    let mut periods: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    let mut billable = Billable::default();
    for r in rows {
        if let Some(c) = r.metric.strip_prefix("billable.") {
            *billable
                .total
                .entry(PricingCategory::from_provider(c))
                .or_default() += r.amount;
        }
        if let Some((c, country)) = parse_billable_country(&r.metric) {
            *billable
                .by_country
                .entry((c, country.to_owned()))
                .or_default() += r.amount;
        }
        if !q.granularity.reports(&r.metric) {
            continue;
        }
        let level = is_level(&r.metric);
        let value = periods
            .entry((q.granularity.period_of(&r.day), r.channel_id))
            .or_default()
            .entry(r.metric)
            .or_default();
        // Stored bytes do not add up over days: a month shows its peak.
        *value = if level {
            (*value).max(r.amount)
        } else {
            *value + r.amount
        };
    }
    let periods = periods
        .into_iter()
        .map(|((period, channel), mut metrics)| {
            metrics.retain(|_, v| *v != 0);
            UsagePeriod {
                period,
                channel_id: (!channel.is_empty()).then_some(channel),
                metrics,
            }
        })
        .filter(|p| !p.metrics.is_empty())
        .collect();
    let card = state.store.rate_card().await?;
    Ok(UsageReport {
        from,
        to,
        granularity: q.granularity,
        periods,
        estimated_cost: estimate(&card, &billable),
    })
}

/// Billable messages over a report's range: per category, and of those the
/// ones whose recipient's country is known, per category and country.
#[derive(Debug, Default)]
struct Billable {
    total: BTreeMap<PricingCategory, i64>,
    by_country: BTreeMap<(PricingCategory, String), i64>,
}

/// Billable messages times the card's unit price, per category: a country's
/// price for messages to it, the default price for the others.
fn estimate(card: &[RateRow], billable: &Billable) -> Option<CostEstimate> {
    let currency = card.first()?.currency.clone();
    let price = |c: PricingCategory, country: &str| {
        card.iter()
            .find(|r| r.category == c.as_str() && r.country == country)
            .map(|r| r.unit_price_micros)
    };
    let mut total: i128 = 0;
    let mut categories = Vec::new();
    let mut unpriced = Vec::new();
    for (&c, &count) in billable.total.iter().filter(|(_, n)| **n != 0) {
        let mut cost: i128 = 0;
        let mut rest = count;
        let mut countries = Vec::new();
        let to_countries = billable.by_country.iter().filter(|((cat, _), _)| *cat == c);
        for ((_, country), &n) in to_countries {
            let Some(unit) = price(c, country).filter(|_| n != 0) else {
                continue;
            };
            let part = i128::from(n) * i128::from(unit);
            cost += part;
            rest -= n;
            countries.push(CountryCost {
                country: country.clone(),
                billable: n,
                unit_price: format_micros(unit.into()),
                cost: format_micros(part),
            });
        }
        let default = price(c, "");
        match default {
            Some(unit) => cost += i128::from(rest) * i128::from(unit),
            None if rest != 0 => unpriced.push(c.to_string()),
            None => {}
        }
        if default.is_none() && countries.is_empty() {
            continue;
        }
        total += cost;
        categories.push(CategoryCost {
            category: c.to_string(),
            billable: count,
            unit_price: default.map(|u| format_micros(u.into())),
            countries,
            cost: format_micros(cost),
        });
    }
    Some(CostEstimate {
        currency,
        categories,
        total: format_micros(total),
        unpriced,
    })
}

/// The report as CSV: `period,channel_id,metric,count`, one line per counter.
pub fn to_csv(report: &UsageReport) -> String {
    let mut out = String::from("period,channel_id,metric,count\n");
    for p in &report.periods {
        for (metric, count) in &p.metrics {
            out.push_str(&format!(
                "{},{},{},{}\n",
                p.period,
                p.channel_id.as_deref().unwrap_or(""),
                metric,
                count
            ));
        }
    }
    out
}

/// Largest rate card accepted, in bytes.
pub const MAX_RATE_CARD_BYTES: usize = 64 * 1024;

/// Replaces the rate card with the one in `csv` (`category,currency,unit_price`).
pub async fn load_rate_card(
    state: &AppState,
    origin: &RequestOrigin,
    actor: Actor,
    csv: &str,
) -> Result<Vec<Rate>, ApiError> {
    if csv.len() > MAX_RATE_CARD_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("A rate card has at most {MAX_RATE_CARD_BYTES} bytes."),
        )
        .into());
    }
    let rates = parse_rate_card(csv).map_err(|e| unprocessable(format!("Rate card: {e}.")))?;
    let now = state.clock.now();
    let rows: Vec<RateRow> = rates
        .iter()
        .map(|r| RateRow {
            category: r.category.to_string(),
            country: r.country.clone().unwrap_or_default(),
            currency: r.currency.clone(),
            unit_price_micros: r.unit_price_micros,
            loaded_at: now,
        })
        .collect();
    let audit = origin.stamp(NewAuditEvent::new(None, actor, "rate_card.loaded").details(
        serde_json::json!({
            "currency": rates[0].currency,
            "categories": rates.iter().map(|r| r.category.as_str()).collect::<Vec<_>>(),
        }),
    ));
    state.store.replace_rate_card(&rows, audit).await?;
    Ok(rates)
}
