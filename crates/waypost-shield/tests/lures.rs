//! The shipped shield against the lure kinds of issue #24 and against ordinary messages that
//! look a little like them. Every message here was written for this test (none comes from a
//! data set, the synthetic generator or the held-out file), so a model that only memorised its
//! training rows fails it.

use waypost_shield::{ScanInput, Shield};

fn check(shield: &Shield, texts: &[&str], positive: bool) {
    let wrong: Vec<String> = texts
        .iter()
        .map(|t| (t, shield.scan(&ScanInput::text(*t))))
        .filter(|(_, v)| v.label.is_positive() != positive)
        .map(|(t, v)| format!("{t} => {} ({:.2})", v.label, v.score))
        .collect();
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn flags_each_lure_kind() {
    check(
        &Shield::embedded(),
        &[
            // Account threat with a link to an odd domain.
            "Your Barclays account has been suspended, to unlock click http://barc-unlock-desk.top/x",
            "Notice: your Kotak net banking access is blocked. Unlock it here: kotak-relogin.site",
            // Brand alert with a shortener and re-activation.
            "Lloyds alert 44120, please follow https://bit.ly/4kLmQz and re-activate your card",
            // Device ID expiring, shortener to update.
            "Your Apple ID expires today, tap https://tinyurl.com/y8a2kq to update",
            "Your Apple 1D expires today, tap is.gd/Qw7zPk to update",
            // Wallet KYC with a number to call and a deadline.
            "Dear customer your PhonePe KYC has been suspended, call 9123405678 or your account will be blocked within 24 hr",
            "Dear customer your PAY-TM KYC is pending, call 8877012345 or your wallet will be closed within 24 hours",
            // Advance-fee lures.
            "I have 7.3 million dollars to transfer to you, reply with your full name and address",
            "Good day, I am the lawyer of a late client who left 12.5 million USD with no next of kin. You can receive it as beneficiary",
            // Promotions with a number to call.
            "Big discount on roof repairs this week only, call 0800 612 4431 for a free quote",
            "Get a personal loan at the lowest rates, instant approval, call 9870012233 now",
            // Look-alike, raw IP and '@' links.
            "Your PayPal payment was declined, confirm your details at paypa1-resolve.com",
            "Security notice: verify your bank login at http://203.0.113.7/secure/login",
            "Update your Netflix billing: https://netflix.com@billing-fix.click/pay",
        ],
        true,
    );
}

#[test]
fn passes_ordinary_messages() {
    check(
        &Shield::embedded(),
        &[
            "see you at 6",
            "ok cool, text me when you're outside",
            "Did you feed the dog before you left?",
            "Your Amazon parcel will arrive tomorrow. Track it at https://www.amazon.co.uk/gp/your-account/order-history",
            "Royal Mail: your parcel was delivered today at 11:42 and left with your neighbour.",
            "DHL: your shipment will be delivered on Friday. Details at https://www.dhl.com/gb-en/home/tracking.html",
            "482913 is your Microsoft verification code.",
            "Your Google verification code is 551903",
            "Your dentist appointment is on Monday at 9:15. Call 020 7946 0321 if you need to change it.",
            "Happy anniversary you two! Dinner on us next time",
            "Can you pick up bread on the way home?",
            "The match starts at 8, come round at half 7",
            "Thanks for the birthday card, it made my day",
        ],
        false,
    );
}

#[test]
fn threshold_comes_from_the_model() {
    let s = Shield::embedded();
    assert_eq!(s.threshold(), s.model().threshold);
    assert!((0.05..=0.9).contains(&s.threshold()), "{}", s.threshold());
}
