-- Passwordless sign-in with a discoverable passkey (no email first) is a
-- ceremony of its own kind.

ALTER TABLE webauthn_challenges DROP CONSTRAINT webauthn_challenges_kind_check;
ALTER TABLE webauthn_challenges ADD CONSTRAINT webauthn_challenges_kind_check
    CHECK (kind IN ('register', 'authenticate', 'login', 'discover'));
