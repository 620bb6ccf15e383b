//! Messaging: channels, contacts and consent, acceptance of outbound messages.
//! Shared helpers for the secrets of a channel and the provider client built from them.

use secrecy::SecretString;
use waypost_cloudapi::{ClientConfig, CloudApiClient};
use waypost_crypto::Aad;
use waypost_store::messaging::ChannelRow;

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

/// A provider client for a channel, with its decrypted access token.
pub fn client_for(keys: &Keys, channel: &ChannelRow) -> anyhow::Result<CloudApiClient> {
    let token = open_secret(keys, channel, ChannelSecret::AccessToken)?;
    let base = channel.base_url.as_deref().unwrap_or(GRAPH_BASE_URL);
    let config = ClientConfig::new(base, channel.api_version.as_deref(), token)?;
    Ok(CloudApiClient::new(config)?)
}
