//! The rules a new password must pass, following NIST SP 800-63B: a length
//! floor and ceiling, no known-breached/common passwords, and an estimate of
//! guessability (zxcvbn) that also knows the member's own email and name. No
//! composition rules ("one symbol, one digit"): they make passwords harder to
//! remember without making them harder to guess.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Twelve characters keeps online and offline guessing expensive even for
/// passphrases of ordinary words.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Generous enough for any password manager; the cap bounds hashing work.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// zxcvbn score 3 means "safely unguessable: moderate protection from
/// offline slow-hash scenarios" (more than 10^8 guesses).
const MIN_ZXCVBN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// User inputs (emails, names) shorter than this are only refused as the
/// whole password, not as a part of it, so a member called "Ann" can still
/// use a passphrase containing "banner".
const MIN_CONTAINED_INPUT_CHARS: usize = 6;

/// The most common passwords from public breach corpora (the head of the
/// Xato/SecLists 10k list, as shipped in zxcvbn's frequency data), lowercase.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Why a password was refused. Messages are shown to the member and never
/// contain the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("password must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("this password is one of the most commonly used passwords; choose another")]
    Common,
    #[error("password must not contain your email address or name")]
    ContainsPersonalInfo,
    #[error("password is too easy to guess. {feedback}")]
    TooWeak { feedback: String },
}

/// Checks a new password. `user_inputs` are things an attacker targeting this
/// member would try first: their email address, name, the workspace name.
pub fn check_password(password: &str, user_inputs: &[&str]) -> Result<(), PasswordRejection> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejection::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejection::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    if is_common(password) {
        return Err(PasswordRejection::Common);
    }
    let inputs = expand_user_inputs(user_inputs);
    if contains_personal_info(password, &inputs) {
        return Err(PasswordRejection::ContainsPersonalInfo);
    }
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(password, &input_refs);
    if entropy.score() < MIN_ZXCVBN_SCORE {
        return Err(PasswordRejection::TooWeak {
            feedback: feedback_text(entropy.feedback()),
        });
    }
    Ok(())
}

/// Common-list membership, also after dropping trailing digits and symbols,
/// because "Password2024!" is how people satisfy length rules.
fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    let stripped = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    COMMON_PASSWORDS.contains(lower.as_str())
        || (!stripped.is_empty() && COMMON_PASSWORDS.contains(stripped))
}

/// Each input, lowercased, plus its pieces split at `@`, `.`, `+`, `-`, `_`
/// and spaces, so zxcvbn recognises "alice" from "alice.smith@example.com".
fn expand_user_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for input in user_inputs {
        let lower = input.trim().to_lowercase();
        if lower.is_empty() {
            continue;
        }
        for piece in lower.split(|c: char| "@.+-_".contains(c) || c.is_whitespace()) {
            if piece.chars().count() >= 3 && !out.iter().any(|o| o == piece) {
                out.push(piece.to_string());
            }
        }
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}

fn contains_personal_info(password: &str, inputs: &[String]) -> bool {
    let lower = password.to_lowercase();
    let stripped = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    inputs.iter().any(|input| {
        lower == *input
            || stripped == input
            || (input.chars().count() >= MIN_CONTAINED_INPUT_CHARS
                && lower.contains(input.as_str()))
    })
}

fn feedback_text(feedback: Option<&zxcvbn::feedback::Feedback>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(feedback) = feedback {
        if let Some(warning) = feedback.warning() {
            parts.push(warning.to_string());
        }
        parts.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    if parts.is_empty() {
        parts.push("Add more words that are less common.".to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_list_is_substantial_and_normalised() {
        assert!(COMMON_PASSWORDS.len() >= 1000, "{}", COMMON_PASSWORDS.len());
        for entry in COMMON_PASSWORDS.iter() {
            assert_eq!(entry.to_lowercase(), *entry);
            assert!(!entry.chars().any(char::is_whitespace), "{entry:?}");
        }
        for known in [
            "123456", "password", "qwerty", "iloveyou", "dragon", "letmein",
        ] {
            assert!(COMMON_PASSWORDS.contains(known), "{known}");
        }
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        assert_eq!(
            check_password("short", &[]),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        // 11 four-byte characters are 44 bytes but still too short.
        assert_eq!(
            check_password(&"🦀".repeat(11), &[]),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        let long: String = "Zq8#mV2!pL5x".repeat(86)[..1025].to_string();
        assert_eq!(long.chars().count(), 1025);
        assert_eq!(
            check_password(&long, &[]),
            Err(PasswordRejection::TooLong { max: 1024 })
        );
        assert_eq!(check_password(&long[..1024], &[]), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_even_with_digits_appended() {
        assert_eq!(
            check_password("password123456", &[]),
            Err(PasswordRejection::Common)
        );
        assert_eq!(
            check_password("Iloveyou2024!!", &[]),
            Err(PasswordRejection::Common)
        );
        assert_eq!(
            check_password("QWERTYUIOP123", &[]),
            Err(PasswordRejection::Common)
        );
        assert_eq!(
            check_password("123456789012", &[]),
            Err(PasswordRejection::Common)
        );
    }

    #[test]
    fn weak_but_uncommon_passwords_get_zxcvbn_feedback() {
        match check_password("aaaaaaaaaaaaaaaaaaaa", &[]) {
            Err(PasswordRejection::TooWeak { feedback }) => {
                assert!(!feedback.is_empty());
            }
            other => panic!("expected TooWeak, got {other:?}"),
        }
        assert!(matches!(
            check_password("abcdefghijklmnopqrs", &[]),
            Err(PasswordRejection::TooWeak { .. })
        ));
    }

    #[test]
    fn strong_passwords_are_accepted() {
        assert_eq!(check_password("correct horse battery staple", &[]), Ok(()));
        assert_eq!(
            check_password("plinth marmalade oxygen wistful", &[]),
            Ok(())
        );
        assert_eq!(check_password("k9#Vq2!xTz7@", &[]), Ok(()));
        assert_eq!(check_password("Xf4pQ8rLm2Zw", &[]), Ok(()));
    }

    #[test]
    fn the_members_own_details_are_refused() {
        let email = "alice.smithson@example.com";
        assert_eq!(
            check_password(email, &[email]),
            Err(PasswordRejection::ContainsPersonalInfo)
        );
        assert_eq!(
            check_password("Alice.Smithson@Example.com", &[email]),
            Err(PasswordRejection::ContainsPersonalInfo)
        );
        assert_eq!(
            check_password("smithson2024!!", &[email]),
            Err(PasswordRejection::ContainsPersonalInfo)
        );
        // Without the user input the same email is merely unusual text.
        assert_eq!(check_password(email, &[]), Ok(()));
        // A short name does not veto unrelated passphrases containing it.
        assert_eq!(
            check_password("banner plinth oxygen wistful", &["Ann"]),
            Ok(())
        );
    }

    #[test]
    fn messages_never_contain_the_password() {
        let attempts = [
            "tiny",
            "password123456",
            "aaaaaaaaaaaaaaaaaaaa",
            "alice.smithson@example.com",
        ];
        for attempt in attempts {
            let err = check_password(attempt, &["alice.smithson@example.com"]).unwrap_err();
            let message = err.to_string();
            assert!(!message.contains(attempt), "{message}");
            assert!(!format!("{err:?}").contains(attempt));
        }
    }
}
