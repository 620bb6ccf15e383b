//! Metered usage: `GET /v1/usage` (JSON, or CSV with `Accept: text/csv` or
//! `?format=csv`) for a workspace, and the rate card operators load
//! (`/v1/operator/rate-card`, CSV in, JSON out).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::usage::{Granularity, format_micros, parse_day};

use super::{ApiError, Problem};
use crate::auth::Operator;
use crate::auth::permission::{Authorized, act};
use crate::error::unprocessable;
use crate::ops::Ctx;
use crate::ops::usage::{self, UsageQuery, UsageReport};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, IntoParams)]
pub struct UsageParams {
    /// First day, `YYYY-MM-DD` (UTC), inclusive; default the first of the month.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; default today. At most 400 days after `from`.
    pub to: Option<String>,
    /// `day` (default) or `month`.
    pub granularity: Option<String>,
    /// `channel` for one row per channel; default none (summed over channels).
    pub breakdown: Option<String>,
    /// `csv` for CSV (like `Accept: text/csv`).
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsagePeriodView {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// With `breakdown=channel`; null for workspace-wide counts (shield scans).
    pub channel_id: Option<String>,
    /// Counter name to count, e.g. `messages.outbound.text`, `billable.marketing`.
    pub metrics: BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CountryCostView {
    /// ISO 3166-1 alpha-2 of the recipients' numbers.
    pub country: String,
    /// Billable messages of the category to the country.
    pub billable: i64,
    /// The country's price, decimal, in `currency`.
    pub unit_price: String,
    pub cost: String,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryCostView {
    pub category: String,
    /// Billable messages of the category in the range.
    pub billable: i64,
    /// The default price, decimal, in `currency`; null when the card prices
    /// the category only for some countries.
    pub unit_price: Option<String>,
    /// Countries the card has their own price for, with the messages to them;
    /// the other messages cost the default price.
    pub countries: Vec<CountryCostView>,
    pub cost: String,
}

#[derive(Serialize, ToSchema)]
pub struct CostView {
    pub currency: String,
    pub categories: Vec<CategoryCostView>,
    pub total: String,
    /// Categories with billable messages the rate card has no price for
    /// (neither a default nor their country's); those are not in `total`.
    pub unpriced: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub from: String,
    pub to: String,
    pub granularity: String,
    pub data: Vec<UsagePeriodView>,
    /// Estimated from the operator's rate card; null when none is loaded.
    pub estimated_cost: Option<CostView>,
}

fn day(field: &str, s: Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    s.map(|s| {
        parse_day(&s).ok_or_else(|| unprocessable(format!("`{field}` must be a day, YYYY-MM-DD.")))
    })
    .transpose()
}

fn query(p: UsageParams) -> Result<UsageQuery, ApiError> {
    let granularity = match p.granularity.as_deref() {
        None => Granularity::Day,
        Some(g) => Granularity::parse(g)
            .ok_or_else(|| unprocessable("`granularity` must be `day` or `month`."))?,
    };
    let by_channel = match p.breakdown.as_deref() {
        None | Some("none") => false,
        Some("channel") => true,
        Some(_) => return Err(unprocessable("`breakdown` must be `channel` or `none`.")),
    };
    Ok(UsageQuery {
        from: day("from", p.from)?,
        to: day("to", p.to)?,
        granularity,
        by_channel,
    })
}

fn view(r: UsageReport) -> UsageView {
    UsageView {
        from: r.from.to_string(),
        to: r.to.to_string(),
        granularity: r.granularity.as_str().into(),
        data: r
            .periods
            .into_iter()
            .map(|p| UsagePeriodView {
                period: p.period,
                channel_id: p.channel_id,
                metrics: p.metrics,
            })
            .collect(),
        estimated_cost: r.estimated_cost.map(|c| CostView {
            currency: c.currency,
            categories: c
                .categories
                .into_iter()
                .map(|c| CategoryCostView {
                    category: c.category,
                    billable: c.billable,
                    unit_price: c.unit_price,
                    countries: c
                        .countries
                        .into_iter()
                        .map(|k| CountryCostView {
                            country: k.country,
                            billable: k.billable,
                            unit_price: k.unit_price,
                            cost: k.cost,
                        })
                        .collect(),
                    cost: c.cost,
                })
                .collect(),
            total: c.total,
            unpriced: c.unpriced,
        }),
    }
}

/// The workspace's metered usage per day or month, with an estimated cost
/// (scope `usage:read`). CSV (`period,channel_id,metric,count`) with
/// `Accept: text/csv` or `format=csv`.
#[utoipa::path(operation_id = "get_usage", get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, content((UsageView = "application/json"), (String = "text/csv"))),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["usage:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::UsageRead>,
    headers: HeaderMap,
    Query(p): Query<UsageParams>,
) -> Result<Response, ApiError> {
    let csv = match p.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(unprocessable("`format` must be `json` or `csv`.")),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let report = usage::report(&state, &Ctx::of(&auth, origin), query(p)?).await?;
    if csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"usage.csv\"",
                ),
            ],
            usage::to_csv(&report),
        )
            .into_response());
    }
    Ok(Json(view(report)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct RateView {
    pub category: String,
    /// ISO 3166-1 alpha-2; null for the category's default price.
    pub country: Option<String>,
    pub currency: String,
    /// Decimal, per billable message.
    pub unit_price: String,
    pub loaded_at: DateTime<Utc>,
}

/// The loaded rate card (operators).
#[utoipa::path(operation_id = "get_rate_card", get, path = "/v1/operator/rate-card", tag = "usage",
    security(("operator_token" = [])), responses((status = 200, body = Vec<RateView>)))]
pub async fn get_rate_card(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<RateView>>, ApiError> {
    let card = state.store.rate_card().await?;
    Ok(Json(
        card.into_iter()
            .map(|r| RateView {
                category: r.category,
                country: (!r.country.is_empty()).then_some(r.country),
                currency: r.currency,
                unit_price: format_micros(r.unit_price_micros.into()),
                loaded_at: r.loaded_at,
            })
            .collect(),
    ))
}

/// Replaces the rate card with a CSV body: `category,currency,unit_price`
/// and optionally `,country` (ISO 3166 alpha-2; empty for the category's
/// default), one line per price, one currency (operators).
#[utoipa::path(operation_id = "put_rate_card", put, path = "/v1/operator/rate-card", tag = "usage",
    security(("operator_token" = [])), request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = Vec<RateView>),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_rate_card(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    body: String,
) -> Result<Json<Vec<RateView>>, ApiError> {
    usage::load_rate_card(&state, &origin, operator.actor(), &body).await?;
    get_rate_card(State(state), operator).await
}
