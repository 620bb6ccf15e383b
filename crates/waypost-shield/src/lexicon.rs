//! Lure vocabulary: the words and phrases that phishing and spam campaigns reuse whatever their
//! brand or wording (account threats, verification demands, urgency, money lures, calls to
//! action), in English plus the few other languages cheap to cover. The 2010s SMS corpora hardly
//! contain modern phishing wording, so a word model alone never learns "suspended" or "KYC";
//! these classes become named features the model can weigh, and drive the rule layer.
//! Words are matched after undoing common obfuscation: leet digits (`acc0unt`, `Apple 1D`) and
//! split brand names (`PAY-TM`, `P.a.y.t.m`).

use std::collections::HashMap;
use std::sync::LazyLock;

/// Word classes, one bit each.
pub(crate) const THREAT: u16 = 1;
pub(crate) const VERIFY: u16 = 1 << 1;
pub(crate) const URGENT: u16 = 1 << 2;
pub(crate) const MONEY: u16 = 1 << 3;
pub(crate) const PRIZE: u16 = 1 << 4;
pub(crate) const ACCOUNT: u16 = 1 << 5;
pub(crate) const PROMO: u16 = 1 << 6;
pub(crate) const CTA: u16 = 1 << 7;
pub(crate) const BRAND: u16 = 1 << 8;
pub(crate) const DELIVERY: u16 = 1 << 9;
pub(crate) const ADVANCE_FEE: u16 = 1 << 10;
pub(crate) const GREETING: u16 = 1 << 11;
/// "new number", "lost my phone": the family-emergency scam's opening.
pub(crate) const NEW_NUMBER: u16 = 1 << 12;

const CLASS_NAMES: [&str; 13] = [
    "threat",
    "verify",
    "urgent",
    "money",
    "prize",
    "account",
    "promo",
    "cta",
    "brand",
    "delivery",
    "advance_fee",
    "generic_greeting",
    "new_number",
];

const WORDS: &[(u16, &str)] = &[
    (
        THREAT,
        "suspended suspend suspension blocked block locked lock deactivated deactivate disabled \
         frozen freeze freezed closed restricted limited terminated disconnected disconnection \
         deleted expire expires expired expiring unusual unauthorized unauthorised penalty \
         overdue suspicious violation violated compromised failed declined cancelled \
         bloqueada bloqueado suspendida suspendido suspensa suspenso bloqué bloquée suspendu \
         gesperrt diblokir ditutup diblokir bandh band",
    ),
    (
        VERIFY,
        "verify verification verified confirm confirmation update updated unlock reactivate \
         activate restore validate validation kyc ekyc pan aadhaar login signin authenticate \
         redeem reschedule secure identity details verifique verificar confirme atualize \
         atualizar cadastro vérifier vérifiez confirmer bestätigen bestätigen verifikasi \
         perbarui",
    ),
    (
        URGENT,
        "urgent urgently immediately today tonight asap hours hrs hr final last now quickly \
         promptly deadline within avoid urgente inmediatamente imediatamente urgence sofort \
         segera turant",
    ),
    (
        MONEY,
        "million millions billion dollars usd gbp eur euros pounds cash loan loans lakh lakhs \
         crore bitcoin btc crypto invest investment profit returns funds fund transfer \
         refund compensation salary income earn earning bonus reward rewards cashback rs inr",
    ),
    (
        PRIZE,
        "won win winner winners prize prizes lottery lotto jackpot award awarded selected \
         congratulations congrats lucky draw claim gift voucher premio ganador prêmio \
         gagnant gewinn hadiah",
    ),
    (
        ACCOUNT,
        "account accounts card debit credit wallet netbanking banking bank password pin otp \
         id sim upi a/c ac iban cuenta conta compte konto rekening akun khata",
    ),
    (
        PROMO,
        "offer offers discount sale deal deals off cheap lowest save savings subscribe \
         exclusive limited quote insurance promo promotion order book booking oferta \
         descuento promoção offre angebot",
    ),
    (
        CTA,
        "call ring dial contact whatsapp text txt sms reply click tap visit follow open \
         download install send llame ligue appelez anrufen hubungi",
    ),
    (
        BRAND,
        "paypal amazon apple icloud netflix google microsoft office365 outlook facebook \
         instagram whatsapp paytm phonepe gpay sbi hdfc icici axis kotak airtel jio vodafone \
         dhl fedex ups usps royalmail evri hermes dpd hmrc irs chase wellsfargo citibank \
         hsbc barclays lloyds natwest santander halifax revolut monzo coinbase binance \
         metamask ebay sparkasse caixa laposte correos postnl",
    ),
    (
        DELIVERY,
        "parcel package shipment delivery deliver delivered courier customs redelivery \
         tracking paquete encomenda colis paket",
    ),
    (
        ADVANCE_FEE,
        "barrister beneficiary inheritance kin widow diplomat consignment dormant deceased \
         proposal partnership confidential",
    ),
];

static LEXICON: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    let mut m: HashMap<&'static str, u16> = HashMap::new();
    for &(class, words) in WORDS {
        for w in words.split_whitespace() {
            *m.entry(w).or_default() |= class;
        }
    }
    m
});

fn lookup(w: &str) -> u16 {
    LEXICON.get(w).copied().unwrap_or(0)
}

/// Leet digits back to letters (`acc0unt` → `account`, `1d` → `id`).
fn unleet(w: &str) -> Option<String> {
    if !w.bytes().any(|b| b.is_ascii_digit()) || !w.bytes().any(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let s: String = w
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => 'i',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '7' => 't',
            '8' => 'b',
            '$' => 's',
            '@' => 'a',
            other => other,
        })
        .collect();
    if lookup(&s) != 0 {
        return Some(s);
    }
    // `1` is also an `l` (`paypa1`).
    let l = s.replace('i', "l");
    (lookup(&l) != 0).then_some(l)
}

/// What the lexicon found in one message.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Lexicon {
    pub classes: u16,
    /// De-obfuscated forms (`paytm`, `account`) to add to the text the model sees.
    pub recovered: Vec<String>,
    /// "within 24 hours", "expires today": a deadline.
    pub deadline: bool,
}

impl Lexicon {
    pub fn has(&self, class: u16) -> bool {
        self.classes & class != 0
    }
}

/// Scans `text` (URLs and phone numbers already cut out).
pub(crate) fn scan(text: &str) -> Lexicon {
    let mut out = Lexicon::default();
    let lower = text.to_lowercase();
    // Words keep inner digits, `/` and `@` so leet forms and `a/c` survive.
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '/' || c == '@' || c == '$'))
        .map(|w| w.trim_matches(|c| c == '/' || c == '@' || c == '$'))
        .filter(|w| !w.is_empty())
        .collect();
    if lower.contains(['£', '$', '€', '₹']) {
        out.classes |= MONEY;
    }
    let mut prev = "";
    let mut joined = String::new();
    for (i, w) in words.iter().enumerate() {
        let mut c = lookup(w);
        if c == 0
            && let Some(fixed) = unleet(w)
        {
            c = lookup(&fixed);
            out.recovered.push(fixed);
        }
        // Split brand names: "pay-tm", "p.a.y.t.m", "wells fargo".
        if c == 0 && !prev.is_empty() && prev.len() + w.len() <= 12 {
            joined.clear();
            joined.push_str(prev);
            joined.push_str(w);
            if lookup(&joined) & BRAND != 0 {
                c |= BRAND;
                out.recovered.push(joined.clone());
            }
        }
        if w.len() == 1 && c == 0 && prev.len() != 1 {
            let run: String = words[i..]
                .iter()
                .take_while(|x| x.len() == 1)
                .take(12)
                .copied()
                .collect();
            if run.len() >= 3 && lookup(&run) != 0 {
                c |= lookup(&run);
                out.recovered.push(run);
            }
        }
        match (prev, *w) {
            ("dear", "customer" | "user" | "member" | "client" | "sir" | "beneficiary")
            | ("valued", "customer") => c |= GREETING,
            ("next", "of") | ("of", "kin") | ("dormant", _) => c |= ADVANCE_FEE,
            ("million" | "millions", "dollars" | "usd" | "pounds" | "euros") => c |= ADVANCE_FEE,
            ("re", "activate" | "activation") | ("log", "in") | ("sign", "in") => c |= VERIFY,
            ("on", "hold") => c |= THREAT,
            ("new", "number" | "phone" | "no") | ("my", "phone") => c |= NEW_NUMBER,
            ("expires" | "expire" | "expiring" | "blocked" | "suspended", "today" | "tonight") => {
                out.deadline = true
            }
            _ => {}
        }
        if matches!(
            *w,
            "hours" | "hrs" | "hr" | "hour" | "days" | "minutes" | "mins"
        ) && prev.bytes().all(|b| b.is_ascii_digit())
            && !prev.is_empty()
            && i >= 2
            && matches!(words[i - 2], "within" | "in" | "next")
        {
            out.deadline = true;
        }
        out.classes |= c;
        prev = w;
    }
    out
}

/// Named features for the model: one per class present, plus combinations that mark a lure.
pub(crate) fn signals(lex: &Lexicon, link: bool, phone: bool, out: &mut Vec<String>) {
    for (bit, name) in CLASS_NAMES.iter().enumerate() {
        if lex.classes & (1 << bit) != 0 {
            out.push(format!("lex:{name}"));
        }
    }
    if lex.deadline {
        out.push("lex:deadline".into());
    }
    let threat = lex.has(THREAT) || lex.has(VERIFY);
    let mut combo = |on: bool, name: &str| {
        if on {
            out.push(format!("lure:{name}"));
        }
    };
    combo(lex.has(THREAT) && lex.has(ACCOUNT), "account_threat");
    combo(threat && link, "threat_link");
    combo(threat && phone, "threat_phone");
    combo(threat && (lex.has(URGENT) || lex.deadline), "urgent_threat");
    combo(
        (lex.has(MONEY) || lex.has(PRIZE)) && (link || phone || lex.has(CTA)),
        "money_contact",
    );
    combo(lex.has(ADVANCE_FEE) && lex.has(MONEY), "advance_fee");
    combo(lex.has(NEW_NUMBER) && lex.has(MONEY), "new_number_money");
    combo(lex.has(PROMO) && phone, "promo_phone");
    combo(lex.has(BRAND) && link, "brand_link");
    combo(lex.has(DELIVERY) && link, "delivery_link");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_threats_and_deadlines() {
        let l = scan(
            "Dear customer your KYC has been suspended, call or your account will be blocked within 24 hr",
        );
        assert!(l.has(THREAT) && l.has(VERIFY) && l.has(ACCOUNT) && l.has(GREETING));
        assert!(l.deadline);
        assert!(scan("Your Apple ID expires today").deadline);
    }

    #[test]
    fn undoes_obfuscation() {
        let l = scan("Your PAY-TM acc0unt");
        assert!(l.has(BRAND) && l.has(ACCOUNT), "{l:?}");
        assert!(l.recovered.contains(&"paytm".to_string()));
        assert!(l.recovered.contains(&"account".to_string()));
        assert!(
            scan("Apple 1D locked")
                .recovered
                .contains(&"id".to_string())
        );
        assert!(scan("P.a.y.p.a.l").has(BRAND));
    }

    #[test]
    fn ordinary_chat_has_no_lure_classes() {
        let l = scan("see you at 6, bring the kids");
        assert_eq!(
            l.classes & (THREAT | VERIFY | MONEY | PRIZE | ADVANCE_FEE),
            0
        );
        let mut s = Vec::new();
        signals(&l, false, false, &mut s);
        assert!(s.iter().all(|x| !x.starts_with("lure:")), "{s:?}");
    }

    #[test]
    fn advance_fee_combination() {
        let l = scan("I have 7.3 million dollars to transfer to you");
        let mut s = Vec::new();
        signals(&l, false, false, &mut s);
        assert!(s.contains(&"lure:advance_fee".to_string()), "{s:?}");
    }
}
