//! The vocabulary mail clients use around a quote, in the languages our
//! customers write, and the line shapes built from it: quote headers ("On …
//! wrote:"), `Key: value` header blocks, "-----Original Message-----" style
//! separators, forward markers and app footers.
//!
//! The rules are shapes, not strings: a quote header is a date-ish token plus
//! an address or a "wrote" verb in any language, a header block is two or more
//! `Key: value` lines whose keys mean From/Sent/To/Subject in any language. The
//! word lists only supply the language.

/// One line as the rules read it: every kind of space made a plain space,
/// invisible marks (bidi controls, zero-width characters, soft hyphens) gone,
/// full-width colons made ASCII, `*bold*` markers of HTML-to-text converters
/// dropped, trimmed. Windows Mail and iOS sprinkle such characters through
/// dates ("‎10‎:‎12", "10:12 AM"), which would hide the time from the rules.
pub(super) fn plain(line: &str) -> String {
    // Most lines are ASCII without a star or a tab: nothing to replace. The rules
    // ask for a line's plain form many times, so this path matters.
    if line
        .bytes()
        .all(|b| b.is_ascii() && b != b'*' && b != b'\t')
    {
        return line.trim().to_string();
    }
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '*' => {}
            '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\t' => {
                out.push(' ')
            }
            '：' => out.push(':'),
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// What a header line's key means, whatever the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderField {
    From,
    Date,
    To,
    Cc,
    Subject,
    ReplyTo,
}

const FROM_KEYS: &[&str] = &[
    "from",
    "von",
    "van",
    "fra",
    "från",
    "od",
    "de",
    "da",
    "от",
    "від",
    "từ",
    "lähettäjä",
    "kimden",
    "差出人",
    "发件人",
    "發件人",
    "寄件者",
    "寄件人",
    "보낸 사람",
    "afsender",
    "avsändare",
    "avsender",
    "odesílatel",
    "nadawca",
    "remetente",
    "mittente",
    "expéditeur",
    "remitente",
    "feladó",
    "absender",
    "saatja",
    "de la",
];

const DATE_KEYS: &[&str] = &[
    "sent",
    "date",
    "sent at",
    "date sent",
    "gesendet",
    "datum",
    "verzonden",
    "verstuurd",
    "sendt",
    "skickat",
    "skickades",
    "wysłane",
    "wysłano",
    "data",
    "envoyé",
    "envoyé le",
    "date d'envoi",
    "enviado",
    "enviado el",
    "enviada",
    "enviado em",
    "fecha",
    "inviato",
    "inviato il",
    "отправлено",
    "дата",
    "надіслано",
    "đã gửi",
    "ngày",
    "ngày gửi",
    "odesláno",
    "lähetetty",
    "päivämäärä",
    "gönderildi",
    "gönderilme tarihi",
    "tarih",
    "送信日時",
    "日付",
    "发送时间",
    "發送時間",
    "寄件日期",
    "日期",
    "时间",
    "時間",
    "날짜",
    "보낸 날짜",
    "dato",
    "päiväys",
    "elküldve",
    "dátum",
    "trimis",
];

const TO_KEYS: &[&str] = &[
    "to",
    "an",
    "aan",
    "til",
    "till",
    "do",
    "à",
    "a",
    "para",
    "per",
    "кому",
    "до",
    "đến",
    "tới",
    "komu",
    "vastaanottaja",
    "kime",
    "宛先",
    "收件人",
    "收件者",
    "받는 사람",
    "destinatario",
    "destinatarios",
    "destinataire",
    "destinataires",
    "empfänger",
    "címzett",
    "adresat",
    "mottagare",
    "mottaker",
    "modtager",
];

const CC_KEYS: &[&str] = &[
    "cc",
    "bcc",
    "kopie",
    "kopie an",
    "kopi",
    "kopia",
    "dw",
    "копия",
    "копія",
    "副本",
    "抄送",
    "참조",
    "másolat",
    "kopio",
    "bilgi",
    "cc'd",
];

const SUBJECT_KEYS: &[&str] = &[
    "subject",
    "betreff",
    "onderwerp",
    "emne",
    "ämne",
    "temat",
    "objet",
    "asunto",
    "oggetto",
    "assunto",
    "тема",
    "chủ đề",
    "předmět",
    "aihe",
    "konu",
    "件名",
    "主题",
    "主旨",
    "제목",
    "tárgy",
    "subiect",
    "tema",
    "otsikko",
    "titel",
];

const REPLY_TO_KEYS: &[&str] = &[
    "reply-to",
    "reply to",
    "antwort an",
    "répondre à",
    "responder a",
    "rispondi a",
    "beantwoorden",
    "svar til",
    "svara till",
    "odpowiedź do",
    "ответить",
];

/// The key of a `Key: value` line and its value, when the key is a header
/// name in some language.
pub(super) fn header_field(line: &str) -> Option<(HeaderField, String)> {
    let cleaned = plain(line);
    let colon = cleaned.find(':')?;
    let key = cleaned[..colon].trim().to_lowercase();
    if key.is_empty() || key.chars().count() > 24 {
        return None;
    }
    let value = cleaned[colon + 1..].trim().to_string();
    let tables: [(&[&str], HeaderField); 6] = [
        (FROM_KEYS, HeaderField::From),
        (DATE_KEYS, HeaderField::Date),
        (TO_KEYS, HeaderField::To),
        (CC_KEYS, HeaderField::Cc),
        (SUBJECT_KEYS, HeaderField::Subject),
        (REPLY_TO_KEYS, HeaderField::ReplyTo),
    ];
    tables
        .iter()
        .find(|(keys, _)| keys.contains(&key.as_str()))
        .map(|(_, field)| (*field, value))
}

/// How many lines a header block starting at `i` spans, if one does: two or
/// more header lines whose keys include a From, with a date, a recipient or a
/// subject beside it. Requiring the companions keeps a sentence like "From: my
/// point of view…" from cutting a message. A long To list wraps, so one line
/// that is no header may sit between two that are.
pub(super) fn header_block_span(lines: &[&str], i: usize) -> Option<usize> {
    header_field(lines[i])?;
    let mut fields: Vec<(HeaderField, String)> = Vec::new();
    let mut j = i;
    while j < lines.len() && j < i + 12 {
        if let Some(field) = header_field(lines[j]) {
            fields.push(field);
            j += 1;
            continue;
        }
        let continues = !lines[j].trim().is_empty()
            && lines
                .get(j + 1)
                .is_some_and(|next| header_field(next).is_some());
        if continues && !fields.is_empty() {
            j += 1;
            continue;
        }
        break;
    }
    let has = |wanted: HeaderField| fields.iter().any(|(field, _)| *field == wanted);
    let from_value = fields
        .iter()
        .find(|(field, _)| *field == HeaderField::From)
        .map(|(_, value)| value.as_str())?;
    let companions = [HeaderField::Date, HeaderField::To, HeaderField::Subject]
        .into_iter()
        .filter(|field| has(*field))
        .count();
    if companions == 0 {
        return None;
    }
    let dated = fields
        .iter()
        .any(|(field, value)| *field == HeaderField::Date && has_date(value));
    let convincing = fields.len() >= 3 || looks_like_address(from_value) || dated;
    convincing.then_some(j - i)
}

pub(super) fn looks_like_address(text: &str) -> bool {
    text.contains('@') || (text.contains('<') && text.contains('>'))
}

/// A date or a time as quote headers write them: a year, a clock time, or a
/// numeric date with three parts ("03.11.26", "2026/11/03", "3-11-2026"), in
/// ASCII or full-width digits.
pub(super) fn has_date(text: &str) -> bool {
    let digits: Vec<char> = text
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            _ => c,
        })
        .collect();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (index, c) in digits.iter().enumerate() {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(index),
            (false, Some(s)) => {
                runs.push((s, index));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, digits.len()));
    }
    let year = runs
        .iter()
        .any(|(s, e)| e - s == 4 && matches!(digits[*s..*s + 2], ['1', '9'] | ['2', '0']));
    let joined_by = |a: &(usize, usize), b: &(usize, usize), seps: &[char]| {
        b.0 == a.1 + 1 && seps.contains(&digits[a.1])
    };
    let time = runs
        .windows(2)
        .any(|w| joined_by(&w[0], &w[1], &[':']) && w[1].1 - w[1].0 == 2 && w[0].1 - w[0].0 <= 2);
    let numeric_date = runs.windows(3).any(|w| {
        joined_by(&w[0], &w[1], &['.', '/', '-'])
            && joined_by(&w[1], &w[2], &['.', '/', '-'])
            && digits[w[0].1] == digits[w[1].1]
    });
    year || time || numeric_date
}

/// The verbs of "X wrote:" in the languages customers use. Latin-script verbs
/// match as whole words, so "geschrieben" does not count as "schrieb".
const WROTE_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "has written",
    "folgendes geschrieben",
    "het volgende geschreven",
    "napisana przez",
    "şunları yazdı",
    "schrieb",
    "schreibt",
    "a écrit",
    "écrit",
    "escribió",
    "ha escrito",
    "escribio",
    "ha scritto",
    "scrisse",
    "schreef",
    "heeft geschreven",
    "skrev",
    "skriver",
    "napisał",
    "napisała",
    "napisał(a)",
    "napisal",
    "pisze",
    "написал",
    "написала",
    "написал(а)",
    "пишет",
    "написав",
    "написала(а)",
    "пише",
    "escreveu",
    "đã viết",
    "viết",
    "napsal",
    "napsala",
    "napsal(a)",
    "kirjoitti",
    "yazdı",
    "şunu yazdı",
    "írta",
    "a scris",
    "написа",
    "napisao",
    "napisala",
    "je napisal",
    "kirjutas",
    "rakstīja",
    "parašė",
    "έγραψε",
    "כתב",
    "كتب",
    "menulis",
    "sumulat",
];

/// Verbs in scripts without spaces between words: matched anywhere.
const WROTE_VERBS_CJK: &[&str] = &[
    "写道",
    "寫道",
    "のメッセージ",
    "書きました",
    "님이 작성",
    "작성:",
    "さんは書きました",
];

pub(super) fn has_wrote_verb(lower: &str) -> bool {
    WROTE_VERBS.iter().any(|verb| contains_word(lower, verb))
        || WROTE_VERBS_CJK.iter().any(|verb| lower.contains(verb))
}

/// Whole-word search: the neighbours of a match must not be letters or digits.
pub(super) fn contains_word(haystack: &str, word: &str) -> bool {
    haystack.match_indices(word).any(|(pos, _)| {
        let before = haystack[..pos].chars().next_back();
        let after = haystack[pos + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// What kind of quote header a (possibly joined) text ending in a colon is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuoteHeader {
    /// A date or address with a "wrote" verb: certain, whatever follows.
    Certain,
    /// Believable only when a `>` quote follows: "X wrote:" without a date,
    /// or a date and an address without a verb (Gmail in Russian or
    /// Japanese, Yandex: "03.11.2026, 10:12, "X" <x@y>:").
    IfQuoteFollows,
}

pub(super) fn quote_header(text: &str) -> Option<QuoteHeader> {
    let text = plain(text);
    let body = text.strip_suffix(':')?.trim_end();
    if body.is_empty() || body.chars().count() > 300 {
        return None;
    }
    let lower = body.to_lowercase();
    let verb = has_wrote_verb(&lower);
    let date = has_date(&lower);
    let address = looks_like_address(&lower);
    if verb && (date || address) {
        return Some(QuoteHeader::Certain);
    }
    if verb && verb_is_last(&lower) && lower.split_whitespace().count() <= 10 {
        return Some(QuoteHeader::IfQuoteFollows);
    }
    if date && address {
        return Some(QuoteHeader::IfQuoteFollows);
    }
    None
}

/// "Kontor Support wrote", "Kontor Support a écrit": the verb closes the line
/// (German "schrieb Kontor Support" puts it before the name, and has a date).
fn verb_is_last(lower: &str) -> bool {
    let trimmed = lower.trim_end_matches([' ', '.']);
    WROTE_VERBS
        .iter()
        .chain(WROTE_VERBS_CJK)
        .any(|verb| trimmed.ends_with(verb))
}

/// Words that name a message in the "-----Original Message-----" family.
const MESSAGE_WORDS: &[&str] = &[
    "message",
    "nachricht",
    "bericht",
    "meddelelse",
    "meddelande",
    "melding",
    "besked",
    "wiadomość",
    "wiadomosc",
    "mensaje",
    "messaggio",
    "mensagem",
    "сообщение",
    "письмо",
    "повідомлення",
    "tin nhắn",
    "thư",
    "zpráva",
    "e-mail",
    "email",
    "mail",
    "viesti",
    "mesaj",
    "ileti",
    "i\u{307}leti",
    "メッセージ",
    "メール",
    "邮件",
    "郵件",
    "消息",
    "correo",
    "brev",
    "üzenet",
    "mesajul",
];

/// Words that say a message is forwarded.
const FORWARD_WORDS: &[&str] = &[
    "forward",
    "weitergeleitet",
    "doorgestuurd",
    "videresendt",
    "vidarebefordra",
    "przekazan",
    "przekazywan",
    "przesłan",
    "transféré",
    "réexpédié",
    "reenviad",
    "encaminhad",
    "reencaminhad",
    "inoltrat",
    "пересыла",
    "переслан",
    "переадресован",
    "пересилан",
    "chuyển tiếp",
    "přeposlan",
    "välitetty",
    "iletilmiş",
    "iletilen",
    "転送",
    "转发",
    "轉寄",
    "轉發",
    "továbbított",
    "yönlendiril",
];

/// "-----Original Message-----", "-------- Ursprüngliche Nachricht --------",
/// "---------- Forwarded message ---------", "----- Mensaje original -----":
/// a few words between runs of dashes or underscores, one of which names a
/// message. Any language, because only the frame and one word are checked.
pub(super) fn is_separator_marker(line: &str) -> bool {
    let text = plain(line);
    let frame = |c: char| c == '-' || c == '_' || c == '=' || c == '~';
    let leading = text.chars().take_while(|c| frame(*c)).count();
    if leading < 2 {
        return false;
    }
    let inner = text
        .trim_matches(|c: char| frame(c) || c == ' ')
        .to_lowercase();
    if inner.is_empty() || inner.split_whitespace().count() > 6 {
        return false;
    }
    MESSAGE_WORDS.iter().any(|word| inner.contains(word)) || is_forward_words(&inner)
}

fn is_forward_words(lower: &str) -> bool {
    FORWARD_WORDS.iter().any(|word| lower.contains(word))
}

/// A line that announces a forwarded message: a framed marker with a forward
/// word ("---------- Forwarded message ---------") or a short line ending in
/// a colon ("Begin forwarded message:", "Anfang der weitergeleiteten
/// Nachricht:", "Début du message réexpédié :").
pub(super) fn is_forward_marker(line: &str) -> bool {
    let text = plain(line);
    let lower = text.to_lowercase();
    if !is_forward_words(&lower) {
        return false;
    }
    if is_separator_marker(&text) {
        return true;
    }
    let body = lower.trim_end_matches([' ', ':']);
    lower.ends_with(':') && body.split_whitespace().count() <= 6 && !body.contains(['.', '?', '!'])
}

/// Lines of only underscores or dashes: Outlook's rule above its header block.
pub(super) fn is_rule_line(line: &str) -> bool {
    let text = plain(line);
    text.chars().count() >= 10 && text.chars().all(|c| c == '_' || c == '-' || c == '—')
}

/// Phrases that open the footers phones and mail apps append on their own,
/// lower case. The sender did not write them, so they are noise in a ticket.
const FOOTER_OPENINGS: &[&str] = &[
    "sent from my ",
    "sent from ",
    "sent with ",
    "sent via ",
    "sent using ",
    "sent on the go",
    "get outlook for ",
    "outlook für ",
    "von meinem ",
    "gesendet von ",
    "gesendet mit ",
    "gesendet vom ",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "envoyé à partir de ",
    "envoyé avec ",
    "obtenir outlook pour ",
    "enviado desde mi ",
    "enviado desde ",
    "enviado con ",
    "enviado do meu ",
    "enviado de meu ",
    "enviado do ",
    "obter o outlook para ",
    "obtener outlook para ",
    "inviato da ",
    "inviato dal mio ",
    "inviato con ",
    "scarica outlook per ",
    "verzonden vanaf mijn ",
    "verzonden met ",
    "verstuurd vanaf mijn ",
    "verzonden vanuit ",
    "outlook voor ",
    "sendt fra min ",
    "sendt fra ",
    "sendt med ",
    "hent outlook til ",
    "skickat från min ",
    "skickat från ",
    "skickades från ",
    "hämta outlook för ",
    "wysłane z mojego ",
    "wysłane z ",
    "wysłano z mojego ",
    "wysłano z ",
    "pobierz aplikację outlook dla ",
    "отправлено с моего ",
    "отправлено с ",
    "отправлено из ",
    "надіслано з ",
    "gửi từ ",
    "được gửi từ ",
    "odesláno z ",
    "odesláno ze ",
    "lähetetty ",
    "iphone'umdan gönderildi",
    "android'imden gönderildi",
    "発信元",
    "送信元:",
    "发自我的",
    "从我的",
    "寄自我的",
];

/// Footer lines that say where they were sent from at the end instead.
const FOOTER_ENDINGS: &[&str] = &[
    " gesendet",
    " gesendet.",
    "から送信",
    "から送信しました",
    "'umdan gönderildi",
    "'imden gönderildi",
    "ten gönderildi",
    "dan gönderildi",
    "den gönderildi",
];

/// Footers such as "Sent from my iPhone", "Von meinem iPhone gesendet",
/// "Get Outlook for Android", "Sent with Proton Mail secure email", in the
/// languages of [`FOOTER_OPENINGS`]; short lines only.
pub(super) fn is_app_footer(line: &str) -> bool {
    let mut text = plain(line);
    // Outlook mobile adds the download link: "Get Outlook for iOS<https://aka.ms/…>",
    // "Outlook für iOS<https://aka.ms/…> beziehen".
    while let (Some(open), Some(close)) = (text.find(['<', '[']), text.find(['>', ']'])) {
        if close < open || open == 0 {
            break;
        }
        text.replace_range(open..=close, "");
    }
    let lower = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    if lower.is_empty() || lower.chars().count() > 90 || lower.split_whitespace().count() > 12 {
        return false;
    }
    // "Sent from my iPhone" and friends end a sentence-free line; a customer's
    // "Sent from my office PC, the invoice is wrong" does not look like one.
    if lower.contains([',', '?', ';']) && !lower.contains("iphone") {
        return false;
    }
    let opening = FOOTER_OPENINGS
        .iter()
        .any(|opening| lower.starts_with(opening));
    let ending = FOOTER_ENDINGS.iter().any(|ending| lower.ends_with(ending));
    (opening || ending) && mentions_an_app(&lower)
}

/// The device or app a footer names; without one, "Sent from the office"
/// stays the customer's sentence.
fn mentions_an_app(lower: &str) -> bool {
    const APPS: &[&str] = &[
        "iphon",
        "ipad",
        "ipod",
        "mac",
        "android",
        "galaxy",
        "samsung",
        "huawei",
        "xiaomi",
        "pixel",
        "oneplus",
        "nokia",
        "motorola",
        "sony",
        "xperia",
        "blackberry",
        "outlook",
        "mail",
        "windows",
        "proton",
        "yahoo",
        "aol",
        "gmx",
        "web.de",
        "t-online",
        "yandex",
        "яндекс",
        "spark",
        "airmail",
        "bluemail",
        "edison",
        "smartphone",
        "handy",
        "mobile",
        "mobil",
        "mobiel",
        "telefon",
        "téléphone",
        "telefono",
        "teléfono",
        "telefone",
        "телефон",
        "smartfon",
        "tablet",
        "app",
        "điện thoại",
        "携帯",
        "手机",
        "手機",
        "ios",
        "fairphone",
        "zimbra",
        "tutanota",
        "tuta",
        "fastmail",
    ];
    APPS.iter().any(|app| lower.contains(app))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_recognised() {
        for text in [
            "on tue, 3 nov 2026 at 10:12",
            "03.11.26 10.12",
            "2026/11/03",
            "3-11-2026",
            "den 3 nov. 2026 kl 9:05",
            "２０２６年１１月３日",
        ] {
            assert!(has_date(text), "{text}");
        }
        for text in ["on monday", "version 4.2", "room 4.12", "call 0171 2345678"] {
            assert!(!has_date(text), "{text}");
        }
    }

    #[test]
    fn quote_headers_in_many_languages() {
        for line in [
            "On Tue, 3 Nov 2026 at 10:12, Kontor Support <support@example.com> wrote:",
            "Op di 3 nov. 2026 om 10:12 schreef Kontor Support <support@example.com>:",
            "Den tir. 3. nov. 2026 kl. 10.12 skrev Kontor Support <support@example.com>:",
            "wt., 3 lis 2026 o 10:12 Kontor Support <support@example.com> napisał(a):",
            "вт, 3 нояб. 2026 г. в 10:12, Kontor Support <support@example.com>:",
            "Vào Th 3, 3 thg 11, 2026 vào lúc 10:12 Kontor Support <support@example.com> đã viết:",
            "Kontor Support <support@example.com> 于2026年11月3日周二 10:12写道：",
            "2026年11月3日(火) 10:12 Kontor Support <support@example.com>:",
            "On\u{a0}Tue,\u{a0}3\u{a0}Nov\u{a0}2026 at 10:12\u{202f}AM, Support <s@example.com> wrote:",
        ] {
            assert!(quote_header(line).is_some(), "{line}");
        }
        // Only believable when a `>` quote follows it.
        assert_eq!(
            quote_header("On Monday my colleague wrote:"),
            Some(QuoteHeader::IfQuoteFollows)
        );
        assert_eq!(quote_header("Our address is Main St 3:"), None);
    }

    #[test]
    fn separators_and_forward_markers() {
        assert!(is_separator_marker("-----Original Message-----"));
        assert!(is_separator_marker(
            "-------- Oorspronkelijk bericht --------"
        ));
        assert!(is_separator_marker("----- Původní zpráva -----"));
        assert!(!is_separator_marker("----- Step 2 -----"));
        assert!(is_forward_marker("---------- Forwarded message ---------"));
        assert!(is_forward_marker("Begin forwarded message:"));
        assert!(is_forward_marker("Début du message réexpédié :"));
        assert!(!is_forward_marker("-----Original Message-----"));
        assert!(!is_forward_marker(
            "I forwarded it to my boss yesterday, he says:"
        ));
    }

    #[test]
    fn app_footers() {
        for line in [
            "Sent from my iPhone",
            "Von meinem iPhone gesendet",
            "Verzonden vanaf mijn iPhone",
            "Envoyé de mon iPhone",
            "Enviado desde mi iPhone",
            "Inviato da iPhone",
            "Sendt fra min iPhone",
            "Skickat från min iPhone",
            "Wysłane z mojego iPhone'a",
            "Отправлено с iPhone",
            "iPhoneから送信",
            "Get Outlook for Android<https://aka.ms/AAb9ysg>",
            "Sent with Proton Mail secure email.",
            "Von meinem Samsung Galaxy Smartphone gesendet.",
        ] {
            assert!(is_app_footer(line), "{line}");
        }
        for line in [
            "Sent from the office, the printer is broken.",
            "Gesendet habe ich es gestern.",
            "Sent you the file.",
        ] {
            assert!(!is_app_footer(line), "{line}");
        }
    }

    #[test]
    fn header_blocks_need_companions() {
        let lines = [
            "Van: Kontor Support <support@example.com>",
            "Verzonden: dinsdag 3 november 2026 10:12",
            "Aan: Jan",
            "Onderwerp: Printer",
        ];
        assert_eq!(header_block_span(&lines, 0), Some(4));
        let lines = ["From: my point of view this is broken.", "Please fix."];
        assert_eq!(header_block_span(&lines, 0), None);
        let lines = [
            "Kimden: Kontor Support <support@example.com>",
            "Konu: Yazıcı",
        ];
        assert_eq!(header_block_span(&lines, 0), Some(2));
    }
}
