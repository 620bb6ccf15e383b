//! Slot filling for the templates: `{slot}` names pick a filler (brand, hostile link, phone
//! number, amount, ...) with a seeded SplitMix64, so output depends on the seed alone.

use crate::fillers::*;

pub struct Gen {
    state: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn slug(&mut self, brand: &str) -> String {
        brand.to_lowercase().replace([' ', '-', '.'], "")
    }

    /// A link no legitimate sender would use: shortener, brand-bait or lure-word domain on a
    /// cheap TLD, raw IP, `brand.com@evil`, free hosting, random label or punycode.
    fn bad_link(&mut self, brand: &str) -> String {
        let b = self.slug(brand);
        let w = self.pick(HOST_WORDS);
        let w2 = self.pick(HOST_WORDS);
        let tld = self.pick(ODD_TLDS);
        let path = self.pick(PATHS);
        let scheme = self.pick(&["https://", "http://", "", ""]);
        let code: String = (0..6)
            .map(|_| char::from(ALNUM[self.below(ALNUM.len())]))
            .collect();
        match self.below(10) {
            0 | 1 => format!("{scheme}{}/{code}", self.pick(SHORTENERS)),
            2 => format!("{scheme}{b}-{w}.{tld}/{path}"),
            3 => format!("{scheme}{w}-{b}-{w2}.{tld}"),
            4 => format!(
                "http://{}.{}.{}.{}/{path}",
                self.below(223) + 1,
                self.below(255),
                self.below(255),
                self.below(254) + 1
            ),
            5 => format!("http://{b}.com@{w}-{w2}.{tld}/{path}"),
            6 => format!("https://{b}-{w}.{}/{path}", self.pick(FREE_HOSTS)),
            7 => format!("{scheme}{w}{}-{w2}.{tld}", self.digits(2)),
            8 => format!("{scheme}{b}.{w}-{w2}.{tld}/{path}"),
            _ => format!("{scheme}{}.{tld}/{code}", self.pick(LOOKALIKES)),
        }
    }

    fn phone(&mut self) -> String {
        match self.below(8) {
            0 | 1 => format!("{}{}", self.pick(&["9", "8", "7", "6"]), self.digits(9)),
            2 => format!("+91 {}{}", self.pick(&["9", "8", "7"]), self.digits(9)),
            3 => format!("07{} {}", self.digits(3), self.digits(6)),
            4 => format!("0800 {} {}", self.digits(3), self.digits(4)),
            5 => format!(
                "1-8{}-{}-{}",
                self.pick(&["00", "33", "44", "55", "66", "77", "88"]),
                self.digits(3),
                self.digits(4)
            ),
            6 => format!("+44 7{} {}", self.digits(3), self.digits(6)),
            _ => format!(
                "(0{}) {} {}",
                self.digits(2),
                self.digits(4),
                self.digits(4)
            ),
        }
    }

    fn amount(&mut self) -> String {
        let cur = self.pick(&["£", "$", "Rs ", "Rs.", "€", "INR ", "USD ", ""]);
        match self.below(4) {
            0 => format!("{cur}{}.{}", self.below(9) + 1, self.digits(2)),
            1 => format!("{cur}{}", self.below(900) + 100),
            2 => format!("{cur}{},{}", self.below(90) + 1, self.digits(3)),
            _ => format!("{cur}{}", (self.below(50) + 1) * 100),
        }
    }

    /// Fills every `{slot}` in `template`.
    pub fn fill(&mut self, template: &str) -> String {
        let brand = self.pick(ALL_BRANDS).to_string();
        let mut out = String::with_capacity(template.len() + 40);
        let mut rest = template;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let Some(j) = rest[i..].find('}') else { break };
            let slot = &rest[i + 1..i + j];
            let v = match slot {
                "brand" => brand.clone(),
                "bank" => self.pick(BANKS).to_string(),
                "wallet" => self.pick(WALLETS).to_string(),
                "courier" => self.pick(COURIERS).to_string(),
                "tech" => self.pick(TECH).to_string(),
                "telco" => self.pick(TELCOS).to_string(),
                "device" => self.pick(DEVICES).to_string(),
                "threat" => self.pick(THREATS).to_string(),
                "fix" => self.pick(FIXES).to_string(),
                "deadline" => self.pick(DEADLINES).to_string(),
                "greet" => self.pick(GREETINGS).to_string(),
                "link" => self.bad_link(&brand),
                "short" => format!("{}/{}", self.pick(SHORTENERS), self.digits(5)),
                "phone" => self.phone(),
                "amount" => self.amount(),
                "big" => format!("{}.{} million", self.below(30) + 1, self.below(10)),
                "currency" => self
                    .pick(&["dollars", "USD", "pounds", "euros", "GBP"])
                    .to_string(),
                "product" => self.pick(PRODUCTS).to_string(),
                "name" => self.pick(NAMES).to_string(),
                "place" => self.pick(PLACES).to_string(),
                "time" => format!(
                    "{}{}",
                    self.below(11) + 1,
                    self.pick(&["pm", "am", ":30", "", " o'clock"])
                ),
                "day" => self.pick(DAYS).to_string(),
                "code" => self.digits(6),
                "n" => format!("{}", self.below(90) + 2),
                "ref" => format!("{}{}", self.pick(&["", "A", "REF", "#"]), self.digits(7)),
                "official" => self.official_link(),
                "plain" => self.plain_link(),
                "pct" => format!("{}%", (self.below(9) + 1) * 10),
                other => format!("{{{other}}}"),
            };
            out.push_str(&v);
            rest = &rest[i + j + 1..];
        }
        out.push_str(rest);
        out
    }

    /// An ordinary link friends and small businesses share: plain words, common TLDs.
    fn plain_link(&mut self) -> String {
        let a = self.pick(PLAIN_WORDS);
        let b = self.pick(PLAIN_WORDS);
        let tld = self.pick(&["com", "co.uk", "org", "in", "net", "org.uk", "de", "es"]);
        let path = self.pick(PLAIN_PATHS);
        let scheme = self.pick(&["https://", "https://www.", "www.", ""]);
        if self.chance(0.5) {
            format!("{scheme}{a}{b}.{tld}/{path}")
        } else {
            format!("{scheme}{a}-{b}.{tld}/{path}")
        }
    }

    fn official_link(&mut self) -> String {
        let (domain, paths) = OFFICIAL[self.below(OFFICIAL.len())];
        let path = self.pick(paths);
        format!(
            "{}{domain}/{path}",
            self.pick(&["https://www.", "https://", "www."])
        )
    }

    /// Filter-dodging spellings: a split or leet brand name or account word.
    pub fn obfuscate(&mut self, text: &str) -> String {
        let mut s = text.to_string();
        for (from, tos) in OBFUSCATIONS {
            if s.contains(from) && self.chance(0.6) {
                s = s.replacen(from, self.pick(tos), 1);
            }
        }
        s
    }
}
