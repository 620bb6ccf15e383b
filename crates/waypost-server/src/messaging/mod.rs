//! Messaging: channels, contacts and consent, acceptance of outbound messages.
//! Shared helpers for the secrets of a channel and the provider client built from them.

pub mod accept;
pub mod identity;
pub mod inbound_content;
pub mod ingest;

use std::sync::Arc;

use secrecy::SecretString;
use waypost_cloudapi::{AddressGuard, ClientConfig, CloudApiClient};
use waypost_crypto::Aad;
use waypost_store::messaging::{ChannelRow, ContactRow};

use crate::config::Config;
use crate::guard::ssrf;
use crate::keys::Keys;

/// Meta's Graph API, for channels without their own base URL.
pub const GRAPH_BASE_URL: &str = "https://graph.facebook.com/";

/// The encrypted columns of `channels`.
#[derive(Debug, Clone, Copy)]
pub enum ChannelSecret {
    AccessToken,
    AppSecret,
    VerifyToken,
}

impl ChannelSecret {
    pub fn column(self) -> &'static str {
        match self {
            ChannelSecret::AccessToken => "access_token",
            ChannelSecret::AppSecret => "app_secret",
            ChannelSecret::VerifyToken => "verify_token",
        }
    }
}

/// Encrypts one secret of channel `id` for storage.
pub fn seal_secret(keys: &Keys, id: &str, which: ChannelSecret, value: &str) -> Vec<u8> {
    keys.current()
        .encrypt(Aad::new("channels", which.column(), id), value.as_bytes())
}

/// Decrypts one secret of a channel.
pub fn open_secret(
    keys: &Keys,
    channel: &ChannelRow,
    which: ChannelSecret,
) -> anyhow::Result<SecretString> {
    let ciphertext = match which {
        ChannelSecret::AccessToken => &channel.access_token,
        ChannelSecret::AppSecret => &channel.app_secret,
        ChannelSecret::VerifyToken => &channel.verify_token,
    };
    let plain = keys.current().decrypt(
        Aad::new("channels", which.column(), &channel.id),
        ciphertext,
    )?;
    Ok(SecretString::from(String::from_utf8(plain.to_vec())?))
}

/// Where a channel's `base_url` (and so its access token) may point: the
/// webhook SSRF rules, with internal addresses only when the operator allows
/// them (`channel_allow_private_targets`: the sandbox in a demo or tests).
/// Plain http is for sandbox channels only.
pub fn provider_policy(config: &Config, sandbox: bool) -> ssrf::TargetPolicy {
    ssrf::TargetPolicy {
        allow_http: sandbox,
        allow_private: config.channel_allow_private_targets,
    }
}

/// The same policy applied where the provider client connects: the resolver
/// drops refused addresses, IP literals are judged before connecting.
pub fn provider_guard(config: &Config) -> AddressGuard {
    let policy = provider_policy(config, true);
    AddressGuard {
        resolver: Arc::new(ssrf::GuardedResolver {
            policy,
            lookup: ssrf::system_lookup(),
        }),
        allows: Arc::new(move |ip| ssrf::check_ip(ip, policy).is_ok()),
    }
}

/// The client configuration for a channel: its base URL, version, decrypted
/// access token and the provider address guard.
pub fn client_config_for(
    keys: &Keys,
    config: &Config,
    channel: &ChannelRow,
) -> anyhow::Result<ClientConfig> {
    let token = open_secret(keys, channel, ChannelSecret::AccessToken)?;
    let base = channel.base_url.as_deref().unwrap_or(GRAPH_BASE_URL);
    let mut client = ClientConfig::new(base, channel.api_version.as_deref(), token)?;
    client.address_guard = Some(provider_guard(config));
    Ok(client)
}

/// A provider client for a channel, with its decrypted access token.
pub fn client_for(
    keys: &Keys,
    config: &Config,
    channel: &ChannelRow,
) -> anyhow::Result<CloudApiClient> {
    Ok(CloudApiClient::new(client_config_for(
        keys, config, channel,
    )?)?)
}

/// The blind index of a contact's number. The workspace is part of the input,
/// so the same number in two workspaces does not link their rows.
pub fn phone_index(keys: &Keys, workspace_id: &str, phone: &waypost_core::phone::E164) -> Vec<u8> {
    keys.current()
        .blind_index(
            "contact.phone",
            format!("{workspace_id}:{phone}").as_bytes(),
        )
        .to_vec()
}

/// A new contact row: number, name and attributes encrypted, a fresh content key.
pub fn new_contact_row(
    keys: &Keys,
    workspace_id: &str,
    phone: &waypost_core::phone::E164,
    name: Option<&str>,
    attributes: Option<&serde_json::Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> ContactRow {
    let identity = identity::Identity {
        phone: Some(phone.clone()),
        ..identity::Identity::default()
    };
    new_identified_contact(keys, workspace_id, &identity, name, attributes, now)
}

/// A new contact row for whatever identifies the person (a phone, a BSUID, or both).
pub fn new_identified_contact(
    keys: &Keys,
    workspace_id: &str,
    who: &identity::Identity,
    name: Option<&str>,
    attributes: Option<&serde_json::Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> ContactRow {
    let id = waypost_core::ContactId::new().to_string();
    let ring = keys.current();
    let seal = |column: &str, bytes: &[u8]| ring.encrypt(Aad::new("contacts", column, &id), bytes);
    let mut row = ContactRow {
        phone_index: None,
        phone: None,
        user_id_index: None,
        user_id: None,
        parent_user_id_index: None,
        parent_user_id: None,
        username: None,
        name: name.map(|n| seal("name", n.as_bytes())),
        attributes: attributes.map(|a| {
            seal(
                "attributes",
                &serde_json::to_vec(a).expect("JSON serialises"),
            )
        }),
        content_key: Some(
            waypost_crypto::ContentKey::generate()
                .wrap(&ring, Aad::new("contacts", "content_key", &id)),
        ),
        consent_marketing: None,
        consent_utility: None,
        consent_authentication: None,
        restricted: false,
        last_inbound_at: None,
        language: None,
        time_zone: None,
        created_at: now,
        updated_at: now,
        workspace_id: workspace_id.to_owned(),
        id,
    };
    identity::apply_identity(keys, &mut row, who);
    row
}

/// A contact's number, decrypted; `None` for a contact known only by BSUID.
pub fn contact_phone(
    keys: &Keys,
    contact: &ContactRow,
) -> anyhow::Result<Option<waypost_core::phone::E164>> {
    let Some(sealed) = &contact.phone else {
        return Ok(None);
    };
    let plain = keys
        .current()
        .decrypt(Aad::new("contacts", "phone", &contact.id), sealed)?;
    Ok(Some(waypost_core::phone::E164::parse(
        std::str::from_utf8(&plain)?,
    )?))
}

/// A contact's content key; `None` once shredded.
pub fn content_key(
    keys: &Keys,
    contact: &ContactRow,
) -> anyhow::Result<Option<waypost_crypto::ContentKey>> {
    contact
        .content_key
        .as_deref()
        .map(|wrapped| {
            waypost_crypto::ContentKey::unwrap(
                &keys.current(),
                Aad::new("contacts", "content_key", &contact.id),
                wrapped,
            )
        })
        .transpose()
        .map_err(Into::into)
}
