//! Simulated users as the 2026 Cloud API sees them: each has a phone (the
//! sandbox's key), a business-scoped user id (BSUID) derived from the seed
//! and regenerated when the number changes, an optional parent BSUID and
//! username, and a phone that webhooks may withhold. Sends may address a
//! user by phone or by BSUID; both resolve here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use waypost_cloudapi::webhook::{Profile, WebhookContact};

use crate::config::UserConfig;
use crate::state::{Inner, UserState};

/// Meta keeps a phone shareable for 30 days after this number contacted it.
pub const PHONE_SHARE_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// ISO 3166 alpha-2 country of a digits-only phone, by calling code; `ZZ`
/// (user-assigned) for codes the sandbox does not know.
pub fn country_of(phone: &str) -> &'static str {
    const CODES: &[(&str, &str)] = &[
        ("1", "US"),
        ("7", "RU"),
        ("20", "EG"),
        ("27", "ZA"),
        ("31", "NL"),
        ("33", "FR"),
        ("34", "ES"),
        ("39", "IT"),
        ("44", "GB"),
        ("49", "DE"),
        ("52", "MX"),
        ("55", "BR"),
        ("61", "AU"),
        ("62", "ID"),
        ("81", "JP"),
        ("91", "IN"),
        ("234", "NG"),
        ("351", "PT"),
    ];
    CODES
        .iter()
        .filter(|(code, _)| phone.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map_or("ZZ", |(_, cc)| cc)
}

/// A stable BSUID-shaped id: `CC.` (or `CC.ENT.` for a parent) and 20 digits.
pub fn derive_user_id(seed: u64, phone: &str, generation: u32, parent: bool) -> String {
    let digest = Sha256::digest(format!("{seed}:{phone}:{generation}:{parent}"));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 20 digits starting with 1, like Meta's examples.
    let n = u128::from(u64::from_be_bytes(first)) % 10u128.pow(19) + 10u128.pow(19);
    let cc = country_of(phone);
    if parent {
        format!("{cc}.ENT.{n}")
    } else {
        format!("{cc}.{n}")
    }
}

impl UserState {
    /// A user with its ids; `generation` counts BSUID changes.
    pub fn new(seed: u64, parents: bool, phone: &str, config: UserConfig, generation: u32) -> Self {
        let user_id = config
            .user_id
            .clone()
            .unwrap_or_else(|| derive_user_id(seed, phone, generation, false));
        Self {
            parent_user_id: parents.then(|| derive_user_id(seed, phone, generation, true)),
            user_id,
            generation,
            config,
            last_inbound: HashMap::new(),
            sent_to_phone: HashMap::new(),
        }
    }

    /// Whether webhooks for `number_id` may carry this user's phone.
    pub fn phone_visible(&self, number_id: &str, now: Instant) -> bool {
        !self.config.phone_withheld
            || self
                .sent_to_phone
                .get(number_id)
                .is_some_and(|t| now.duration_since(*t) < PHONE_SHARE_WINDOW)
    }

    /// The `contacts[]` entry of a 2026 webhook; `username` is left out on
    /// `sent` statuses as Meta does.
    pub fn contact(&self, phone: &str, visible: bool, with_username: bool) -> WebhookContact {
        WebhookContact {
            profile: Some(Profile {
                name: self.display_name(),
                username: self.config.username.clone().filter(|_| with_username),
            }),
            wa_id: visible.then(|| phone.to_owned()),
            user_id: Some(self.user_id.clone()),
            parent_user_id: self.parent_user_id.clone(),
        }
    }

    pub fn display_name(&self) -> String {
        self.config
            .name
            .clone()
            .unwrap_or_else(|| "Sandbox User".into())
    }
}

impl Inner {
    /// The user with this phone, created on first sight.
    pub fn user(&mut self, phone: &str) -> &mut UserState {
        let (seed, parents) = (self.seed, self.parent_user_ids);
        let by_user_id = &mut self.by_user_id;
        self.users.entry(phone.to_owned()).or_insert_with(|| {
            let u = UserState::new(seed, parents, phone, UserConfig::default(), 0);
            index(by_user_id, &u, phone);
            u
        })
    }

    /// Replaces a user's settings, keeping its window and history; a new
    /// fixed `user_id` re-keys it.
    pub fn configure_user(&mut self, phone: &str, config: UserConfig) {
        let (seed, parents) = (self.seed, self.parent_user_ids);
        let old = self.user(phone).clone();
        let mut fresh = UserState::new(seed, parents, phone, config, old.generation);
        fresh.last_inbound = old.last_inbound;
        fresh.sent_to_phone = old.sent_to_phone;
        self.by_user_id.remove(&old.user_id);
        index(&mut self.by_user_id, &fresh, phone);
        self.users.insert(phone.to_owned(), fresh);
    }

    /// The phone of the user a send or control call names: digits are a
    /// phone, `CC.…` a BSUID or parent BSUID of a known user.
    pub fn resolve(&mut self, addressee: &str) -> Option<String> {
        if is_user_id(addressee) {
            return self.by_user_id.get(addressee).cloned();
        }
        let phone: String = addressee.chars().filter(char::is_ascii_digit).collect();
        if phone.is_empty() {
            return None;
        }
        self.user(&phone);
        Some(phone)
    }

    /// Moves a user to a new phone: a new BSUID (and parent), the old ids
    /// forgotten. Returns (old user, new user); None for an unknown user or
    /// a phone already taken.
    pub fn change_number(
        &mut self,
        old_phone: &str,
        new_phone: &str,
    ) -> Option<(UserState, UserState)> {
        if old_phone == new_phone || self.users.contains_key(new_phone) {
            return None;
        }
        let old = self.users.remove(old_phone)?;
        self.forget(&old);
        let mut config = old.config.clone();
        config.user_id = None;
        let mut fresh = UserState::new(
            self.seed,
            self.parent_user_ids,
            new_phone,
            config,
            old.generation + 1,
        );
        fresh.last_inbound = old.last_inbound.clone();
        index(&mut self.by_user_id, &fresh, new_phone);
        self.users.insert(new_phone.to_owned(), fresh.clone());
        Some((old, fresh))
    }

    /// Regenerates a user's BSUID (and parent) without a number change.
    pub fn change_user_id(&mut self, phone: &str) -> Option<(UserState, UserState)> {
        let old = self.users.get(phone)?.clone();
        self.forget(&old);
        let mut config = old.config.clone();
        config.user_id = None;
        let mut fresh = UserState::new(
            self.seed,
            self.parent_user_ids,
            phone,
            config,
            old.generation + 1,
        );
        fresh.last_inbound = old.last_inbound.clone();
        fresh.sent_to_phone = old.sent_to_phone.clone();
        index(&mut self.by_user_id, &fresh, phone);
        self.users.insert(phone.to_owned(), fresh.clone());
        Some((old, fresh))
    }

    fn forget(&mut self, user: &UserState) {
        self.by_user_id.remove(&user.user_id);
        if let Some(p) = &user.parent_user_id {
            self.by_user_id.remove(p);
        }
    }
}

fn index(by_user_id: &mut HashMap<String, String>, user: &UserState, phone: &str) {
    by_user_id.insert(user.user_id.clone(), phone.to_owned());
    if let Some(p) = &user.parent_user_id {
        by_user_id.insert(p.clone(), phone.to_owned());
    }
}

/// `CC.` followed by alphanumerics (and `ENT.` for a parent).
pub fn is_user_id(s: &str) -> bool {
    let Some((cc, rest)) = s.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    cc.len() == 2
        && cc.bytes().all(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.len() <= 128
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_shaped_and_change_with_generation() {
        let a = derive_user_id(1, "16505551234", 0, false);
        assert_eq!(a, derive_user_id(1, "16505551234", 0, false));
        assert!(a.starts_with("US.") && a.len() == 23, "{a}");
        assert!(is_user_id(&a));
        assert_ne!(a, derive_user_id(1, "16505551234", 1, false));
        let p = derive_user_id(1, "447700900123", 0, true);
        assert!(p.starts_with("GB.ENT.") && is_user_id(&p), "{p}");
        assert_eq!(country_of("2348012345678"), "NG");
        assert_eq!(country_of("999"), "ZZ");
    }

    #[test]
    fn user_id_syntax() {
        assert!(is_user_id("US.13491208655302741918"));
        assert!(is_user_id("US.ENT.11815799212886844830"));
        for bad in [
            "16505551234",
            "us.123",
            "USA.1",
            "US.",
            "US.12-3",
            "US.ENT.",
        ] {
            assert!(!is_user_id(bad), "{bad}");
        }
    }

    #[test]
    fn resolve_by_phone_or_user_id_and_change_number() {
        let mut inner = Inner::new(&crate::SandboxConfig::default());
        let phone = inner.resolve("+1 650 555 1234").unwrap();
        let bsuid = inner.user(&phone).user_id.clone();
        assert_eq!(inner.resolve(&bsuid).as_deref(), Some("16505551234"));
        assert_eq!(inner.resolve("US.1"), None);
        let (old, new) = inner.change_number("16505551234", "16505550000").unwrap();
        assert_ne!(old.user_id, new.user_id);
        assert_eq!(inner.resolve(&old.user_id), None);
        assert_eq!(inner.resolve(&new.user_id).as_deref(), Some("16505550000"));
    }
}
