//! Picking the readable body of a parsed message.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::html::html_to_text;

/// Returns the text body of a message.
///
/// text/plain is preferred; an HTML-only message is turned into text with
/// [`html_to_text`]. Several inline text parts (Apple Mail splits the text
/// around inline images) are joined. `format=flowed` text is unwrapped so
/// paragraphs read as written. Charsets and transfer encodings are already
/// decoded by mail-parser. If the message has no text at all but carries an
/// attached message (a forward as attachment), that message's text is used.
pub fn best_text(message: &Message) -> String {
    best_text_at_depth(message, 0)
}

fn best_text_at_depth(message: &Message, depth: usize) -> String {
    let from_text = collect(message, &message.text_body);
    if !from_text.trim().is_empty() {
        return from_text;
    }
    // Some clients send an empty text/plain alternative next to the HTML.
    let from_html = collect(message, &message.html_body);
    if !from_html.trim().is_empty() {
        return from_html;
    }
    if depth < 3 {
        for part in &message.parts {
            if let PartType::Message(nested) = &part.body {
                let text = best_text_at_depth(nested, depth + 1);
                if !text.trim().is_empty() {
                    return text;
                }
            }
        }
    }
    unparsed_root_text(message).unwrap_or_default()
}

/// A multipart body without a usable boundary is left as one binary root
/// part. Its bytes are still what the sender typed, and a message must never
/// vanish, so a text-like root is shown as it is.
fn unparsed_root_text(message: &Message) -> Option<String> {
    let root = message.parts.first()?;
    let PartType::Binary(bytes) = &root.body else {
        return None;
    };
    let text_like = root.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") || ct.ctype().eq_ignore_ascii_case("text")
    });
    if !text_like {
        return None;
    }
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    (!text.trim().is_empty()).then_some(text)
}

fn collect(message: &Message, ids: &[u32]) -> String {
    let mut pieces: Vec<String> = Vec::new();
    for id in ids {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let piece = match &part.body {
            PartType::Html(html) => html_to_text(html),
            PartType::Text(text) if is_plain(part) => match flowed(part) {
                Some(delsp) => unflow(text, delsp),
                None => text.replace("\r\n", "\n"),
            },
            _ => continue,
        };
        if !piece.trim().is_empty() {
            pieces.push(piece.trim_end().to_string());
        }
    }
    pieces.join("\n\n")
}

fn is_plain(part: &MessagePart) -> bool {
    part.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("text")
            && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    })
}

/// `Some(delsp)` for RFC 3676 `format=flowed` parts.
fn flowed(part: &MessagePart) -> Option<bool> {
    let ct = part.content_type()?;
    if !ct
        .attribute("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
    {
        return None;
    }
    Some(
        ct.attribute("delsp")
            .is_some_and(|d| d.eq_ignore_ascii_case("yes")),
    )
}

/// Joins soft line breaks of `format=flowed` text (RFC 3676): a line ending
/// in a space continues on the next line of the same quote depth.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let flush = |open: &mut Option<(usize, String)>, out: &mut Vec<String>| {
        if let Some((depth, content)) = open.take() {
            out.push(if depth == 0 {
                content
            } else {
                format!("{} {}", ">".repeat(depth), content)
            });
        }
    };
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = line.chars().take_while(|c| *c == '>').count();
        let rest = &line[depth..];
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let is_sig = rest == "-- ";
        let soft = !is_sig && rest.ends_with(' ');
        let content = if soft && delsp {
            &rest[..rest.len() - 1]
        } else {
            rest
        };
        if open.as_ref().is_some_and(|(d, _)| *d != depth) {
            flush(&mut open, &mut out);
        }
        match open.as_mut() {
            Some((_, buf)) => buf.push_str(content),
            None => open = Some((depth, content.to_string())),
        }
        if !soft {
            flush(&mut open, &mut out);
        }
    }
    flush(&mut open, &mut out);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    #[test]
    fn unflow_joins_soft_breaks() {
        let t = "This is a long \r\nline.\r\n> quoted \r\n> more\r\n-- \r\nSig";
        assert_eq!(
            unflow(t, false),
            "This is a long line.\n> quoted more\n-- \nSig"
        );
    }

    #[test]
    fn unflow_delsp_removes_the_space() {
        assert_eq!(unflow("abc \r\ndef", true), "abcdef");
    }

    #[test]
    fn prefers_plain_text() {
        let raw = b"From: a@example.org\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>Html</p>\r\n--x--\r\n";
        let m = MessageParser::default().parse(raw).expect("parses");
        assert_eq!(best_text(&m).trim(), "Plain");
    }

    #[test]
    fn html_only_is_converted() {
        let raw = b"From: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hallo <b>Welt</b></p>\r\n";
        let m = MessageParser::default().parse(raw).expect("parses");
        assert_eq!(best_text(&m), "Hallo Welt");
    }

    #[test]
    fn empty_plain_alternative_falls_back_to_html() {
        let raw = b"From: a@example.org\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>Html</p>\r\n--x--\r\n";
        let m = MessageParser::default().parse(raw).expect("parses");
        assert_eq!(best_text(&m), "Html");
    }

    #[test]
    fn partless_message_is_empty() {
        assert_eq!(best_text(&Message::default()), "");
    }
}
