//! API key rules: validated settings and minting, shared by the API and
//! `waypost admin api-key create`.

use chrono::{DateTime, Utc};
use waypost_core::auth::Scope;
use waypost_crypto::token;
use waypost_store::identity::ApiKeyRecord;

use crate::auth::caller::parse_cidr;

/// Validated key settings, shared by the API and `waypost admin api-key create`.
pub struct KeySpec {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeySpec {
    pub fn parse(
        name: &str,
        scopes: &[String],
        allowed_ips: &[String],
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("`name` must be 1 to 100 characters".into());
        }
        if scopes.is_empty() {
            return Err("`scopes` must name at least one scope".into());
        }
        let mut parsed = Vec::new();
        for s in scopes {
            let scope: Scope = s.parse().map_err(|_| format!("unknown scope `{s}`"))?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        if allowed_ips.len() > 50 {
            return Err("`allowed_ips` holds at most 50 entries".into());
        }
        for ip in allowed_ips {
            parse_cidr(ip)
                .ok_or_else(|| format!("`allowed_ips`: `{ip}` is not an address or CIDR range"))?;
        }
        if expires_at.is_some_and(|t| t <= now) {
            return Err("`expires_at` must be in the future".into());
        }
        Ok(Self {
            name: name.to_owned(),
            scopes: parsed,
            allowed_ips: allowed_ips.to_vec(),
            expires_at,
        })
    }

    /// Generates the key and its record; the plaintext key is returned once.
    pub fn mint(
        self,
        state_ring: &waypost_crypto::KeyRing,
        workspace_id: &str,
        created_by: Option<String>,
        now: DateTime<Utc>,
    ) -> (String, ApiKeyRecord) {
        let generated = token::generate_api_key();
        let secret = secrecy::ExposeSecret::expose_secret(&generated.secret).to_owned();
        let record = ApiKeyRecord {
            id: format!("key_{}", ulid::Ulid::new()),
            workspace_id: workspace_id.to_owned(),
            name: self.name,
            display_prefix: generated.display_prefix,
            key_hash: state_ring
                .blind_index("api_key", secret.as_bytes())
                .to_vec(),
            scopes: self
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            allowed_ips: self.allowed_ips.join(" "),
            expires_at: self.expires_at,
            created_by,
            created_at: now,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        (secret, record)
    }
}

/// Mints a key under `spec` (sessions need a recent re-authentication) and
/// stores only its keyed hash; the key itself is returned once.
pub async fn create(
    state: &crate::state::AppState,
    ctx: &super::Ctx,
    caller: &crate::auth::Caller,
    spec: KeySpec,
) -> Result<(String, ApiKeyRecord), crate::error::ApiError> {
    use crate::auth::Caller;
    crate::auth::caller::require_recent_auth(state, caller)?;
    let created_by = match caller {
        Caller::Session(s) => Some(s.user.id.clone()),
        Caller::ApiKey(k) => Some(k.key.id.clone()),
    };
    let (key, record) = spec.mint(
        &state.keys.current(),
        &ctx.workspace,
        created_by,
        state.clock.now(),
    );
    let event = waypost_core::NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "api_key.created",
    )
    .target("api_key", record.id.clone())
    .details(serde_json::json!({ "prefix": record.display_prefix, "scopes": record.scopes, "name": record.name }))
    .mail(match caller {
        Caller::Session(s) => super::notices::api_key_created(
            state,
            &s.user.email,
            &record.name,
            &record.display_prefix,
        ),
        // A key made with a key tells nobody by mail; its audit event names the parent key.
        Caller::ApiKey(_) => None,
    });
    state
        .store
        .create_api_key(&record, ctx.origin.stamp(event))
        .await?;
    Ok((key, record))
}

/// Revokes a key at once, on every node (the key cache is invalidated).
pub async fn revoke(
    state: &crate::state::AppState,
    ctx: &super::Ctx,
    id: &str,
) -> Result<(), crate::error::ApiError> {
    let event = waypost_core::NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "api_key.revoked",
    )
    .target("api_key", id.to_owned());
    state
        .store
        .revoke_api_key(
            &ctx.workspace,
            id,
            state.clock.now(),
            ctx.origin.stamp(event),
        )
        .await?;
    state.lookups.invalidate();
    Ok(())
}
