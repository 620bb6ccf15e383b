//! The few Stripe API calls billing makes: a Checkout session for a
//! subscription, a Billing Portal session, and a meter event. Form-encoded
//! `POST`s with the secret key as bearer token and an `Idempotency-Key`.
//! Card data never passes through here: customers enter it on Stripe's pages.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::Config;

/// A call Stripe did not answer with success.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Stripe {path}: {reason}")]
pub struct StripeError {
    pub path: &'static str,
    /// The HTTP status, when Stripe answered.
    pub status: Option<u16>,
    /// Stripe's error message or the transport error (no secrets).
    pub reason: String,
}

pub struct StripeApi {
    client: reqwest::Client,
    base: String,
    key: SecretString,
}

impl StripeApi {
    /// `None` when Stripe billing is not configured.
    pub fn from_config(config: &Config) -> Option<Self> {
        let key = config.stripe_secret_key.clone()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.stripe_timeout_ms))
            .build()
            .ok()?;
        Some(Self {
            client,
            base: config.stripe_api_base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    async fn post(
        &self,
        path: &'static str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Value, StripeError> {
        let fail = |status, reason: String| StripeError {
            path,
            status,
            reason,
        };
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| fail(None, e.without_url().to_string()))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no error message")
                .chars()
                .take(300)
                .collect();
            return Err(fail(Some(status.as_u16()), message));
        }
        Ok(body)
    }

    /// A hosted Checkout page subscribing the workspace to `price`; returns `(id, url)`.
    pub async fn checkout_session(
        &self,
        workspace_id: &str,
        plan_id: &str,
        price: &str,
        customer: Option<&str>,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<(String, String), StripeError> {
        let mut form = vec![
            ("mode", "subscription".to_owned()),
            ("line_items[0][price]", price.to_owned()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", success_url.to_owned()),
            ("cancel_url", cancel_url.to_owned()),
            ("client_reference_id", workspace_id.to_owned()),
            ("metadata[workspace_id]", workspace_id.to_owned()),
            ("metadata[plan_id]", plan_id.to_owned()),
            (
                "subscription_data[metadata][workspace_id]",
                workspace_id.to_owned(),
            ),
            ("subscription_data[metadata][plan_id]", plan_id.to_owned()),
        ];
        if let Some(c) = customer {
            form.push(("customer", c.to_owned()));
        }
        let key = format!("checkout-{}", ulid::Ulid::new());
        let v = self.post("/v1/checkout/sessions", &form, &key).await?;
        Ok((str_of(&v, "id"), str_of(&v, "url")))
    }

    /// A short-lived Billing Portal link for the customer.
    pub async fn portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, StripeError> {
        let form = [
            ("customer", customer.to_owned()),
            ("return_url", return_url.to_owned()),
        ];
        let key = format!("portal-{}", ulid::Ulid::new());
        let v = self
            .post("/v1/billing_portal/sessions", &form, &key)
            .await?;
        Ok(str_of(&v, "url"))
    }

    /// Reports `value` of a meter for the customer; `identifier` is also the
    /// idempotency key, so a retry is never counted twice.
    pub async fn meter_event(
        &self,
        event_name: &str,
        customer: &str,
        value: i64,
        identifier: &str,
        timestamp: i64,
    ) -> Result<(), StripeError> {
        let form = [
            ("event_name", event_name.to_owned()),
            ("payload[stripe_customer_id]", customer.to_owned()),
            ("payload[value]", value.to_string()),
            ("identifier", identifier.to_owned()),
            ("timestamp", timestamp.to_string()),
        ];
        self.post("/v1/billing/meter_events", &form, identifier)
            .await
            .map(|_| ())
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}
