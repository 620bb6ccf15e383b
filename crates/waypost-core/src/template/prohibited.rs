//! The prohibited-content check of templates: named categories (after Meta's
//! commerce and business policies) with term lists, matched on whole words
//! after normalising case, punctuation and common digit-for-letter spellings
//! (`c0caine`). Operators choose categories and add terms in configuration.
//!
//! A match names only the category, never the term or the text around it.

use serde_json::Value;

/// The built-in categories and their terms.
pub const BUILTIN_PROHIBITED: &[(&str, &[&str])] = &[
    (
        "weapons",
        &[
            "firearm",
            "firearms",
            "handgun",
            "handguns",
            "ammunition",
            "ammo",
            "assault rifle",
            "ghost gun",
            "gun parts",
            "silencer",
            "explosives",
            "grenade",
        ],
    ),
    (
        "drugs",
        &[
            "cocaine",
            "heroin",
            "methamphetamine",
            "crystal meth",
            "fentanyl",
            "mdma",
            "lsd",
            "ecstasy pills",
            "magic mushrooms",
            "oxycodone",
            "xanax without prescription",
            "buy weed",
            "marijuana",
            "cannabis",
        ],
    ),
    (
        "gambling",
        &[
            "online casino",
            "casino bonus",
            "sports betting",
            "place your bets",
            "bet now",
            "free spins",
            "slot machine",
            "slots jackpot",
        ],
    ),
    (
        "adult",
        &[
            "porn",
            "porno",
            "xxx",
            "escort service",
            "escorts",
            "sex chat",
            "nude pics",
            "nudes",
            "camgirls",
        ],
    ),
    (
        "tobacco",
        &[
            "cigarettes",
            "cigars",
            "vape",
            "vapes",
            "e-cigarette",
            "e-liquid",
            "nicotine pouches",
        ],
    ),
    (
        "counterfeit",
        &[
            "counterfeit",
            "replica watches",
            "replica bags",
            "fake id",
            "fake passport",
            "fake documents",
        ],
    ),
    // The categories below carry phrases in the languages of Waypost's main
    // regions (English, Spanish, Portuguese, French, German, Italian,
    // Indonesian): phrases rather than single words, so news and care
    // messages that mention a subject are not refused for it.
    (
        "hate",
        &[
            "subhuman",
            "subhumans",
            "inferior race",
            "master race",
            "racial purity",
            "ethnic cleansing",
            "white power",
            "white supremacy",
            "race war",
            "sieg heil",
            "heil hitler",
            "raza inferior",
            "limpieza étnica",
            "supremacía blanca",
            "raça inferior",
            "limpeza étnica",
            "supremacia branca",
            "race inférieure",
            "nettoyage ethnique",
            "suprématie blanche",
            "untermensch",
            "untermenschen",
            "minderwertige rasse",
            "ethnische säuberung",
            "rassenreinheit",
            "razza inferiore",
            "pulizia etnica",
            "ras rendah",
            "pembersihan etnis",
        ],
    ),
    (
        "violence",
        &[
            "i will kill you",
            "we will kill you",
            "kill yourself",
            "bomb threat",
            "make a bomb",
            "pipe bomb",
            "mass shooting",
            "beheading",
            "hire a hitman",
            "hitman for hire",
            "murder for hire",
            "acid attack",
            "te voy a matar",
            "vamos a matarte",
            "bomba casera",
            "vou te matar",
            "matador de aluguel",
            "bomba caseira",
            "je vais te tuer",
            "tueur à gages",
            "ich bringe dich um",
            "auftragsmörder",
            "rohrbombe",
            "ti ammazzo",
            "ti uccido",
            "aku akan membunuhmu",
            "pembunuh bayaran",
        ],
    ),
    (
        "illegal",
        &[
            "stolen credit cards",
            "cloned cards",
            "cvv dumps",
            "fullz",
            "bank logs",
            "hacked accounts",
            "money laundering",
            "launder money",
            "child porn",
            "csam",
            "human trafficking",
            "organ trafficking",
            "sell your kidney",
            "fake banknotes",
            "tarjetas clonadas",
            "lavado de dinero",
            "billetes falsos",
            "trata de personas",
            "venta de órganos",
            "cartões clonados",
            "lavagem de dinheiro",
            "notas falsas",
            "tráfico de pessoas",
            "cartes clonées",
            "blanchiment d'argent",
            "faux billets",
            "geldwäsche",
            "gefälschte banknoten",
            "menschenhandel",
            "riciclaggio di denaro",
            "banconote false",
            "pencucian uang",
            "uang palsu",
        ],
    ),
    (
        "misinformation",
        &[
            "miracle cure",
            "cures cancer",
            "cures diabetes",
            "cures covid",
            "covid cure",
            "vaccines cause autism",
            "vaccine microchip",
            "plandemic",
            "guaranteed cure",
            "cura milagrosa",
            "cura el cáncer",
            "las vacunas causan autismo",
            "cura o câncer",
            "vacinas causam autismo",
            "remède miracle",
            "guérit le cancer",
            "wunderheilung",
            "heilt krebs",
            "cura miracolosa",
            "cura il cancro",
            "obat ajaib",
            "menyembuhkan kanker",
        ],
    ),
];

/// The category the shield's verdict adds: a template the shield reads as
/// smishing, or as spam with at least [`TEMPLATE_SPAM_SCORE`]. Ordinary
/// promotions score 0.8 to 0.9 as spam and pass.
pub const SPAM_CATEGORY: &str = "spam";
pub const TEMPLATE_SPAM_SCORE: f32 = 0.95;

/// Configured categories, each a list of normalised terms (word sequences).
#[derive(Debug, Clone, Default)]
pub struct ProhibitedContent {
    categories: Vec<(String, Vec<Vec<String>>)>,
}

impl ProhibitedContent {
    /// Every built-in category.
    pub fn builtin() -> Self {
        Self::new(
            BUILTIN_PROHIBITED
                .iter()
                .map(|(c, terms)| (c.to_string(), terms.iter().map(|t| t.to_string()).collect())),
        )
    }

    /// Categories and their terms; empty terms are ignored, a category listed
    /// twice keeps the terms of both.
    pub fn new(lists: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        let mut categories: Vec<(String, Vec<Vec<String>>)> = Vec::new();
        for (name, terms) in lists {
            let terms: Vec<Vec<String>> = terms
                .iter()
                .map(|t| words(t))
                .filter(|w| !w.is_empty())
                .collect();
            match categories.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => existing.extend(terms),
                None => categories.push((name, terms)),
            }
        }
        Self { categories }
    }

    pub fn category_names(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|(n, _)| n.as_str())
    }

    /// The first category with a term in any of `texts`.
    pub fn check<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Option<&str> {
        let words: Vec<Vec<String>> = texts.into_iter().map(words).collect();
        self.categories.iter().find_map(|(name, terms)| {
            terms
                .iter()
                .any(|term| words.iter().any(|w| contains_run(w, term)))
                .then_some(name.as_str())
        })
    }
}

/// Every string a template would show or submit: its name and every string
/// value inside the components (texts, examples, button labels, URLs).
pub fn template_texts<'a>(name: &'a str, components: &'a Value) -> Vec<&'a str> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = vec![name];
    walk(components, &mut out);
    out
}

/// Lower-case words; `_`, punctuation and spaces separate them, except that
/// a hyphen inside a word is kept (`e-cigarette`). Digits that stand for
/// letters are read as letters in words that also have letters.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '$' || c == '@'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.chars().any(char::is_alphabetic) {
                w.chars().map(unleet).collect()
            } else {
                w.to_owned()
            }
        })
        .collect()
}

fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

fn contains_run(words: &[String], term: &[String]) -> bool {
    words.windows(term.len()).any(|w| w == term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_whole_words_across_case_punctuation_and_leet() {
        let p = ProhibitedContent::builtin();
        assert_eq!(p.check(["Get COCAINE today!"]), Some("drugs"));
        assert_eq!(p.check(["get c0ca1ne today"]), Some("drugs"));
        assert_eq!(p.check(["best_online_casino"]), Some("gambling"));
        assert_eq!(p.check(["Try our new E-Cigarette"]), Some("tobacco"));
        assert_eq!(p.check(["Sports   betting, tonight"]), Some("gambling"));
        // Words containing a term are not the term.
        assert_eq!(p.check(["Our vaporetto tour and ammonia-free dye"]), None);
        assert_eq!(p.check(["Your order 4711 ships at 3 pm"]), None);
    }

    #[test]
    fn policy_categories_match_in_several_languages() {
        let p = ProhibitedContent::builtin();
        for (text, category) in [
            ("They are subhumans, all of them", "hate"),
            ("Por la limpieza étnica del barrio", "hate"),
            ("Rassenreinheit jetzt", "hate"),
            ("Pay up or I will kill you", "violence"),
            ("Pague ou vou te matar", "violence"),
            ("Un tueur à gages discret", "violence"),
            ("Fresh fullz and bank logs daily", "illegal"),
            ("Servicio de lavado de dinero rápido", "illegal"),
            ("Jasa pencucian uang aman", "illegal"),
            ("This miracle cure reverses ageing", "misinformation"),
            ("Este té cura el cáncer", "misinformation"),
            ("Dieser Tee heilt Krebs", "misinformation"),
        ] {
            assert_eq!(p.check([text]), Some(category), "{text}");
        }
    }

    #[test]
    fn ordinary_messages_that_touch_the_subjects_pass() {
        let p = ProhibitedContent::builtin();
        for text in [
            "Your cancer screening appointment is on Monday at 9:00",
            "Our anti-money-laundering checks need your ID before the transfer",
            "The museum's war history tour starts at 10",
            "Reminder: flu vaccines are available at the pharmacy",
            "Sua consulta está confirmada para segunda-feira",
            "Ihre Bestellung wurde versandt",
            "Join our race on Sunday: 5 km through the park",
        ] {
            assert_eq!(p.check([text]), None, "{text}");
        }
    }

    #[test]
    fn configured_lists_replace_and_extend() {
        let p = ProhibitedContent::new([
            (
                "crypto".to_owned(),
                vec!["guaranteed returns".to_owned(), "  ".to_owned()],
            ),
            ("crypto".to_owned(), vec!["double your bitcoin".to_owned()]),
        ]);
        assert_eq!(p.category_names().collect::<Vec<_>>(), ["crypto"]);
        assert_eq!(p.check(["Double your Bitcoin now"]), Some("crypto"));
        assert_eq!(p.check(["cocaine"]), None);
        assert_eq!(ProhibitedContent::default().check(["porn"]), None);
    }

    #[test]
    fn texts_cover_name_examples_and_buttons() {
        let c = json!([
            {"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["free spins"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": "https://x.example/porn"}]}
        ]);
        let texts = template_texts("promo", &c);
        assert!(texts.contains(&"promo") && texts.contains(&"free spins"));
        let p = ProhibitedContent::builtin();
        assert_eq!(p.check(template_texts("promo", &c)), Some("gambling"));
        assert_eq!(
            p.check(template_texts("fake_id_deals", &json!([]))),
            Some("counterfeit")
        );
    }
}
